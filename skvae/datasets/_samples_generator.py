"""The sine-Bernoulli toy distribution of the WSA paper (§2.1)."""

import numpy as np
from sklearn.utils import check_random_state


def sine_bernoulli_probs(n_features=256):
    """P(x_i = 1) = 0.5 * sin(i * pi / 8) + 0.5 for i = 0, ..., n_features - 1.

    Parameters
    ----------
    n_features : int, default=256

    Returns
    -------
    ndarray of shape (n_features,)
    """
    if not isinstance(n_features, (int, np.integer)) or n_features < 1:
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
    i = np.arange(n_features)
    # Round so that the dimensions at sin = +-1 are exactly deterministic.
    return np.round(0.5 * np.sin(i * np.pi / 8) + 0.5, 12)


def sine_bernoulli_entropy(n_features=256):
    """Exact entropy of the sine-Bernoulli distribution in nats per row.

    This is the best test negative log-likelihood any model can reach on
    rows drawn by :func:`make_sine_bernoulli`.

    Parameters
    ----------
    n_features : int, default=256

    Returns
    -------
    float

    Examples
    --------
    >>> from skvae.datasets import sine_bernoulli_entropy
    >>> round(sine_bernoulli_entropy(256), 2)
    98.74
    """
    p = sine_bernoulli_probs(n_features)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(p < 1, (1 - p) * np.log1p(-p), 0.0))
    return float(h.sum())


def make_sine_bernoulli(n_samples=1000, n_features=256, random_state=None):
    """Draw rows of independent Bernoulli bits whose means follow a sine wave.

    Dimension ``i`` is 1 with probability ``0.5 * sin(i * pi / 8) + 0.5``
    (``i`` counted from 0). The WSA paper uses 1,000 training and 1,000 test
    rows of 256 dimensions to show a VAE overfitting.

    Parameters
    ----------
    n_samples : int, default=1000
    n_features : int, default=256
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype uint8

    See Also
    --------
    sine_bernoulli_entropy : the best achievable negative log-likelihood.

    Examples
    --------
    >>> from skvae.datasets import make_sine_bernoulli
    >>> make_sine_bernoulli(5, random_state=0).shape
    (5, 256)
    """
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    p = sine_bernoulli_probs(n_features)
    rng = check_random_state(random_state)
    return (rng.random_sample((n_samples, n_features)) < p).astype(np.uint8)
