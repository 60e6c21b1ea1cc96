"""The private skorch net that trains a VAE.

skorch supplies callbacks, history, checkpoints and ``set_params`` routing;
this subclass replaces its per-row ``Dataset``/``DataLoader`` with slices of
one tensor (per-row indexing made small tabular fits several times slower)
and records the epoch's mean loss instead of per-batch entries.
"""

import math
import threading
import weakref
from contextlib import contextmanager

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EpochTimer, PrintLog
from torch import nn

from ._row_noise import row_normal_noise
from .inference import refine_posterior
from .objectives import air_loss, importance_log_weights, log_mean_exp, negative_elbo_loss, posterior_elbo_terms

# Rows times importance samples evaluated per forward pass when scoring.
_SCORE_CHUNK = 2**15
# Reparameterized draws averaged per row for the ELBO's expected log-likelihood.
# Identical rows share their (hashed) noise, so on data with many duplicates a
# single draw leaves a noticeable error in the mean score; 8 draws cut it ~3x.
ELBO_DRAWS = 8


class ELBOLoss(nn.Module):
    """The training objective of a plain VAE: negative ELBO, or AIR's mixture.

    Parameters
    ----------
    likelihood : Likelihood
    beta : float
        Weight of the rate term.
    air_sigma : float or None
        Standard deviation of the encoder's input noise (AIR); None disables it.
    air_alpha : float
        Weight of the noisy-encoder term in AIR's loss.
    """

    def __init__(self, likelihood, beta=1.0, air_sigma=None, air_alpha=0.5):
        super().__init__()
        self.likelihood = likelihood
        self.beta = beta
        self.air_sigma = air_sigma
        self.air_alpha = air_alpha

    def forward(self, module, x):
        if self.air_sigma:
            return air_loss(module, self.likelihood, x, self.air_sigma, self.air_alpha, self.beta)
        return negative_elbo_loss(module, self.likelihood, x, self.beta)


class TrainingDiverged(Exception):
    """An epoch's training loss was not finite; the weights before it were restored."""

    def __init__(self, epoch, loss):
        super().__init__(f"the training loss became {loss} in epoch {epoch}")
        self.epoch, self.loss = epoch, loss


