"""HierarchicalVAE: a ladder VAE (Sønderby et al. 2016) with a rate weight per latent layer."""

import math
import numbers

import numpy as np
import torch
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import BaseVAE, _check_network_size, _out_of_memory_as_value_error
from ._net import ELBO_DRAWS, VAENet, eval_mode
from ._rng import seed_from
from ._validation import _check_int, _check_real, check_layer_sizes
from .modules import LadderVAEModule, precision_weighted
from .objectives import (ladder_elbo_terms, ladder_importance_log_weights, log_normal, log_standard_normal,
                         negative_ladder_elbo_loss)

__all__ = ["HierarchicalVAE"]


class LadderELBOLoss(nn.Module):
    """The training objective of a ladder VAE: D + sum_l beta_l R_l, averaged over the batch."""

    def __init__(self, likelihood, betas=None):
        super().__init__()
        self.likelihood = likelihood
        self.betas = betas
        self.rate_scale = 1.0  # the warm-up's factor on every beta, set by the net per epoch

    def forward(self, module, x):
        betas = self.betas
        if self.rate_scale != 1.0:
            betas = [self.rate_scale * b for b in (betas or (1.0,) * len(module.latent_dims))]
        return negative_ladder_elbo_loss(module, self.likelihood, x, betas)


class HierarchicalNet(VAENet):
    """:class:`~skvae._net.VAENet` over a :class:`~skvae.modules.LadderVAEModule`: warm-up and scores.

    With ``warmup_epochs=W`` the epoch of 0-based index e weights every rate
    by min(1, e / W) times its beta (Sønderby et al.'s warm-up); those
    epochs neither count for early stopping nor are kept as its best.
    """

    def __init__(self, *args, warmup_epochs=0, **kwargs):
        self.warmup_epochs = warmup_epochs
        super().__init__(*args, **kwargs)

    def rate_scale(self):
        """The warm-up's factor on the betas in the epoch being trained."""
        epoch = len(self.history) - 1  # skorch adds the epoch's history row before training it
        return 1.0 if epoch >= self.warmup_epochs else epoch / self.warmup_epochs

    def counts_for_early_stopping(self):
        return len(self.history) - 1 >= self.warmup_epochs

    def train_step(self, batch, **fit_params):
        self.criterion_.rate_scale = self.rate_scale()
        return super().train_step(batch, **fit_params)

    def importance_draws(self, x, eps):
        """Decoder outputs and log importance weights over the joint latents (z_1, ..., z_L)."""
        return ladder_importance_log_weights(self.module_, self.likelihood, x, eps)

    def layer_components(self, X):
        """Per-row (elbo, distortion, rates of shape (n, L)) in nats, each averaged over ``ELBO_DRAWS``
        draws of the row's fixed noise (beta = 1: the bound on log p(x))."""
        parts = ([], [], [])
        with eval_mode(self.module_), torch.no_grad():
            for x, eps in self._eval_chunks(X, ELBO_DRAWS):
                for store, value in zip(parts, ladder_elbo_terms(self.module_, self.likelihood, x, eps)):
                    store.append(value.mean(0).cpu().numpy())
        return tuple(np.concatenate(p) for p in parts)

    def mixture_information(self, rows, eps, chunk=64):
        """I(X; Z) and KL(q(z) || p(z)) of the joint latents under the mixture q(z) = mean_j q(z | x_j).

        The ladder's version of :func:`skvae.diagnostics.rate_distortion`'s
        estimator: every draw z_i ~ q(z | x_i) is scored under every row's
        posterior q(z_i | x_j) = q(z_L | x_j) prod_l q(z_l | z_{i,l+1}, x_j),
        whose top-down prior part depends on the draw only, so it is computed
        once per draw and combined with each row's bottom-up estimates.

        ``rows``: (N, n_features) tensor; ``eps``: (S, N, sum(latent_dims)).
        Returns two floats in nats.
        """
        module = self.module_
        n_rows = rows.shape[0]
        log_n = math.log(n_rows)
        estimates = module.bottom_up_estimates(rows)  # per layer (N, d_l)
        layers = module.posterior(rows, eps)  # per layer (S, N, d_l)
        log_own = sum(log_normal(z, mu_q, logvar_q) for z, mu_q, logvar_q, _, _ in layers)
        log_prior = sum(log_standard_normal(z) if mu_p is None else log_normal(z, mu_p, logvar_p)
                        for z, _, _, mu_p, logvar_p in layers)
        log_aggregate = torch.empty_like(log_own)
        for start in range(0, n_rows, chunk):
            part = slice(start, start + chunk)
            total = 0.0
            for (z, _, _, mu_p, logvar_p), (mu_hat, logvar_hat) in zip(layers, estimates):
                z = z[:, part, None, :]  # (S, c, 1, d): each draw against every row j
                if mu_p is None:
                    mu_q, logvar_q = mu_hat, logvar_hat
                else:
                    mu_q, logvar_q = precision_weighted(mu_hat, logvar_hat, mu_p[:, part, None, :],
                                                        logvar_p[:, part, None, :])
                total = total + log_normal(z, mu_q, logvar_q)  # (S, c, N)
            log_aggregate[:, part] = torch.logsumexp(total, dim=-1) - log_n
        return float((log_own - log_aggregate).mean()), float((log_aggregate - log_prior).mean())

    def elbo_components(self, X, refine_steps=0, refine_lr=0.05, return_posterior=False):
        """Per-row (elbo, distortion, rate), the rate summed over the layers (see :meth:`layer_components`)."""
        if refine_steps or return_posterior:
            raise TypeError("per-row refinement of the posterior (optimal inference) is built for "
                            "single-layer models; a HierarchicalVAE's ladder posterior has no such path")
        elbo, distortion, rates = self.layer_components(X)
        return elbo, distortion, rates.sum(-1)


