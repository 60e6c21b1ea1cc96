"""skorch callbacks that make a VAE's training visible."""

import numpy as np
from skorch.callbacks import Callback

__all__ = ["ELBOMonitor", "EpochProgressBar"]


class ELBOMonitor(Callback):
    """Record the mean ELBO of held-out rows in ``history_`` during ``fit``.

    The score is the same deterministic bound as ``score`` (dropout off), so
    a learning curve of train and held-out ELBO shows overfitting as it
    happens: the held-out ELBO falls while the training ELBO still rises.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows to score, in the same form as the training data.
    name : str, default='test'
        History key prefix: the score is stored as ``f'{name}_elbo'``.
    every : int, default=1
        Score after every ``every``-th epoch (and never in between).
    n_eval_samples : int, default=1
        1 records the ELBO; k > 1 the IWAE bound with k importance samples.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEDensityEstimator, ELBOMonitor
    >>> X = np.random.RandomState(0).binomial(1, 0.3, size=(200, 8))
    >>> vae = VAEDensityEstimator(latent_dim=2, hidden_layer_sizes=(16,), max_epochs=4,
    ...                           callbacks=[ELBOMonitor(X[150:], every=2)], random_state=0)
    >>> vae = vae.fit(X[:150])
    >>> len(vae.history_[:, 'test_elbo'])
    2
    """

    def __init__(self, X, name="test", every=1, n_eval_samples=1):
        self.X = X
        self.name = name
        self.every = every
        self.n_eval_samples = n_eval_samples

    def initialize(self):
        if not isinstance(self.every, (int, np.integer)) or self.every < 1:
            raise ValueError(f"every must be a positive integer, got {self.every!r}")
        self.X_ = np.asarray(self.X.toarray() if hasattr(self.X, "toarray") else self.X, dtype=np.float64)
        return self

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch % self.every == 0:
            score = net.score_rows(self.X_, self.n_eval_samples).mean()
            net.history.record(f"{self.name}_elbo", float(score))


class ValidationStopping(Callback):
    """Early stopping on held-out rows (the estimators' ``early_stopping=True``).

    Records ``valid_elbo`` (the mean ELBO of ``rows``, deterministic, dropout
    off) after every epoch, remembers the weights of the best epoch, and ends
    training once ``n_iter_no_change`` epochs in a row fail to beat the best
    by more than ``tol`` nats per row. Epochs for which the net's
    ``counts_for_early_stopping()`` is False (a warm-up, an encoder-only
    phase) are recorded but neither counted nor kept as best.
    """

    def __init__(self, rows, n_iter_no_change, tol):
        self.rows = rows
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol

    def initialize(self):
        self.best_score_, self.best_epoch_, self.best_state_, self.wait_ = -np.inf, 0, None, 0
        return self

    def on_epoch_end(self, net, **kwargs):
        score = float(net.score_rows(self.rows).mean())
        net.history.record("valid_elbo", score)
        if not net.counts_for_early_stopping():
            return
        if score > self.best_score_ + self.tol:
            self.best_score_, self.best_epoch_, self.wait_ = score, len(net.history), 0
            self.best_state_ = {name: {k: v.detach().clone() for k, v in getattr(net, name + "_").state_dict().items()}
                                for name in net._modules}
        else:
            self.wait_ += 1
            if self.wait_ >= self.n_iter_no_change:
                raise KeyboardInterrupt  # skorch's way to end training from a callback

    def restore_best(self, net):
        """Load the best epoch's weights into ``net`` (if any epoch counted)."""
        for name, state in (self.best_state_ or {}).items():
            getattr(net, name + "_").load_state_dict(state)


class EpochProgressBar(Callback):
    """A tqdm bar over epochs that shows the last training loss."""

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.pbar_ = tqdm(total=net.max_epochs, leave=True, unit="epoch")

    def on_epoch_end(self, net, **kwargs):
        self.pbar_.set_postfix(train_loss=f"{net.history[-1, 'train_loss']:.4f}", refresh=False)
        self.pbar_.update()

    def on_train_end(self, net, **kwargs):
        self.pbar_.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("pbar_", None)
        return state