class TensorBatches:
    """Mini-batches as slices of one tensor, reshuffled at each pass when training."""

    def __init__(self, X, batch_size, shuffle):
        self.X = X
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return -(-len(self.X) // self.batch_size)

    def __iter__(self):
        X = self.X
        if self.shuffle:
            X = X[torch.randperm(len(X), device=X.device)]
        for start in range(0, len(X), self.batch_size):
            yield X[start:start + self.batch_size]


class VAENet(NeuralNet):
    """skorch net over a :class:`~skvae.modules.VAEModule` and an :class:`ELBOLoss`.

    Subclasses change the training algorithm by overriding :meth:`train_step`
    (and ``initialize_module`` / ``initialize_optimizer`` for extra modules).
    """

    def get_default_callbacks(self):
        return [("epoch_timer", EpochTimer()), ("print_log", PrintLog())]

    def counts_for_early_stopping(self):
        """Whether the epoch just finished may stop training early or be kept as the best (see
        :class:`~skvae.callbacks.ValidationStopping`); subclasses exclude warm-up phases."""
        return True

    @property
    def likelihood(self):
        return self.criterion_.likelihood

    def check_data(self, X, y=None):
        if not torch.is_tensor(X):
            raise TypeError("VAENet is fed tensors by the estimator")

    def get_split_datasets(self, X, y=None, **fit_params):
        return X, None

    def get_iterator(self, dataset, training=False):
        return TensorBatches(dataset, self.batch_size, shuffle=training)

    def train_step(self, batch, **fit_params):
        self.optimizer_.zero_grad(set_to_none=True)
        loss = self.criterion_(self.module_, batch)
        loss.backward()
        self.notify("on_grad_computed", named_parameters=self.module_.named_parameters(),
                    batch=batch, training=True)
        self.optimizer_.step()
        return {"loss": loss.detach(), "y_pred": None}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        self._set_training(training)
        if training:  # the weights that gave finite losses, restored if this epoch diverges
            before = {name: {k: v.detach().clone() for k, v in getattr(self, name + "_").state_dict().items()}
                      for name in self._modules}
        losses, sizes = [], []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            # Collected as tensors and reduced once: no host sync per batch on a GPU.
            losses.append(step["loss"].detach())
            sizes.append(len(batch))
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if losses:
            weights = torch.as_tensor(sizes, dtype=torch.float64, device=losses[0].device)
            mean = float((torch.stack(losses).double() * weights).sum()) / sum(sizes)
            if training and not math.isfinite(mean):
                for name, state in before.items():
                    getattr(self, name + "_").load_state_dict(state)
                self.initialize_optimizer()  # its moments hold the non-finite steps
                del self.history[-1]
                raise TrainingDiverged(len(self.history) + 1, mean)
            self.history.record(prefix + "_loss", mean)

    # -- evaluation ---------------------------------------------------------

    def _eval_chunks(self, X, n_samples):
        """Yield (rows, their fixed noise) as float64 tensors in chunks of bounded size."""
        step = max(1, _SCORE_CHUNK // n_samples)
        latent_dim = self.module_.latent_dim
        for start in range(0, len(X), step):
            rows = X[start:start + step]
            eps = row_normal_noise(rows, n_samples, latent_dim)
            # np.array copies: read-only inputs (memmaps) are never shared with torch.
            yield (torch.from_numpy(np.array(rows, dtype=np.float64)).to(self.device),
                   torch.as_tensor(eps, dtype=torch.float64, device=self.device))

    def score_rows(self, X, n_samples=1):
        """Per-row ELBO (``n_samples=1``) or IWAE bound, deterministic, in nats.

        ``X`` is a validated 2-D numpy array; dropout is off while scoring.
        """
        if n_samples == 1:
            return self.elbo_components(X)[0]
        with eval_mode(self.module_), torch.no_grad():
            return np.concatenate([self.iwae_rows(x, eps).double().cpu().numpy()
                                   for x, eps in self._eval_chunks(X, n_samples)])

    def importance_draws(self, x, eps):
        """(decoder outputs, log importance weights) of the draws of q(z | x) that ``eps`` gives, shapes
        ``(k, n, n_params)`` and ``(k, n)``: what the IWAE bound and imputation weigh."""
        return importance_log_weights(self.module_, self.likelihood, x, eps)

    def iwae_rows(self, x, eps):
        """IWAE bound of each row of the tensor ``x`` with the importance noise ``eps`` (one draw per sample)."""
        return log_mean_exp(self.importance_draws(x, eps)[1])

    def elbo_components(self, X, refine_steps=0, refine_lr=0.05, return_posterior=False):
        """Per-row (elbo, distortion, rate) in nats, with fixed per-row noise.

        The rate is exact; the distortion is averaged over ``ELBO_DRAWS`` draws.
        With ``refine_steps > 0`` each row's posterior is first refined by that
        many gradient steps (:func:`skvae.inference.refine_posterior`).
        ``return_posterior`` appends the posterior ``mu`` and ``logvar``.
        """
        parts = ([], [], [], [], [])
        module, likelihood = self.module_, self.likelihood
        with eval_mode(module):
            for x, eps in self._eval_chunks(X, ELBO_DRAWS):
                mu, logvar = refine_posterior(module, likelihood, x, refine_steps, lr=refine_lr)
                with torch.no_grad():
                    elbo, distortion, rate = posterior_elbo_terms(module.decoder, likelihood, x, mu, logvar, eps)
                for store, value in zip(parts, (elbo.mean(0), distortion.mean(0), rate, mu, logvar)):
                    store.append(value.cpu().numpy())
        out = tuple(np.concatenate(p) for p in parts)
        return out if return_posterior else out[:3]


@contextmanager
def dropout_off(module):
    """Eval mode (dropout off) in the module's own dtype, restoring the mode after.

    For sampling inside a training step, which must stay cheap and in the
    training dtype.
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


_EVAL_LOCK = threading.Lock()
_EVAL_USERS = weakref.WeakKeyDictionary()  # module -> [active uses, dtype, training flag] while evaluated


@contextmanager
def eval_mode(module):
    """Evaluate ``module`` in eval mode (dropout off) and in float64.

    float32 matrix products differ in the last bits with the batch size; in
    float64 those differences stay far below any tolerance that matters, so
    per-row results do not depend on how rows are batched. The module's mode
    and dtype are restored when the last of overlapping uses ends (float32 ->
    float64 -> float32 is exact), so threads may score one fitted estimator
    at the same time.
    """
    with _EVAL_LOCK:
        state = _EVAL_USERS.get(module)
        if state is None:
            state = _EVAL_USERS[module] = [0, next(module.parameters()).dtype, module.training]
            module.eval()
            module.double()
        state[0] += 1
    try:
        yield module
    finally:
        with _EVAL_LOCK:
            state[0] -= 1
            if state[0] == 0:
                module.to(state[1])
                module.train(state[2])
                del _EVAL_USERS[module]
