"""ReverseHalfAsleep: train the encoder on real rows and on the model's own samples.

Zhang, Hayes and Barber, "Generalization Gap in Amortized Inference"
(NeurIPS 2022). The decoder keeps the plain ELBO of the data. The encoder
minimizes the expected KL(q(z|x) || p(z|x)) under the mixture
m(x) = alpha * p_model(x) + (1 - alpha) * p_data(x), which for a fixed decoder
is the negative ELBO averaged under m. Samples of the model are free and
unlimited, so the encoder stops overfitting the finite training set.
"""

import copy
from contextlib import nullcontext

import torch
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ._base import BaseVAE
from ._validation import _check_int, _check_real
from ._net import VAENet, dropout_off
from .objectives import elbo_terms, mixture_encoder_loss

__all__ = ["ReverseHalfAsleep", "RHAVAE"]

_LATENT_SOURCES = ("prior", "aggregate")
_MODES = ("joint", "post_hoc")
_PHASES = ("joint", "vae", "rha")
# Parameters that fix the shapes of the module's weights.
_ARCHITECTURE = ("latent_dim", "hidden_layer_sizes", "likelihood")


class RHANet(VAENet):
    """skorch net of reverse half-asleep with one optimizer per half of the VAE.

    ``encoder_optimizer_`` steps the encoder and ``decoder_optimizer_`` the
    decoder; both are registered skorch optimizers (``encoder_optimizer__*``
    and ``decoder_optimizer__*`` reach them through ``set_params``) and both
    use the net's ``optimizer`` class and ``lr``. The net has no
    ``optimizer_``.

    ``phase`` selects what a training step does:

    - ``'vae'``: plain ELBO training of both halves (the first stage of the
      post-hoc protocol);
    - ``'joint'``: the decoder on the real ELBO, the encoder on the mixture
      loss, both stepped from the same parameter values;
    - ``'rha'``: only the encoder moves, on the mixture loss; the decoder is
      not stepped and runs with dropout off (it is the fixed model).
    """

    def __init__(self, *args, alpha=0.5, latent_source="prior", phase="joint", **kwargs):
        self.alpha = alpha
        self.latent_source = latent_source
        self.phase = phase
        super().__init__(*args, **kwargs)

    def initialize_optimizer(self, triggered_directly=None):
        # Separate optimizers, so the encoder-only phase leaves the decoder's
        # weights and optimizer state exactly as they were.
        self.encoder_optimizer_ = self._half_optimizer("encoder")
        self.decoder_optimizer_ = self._half_optimizer("decoder")
        return self

    def _half_optimizer(self, part):
        args, kwargs = self.get_params_for_optimizer(f"{part}_optimizer", getattr(self.module_, part).named_parameters())
        return self.optimizer(*args, **kwargs)

    def reset_encoder_optimizer(self):
        """A fresh encoder optimizer (the decoder's keeps its state)."""
        self.encoder_optimizer_ = self._half_optimizer("encoder")
        return self

    def draw_model_rows(self, x):
        """As many rows as ``x`` sampled from the model, without gradient.

        z comes from the prior N(0, I), or with ``latent_source='aggregate'``
        from q(z | x) of the real rows; each row is then a draw from
        p(x | z) (0/1 draws for Bernoulli data, not the means). Dropout is
        off while sampling: the samples come from the model itself.
        """
        module = self.module_
        with dropout_off(module), torch.no_grad():
            if self.latent_source == "aggregate":
                mu, logvar = module.encoder(x)
                z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            else:
                z = torch.randn((len(x), module.latent_dim), device=x.device, dtype=x.dtype)
            return self.likelihood.sample(module.decoder(z))

    def train_step(self, batch, **fit_params):
        """One step of the current phase; see the class docstring.

        Random numbers are drawn in this order: the model samples (z, then
        x), the real rows' training objective, the model samples' ELBO noise.
        """
        if self.phase not in _PHASES:
            raise ValueError(f"phase must be one of {_PHASES}, got {self.phase!r}")
        module = self.module_
        train_decoder = self.phase != "rha"
        alpha = 0.0 if self.phase == "vae" else float(self.alpha)
        x_model = self.draw_model_rows(batch) if alpha > 0 else None

        self.encoder_optimizer_.zero_grad(set_to_none=True)
        self.decoder_optimizer_.zero_grad(set_to_none=True)
        with nullcontext() if train_decoder else dropout_off(module.decoder):
            # The decoder's loss; its real half is shared with the encoder's.
            real_loss = self.criterion_(module, batch) if train_decoder or alpha < 1 else None
            model_neg_elbo = None
            if x_model is not None:
                elbo, _, _ = elbo_terms(module, self.likelihood, x_model, beta=self.criterion_.beta)
                model_neg_elbo = -elbo
            encoder_loss = mixture_encoder_loss(real_loss, model_neg_elbo, alpha)

        encoder_params = list(module.encoder.parameters())
        if not train_decoder:
            encoder_loss.backward(inputs=encoder_params)
        elif encoder_loss is real_loss:
            real_loss.backward()  # alpha == 0: the plain VAE gradient for both halves
        else:
            # Each half gets the gradient of its own loss only.
            real_loss.backward(inputs=list(module.decoder.parameters()), retain_graph=True)
            encoder_loss.backward(inputs=encoder_params)
        self.notify("on_grad_computed", named_parameters=module.named_parameters(),
                    batch=batch, training=True)
        self.encoder_optimizer_.step()
        if train_decoder:
            self.decoder_optimizer_.step()

        stats = getattr(self, "epoch_stats_", None)
        if stats is not None:
            # Summed on the device like the decoder's loss: no host sync per batch.
            stats[0] = stats[0] + encoder_loss.detach().double() * len(batch)
            stats[1] += len(batch)
        loss = real_loss if train_decoder else encoder_loss
        return {"loss": loss.detach(), "y_pred": None}

    def counts_for_early_stopping(self):
        return self.phase != "rha"  # the encoder-only phase runs its rha_epochs in full

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        training = training and iterator is not None
        if training:
            self.history.record("phase", self.phase)
            self.epoch_stats_ = [0.0, 0]
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        if training:
            total, count = self.epoch_stats_
            self.history.record("encoder_loss", float(total) / max(count, 1))
            self.epoch_stats_ = None


