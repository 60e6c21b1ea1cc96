"""WeightedSelfAugmentation: a VAE trained on its own samples, weighted by a discriminator.

Jin, "Mitigating Overfitting in Variational Auto-Encoders with Weighted
Self-Augmentation". After a warm-up of plain ELBO epochs, every mini-batch of
real rows is joined by rows sampled from the current model; each sampled row
enters the loss with the weight D(x) / (1 - D(x)) of a discriminator trained
to tell real from sampled rows, an estimate of p_data(x) / p_model(x). The
model thus trains on a smoothed version of the data distribution in which
its own implausible samples count little.
"""

import copy
import warnings

import numpy as np
import torch
from torch import nn

from ._base import BaseVAE, _check_int, _check_real, check_layer_sizes
from ._net import VAENet, dropout_off, eval_mode
from ._wsa_objective import (
    density_ratio_weights,
    discriminator_bce,
    effective_sample_size,
    weighted_augmentation_loss,
)
from .modules import Discriminator
from .objectives import elbo_terms

__all__ = ["WeightedSelfAugmentation", "WSAVAE", "WSANet", "PlainVAEWarning"]

_LATENT_SOURCES = ("prior", "aggregate")


class PlainVAEWarning(UserWarning):
    """A WSA fit ended before its warm-up did: the result is a plain VAE."""

_REDUCTIONS = ("per_sample", "batch_mean")


_WEIGHT_KEYS = ("weight_mean", "weight_max", "weight_ess")
_DISCRIMINATOR_KEYS = ("discriminator_loss", "discriminator_accuracy")
WSA_HISTORY_KEYS = _WEIGHT_KEYS + _DISCRIMINATOR_KEYS


class _EpochStats:
    """Running sums of one epoch's weights and discriminator results.

    Kept as tensors on the training device (no host sync per batch) and read
    once, when the epoch is recorded. Keys without data in the epoch (the
    weights during warm-up) are recorded as NaN, so every WSA key exists in
    every training epoch of ``history_``.
    """

    def __init__(self):
        self.w_sum = self.w_sq_sum = self.d_loss_sum = self.d_correct = 0.0
        self.w_max = None
        self.w_count = self.d_count = 0

    def add_weights(self, weights):
        weights = weights.detach().double()
        self.w_sum = self.w_sum + weights.sum()
        self.w_sq_sum = self.w_sq_sum + weights.pow(2).sum()
        w_max = weights.max()
        self.w_max = w_max if self.w_max is None else torch.maximum(self.w_max, w_max)
        self.w_count += weights.numel()

    def add_discriminator(self, loss, correct, count):
        self.d_loss_sum = self.d_loss_sum + loss.detach().double() * count
        self.d_correct = self.d_correct + correct
        self.d_count += count

    def record(self, history):
        nan = float("nan")
        if self.w_count:
            w_sum, w_sq_sum = float(self.w_sum), float(self.w_sq_sum)
            history.record("weight_mean", w_sum / self.w_count)
            history.record("weight_max", float(self.w_max))
            history.record("weight_ess", effective_sample_size(w_sum, w_sq_sum, self.w_count))
        else:
            for key in _WEIGHT_KEYS:
                history.record(key, nan)
        if self.d_count:
            history.record("discriminator_loss", float(self.d_loss_sum) / self.d_count)
            history.record("discriminator_accuracy", float(self.d_correct) / self.d_count)
        else:
            for key in _DISCRIMINATOR_KEYS:
                history.record(key, nan)


def _has_dropout(module):
    return any(isinstance(m, nn.modules.dropout._DropoutNd) for m in module.modules())


