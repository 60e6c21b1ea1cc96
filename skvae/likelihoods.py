"""Observation models p(x | z) shared by training, scoring, sampling and coding.

A likelihood turns the decoder's raw output (``params``, one row per data row)
into log-probabilities, samples and means. It also validates that data lie in
its support and says how wide the decoder's output must be. The bits-back
coder builds its entropy models from the same objects, so there is exactly one
definition of each observation model in the library.
"""

import math
import numbers
import re

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # decoding a bits-back file (skvae.coding) needs the objects' numbers, not torch
    torch = F = None

__all__ = ["Likelihood", "Bernoulli", "Gaussian", "Categorical", "DiscretizedLogistic", "Mixed", "get_likelihood",
           "gaussian_components"]

# Gaussians per float column under likelihood='auto' and 'gaussian': 4 won over 1 on the held-out
# log-likelihood of 5 of 6 real tables and on their coded bits (benchmarks/results/tables.md, section 1b)
GAUSSIAN_COMPONENTS = 4
MAX_GAUSSIAN_COMPONENTS = 64


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

    def weighted_mean(self, params, weights):
        """:meth:`mean` of the mixture sum_j weights[j] p(x | params[j]).

        ``params`` has shape ``(k, n, n_params)`` and ``weights`` shape
        ``(k, n)``, summing to 1 over the k components of each row; the result
        has shape ``(n, n_features)``.
        """
        return (weights.unsqueeze(-1) * self.mean(params)).sum(0)

    def check_support(self, X, column_names=None):
        """Raise ``ValueError`` naming a column whose values are outside the support.

        ``column_names[j]`` names local column ``j`` in the message (default: ``j``).
        """
        raise NotImplementedError

    def encoder_preprocess(self):
        """An ``nn.Module`` (with ``n_out``) mapping rows to the encoder's input, or None for identity."""
        return None

    def fitted_to(self, X):
        """This model with the constants it learns from training rows X (itself when it learns none)."""
        return self

    def _constant(self, name, like, dtype=None, item=None):
        """Array attribute ``name`` (or its ``item``) as a tensor on ``like``'s device.

        Cached per device and dtype, so the same constants are not copied to
        the device in every batch.
        """
        dtype = like.dtype if dtype is None else dtype
        cache = self.__dict__.setdefault("_tensor_cache", {})
        key = (name, item, like.device, dtype)
        if key not in cache:
            value = getattr(self, name) if item is None else getattr(self, name)[item]
            cache[key] = torch.as_tensor(value, dtype=dtype, device=like.device)
        return cache[key]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_tensor_cache", None)
        return state

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

    @staticmethod
    def first_non_binary(X):
        """``(column, value)`` of the first entry that is neither 0 nor 1, or None."""
        return _first_bad_column(X, lambda col: (col != 0) & (col != 1))

    def check_support(self, X, column_names=None):
        bad = self.first_non_binary(X)
        if bad is not None:
            j, value = bad
            raise ValueError(
                f"likelihood='bernoulli' needs 0/1 values, but column {_name(column_names, j)} "
                f"holds {value!r}. Binarize the data or use likelihood='gaussian'."
            )


