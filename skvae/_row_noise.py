"""Deterministic, batch-independent noise for Monte-Carlo scores.

A single-sample ELBO or an IWAE bound needs random latent draws. Drawing them
from a generator makes ``score_samples(X)[i]`` depend on the other rows of the
batch and on the RNG state. Instead, each row's standard normal draws are a
fixed function of the row's values (a hash), so scores are reproducible,
independent of batching and row order, and the caller's RNG is never used.
"""

import numpy as np
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(h):
    """SplitMix64 finaliser on an array of uint64 (wrap-around arithmetic)."""
    with np.errstate(over="ignore"):
        h = h + _GOLDEN
        h = (h ^ (h >> np.uint64(30))) * _M1
        h = (h ^ (h >> np.uint64(27))) * _M2
        return h ^ (h >> np.uint64(31))


def row_keys(X, seed=0):
    """A 64-bit hash of each row's values, shape (n,)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    X = X + 0.0  # maps -0.0 to +0.0 so equal values hash equally
    bits = X.view(np.uint64)
    h = np.full(X.shape[0], np.uint64(seed) ^ np.uint64(X.shape[1]), dtype=np.uint64)
    for j in range(X.shape[1]):
        h = _splitmix64(h ^ bits[:, j])
    return h


def row_normal_noise(X, n_samples, latent_dim, seed=0):
    """Standard normal draws fixed by each row's values.

    Returns
    -------
    ndarray of shape (n_samples, n_rows, latent_dim), float32
    """
    keys = row_keys(X, seed)
    counters = np.arange(n_samples * latent_dim, dtype=np.uint64).reshape(n_samples, 1, latent_dim)
    with np.errstate(over="ignore"):
        h = _splitmix64(keys[None, :, None] * _M2 + counters)
    # 53 high bits -> uniform in (0, 1), never exactly 0 or 1.
    u = ((h >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    return ndtri(u).astype(np.float32)
