"""Observation models p(x | z) shared by training, scoring, sampling and coding.

A likelihood turns the decoder's raw output (``params``, one row per data row)
into log-probabilities, samples and means. It also validates that data lie in
its support and says how wide the decoder's output must be. The bits-back
coder builds its entropy models from the same objects, so there is exactly one
definition of each observation model in the library.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Likelihood", "Bernoulli", "Gaussian", "get_likelihood"]


class Likelihood:
    """Base class of observation models.

    Subclasses implement :meth:`n_params`, :meth:`log_prob_per_feature`,
    :meth:`sample`, :meth:`mean` and :meth:`check_support`.
    """

    name = None

    def n_params(self, n_features):
        """Width of the decoder output for ``n_features`` data columns."""
        raise NotImplementedError

    def log_prob_per_feature(self, params, x):
        """Log-probability of each entry, shape ``(..., n_features)``."""
        raise NotImplementedError

    def log_prob(self, params, x):
        """Log-probability of each row, summed over features: shape ``(...)``."""
        return self.log_prob_per_feature(params, x).sum(-1)

    def sample(self, params, generator=None):
        """Draw x ~ p(x | params) (discrete draws for discrete models)."""
        raise NotImplementedError

    def mean(self, params):
        """E[x | params]."""
        raise NotImplementedError

    def check_support(self, X):
        """Raise ``ValueError`` naming a column whose values are outside the support."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class Bernoulli(Likelihood):
    """Independent Bernoulli per column; the decoder outputs logits."""

    name = "bernoulli"

    def n_params(self, n_features):
        return n_features

    def log_prob_per_feature(self, params, x):
        return -F.binary_cross_entropy_with_logits(params, x.expand_as(params), reduction="none")

    def probs(self, params):
        """P(x = 1) per entry."""
        return torch.sigmoid(params)

    def sample(self, params, generator=None):
        u = torch.rand(params.shape, generator=generator, device=params.device, dtype=params.dtype)
        return (u < torch.sigmoid(params)).to(params.dtype)

    def mean(self, params):
        return torch.sigmoid(params)

    def check_support(self, X):
        bad = _first_bad_column(X, lambda col: (col != 0) & (col != 1))
        if bad is not None:
            j, value = bad
            raise ValueError(
                f"likelihood='bernoulli' needs 0/1 values, but column {j} "
                f"holds {value!r}. Binarize the data or use likelihood='gaussian'."
            )


class Gaussian(Likelihood):
    """Independent Gaussian per column with a learned mean and scale.

    The decoder outputs ``2 * n_features`` values: means, then log standard
    deviations. The log scale is bounded to ``[min_log_scale, max_log_scale]``
    so that the density cannot collapse onto single training points.
    """

    name = "gaussian"

    def __init__(self, min_log_scale=-7.0, max_log_scale=7.0):
        self.min_log_scale = min_log_scale
        self.max_log_scale = max_log_scale

    def _split(self, params):
        loc, log_scale = params.chunk(2, dim=-1)
        return loc, log_scale.clamp(self.min_log_scale, self.max_log_scale)

    def n_params(self, n_features):
        return 2 * n_features

    def log_prob_per_feature(self, params, x):
        loc, log_scale = self._split(params)
        return -0.5 * ((x - loc) * torch.exp(-log_scale)) ** 2 - log_scale - 0.5 * math.log(2 * math.pi)

    def sample(self, params, generator=None):
        loc, log_scale = self._split(params)
        eps = torch.randn(loc.shape, generator=generator, device=loc.device, dtype=loc.dtype)
        return loc + torch.exp(log_scale) * eps

    def mean(self, params):
        return self._split(params)[0]

    def check_support(self, X):
        # Finiteness is checked by input validation; every real value is allowed.
        return None

    def __repr__(self):
        return f"Gaussian(min_log_scale={self.min_log_scale}, max_log_scale={self.max_log_scale})"


_LIKELIHOODS = {"bernoulli": Bernoulli, "gaussian": Gaussian}


def get_likelihood(likelihood):
    """Return a :class:`Likelihood` for a name or pass an instance through.

    Parameters
    ----------
    likelihood : str or Likelihood
        ``'bernoulli'`` or ``'gaussian'``, or an instance of a subclass of
        :class:`Likelihood`.

    Returns
    -------
    Likelihood
    """
    if isinstance(likelihood, Likelihood):
        return likelihood
    if isinstance(likelihood, str) and likelihood in _LIKELIHOODS:
        return _LIKELIHOODS[likelihood]()
    raise ValueError(
        f"likelihood must be one of {sorted(_LIKELIHOODS)} or a Likelihood instance, got {likelihood!r}"
    )


def _first_bad_column(X, is_bad):
    """Return ``(column, value)`` of the first entry flagged by ``is_bad``, or None."""
    if hasattr(X, "tocsc"):  # scipy sparse: only stored entries can be bad for 0/1 checks
        X = X.tocsc()
        data_bad = is_bad(X.data)
        if not data_bad.any():
            return None
        k = int(np.flatnonzero(data_bad)[0])
        j = int(np.searchsorted(X.indptr, k, side="right") - 1)
        return j, X.data[k].item()
    bad = is_bad(X)
    if not bad.any():
        return None
    rows, cols = np.nonzero(bad)
    j = int(cols.min())
    i = int(rows[cols == j][0])
    return j, X[i, j].item()