class Gaussian(Likelihood):
    """Independent Gaussian (or Gaussian mixture) per column with learned means and scales.

    With ``n_components=1`` the decoder outputs ``2 * n_features`` values:
    means, then log standard deviations, of the standardized column
    ``(x - center) / scale``. With ``n_components=K > 1`` each column is a
    mixture of K Gaussians given z, and the decoder outputs
    ``3 * K * n_features`` values: the K means of every column (column by
    column), then their K log standard deviations, then their K mixture
    logits (weights = softmax of the logits); the column's density is
    ``sum_k w_k N(x; mean_k, sd_k)``. A mixture can follow a column that is
    multimodal, zero-inflated or takes few distinct values, where one
    Gaussian given z cannot.

    The log scale is bounded to ``[min_log_scale, max_log_scale]`` so that
    the density cannot collapse onto single training points. ``center`` and
    ``scale`` (per column; None means 0 and 1) are the training rows' mean
    and standard deviation, set by :meth:`fitted_to` when an estimator is
    fitted: the network works on unit scale whatever the data's units, and
    densities include the Jacobian ``-log(scale)``, so they are in the data's
    units and compare with other density estimators.

    Parameters
    ----------
    min_log_scale, max_log_scale : float, default=-7.0, 7.0
        Bounds of the log standard deviation (of every component), in
        standardized units.
    center, scale : array-like of shape (n_features,) or None, default=None
        The standardization (set by :meth:`fitted_to`).
    n_components : int, default=1
        Gaussians per column. 1 is the plain Gaussian.
    """

    name = "gaussian"
    n_components = 1  # the class default: objects pickled before the parameter existed have one

    def __init__(self, min_log_scale=-7.0, max_log_scale=7.0, center=None, scale=None, n_components=1):
        self.min_log_scale = min_log_scale
        self.max_log_scale = max_log_scale
        self.center = None if center is None else np.asarray(center, dtype=np.float64).ravel()
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64).ravel()
        self.n_components = _check_components(n_components)

    def fitted_to(self, X):
        X = np.asarray(X, dtype=np.float64)
        observed = ~np.isnan(X)  # missing cells (tables) do not count
        counts = observed.sum(axis=0)
        if not (counts > 0).all():
            raise ValueError(f"column {int(np.flatnonzero(counts == 0)[0])} has no observed value to learn from")
        center = np.nanmean(X, axis=0) if len(X) else np.zeros(X.shape[1])
        scale = np.nanstd(X, axis=0) if len(X) else np.ones(X.shape[1])
        scale = np.where(np.isfinite(scale) & (scale > 1e-12 * np.maximum(1.0, np.abs(center))), scale, 1.0)
        return Gaussian(self.min_log_scale, self.max_log_scale, center, scale, n_components=self.n_components)

    def _split(self, params):
        loc, log_scale = params.chunk(2, dim=-1)
        return loc, log_scale.clamp(self.min_log_scale, self.max_log_scale)

    def _components(self, params):
        """(means, log scales, log weights) of a mixture, each of shape ``(..., n_features, K)``."""
        k = self.n_components
        blocks = params.reshape(*params.shape[:-1], 3, params.shape[-1] // (3 * k), k)
        loc, log_scale, logits = blocks.unbind(-3)
        return loc, log_scale.clamp(self.min_log_scale, self.max_log_scale), logits.log_softmax(-1)

    def n_params(self, n_features):
        return (2 if self.n_components == 1 else 3 * self.n_components) * n_features

    def log_prob_per_feature(self, params, x):
        log_jacobian = 0.0
        if self.center is not None:
            x = (x - self._constant("center", params)) / self._constant("scale", params)
            log_jacobian = torch.log(self._constant("scale", params))
        if self.n_components == 1:
            loc, log_scale = self._split(params)
            return -0.5 * ((x - loc) * torch.exp(-log_scale)) ** 2 - log_scale - 0.5 * math.log(2 * math.pi) \
                - log_jacobian
        loc, log_scale, log_weight = self._components(params)
        per_component = -0.5 * ((x.unsqueeze(-1) - loc) * torch.exp(-log_scale)) ** 2 - log_scale + log_weight
        return per_component.logsumexp(-1) - 0.5 * math.log(2 * math.pi) - log_jacobian

    def _to_data_units(self, values):
        if self.center is None:
            return values
        return values * self._constant("scale", values) + self._constant("center", values)

    def sample(self, params, generator=None):
        if self.n_components == 1:
            loc, log_scale = self._split(params)
        else:  # a component per entry by inverse CDF of its weights, then a draw from that component
            loc, log_scale, log_weight = self._components(params)
            cdf = log_weight.exp().cumsum(-1)
            u = torch.rand(cdf.shape[:-1] + (1,), generator=generator, device=params.device, dtype=params.dtype)
            pick = (u * cdf[..., -1:] > cdf).sum(-1, keepdim=True).clamp(max=self.n_components - 1)
            loc, log_scale = loc.gather(-1, pick).squeeze(-1), log_scale.gather(-1, pick).squeeze(-1)
        eps = torch.randn(loc.shape, generator=generator, device=loc.device, dtype=loc.dtype)
        return self._to_data_units(loc + torch.exp(log_scale) * eps)

    def mean(self, params):
        if self.n_components == 1:
            return self._to_data_units(self._split(params)[0])
        loc, _, log_weight = self._components(params)
        return self._to_data_units((loc * log_weight.exp()).sum(-1))

    def check_support(self, X, column_names=None):
        # Finiteness is checked by input validation; every real value is allowed.
        return None

    def encoder_preprocess(self):
        if self.center is None:
            return None
        from .modules import Affine

        return Affine(self.center, self.scale)

    def __repr__(self):
        extra = "" if self.n_components == 1 else f", n_components={self.n_components}"
        return f"Gaussian(min_log_scale={self.min_log_scale}, max_log_scale={self.max_log_scale}{extra})"


def _check_components(n_components):
    """``n_components`` as an int >= 1, else TypeError / ValueError naming it."""
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral):
        raise TypeError(f"n_components must be an int >= 1, got {n_components!r}")
    if n_components < 1 or n_components > MAX_GAUSSIAN_COMPONENTS:
        raise ValueError(f"n_components must be in 1 .. {MAX_GAUSSIAN_COMPONENTS}, got {n_components!r}")
    return int(n_components)