class HierarchicalVAE(BaseVAE):
    """Ladder variational auto-encoder (Sønderby et al. 2016) with a β per latent layer.

    A hierarchy of Gaussian latent layers z_1 (next to the data), ..., z_L.
    The generative model runs top-down, p(z_L) p(z_{L-1} | z_L) ... p(x | z_1),
    with p(z_L) = N(0, I) and each conditional a diagonal Gaussian given by
    an MLP. Inference is a ladder: a deterministic bottom-up path gives each
    layer a Gaussian estimate from x, and q(z_l | z_{l+1}, x) is its
    precision-weighted combination with the top-down p(z_l | z_{l+1}). The
    model is trained on the distortion plus the weighted rates,

        D + sum_l beta_l R_l,   D = -E_q log p(x | z_1),
        R_L = KL(q(z_L | x) || p(z_L)),
        R_l = E_q KL(q(z_l | z_{l+1}, x) || p(z_l | z_{l+1})),

    and with every beta_l = 1 that is the negative ELBO. Scores always use
    beta = 1. ``latent_dims=(d,)`` is a single-layer VAE.

    Parameters
    ----------
    latent_dims : tuple of int, default=(32, 16)
        Widths of z_1, ..., z_L, the layer next to the data first; at least one.
    hidden_layer_sizes : tuple of int, default=(500, 500)
        Hidden widths of the bottom-up network from x to z_1's estimate; the
        decoder p(x | z_1) uses them in reverse (as in
        :class:`VAEDensityEstimator`).
    ladder_hidden_sizes : tuple of int or None, default=None
        Hidden widths of every network between two latent layers (the
        bottom-up step to layer l+1 and the top-down p(z_l | z_{l+1})).
        None: one hidden layer as wide as the last of ``hidden_layer_sizes``
        (``()`` if that is empty).
    betas : tuple of float or None, default=None
        The rate weight of each layer, z_1 first, one per entry of
        ``latent_dims``; None gives 1.0 for every layer (the ELBO).
    warmup_epochs : int, default=0
        Warm-up (Sønderby et al.): epoch e (0-based) of training weights the
        rates by ``min(1, e / warmup_epochs)`` times their betas, so the
        first epochs train nearly an auto-encoder and the upper layers are
        not switched off before they carry information. Without it a deep
        hierarchy often collapses to (almost) zero rate. The epochs counted
        by ``len(history_)``, across ``partial_fit`` and ``warm_start`` fits;
        with ``early_stopping``, warm-up epochs are recorded but not
        counted or kept as the best.
    likelihood : {'auto', 'bernoulli', 'gaussian'}, dict or Likelihood, default='auto'
        Observation model p(x | z_1); see :class:`VAEDensityEstimator`.
    dropout : float, default=0.0
        Dropout after each hidden layer of every network (training only).
    max_epochs, batch_size, lr, optimizer, callbacks, device, random_state, verbose, warm_start, \
early_stopping, validation_fraction, n_iter_no_change, tol, teacher, n_teacher_samples
        As in :class:`VAEDensityEstimator`.
    n_eval_samples : int, default=1
        1 scores with the ELBO (the expectations over q averaged over 8
        draws fixed by each row's values); k > 1 with the IWAE bound of k
        importance samples of the joint latents (z_1, ..., z_L).

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained net (``net_.module_`` is a :class:`~skvae.modules.LadderVAEModule`).
    history_, likelihood_, schema_, n_features_in_, feature_names_in_, best_validation_score_
        As in :class:`VAEDensityEstimator`.

    Notes
    -----
    ``transform`` returns, for each row, the layers z_1, ..., z_L of the
    path of posterior means concatenated in that order: the mean of
    q(z_L | x), then the mean of q(z_l | z_{l+1}, x) with z_{l+1} at the
    mean above it. For l < L this is the mean of the conditional, not of
    the marginal q(z_l | x), which has no closed form.

    :class:`~skvae.BitsBackCoder` codes hierarchical models by bits-back
    over the latent hierarchy (:mod:`skvae.coding._ladder`), exact and
    portable like the single-layer coder: a fixed-point copy of the
    bottom-up path and heads, the top-down networks and the decoder, and
    the precision-weighted combination in exact arithmetic. Per row it pops
    z_L, ..., z_1 from q top-down (each z_l given the cell of z_{l+1} just
    popped), pushes x under p(x | z_1), then z_1 under p(z_1 | z_2), ...,
    z_L under N(0, I), every layer on a grid of the coder's cells spanning
    [-28, 28] (the lower layers are not standard normal); the rate
    approaches the ladder's negative ELBO plus a start-up cost per chunk.
    One particle only (``n_particles > 1`` is a ``ValueError``). Bit-Swap's
    interleaved order (Kingma et al. 2019) does not apply as it is: it pops
    z_{l+1} from a bottom-up q(z_{l+1} | z_l) after pushing z_l, while the
    ladder's q(z_l | z_{l+1}, x) runs top-down and needs every layer above
    before z_l. The per-row posterior refinement of
    :mod:`skvae.diagnostics` (``optimal_inference``, ``generalization_gaps``)
    is not built for them either.

    References
    ----------
    C. K. Sønderby, T. Raiko, L. Maaløe, S. K. Sønderby and O. Winther,
    "Ladder variational autoencoders", NeurIPS 2016.

    See Also
    --------
    skvae.VAEDensityEstimator

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import HierarchicalVAE
    >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(300, 10))
    >>> hvae = HierarchicalVAE(latent_dims=(4, 2), hidden_layer_sizes=(32,), betas=(1.0, 0.5),
    ...                        max_epochs=5, random_state=0).fit(X)
    >>> hvae.score_samples(X[:3]).shape
    (3,)
    >>> hvae.transform(X[:3]).shape  # z_1 (4 columns), then z_2 (2 columns)
    (3, 6)
    >>> parts = hvae.elbo_components(X[:3])
    >>> sorted(parts)
    ['distortion', 'elbo', 'rate', 'rate_1', 'rate_2', 'rates']
    >>> bool(np.allclose(parts.rate_1 + parts.rate_2, parts.rate))
    True
    >>> hvae.sample(4, random_state=0).shape
    (4, 10)
    """

    _net_class = HierarchicalNet
    # BaseVAE's single-layer parameters, fixed here: the ladder has its own betas and no AIR.
    beta = 1.0
    air_sigma = None
    air_alpha = 0.5

    def __init__(
        self,
        latent_dims=(32, 16),
        hidden_layer_sizes=(500, 500),
        ladder_hidden_sizes=None,
        betas=None,
        warmup_epochs=0,
        likelihood="auto",
        dropout=0.0,
        max_epochs=100,
        batch_size=100,
        lr=1e-3,
        optimizer="adam",
        callbacks=None,
        n_eval_samples=1,
        device="cpu",
        random_state=None,
        verbose=0,
        warm_start=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        teacher=None,
        n_teacher_samples=10,
    ):
        self.latent_dims = latent_dims
        self.hidden_layer_sizes = hidden_layer_sizes
        self.ladder_hidden_sizes = ladder_hidden_sizes
        self.betas = betas
        self.warmup_epochs = warmup_epochs
        self.likelihood = likelihood
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.callbacks = callbacks
        self.n_eval_samples = n_eval_samples
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.teacher = teacher
        self.n_teacher_samples = n_teacher_samples

    @property
    def latent_dim(self):
        """Width of all latent layers together: ``sum(latent_dims)``."""
        return sum(_check_latent_dims(self.latent_dims))

    # -- validation and the net ---------------------------------------------

    def _check_params(self):
        dims = _check_latent_dims(self.latent_dims)
        self._check_betas(len(dims))
        self._ladder_sizes()
        _check_int(self.warmup_epochs, "warmup_epochs", 0)
        return super()._check_params()

    def _check_betas(self, n_layers):
        """The betas as a tuple of n_layers floats >= 0."""
        if self.betas is None:
            return (1.0,) * n_layers
        if isinstance(self.betas, (str, bytes)) or not hasattr(self.betas, "__len__"):
            raise TypeError(f"betas must be a sequence of {n_layers} numbers (one per latent layer) or None, "
                            f"got {self.betas!r}")
        if len(self.betas) != n_layers:
            raise ValueError(f"betas must have one entry per latent layer: latent_dims={self.latent_dims!r} "
                             f"has {n_layers}, betas={self.betas!r} has {len(self.betas)}")
        for i, beta in enumerate(self.betas):
            _check_real(beta, f"betas[{i}]", low=0.0)
        return tuple(float(b) for b in self.betas)

    def _ladder_sizes(self):
        if self.ladder_hidden_sizes is None:
            hidden = check_layer_sizes(self.hidden_layer_sizes, "hidden_layer_sizes")
            return hidden[-1:]
        return check_layer_sizes(self.ladder_hidden_sizes, "ladder_hidden_sizes")

    def _build_net(self, n_features, likelihood, hidden):
        dims = _check_latent_dims(self.latent_dims)
        ladder = self._ladder_sizes()
        n_params = likelihood.n_params(n_features)
        widths = [[n_features, *hidden, 2 * dims[0]], [dims[0], *hidden[::-1], n_params]]
        below = hidden[-1] if hidden else n_features  # width of the bottom-up features under each layer
        for low, high in zip(dims, dims[1:]):
            widths += [[below, *ladder, 2 * high], [high, *ladder, 2 * low]]
            below = ladder[-1] if ladder else below
        _check_network_size(widths, f"latent_dims={dims}, hidden_layer_sizes={hidden} and ladder_hidden_sizes="
                                    f"{ladder} with {n_features} features")
        return self._net_class(
            module=LadderVAEModule,
            module__n_features=n_features,
            module__n_params=n_params,
            module__latent_dims=dims,
            module__hidden_layer_sizes=hidden,
            module__ladder_hidden_sizes=ladder,
            module__dropout=self.dropout,
            module__preprocess=likelihood.encoder_preprocess(),
            criterion=LadderELBOLoss,
            criterion__likelihood=likelihood,
            criterion__betas=self._check_betas(len(dims)),
            optimizer=self._optimizer_class(),
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            callbacks=self._net_callbacks(),
            device=str(self._torch_device()),
            verbose=int(self.verbose >= 2),
            warmup_epochs=self.warmup_epochs,
            **self._net_kwargs(),
        )

    # -- public API -----------------------------------------------------------

    def elbo_components(self, X):
        """Per-row ELBO and its parts, with the rate of every layer, in nats.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        Bunch
            ``elbo``, ``distortion`` (−E_q log p(x | z_1)), ``rate`` (the
            total KL(q(z | x) ‖ p(z))), ``rate_1`` ... ``rate_L`` (layer l's
            R_l, z_1 first), each of shape (n_samples,), and ``rates`` of
            shape (n_samples, L) holding the layer rates as columns;
            ``elbo = -(distortion + rate)`` and ``rate = sum_l rate_l``.
            R_L is exact; the rates of lower layers and the distortion are
            averaged over 8 draws fixed by each row's values.
        """
        X = self._validated_for_scoring(X)
        elbo, distortion, rates = self.net_.layer_components(X)
        layers = {f"rate_{level + 1}": rates[:, level] for level in range(rates.shape[1])}
        return Bunch(elbo=elbo, distortion=distortion, rate=rates.sum(-1), rates=rates, **layers)

    def transform(self, X):
        """The posterior means of every layer, z_1 first, concatenated.

        Layer L gets the mean of q(z_L | x); layer l < L the mean of
        q(z_l | z_{l+1}, x) with z_{l+1} at the mean above it.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, sum(latent_dims))
            Columns ``[0, d_1)`` are z_1, the next ``d_2`` are z_2, and so on.
        """
        X = self._validated_for_scoring(X)
        module = self.net_.module_
        with eval_mode(module), torch.no_grad():
            x = torch.from_numpy(np.array(X, dtype=np.float64)).to(self.net_.device)
            layers = module.posterior(x, x.new_zeros((len(x), module.latent_dim)))
        return torch.cat([layer[1] for layer in layers], dim=-1).double().cpu().numpy()

    def inverse_transform(self, Z):
        """Decoder means E[x | z_1] of concatenated latents as ``transform`` returns them.

        Only z_1 enters p(x | z_1); the columns of the upper layers are
        checked and otherwise not used.

        Parameters
        ----------
        Z : array-like of shape (n_samples, sum(latent_dims))

        Returns
        -------
        ndarray or DataFrame of shape (n_samples, n_features)
            As :meth:`VAEDensityEstimator.inverse_transform`.
        """
        check_is_fitted(self, "net_")
        module = self.net_.module_
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[1] != module.latent_dim:
            raise ValueError(f"Z must have shape (n_samples, {module.latent_dim}) (sum of latent_dims "
                             f"{module.latent_dims}), got {Z.shape}")
        if not np.isfinite(Z).all():
            raise ValueError("Z contains NaN or infinity")
        with eval_mode(module), torch.no_grad():
            z = torch.as_tensor(Z[:, :module.latent_dims[0]], dtype=torch.float64, device=self.net_.device)
            mean = self.likelihood_.mean(module.decoder(z))
        return self._to_output(mean, cast=False)

    def sample(self, n_samples=1, random_state=None):
        """Draw rows ancestrally: z_L ~ N(0, I), z_l ~ p(z_l | z_{l+1}) down to z_1, then x ~ p(x | z_1).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seed of the draw; the global numpy and torch RNGs are never touched.

        Returns
        -------
        X : ndarray or DataFrame of shape (n_samples, n_features)
            As :meth:`VAEDensityEstimator.sample`.
        """
        check_is_fitted(self, "net_")
        _check_int(n_samples, "n_samples", 1)
        generator = torch.Generator(device=self.net_.device).manual_seed(seed_from(random_state))
        module = self.net_.module_
        with eval_mode(module), torch.no_grad(), _out_of_memory_as_value_error(f"n_samples={n_samples} rows"):
            eps = torch.randn((n_samples, module.latent_dim), generator=generator, device=self.net_.device,
                              dtype=torch.float64)
            x = self.likelihood_.sample(module.decoder(module.generate(eps)), generator=generator)
        return self._to_output(x)


def _check_latent_dims(latent_dims):
    """latent_dims as a non-empty tuple of positive ints, else ValueError / TypeError naming it."""
    if isinstance(latent_dims, numbers.Integral) and not isinstance(latent_dims, bool):
        raise TypeError(f"latent_dims must be a sequence of layer widths such as (32, 16) (a one-layer "
                        f"model is ({latent_dims},)), got {latent_dims!r}")
    try:
        dims = tuple(latent_dims)
    except TypeError:
        raise TypeError(f"latent_dims must be a sequence of positive integers, got {latent_dims!r}") from None
    if not dims:
        raise ValueError("latent_dims must name at least one latent layer, got an empty sequence")
    for i, dim in enumerate(dims):
        _check_int(dim, f"latent_dims[{i}]", 1)
    return tuple(int(d) for d in dims)