class WSANet(VAENet):
    """skorch net of WSA: the VAE module plus a ``discriminator_`` with its own optimizer.

    Both are registered skorch components, so ``set_params(discriminator__...)``,
    ``discriminator_optimizer__lr``, callbacks and checkpoints
    (``f_discriminator``, ``f_discriminator_optimizer``) work as for the
    VAE module. The training epoch is ``len(history) - 1`` (skorch adds the
    epoch's row before the first batch), so warm-up survives ``partial_fit``
    and ``warm_start``.
    """

    def __init__(self, *args, discriminator=Discriminator, discriminator_optimizer=torch.optim.Adam,
                 n_augment=1, warmup_epochs=50, weight_clip=1000.0, weight_power=1.0, weight_floor=0.0,
                 self_normalize=False, weight_reduction="per_sample", weighted=True, latent_source="prior",
                 augment=None, **kwargs):
        # Set before NeuralNet.__init__: skorch refuses module instances as
        # plain attributes once the net exists.
        self.discriminator = discriminator
        self.discriminator_optimizer = discriminator_optimizer
        self.n_augment = n_augment
        self.warmup_epochs = warmup_epochs
        self.weight_clip = weight_clip
        self.weight_power = weight_power
        self.weight_floor = weight_floor
        self.self_normalize = self_normalize
        self.weight_reduction = weight_reduction
        self.weighted = weighted
        self.latent_source = latent_source
        self.augment = augment
        super().__init__(*args, **kwargs)

    # -- components ---------------------------------------------------------

    def initialize_module(self):
        super().initialize_module()
        kwargs = self.get_params_for("discriminator")
        self.discriminator_ = self.initialized_instance(self.discriminator, kwargs)
        return self

    def initialize_optimizer(self, triggered_directly=None):
        # Each optimizer sees only its own module's parameters.
        args, kwargs = self.get_params_for_optimizer("optimizer", self.module_.named_parameters())
        self.optimizer_ = self.optimizer(*args, **kwargs)
        args, kwargs = self.get_params_for_optimizer(
            "discriminator_optimizer", self.discriminator_.named_parameters())
        self.discriminator_optimizer_ = self.discriminator_optimizer(*args, **kwargs)
        return self

    # -- pieces of the algorithm -------------------------------------------

    def current_epoch(self):
        """0-based index of the epoch being trained."""
        return len(self.history) - 1

    def counts_for_early_stopping(self):
        return self.current_epoch() >= self.warmup_epochs  # early stopping counts after the warm-up

    def draw_fakes(self, x, per_row):
        """``per_row * len(x)`` rows sampled from the model, without gradient.

        z comes from the prior, or with ``latent_source='aggregate'`` from
        q(z | x) of the real rows; x̃ is a draw from p(x | z) (0/1 draws for
        Bernoulli data, not the means). Dropout is off while sampling. All
        rows go through the decoder in one forward pass.
        """
        module = self.module_
        with dropout_off(module), torch.no_grad():
            if self.latent_source == "aggregate":
                mu, logvar = module.encoder(x)
                eps = torch.randn((per_row,) + mu.shape, device=mu.device, dtype=mu.dtype)
                z = (mu + torch.exp(0.5 * logvar) * eps).reshape(-1, mu.shape[-1])
            else:
                z = torch.randn((per_row * len(x), module.latent_dim), device=x.device, dtype=x.dtype)
            return self.likelihood.sample(module.decoder(z))

    def stabilized_weights(self, logits):
        """The training weights of generated rows from their discriminator logits (no gradient).

        exp(logit), flattened by ``weight_power``, clipped to
        [``weight_floor``, ``weight_clip``] and, with ``self_normalize``,
        divided by their mean over the batch
        (:func:`~skvae._wsa_objective.density_ratio_weights`).
        """
        return density_ratio_weights(logits, self.weight_clip, power=self.weight_power,
                                     floor=self.weight_floor, self_normalize=self.self_normalize)

    def fake_weights(self, fakes):
        """Training weights of the rows ``fakes`` (one batch), without gradient.

        Runs the discriminator in its training dtype with dropout off; for
        reporting, :meth:`WeightedSelfAugmentation.sample_with_weights`
        evaluates the unstabilized ratio in float64 like every other score.
        """
        with dropout_off(self.discriminator_), torch.no_grad():
            logits = self.discriminator_(fakes)
        return self.stabilized_weights(logits)

    def augment_batch(self, x):
        """The user's augmentation of the real rows (identity when ``augment`` is None).

        The callable gets the rows as a float32 numpy array and a numpy
        Generator seeded from the training RNG, so fits stay reproducible.
        """
        if self.augment is None:
            return x
        seed = int(torch.randint(0, 2**62, (1,)).item())
        out = self.augment(x.detach().cpu().numpy(), np.random.default_rng(seed))
        out = torch.as_tensor(np.asarray(out), dtype=x.dtype, device=x.device)
        if out.ndim != 2 or out.shape[1] != x.shape[1] or len(out) == 0:
            raise ValueError(f"augment must return a non-empty array of shape (n, {x.shape[1]}), "
                             f"got shape {tuple(out.shape)}")
        if torch.isinf(out).any() or (not self._has_missing_cells() and torch.isnan(out).any()):
            raise ValueError("augment returned NaN or infinity")
        return out

    def _has_missing_cells(self):
        return getattr(self.likelihood, "missing_mask", False)  # a table fitted with missing cells

    def completed(self, x):
        """The real rows as the discriminator sees them: complete.

        In a table fitted with missing cells those cells are drawn from
        p(x | z), z ~ q(z | x), so the discriminator compares complete rows
        with complete generated rows, not missingness patterns. The ELBO
        terms use the rows with their holes (masked likelihood).
        """
        if not self._has_missing_cells():
            return x
        module = self.module_
        with dropout_off(module), torch.no_grad():
            mu, logvar = module.encoder(x)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            draws = self.likelihood.sample(module.decoder(z))
        return torch.where(torch.isnan(x), draws.to(x.dtype), x)

    def wsa_loss(self, x, fakes, weights):
        """VAE loss: 0.5 * real objective + 0.5 * weighted mean negative ELBO of the fakes.

        Without AIR the real and generated rows go through the VAE in one
        forward pass; with AIR the real rows' objective is computed apart.
        """
        criterion = self.criterion_
        if criterion.air_sigma:
            real_loss = criterion(self.module_, x)
            fake_elbo, _, _ = elbo_terms(self.module_, self.likelihood, fakes, beta=criterion.beta)
        else:
            elbo, _, _ = elbo_terms(self.module_, self.likelihood, torch.cat([x, fakes]), beta=criterion.beta)
            real_loss, fake_elbo = -elbo[:len(x)].mean(), elbo[len(x):]
        return weighted_augmentation_loss(real_loss, -fake_elbo, weights, self.weight_reduction)

    def discriminator_logits(self, x, fakes):
        """The discriminator's logits of real and generated rows, one forward pass with gradient.

        One pass over both classes, so normalization layers see the mixture.
        """
        logits = self.discriminator_(torch.cat([x, fakes]))
        return logits[:len(x)], logits[len(x):]

    def discriminator_update(self, x, logits_real, logits_fake):
        """One step of the class-balanced BCE (real rows label 1, generated rows label 0)."""
        self.discriminator_optimizer_.zero_grad(set_to_none=True)
        loss = discriminator_bce(logits_real, logits_fake)
        loss.backward()
        self.notify("on_grad_computed", named_parameters=self.discriminator_.named_parameters(),
                    batch=x, training=True)
        self.discriminator_optimizer_.step()
        correct = (logits_real.detach() > 0).sum() + (logits_fake.detach() < 0).sum()
        return loss.detach(), correct, len(logits_real) + len(logits_fake)

    def discriminator_step(self, x, fakes=None):
        """One discriminator step on ``x`` (real) and ``fakes`` (drawn here, one per row, if None)."""
        if fakes is None:
            fakes = self.draw_fakes(x, 1)
        return self.discriminator_update(x, *self.discriminator_logits(x, fakes))

    # -- training -----------------------------------------------------------

    def train_step(self, batch, **fit_params):
        """Algorithm 1 of Jin's paper for one mini-batch.

        Warm-up: a plain ELBO step, then ``n_augment`` generated rows per real
        row and one discriminator step on them. Afterwards: generated rows
        drawn once, weighted by the discriminator, one VAE step on real and
        weighted rows, then one discriminator step on the same rows. The
        weights come from the logits of the discriminator's training forward
        pass (taken before its step), so the discriminator runs once per
        batch unless it has dropout.
        """
        x = self.augment_batch(batch)
        stats = getattr(self, "epoch_stats_", None)
        if self.current_epoch() < self.warmup_epochs:
            step = super().train_step(x, **fit_params)
            d_loss, correct, count = self.discriminator_step(self.completed(x), self.draw_fakes(x, self.n_augment))
            if stats is not None:
                stats.add_discriminator(d_loss, correct, count)
            return step

        fakes = self.draw_fakes(x, self.n_augment)
        x_complete = self.completed(x)
        logits_real, logits_fake = self.discriminator_logits(x_complete, fakes)
        if not self.weighted:
            weights = torch.ones(len(fakes), device=fakes.device, dtype=fakes.dtype)
        elif _has_dropout(self.discriminator_):
            weights = self.fake_weights(fakes)
        else:
            weights = self.stabilized_weights(logits_fake)

        self.optimizer_.zero_grad(set_to_none=True)
        loss = self.wsa_loss(x, fakes, weights)
        loss.backward()
        self.notify("on_grad_computed", named_parameters=self.module_.named_parameters(),
                    batch=batch, training=True)
        self.optimizer_.step()

        d_loss, correct, count = self.discriminator_update(x_complete, logits_real, logits_fake)
        if stats is not None:
            stats.add_weights(weights)
            stats.add_discriminator(d_loss, correct, count)
        return {"loss": loss.detach(), "y_pred": None}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        self.epoch_stats_ = _EpochStats() if training and iterator is not None else None
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        if self.epoch_stats_ is not None:
            self.epoch_stats_.record(self.history)
        self.epoch_stats_ = None