class Categorical(Likelihood):
    """One softmax group per column; column ``j`` holds codes ``0 .. n_categories[j] - 1``.

    The decoder outputs ``sum(n_categories)`` logits; the encoder sees the
    one-hot codes. :meth:`mean` returns the most probable code, since a mean
    of unordered categories is not defined.
    """

    name = "categorical"

    def __init__(self, n_categories):
        self.n_categories = tuple(int(k) for k in n_categories)
        if not self.n_categories or min(self.n_categories) < 1:
            raise ValueError(f"n_categories must be positive integers, got {n_categories!r}")
        k_max = max(self.n_categories)
        starts = np.concatenate([[0], np.cumsum(self.n_categories)[:-1]])
        offsets = np.arange(k_max)
        self._valid = offsets[None, :] < np.array(self.n_categories)[:, None]
        self._index = np.where(self._valid, starts[:, None] + offsets[None, :], 0)
        self._high = np.asarray(self.n_categories) - 1

    def n_params(self, n_features):
        if n_features != len(self.n_categories):
            raise ValueError(f"Categorical has {len(self.n_categories)} columns, got {n_features}")
        return sum(self.n_categories)

    def log_probs(self, params):
        """Log-probabilities of every code, shape ``(..., n_columns, max categories)``, -inf padded."""
        padded = params[..., self._constant("_index", params, torch.long)]
        padded = padded.masked_fill(~self._constant("_valid", params, torch.bool), float("-inf"))
        return padded.log_softmax(-1)

    def probs(self, params):
        """Probabilities of every code, shape ``(..., n_columns, max categories)``, 0 padded."""
        return self.log_probs(params).exp()

    def log_prob_per_feature(self, params, x):
        log_probs = self.log_probs(params)
        codes = x.long().expand(log_probs.shape[:-1]).unsqueeze(-1)
        return log_probs.gather(-1, codes).squeeze(-1)

    def sample(self, params, generator=None):
        cdf = self.probs(params).cumsum(-1)
        u = torch.rand(cdf.shape[:-1] + (1,), generator=generator, device=params.device, dtype=params.dtype)
        codes = (u * cdf[..., -1:] > cdf).sum(-1)
        return torch.minimum(codes, self._constant("_high", params, torch.long)).to(params.dtype)

    def mean(self, params):
        return self.log_probs(params).argmax(-1).to(params.dtype)

    def weighted_mean(self, params, weights):
        # the mixture's most probable code, as mean() is one distribution's
        probs = (weights[..., None, None] * self.probs(params)).sum(0)
        return probs.argmax(-1).to(params.dtype)

    def check_support(self, X, column_names=None):
        high = np.asarray(self.n_categories) - 1
        bad = _first_bad_column(np.asarray(X), lambda A: (A != np.round(A)) | (A < 0) | (A > high))
        if bad is not None:
            j, value = bad
            raise ValueError(f"column {_name(column_names, j)} holds {value!r}, which is not one of its "
                             f"{self.n_categories[j]} category codes 0..{self.n_categories[j] - 1}")

    def encoder_preprocess(self):
        from .modules import OneHot

        return OneHot(self.n_categories)

    def __repr__(self):
        return f"Categorical(n_categories={self.n_categories})"