class ReverseHalfAsleep(BaseVAE):
    """VAE whose encoder also learns from the model's own samples (reverse half-asleep).

    The decoder maximizes the ELBO of the training rows. The encoder
    minimizes the negative ELBO averaged under the mixture
    m(x) = alpha * p_model(x) + (1 - alpha) * p_data(x): for each real batch
    of n rows, n rows are sampled from the model without gradient (z from
    the prior, or from q(z|x) of the batch, then x from p(x|z)), and the
    encoder's loss is ``(1 - alpha) * mean(-ELBO(real)) + alpha *
    mean(-ELBO(model samples))``. Equal counts weighted by ``1 - alpha`` and
    ``alpha`` are an unbiased estimate of the expectation under m, and a
    half with zero weight is left out: ``alpha=0`` is exactly the plain VAE
    (wake-phase encoder training) and ``alpha=1`` trains the encoder on
    model samples only (reverse sleep). Encoder and decoder have their own
    optimizers; in joint training both are stepped from the same parameter
    values.

    Parameters
    ----------
    latent_dim : int, default=16
        Dimension of the latent code z.
    hidden_layer_sizes : tuple of int, default=(500, 500)
        Hidden widths of the encoder; the decoder uses them in reverse.
    likelihood : {'auto', 'bernoulli', 'gaussian'}, dict or Likelihood, default='auto'
        Observation model p(x|z). ``'auto'`` takes the plain Bernoulli model
        when X is an array whose every value is 0 or 1, and otherwise picks
        one per column by the column's type (see
        :class:`~skvae.VAEDensityEstimator`); ``'bernoulli'`` needs 0/1 data.
    beta : float, default=1.0
        Weight of the KL (rate) term of every training ELBO; scores use 1.
    dropout : float, default=0.0
        Dropout probability after each hidden layer (training only; off
        while sampling the model and for the fixed decoder of the
        encoder-only phase).
    air_sigma : float or None, default=None
        AIR input noise of the real rows' objective, as in
        :class:`~skvae.VAEDensityEstimator`; model samples use the plain ELBO.
    air_alpha : float, default=0.5
        AIR: weight of the noisy-input ELBO in the real rows' objective.
    max_epochs : int, default=100
        ``mode='joint'``: epochs of joint training. ``mode='post_hoc'``:
        epochs of the plain VAE fit that precedes the encoder-only phase.
    batch_size : int, default=100
        Real rows per step (as many model samples are drawn).
    lr : float, default=1e-3
        Learning rate of both optimizers.
    optimizer : str or torch optimizer class, default='adam'
        ``'adam'``, ``'adamw'``, ``'sgd'``, ``'rmsprop'`` or a class; one
        instance for the encoder and one for the decoder.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Added to the training loop, e.g. :class:`~skvae.ELBOMonitor`.
    n_eval_samples : int, default=1
        1 scores with the ELBO; k > 1 with the IWAE bound of k importance samples.
    device : str, default='cpu'
        Torch device to train and score on.
    random_state : int, RandomState instance or None, default=None
        Seeds initialization, shuffling, model samples and the training
        noise. The caller's global RNG state is left untouched.
    verbose : int, default=0
        1 shows a progress bar over epochs, 2 prints a table per epoch.
    warm_start : bool, default=False
        When True, a second ``fit`` continues from the fitted weights:
        ``max_epochs`` more joint epochs, or ``rha_epochs`` more
        encoder-only epochs in post-hoc mode.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows of ``fit`` (a split
        seeded by ``random_state``), record their mean ELBO as
        ``valid_elbo`` after each epoch, stop once ``n_iter_no_change``
        epochs in a row fail to beat the best by more than ``tol`` nats per
        row, and keep the best epoch's weights. The encoder-only
        phase of post-hoc mode always runs its ``rha_epochs``. ``partial_fit`` trains
        on every row.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    alpha : float in [0, 1], default=0.5
        Weight of the model's own distribution in the encoder's training
        mixture.
    latent_source : {'prior', 'aggregate'}, default='prior'
        Where the latent codes of the model samples come from: the prior
        N(0, I), or q(z|x) of the current real batch.
    mode : {'joint', 'post_hoc'}, default='joint'
        ``'joint'`` trains both halves together from the first epoch.
        ``'post_hoc'`` first fits a plain VAE for ``max_epochs``, then trains
        only the encoder for ``rha_epochs`` with a fresh encoder optimizer;
        the decoder is left bit for bit as the VAE fit made it.
    rha_epochs : int, default=100
        Epochs of encoder-only training in post-hoc mode (ignored in joint
        mode).

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained net (``net_.module_`` is the torch module;
        ``net_.encoder_optimizer_`` and ``net_.decoder_optimizer_`` are the
        two optimizers).
    history_ : skorch.History
        Per epoch: ``phase`` (``'vae'``, ``'joint'`` or ``'rha'``),
        ``train_loss`` (the decoder's loss, the mean negative ELBO of the
        training rows; in the ``'rha'`` phase the encoder's loss),
        ``encoder_loss`` (the encoder's mixture loss), ``dur`` and the scores
        of any :class:`~skvae.ELBOMonitor`.
    likelihood_ : Likelihood
        The observation model used.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when fitted on a DataFrame with string column names.

    See Also
    --------
    skvae.VAEDensityEstimator : the plain VAE (``alpha=0``).
    skvae.WeightedSelfAugmentation : trains the whole VAE on weighted model samples.

    Notes
    -----
    The loss is the reverse-KL objective of Zhang, Hayes & Barber,
    "Generalization Gap in Amortized Inference", NeurIPS 2022 (eqs. 15-17):
    for a fixed decoder, E_m KL(q(z|x) || p(z|x)) = -E_m ELBO(x) + E_m log p(x).
    Their binary-MNIST result (post-hoc, test 0.200 -> 0.187 bits per
    dimension) cannot be reproduced here without that data set;
    ``benchmarks/bench_rha.py`` runs the same protocol on Caltech
    Silhouettes and four of the twenty binary data sets.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEDensityEstimator
    >>> from skvae.rha import ReverseHalfAsleep
    >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(300, 10))
    >>> rha = ReverseHalfAsleep(latent_dim=2, hidden_layer_sizes=(32,), max_epochs=3,
    ...                         random_state=0).fit(X)
    >>> rha.history_[-1, "phase"]
    'joint'
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(32,), max_epochs=3,
    ...                           random_state=0).fit(X)
    >>> post = ReverseHalfAsleep.from_estimator(vae, rha_epochs=2).fit(X)
    >>> post.history_[:, "phase"]
    ['rha', 'rha']
    >>> post.score_samples(X[:3]).shape
    (3,)
    """

    _net_class = RHANet

    def __init__(
        self,
        latent_dim=16,
        hidden_layer_sizes=(500, 500),
        likelihood="auto",
        beta=1.0,
        dropout=0.0,
        air_sigma=None,
        air_alpha=0.5,
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
        alpha=0.5,
        latent_source="prior",
        mode="joint",
        rha_epochs=100,
    ):
        super().__init__(
            latent_dim=latent_dim,
            hidden_layer_sizes=hidden_layer_sizes,
            likelihood=likelihood,
            beta=beta,
            dropout=dropout,
            air_sigma=air_sigma,
            air_alpha=air_alpha,
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            callbacks=callbacks,
            n_eval_samples=n_eval_samples,
            device=device,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            teacher=teacher,
            n_teacher_samples=n_teacher_samples,
        )
        self.alpha = alpha
        self.latent_source = latent_source
        self.mode = mode
        self.rha_epochs = rha_epochs

    # -- construction from a fitted VAE --------------------------------------

    @classmethod
    def from_estimator(cls, estimator, **params):
        """A post-hoc ReverseHalfAsleep that starts from a fitted VAE.

        The fitted weights are copied (the given estimator is left
        untouched); ``fit(X)`` then trains only the encoder for
        ``rha_epochs`` epochs, starting each time from the copy, so the
        decoder stays exactly that of ``estimator``. Parameters not given
        are taken from ``estimator`` where it has them. Like any fitted
        state, the copy is not kept by :func:`sklearn.base.clone`: a clone
        fits a plain VAE first, as ``mode='post_hoc'`` does.

        Parameters
        ----------
        estimator : BaseVAE
            A fitted skvae estimator, e.g. :class:`~skvae.VAEDensityEstimator`.
        **params
            Parameters of the new estimator, e.g. ``alpha`` or ``rha_epochs``.
            ``latent_dim``, ``hidden_layer_sizes`` and ``likelihood`` must
            match ``estimator``; ``mode`` can only be ``'post_hoc'``.

        Returns
        -------
        ReverseHalfAsleep
            Not fitted yet: call ``fit`` with the training rows.

        Examples
        --------
        >>> import numpy as np
        >>> from skvae import VAEDensityEstimator
        >>> from skvae.rha import ReverseHalfAsleep
        >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(200, 8))
        >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(16,),
        ...                           max_epochs=2, random_state=0).fit(X)
        >>> rha = ReverseHalfAsleep.from_estimator(vae, alpha=0.5, rha_epochs=1).fit(X)
        >>> rha.mode
        'post_hoc'
        """
        if not isinstance(estimator, BaseVAE):
            raise TypeError(f"estimator must be a fitted skvae estimator, got {type(estimator).__name__}")
        check_is_fitted(estimator, "net_")
        names = cls._get_param_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise TypeError(f"{cls.__name__} has no parameter(s) {unknown}")
        if params.get("mode", "post_hoc") != "post_hoc":
            raise ValueError("from_estimator continues with encoder-only training: mode must be 'post_hoc', "
                             f"got {params['mode']!r}")
        inherited = {k: clone(v, safe=False) for k, v in estimator.get_params(deep=False).items() if k in names}
        for name in _ARCHITECTURE:
            if name in params and name in inherited and params[name] != inherited[name]:
                raise ValueError(f"{name}={params[name]!r} differs from the fitted estimator's "
                                 f"{inherited[name]!r}; the copied weights fix it")
        inherited.update(params, mode="post_hoc")
        new = cls(**inherited)
        new._pretrained_vae = {
            "state": copy.deepcopy(estimator.net_.module_.state_dict()),
            "n_features_in": estimator.n_features_in_,
            # The copied weights fix the column coding of a mixed table and the scaling of real columns.
            "schema": copy.deepcopy(getattr(estimator, "schema_", None)),
            "likelihood": copy.deepcopy(estimator.likelihood_),
        }
        return new

    # -- validation ---------------------------------------------------------

    def _check_params(self):
        hidden = super()._check_params()
        _check_real(self.alpha, "alpha", low=0.0, high=1.0)
        if self.latent_source not in _LATENT_SOURCES:
            raise ValueError(f"latent_source must be one of {_LATENT_SOURCES}, got {self.latent_source!r}")
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {self.mode!r}")
        _check_int(self.rha_epochs, "rha_epochs", 0)
        return hidden

    # -- training schedule ---------------------------------------------------

    def _net_kwargs(self):
        return {"alpha": self.alpha, "latent_source": self.latent_source, "phase": self._phase}

    def _vae_epochs_left(self):
        """Epochs of the plain VAE stage still due in post-hoc mode."""
        if getattr(self, "_pretrained_vae", None) is not None:
            return 0
        done = sum(row.get("phase") == "vae" for row in self.net_.history) if hasattr(self, "net_") else 0
        return max(self.max_epochs - done, 0)

    def _next_phase(self):
        if self.mode == "joint":
            return "joint"
        return "vae" if self._vae_epochs_left() > 0 else "rha"

    def _train(self, X, epochs, phase=None, holdout=True, schema=None):
        self._check_params()
        phase = self._next_phase() if phase is None else phase
        self._phase = phase
        if not hasattr(self, "net_") and getattr(self, "_pretrained_vae", None) is not None:
            self._init_from_pretrained(X)
        if hasattr(self, "net_"):
            net = self.net_
            if phase == "rha" and net.phase != "rha":
                net.reset_encoder_optimizer()  # the encoder-only phase starts afresh
            net.alpha, net.latent_source, net.phase = self.alpha, self.latent_source, phase
        return super()._train(X, epochs, holdout=holdout, schema=schema)

    def _init_from_pretrained(self, X):
        """Build the net and load the weights copied by :meth:`from_estimator`."""
        pretrained = self._pretrained_vae
        X, likelihood = self._validate_X(X, reset=True, schema=copy.deepcopy(pretrained.get("schema")))
        if X.shape[1] != pretrained["n_features_in"]:
            raise ValueError(f"X has {X.shape[1]} features, but the estimator given to from_estimator "
                             f"was fitted on {pretrained['n_features_in']}")
        likelihood = copy.deepcopy(pretrained["likelihood"])
        likelihood.check_support(X)
        hidden = self._check_params()
        self._rng_state_ = None
        self.likelihood_ = likelihood
        self._n_features_out = self.latent_dim
        with self._own_rng():
            net = self._build_net(X.shape[1], likelihood, hidden).initialize()
        net.module_.load_state_dict(pretrained["state"])
        self.net_ = net

    def fit(self, X, y=None):
        """Fit to the rows of X with the schedule that ``mode`` names.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training rows; with ``likelihood='bernoulli'`` every value is 0 or 1.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_params()
        if not (self.warm_start and hasattr(self, "net_")):
            self._reset()
        X, schema = self._training_rows(X)
        if self.mode == "joint":
            return self._train(X, self.max_epochs, "joint", schema=schema)
        vae_epochs = self._vae_epochs_left()
        if vae_epochs:
            self._train(X, vae_epochs, "vae", schema=schema)
        return self._train(X, self.rha_epochs, "rha", schema=schema)

    def partial_fit(self, X, y=None):
        """Train for one epoch of the schedule, initializing the model on the first call.

        In post-hoc mode the first ``max_epochs`` calls train the plain VAE
        and later calls train only the encoder.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        return self._train(X, 1, holdout=False)


RHAVAE = ReverseHalfAsleep