class WeightedSelfAugmentation(BaseVAE):
    """VAE density estimator regularized by weighted self-augmentation (WSA).

    Training follows Algorithm 1 of the paper. For ``warmup_epochs`` epochs
    each mini-batch B takes a plain ELBO step of the VAE, then
    ``n_augment * len(B)`` rows are drawn from the updated model and the
    discriminator takes one step on B (real) against them (fake), so it is
    already trained when the weights start. Afterwards each mini-batch is
    processed in four steps:

    1. draw ``n_augment * len(B)`` rows x̃ from the current model without
       gradient: z ~ p(z) (or z ~ q(z|x) of B with
       ``latent_source='aggregate'``), then x̃ ~ p(x|z), all in one decoder
       pass;
    2. weight them by w(x̃) = D(x̃) / (1 - D(x̃)) = exp(logit D(x̃)), with
       D clipped to [1e-3, 1 - 1e-3], then stabilized as in Grover et al.
       (2019): flattened to w ** ``weight_power``, clipped to
       [``weight_floor``, ``weight_clip``] and, with ``self_normalize``,
       divided by the batch's mean weight;
    3. take one optimizer step on encoder and decoder with the loss
       0.5 * mean(-ELBO(B)) + 0.5 * mean(w * -ELBO(x̃)) (B and x̃ in one
       forward pass);
    4. take one discriminator step (class-balanced binary cross-entropy, B
       labelled real and the same x̃ labelled fake, so D's odds estimate
       p_data / p_model whatever ``n_augment`` is). The discriminator's
       forward pass of this step is the one whose logits gave the weights
       in step 2 (a discriminator with dropout gets a separate pass with
       dropout off for the weights).

    Nothing is copied to the host per batch, so on a GPU the epoch runs
    without synchronizing.

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
        Weight of the KL (rate) term in training (real and generated rows).
    dropout : float, default=0.0
        Dropout probability after each hidden layer of the VAE (training only).
    air_sigma : float or None, default=None
        AIR input noise for the real rows' term (see
        :class:`~skvae.VAEDensityEstimator`); generated rows use the plain ELBO.
    air_alpha : float, default=0.5
        Weight of AIR's noisy-input ELBO in the real rows' term.
    max_epochs : int, default=500
        Most passes over the data in ``fit``, warm-up included; with
        ``early_stopping`` (the default) a fit usually ends well before.
    batch_size : int, default=100
        Real rows per mini-batch.
    lr : float, default=1e-3
        Learning rate of the VAE's optimizer.
    optimizer : str or torch optimizer class, default='adam'
        Optimizer of the VAE: ``'adam'``, ``'adamw'``, ``'sgd'``, ``'rmsprop'``
        or a class.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Added to the training loop, e.g. :class:`~skvae.ELBOMonitor`.
    n_eval_samples : int, default=1
        1 scores with the ELBO; k > 1 with the IWAE bound of k importance samples.
    device : str, default='cpu'
        Torch device to train and score on.
    random_state : int, RandomState instance or None, default=None
        Seeds initialization, shuffling, the generated rows and the training
        noise. The caller's global RNG state is left untouched.
    verbose : int, default=0
        1 shows a progress bar over epochs, 2 prints a table per epoch.
    warm_start : bool, default=False
        When True, a second ``fit`` continues from the fitted weights (and
        epoch count, so the warm-up is not repeated).
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the rows of ``fit`` (a split
        seeded by ``random_state``), record their mean ELBO as
        ``valid_elbo`` after each epoch, stop once ``n_iter_no_change``
        epochs in a row fail to beat the best by more than ``tol`` nats per
        row, and keep the best epoch's weights. Only epochs after the
        warm-up count. ``partial_fit`` trains on every row. On by default,
        unlike :class:`~skvae.VAEDensityEstimator`: WSA keeps improving long
        after the plain VAE's best epoch, then over-fits too, and where it
        peaks depends on the data (see Notes). False trains exactly
        ``max_epochs`` epochs on every row (the paper's protocol).
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=30
        Epochs without a gain on the held-out rows before training stops;
        WSA's validation curve is flat and noisy near its peak, and 10
        stopped it early on half of the benchmark's sets.
    tol : float, default=1e-4
    n_augment : int, default=1
        Generated rows per real row, in the VAE step and in the
        discriminator's step. 1 is what the paper's discriminator sees (as
        many fakes as real rows); each extra row adds about one real batch's
        cost to every step.
    warmup_epochs : int, default=50
        Epochs of plain ELBO training of the VAE before the weighted rows
        enter its loss; the discriminator trains during them. A fit that
        ends within the warm-up warns (:class:`PlainVAEWarning`).
    weight_clip : float, default=1000.0
        Upper bound of a generated row's (flattened) weight, applied before
        self-normalization.
    weight_power : float in [0, 1], default=0.5
        Flattening exponent α of Grover et al.: the weight is w ** α; 1
        keeps the density ratio, 0 gives unweighted self-augmentation.
    weight_floor : float, default=0.0
        Clipping threshold β of Grover et al.: weights below it are raised
        to it (max(w ** α, β)), so no generated row is ignored entirely.
    self_normalize : bool, default=True
        Divide the weights by their mean within each batch (self-normalized
        importance sampling): the generated rows then count as much as the
        real ones in total, however confident the discriminator is.
    weight_reduction : {'per_sample', 'batch_mean'}, default='per_sample'
        ``'per_sample'`` multiplies each generated row's own negative ELBO by
        its weight. ``'batch_mean'`` uses mean(w) * mean(-ELBO(x̃)), which
        reproduces a widely read reference implementation that broadcasts an
        (n, 1) weight against an (n,) loss.
    weighted : bool, default=True
        False gives unweighted self-augmentation (every w = 1), the paper's
        ablation; the discriminator is still trained, so its statistics and
        :meth:`sample_with_weights` stay available.
    latent_source : {'prior', 'aggregate'}, default='prior'
        Where the latent codes of generated rows come from: the prior N(0, I),
        or the encoder's posterior q(z | x) of the real batch.
    discriminator : torch.nn.Module or None, default=None
        None builds an MLP :class:`~skvae.modules.Discriminator` with
        ``discriminator_hidden_layer_sizes``. A module given here must map
        rows of shape (n, n_features) to n logits; a deep copy of it is
        trained, so the parameter itself is never changed.
    discriminator_hidden_layer_sizes : tuple of int, default=(64,)
        Hidden widths of the default MLP discriminator: one ReLU layer of 64,
        a small network like the reference implementation's (a three-layer
        CNN with 2, 4 and 8 channels). A large one (2x500) separates real
        from generated rows almost perfectly and starves the model (see
        Notes).
    discriminator_lr : float or None, default=1e-4
        Learning rate of the discriminator's Adam; None uses ``lr``.
    augment : callable or None, default=None
        A user augmentation ``augment(X_batch, rng) -> X_aug`` applied to
        every real mini-batch (a float32 array; ``rng`` is a numpy Generator
        drawn from the training RNG). The augmented rows replace the batch
        everywhere: in the warm-up ELBO, in WSA's real term, as the
        latent source and as the discriminator's real class, so WSA then
        weights generated rows against the augmented data distribution.

    Attributes
    ----------
    net_ : WSANet
        The trained skorch net; ``net_.module_`` is the VAE,
        ``net_.discriminator_`` the discriminator and
        ``net_.discriminator_optimizer_`` its optimizer.
    history_ : skorch.History
        Per epoch: ``train_loss`` (the optimized loss: the negative ELBO in
        warm-up, WSA's loss afterwards), ``dur``, ``weight_mean``,
        ``weight_max``, ``weight_ess`` (Kish's effective sample size of the
        epoch's training weights, after stabilization, as a fraction of
        their number; NaN in warm-up epochs, where no weight is used),
        ``discriminator_loss`` and ``discriminator_accuracy`` (every epoch,
        warm-up included).
    likelihood_ : Likelihood
        The observation model used.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when fitted on a DataFrame with string column names.

    See Also
    --------
    skvae.VAEDensityEstimator : the same model trained on the plain ELBO.

    Notes
    -----
    With per-sample weights the loss is only as good as the discriminator's
    density ratio. A discriminator that tells real rows from generated ones
    almost perfectly (easy on binary images, where a factorized decoder's
    samples carry pixel noise) gives nearly every generated row w ≈ 0 and a
    few rows w at the clip, so a single row can outweigh the real batch;
    ``history_[:, "weight_ess"]`` then stays below 1 %. The earlier
    default was a 2x500 discriminator at the VAE's learning rate with
    raw weights and ``n_augment=4``: on Caltech-101 Silhouettes it did this
    for the whole run and the model stopped learning after warm-up (train
    and test near 0.29 bits/dim), and it was worse than the plain VAE on
    small data sets.

    The defaults were chosen on this library's benchmark
    (``benchmarks/bench_wsa.py``; README, "Weighted self-augmentation"):
    a discriminator with one hidden layer of 64 and Adam at 1e-4 (the
    reference implementation's is a tiny CNN; at lr 1e-3 the same network
    drove the effective sample size to 4-8 % and lost to the plain VAE's
    best epoch), trained from the first epoch as in Algorithm 1, weights
    flattened to w ** 0.5 and self-normalized within each batch (both kept
    the effective sample size above 90 % and were as good or better than
    the raw ratio in the sweep), and one generated row per real row (an
    epoch then costs about twice a plain VAE epoch). The same size served
    data of 16 to 1,556 binary columns, so the default does not depend on
    ``n_features``. Watch ``weight_ess`` and ``discriminator_accuracy`` in
    ``history_``: accuracy near 1 with a small ESS means the discriminator
    wins and should be made smaller or slower.

    The training length is part of the default. WSA helps only once the
    plain VAE over-fits: at 100 epochs it gained nothing on the benchmark's
    ten sets, and at a fixed 500 it beat the plain VAE's final model
    everywhere but over-fitted too on the sparse text sets, later and
    slower, ending 3-12 nats below the plain VAE's best epoch there. Its
    best epoch, though, was above the plain VAE's best on 9 of 11 sets, so
    the default trains up to 500 epochs and keeps the best epoch on 10 %
    held-out rows, with a patience of 30 epochs (10 stopped it on noise).
    That default was at or above the plain VAE's best epoch (a test-set
    oracle) on 7 of 10 sets and above its final model on 9 (README,
    "The default WSAVAE()").

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import WSAVAE
    >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(300, 10))
    >>> wsa = WSAVAE(latent_dim=2, hidden_layer_sizes=(32,), discriminator_hidden_layer_sizes=(32,),
    ...              max_epochs=6, warmup_epochs=3, random_state=0).fit(X)
    >>> wsa.score_samples(X[:3]).shape
    (3,)
    >>> 0 < wsa.history_[-1, 'weight_ess'] <= 1
    True
    >>> X_new, w = wsa.sample_with_weights(5, random_state=0)
    >>> X_new.shape, w.shape
    ((5, 10), (5,))
    """

    _net_class = WSANet

    def __init__(
        self,
        latent_dim=16,
        hidden_layer_sizes=(500, 500),
        likelihood="auto",
        beta=1.0,
        dropout=0.0,
        air_sigma=None,
        air_alpha=0.5,
        max_epochs=500,
        batch_size=100,
        lr=1e-3,
        optimizer="adam",
        callbacks=None,
        n_eval_samples=1,
        device="cpu",
        random_state=None,
        verbose=0,
        warm_start=False,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=30,
        tol=1e-4,
        teacher=None,
        n_teacher_samples=10,
        n_augment=1,
        warmup_epochs=50,
        weight_clip=1000.0,
        weight_power=0.5,
        weight_floor=0.0,
        self_normalize=True,
        weight_reduction="per_sample",
        weighted=True,
        latent_source="prior",
        discriminator=None,
        discriminator_hidden_layer_sizes=(64,),
        discriminator_lr=1e-4,
        augment=None,
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
        self.n_augment = n_augment
        self.warmup_epochs = warmup_epochs
        self.weight_clip = weight_clip
        self.weight_power = weight_power
        self.weight_floor = weight_floor
        self.self_normalize = self_normalize
        self.weight_reduction = weight_reduction
        self.weighted = weighted
        self.latent_source = latent_source
        self.discriminator = discriminator
        self.discriminator_hidden_layer_sizes = discriminator_hidden_layer_sizes
        self.discriminator_lr = discriminator_lr
        self.augment = augment

    def _check_params(self):
        hidden = super()._check_params()
        _check_int(self.n_augment, "n_augment", 1)
        _check_int(self.warmup_epochs, "warmup_epochs", 0)
        _check_real(self.weight_clip, "weight_clip", low=0.0, low_open=True)
        _check_real(self.weight_power, "weight_power", low=0.0, high=1.0)
        _check_real(self.weight_floor, "weight_floor", low=0.0)
        if self.weight_floor > self.weight_clip:
            raise ValueError(f"weight_floor must not exceed weight_clip, got weight_floor={self.weight_floor!r} "
                             f"> weight_clip={self.weight_clip!r}")
        if not isinstance(self.self_normalize, (bool, np.bool_)):
            raise TypeError(f"self_normalize must be a bool, got {self.self_normalize!r}")
        if self.weight_reduction not in _REDUCTIONS:
            raise ValueError(f"weight_reduction must be one of {_REDUCTIONS}, got {self.weight_reduction!r}")
        if not isinstance(self.weighted, (bool, np.bool_)):
            raise TypeError(f"weighted must be a bool, got {self.weighted!r}")
        if self.latent_source not in _LATENT_SOURCES:
            raise ValueError(f"latent_source must be one of {_LATENT_SOURCES}, got {self.latent_source!r}")
        if self.discriminator is not None and not isinstance(self.discriminator, nn.Module):
            raise TypeError(f"discriminator must be None or a torch.nn.Module, got {self.discriminator!r}")
        check_layer_sizes(self.discriminator_hidden_layer_sizes, "discriminator_hidden_layer_sizes")
        if self.discriminator_lr is not None:
            _check_real(self.discriminator_lr, "discriminator_lr", low=0.0, low_open=True)
        if self.augment is not None and not callable(self.augment):
            raise TypeError(f"augment must be None or a callable (X_batch, rng) -> X_aug, got {self.augment!r}")
        return hidden

    def _net_kwargs(self):
        if self.discriminator is None:
            disc = {
                "discriminator": Discriminator,
                "discriminator__n_features": self.n_features_in_,
                "discriminator__hidden_layer_sizes": check_layer_sizes(self.discriminator_hidden_layer_sizes,
                                                                       "discriminator_hidden_layer_sizes"),
            }
        else:
            disc = {"discriminator": copy.deepcopy(self.discriminator)}
        return {
            **disc,
            "discriminator_optimizer": torch.optim.Adam,
            "discriminator_optimizer__lr": self.lr if self.discriminator_lr is None else self.discriminator_lr,
            "n_augment": self.n_augment,
            "warmup_epochs": self.warmup_epochs,
            "weight_clip": float(self.weight_clip),
            "weight_power": float(self.weight_power),
            "weight_floor": float(self.weight_floor),
            "self_normalize": bool(self.self_normalize),
            "weight_reduction": self.weight_reduction,
            "weighted": bool(self.weighted),
            "latent_source": self.latent_source,
            "augment": self.augment,
        }

    def fit(self, X, y=None):
        """Fit the VAE to the rows of X with weighted self-augmentation.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training rows; with ``likelihood='bernoulli'`` every value is 0 or 1.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator. With ``warm_start=True`` a second call
            continues training from the current weights (and epoch count)
            for ``max_epochs``.

        Warns
        -----
        PlainVAEWarning
            When training ends within the warm-up (``max_epochs <=
            warmup_epochs`` for a fresh fit): no generated row entered the
            loss, so the model is a plain VAE. The weight keys of
            ``history_`` then hold NaN.
        """
        super().fit(X, y)
        epochs = len(self.history_)
        if self.max_epochs > 0 and epochs <= self.warmup_epochs:
            warnings.warn(
                f"training ended after {epochs} epochs, within the warm-up (warmup_epochs="
                f"{self.warmup_epochs}, max_epochs={self.max_epochs}): no weighted self-augmentation step "
                "was taken and the result is a plain VAE; raise max_epochs above warmup_epochs",
                PlainVAEWarning, stacklevel=2)
        return self

    def sample_with_weights(self, n_samples=1, random_state=None):
        """Draw rows from the model together with the discriminator's weights.

        The rows are those of :meth:`sample` with the same ``random_state``;
        each weight is the discriminator's density-ratio estimate
        exp(logit D(x)), clipped at ``weight_clip``: how much the
        discriminator trusts the row as data-like (a row with weight > 1
        looks more like data than like the model's samples). The training
        stabilizers (``weight_power``, ``weight_floor``, ``self_normalize``)
        are not applied. The weights are computed also when
        ``weighted=False`` or after a fit that ended in warm-up (the
        discriminator trains from the first epoch).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seed of the draw; the global numpy and torch RNGs are never touched.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        weights : ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> from skvae import WSAVAE
        >>> X = np.random.RandomState(0).binomial(1, 0.5, size=(100, 6))
        >>> wsa = WSAVAE(latent_dim=2, hidden_layer_sizes=(16,), discriminator_hidden_layer_sizes=(16,),
        ...              max_epochs=2, warmup_epochs=1, random_state=0).fit(X)
        >>> X_new, w = wsa.sample_with_weights(3, random_state=1)
        >>> bool((w > 0).all())
        True
        """
        X = self.sample(n_samples, random_state)
        discriminator = self.net_.discriminator_
        with eval_mode(discriminator), torch.no_grad():
            logits = discriminator(torch.as_tensor(X, dtype=torch.float64, device=self.net_.device))
        return X, density_ratio_weights(logits, self.weight_clip).cpu().numpy()


WSAVAE = WeightedSelfAugmentation