class DiscretizedLogistic(Likelihood):
    """Integer columns: a logistic density binned at the integers, over all integers.

    P(x = k) is the logistic mass of ``[k - 1/2, k + 1/2]`` for every integer
    k, so values outside the range seen in fit (a held-out count above the
    training maximum) have a probability too. ``low`` and ``high``, the range
    seen in fit, set the unit scale: the decoder outputs a location on the
    scale of ``[low, high]`` and a log scale per column.
    """

    name = "integer"

    def __init__(self, low, high, min_log_scale=-7.0):
        self.low = np.asarray(low, dtype=np.float64).ravel()
        self.high = np.asarray(high, dtype=np.float64).ravel()
        if self.low.shape != self.high.shape or np.any(self.high < self.low):
            raise ValueError("low and high must have one entry per column with low <= high")
        self.min_log_scale = min_log_scale
        self._center = (self.low + self.high) / 2
        self._half = (self.high - self.low) / 2 + 0.5

    def n_params(self, n_features):
        if n_features != len(self.low):
            raise ValueError(f"DiscretizedLogistic has {len(self.low)} columns, got {n_features}")
        return 2 * n_features

    def _loc_log_scale(self, params):
        raw_loc, raw_log_scale = params.chunk(2, dim=-1)
        half, center = self._constant("_half", params), self._constant("_center", params)
        log_scale = (raw_log_scale + torch.log(half)).clamp(min=self.min_log_scale)
        return center + half * raw_loc, log_scale

    def log_prob_per_feature(self, params, x):
        loc, log_scale = self._loc_log_scale(params)
        inv_scale = torch.exp(-log_scale)
        return _log_sigmoid_difference((x + 0.5 - loc) * inv_scale, (x - 0.5 - loc) * inv_scale)

    def sample(self, params, generator=None):
        loc, log_scale = self._loc_log_scale(params)
        u = torch.rand(loc.shape, generator=generator, device=loc.device, dtype=loc.dtype).clamp(1e-12, 1 - 1e-12)
        return torch.round(loc + torch.exp(log_scale) * (torch.log(u) - torch.log1p(-u)))

    def mean(self, params):
        # the binned logistic is symmetric about loc, and so is its mean over all integers
        return self._loc_log_scale(params)[0]

    def check_support(self, X, column_names=None):
        X = np.asarray(X)
        bad = _first_bad_column(X, lambda A: A != np.round(A))
        if bad is not None:
            raise ValueError(f"column {_name(column_names, bad[0])} holds {bad[1]!r}, which is not an integer")
        bad = _first_bad_column(X, lambda A: ~(np.abs(A) < 2.0 ** 53))
        if bad is not None:
            raise ValueError(f"column {_name(column_names, bad[0])} holds {bad[1]!r}, beyond the integers of "
                             f"magnitude below 2**53 that an integer column can hold exactly")

    def encoder_preprocess(self):
        from .modules import Affine

        return Affine(self._center, self._half)

    def __repr__(self):
        return f"DiscretizedLogistic(low={self.low.tolist()}, high={self.high.tolist()})"


class Mixed(Likelihood):
    """Different observation models for different columns.

    Parameters
    ----------
    parts : list of (Likelihood, list of int)
        Each likelihood with the column indices it models; together the
        column lists must cover ``0 .. n_features - 1`` exactly once.
    missing_mask : bool, default=False
        Whether the encoder also sees which cells are missing (set for a
        table that had missing cells in fit). Missing cells (NaN) are
        allowed either way and left out of the log-probability.
    """

    name = "mixed"

    def __init__(self, parts, missing_mask=False):
        self.missing_mask = bool(missing_mask)
        self.parts = [(likelihood, [int(c) for c in cols]) for likelihood, cols in parts]
        columns = np.concatenate([cols for _, cols in self.parts]) if self.parts else np.array([], int)
        if sorted(columns.tolist()) != list(range(len(columns))):
            raise ValueError("the parts' column lists must cover every column exactly once")
        self._order = np.argsort(columns)  # concatenated parts -> column order
        self._part_columns = [np.asarray(cols) for _, cols in self.parts]
        widths = [likelihood.n_params(len(cols)) for likelihood, cols in self.parts]
        self._param_slices = [slice(int(a), int(b)) for a, b in zip(np.cumsum([0] + widths[:-1]), np.cumsum(widths))]

    def n_params(self, n_features):
        if n_features != len(self._order):
            raise ValueError(f"Mixed covers {len(self._order)} columns, got {n_features}")
        return self._param_slices[-1].stop if self.parts else 0

    def _per_part(self, fn, params, *xs):
        outs = []
        for i, ((likelihood, _), sl) in enumerate(zip(self.parts, self._param_slices)):
            cols = self._constant("_part_columns", params, torch.long, item=i)
            outs.append(fn(likelihood, params[..., sl], *(x.index_select(-1, cols) for x in xs)))
        return torch.cat(outs, dim=-1).index_select(-1, self._constant("_order", params, torch.long))

    def log_prob_per_feature(self, params, x):
        # a missing cell (NaN) contributes nothing: the sum is log p of the observed entries. It is
        # filled with 0 first, a valid value of every kind, so no NaN reaches the gradients.
        missing = torch.isnan(x)
        per_feature = self._per_part(lambda lik, p, xx: lik.log_prob_per_feature(p, xx), params,
                                     x.masked_fill(missing, 0.0))
        return per_feature.masked_fill(missing, 0.0)

    def sample(self, params, generator=None):
        return self._per_part(lambda lik, p: lik.sample(p, generator=generator), params)

    def mean(self, params):
        return self._per_part(lambda lik, p: lik.mean(p), params)

    def weighted_mean(self, params, weights):
        return self._per_part(lambda lik, p: lik.weighted_mean(p, weights), params)

    def check_support(self, X, column_names=None):
        X = np.asarray(X)
        if X.dtype.kind == "f":
            X = np.where(np.isnan(X), 0.0, X)  # missing cells are allowed in tables; 0 is in every support
        for likelihood, cols in self.parts:
            names = [column_names[c] if column_names is not None else c for c in cols]
            if isinstance(likelihood, Bernoulli):  # a table column that held only 0/1 in fit
                bad = likelihood.first_non_binary(X[:, cols])
                if bad is not None:
                    name = _name(names, bad[0])
                    raise ValueError(f"column {name} holds {bad[1]!r}, but it held only 0/1 in fit, so it is "
                                     f"modelled as a 0/1 column; if it can take other values, declare its "
                                     f"kind, e.g. likelihood={{'integer': [{name}]}} or {{'categorical': [{name}]}}")
                continue
            likelihood.check_support(X[:, cols], column_names=names)

    def fitted_to(self, X):
        X = np.asarray(X)
        return Mixed([(likelihood.fitted_to(X[:, cols]), cols) for likelihood, cols in self.parts],
                     missing_mask=self.missing_mask)

    def encoder_preprocess(self):
        from .modules import ColumnwiseInput

        return ColumnwiseInput([(likelihood.encoder_preprocess(), cols) for likelihood, cols in self.parts],
                               mask_channels=self.missing_mask)

    def __repr__(self):
        return "Mixed([" + ", ".join(f"({lik!r}, {cols})" for lik, cols in self.parts) + "])"


_LIKELIHOODS = {"bernoulli": Bernoulli, "gaussian": Gaussian}
_GAUSSIAN_KIND = re.compile(r"gaussian:([0-9]+)")


def gaussian_components(kind):
    """Gaussians per column that a kind name asks for, or None if it names no Gaussian.

    ``'gaussian'`` means the default, :data:`GAUSSIAN_COMPONENTS`;
    ``'gaussian:K'`` means K (a mixture of K Gaussians per column, 1 the
    plain Gaussian). ValueError for a ``'gaussian:...'`` that is not of
    that form.
    """
    if not isinstance(kind, str) or not kind.startswith("gaussian"):
        return None
    if kind == "gaussian":
        return GAUSSIAN_COMPONENTS
    match = _GAUSSIAN_KIND.fullmatch(kind)
    if match is None:
        if kind.startswith("gaussian:"):
            raise ValueError(f"{kind!r} is not 'gaussian:K' with a whole number K of components (e.g. 'gaussian:4')")
        return None
    k = int(match.group(1))
    if not 1 <= k <= MAX_GAUSSIAN_COMPONENTS:
        raise ValueError(f"{kind!r} asks for {k} components; allowed are 1 .. {MAX_GAUSSIAN_COMPONENTS}")
    return k


def get_likelihood(likelihood):
    """Return a :class:`Likelihood` for a name or pass an instance through.

    Parameters
    ----------
    likelihood : str or Likelihood
        ``'bernoulli'``, ``'gaussian'`` (:data:`GAUSSIAN_COMPONENTS`
        Gaussians per column), ``'gaussian:K'`` (a mixture of K Gaussians
        per column), or an instance of a subclass of :class:`Likelihood`.

    Returns
    -------
    Likelihood
    """
    if isinstance(likelihood, Likelihood):
        return likelihood
    if isinstance(likelihood, str) and likelihood == "bernoulli":
        return Bernoulli()
    k = gaussian_components(likelihood)
    if k is not None:
        return Gaussian(n_components=k)
    raise ValueError(
        f"likelihood must be one of {sorted(_LIKELIHOODS) + ['auto', 'gaussian:K']}, a dict of columns per "
        f"likelihood, or a Likelihood instance, got {likelihood!r}"
    )


def _name(column_names, j):
    return repr(column_names[j]) if column_names is not None else str(j)


def _log_sigmoid_difference(b, a):
    """log(sigmoid(b) - sigmoid(a)) for b > a, accurate in both tails.

    Uses sigmoid(b) - sigmoid(a) = sigmoid(-a) - sigmoid(-b) to keep the
    larger of the two terms away from 1 where precision is lost.
    """
    flip = (a + b) > 0
    hi = torch.where(flip, -a, b)
    lo = torch.where(flip, -b, a)
    log_hi, log_lo = F.logsigmoid(hi), F.logsigmoid(lo)
    return log_hi + torch.log1p(-torch.exp(log_lo - log_hi).clamp(max=1 - 1e-12))


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
