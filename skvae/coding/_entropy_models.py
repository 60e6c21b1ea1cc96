"""Entropy models for the bits-back coder, in platform-independent arithmetic.

Two kinds of symbols are coded:

* the latent vector z, discretized on a fixed uniform grid
  (:class:`LatentGrid`): the prior p(z) = N(0, I) becomes a categorical
  distribution over the grid cells and the posterior q(z|x) a Gaussian binned
  at the same cells (:class:`BinnedDistribution`);
* the data columns, coded under p(x|z) through an adapter per likelihood
  (:class:`BernoulliColumns` for 0/1 columns, :class:`CategoricalColumns`,
  :class:`IntegerColumns`, :class:`QuantizedGaussianColumns` for real values
  on a grid, ``_mixture_columns.GaussianMixtureColumns`` for Gaussian
  mixtures on a grid, :class:`MixedColumns` for tables).

Adapters receive the decoder's output from the fixed-point networks of
:mod:`skvae.coding._fixed_point` (the same float64 bits on every machine) and
turn it into probabilities with the exact functions of
:mod:`skvae.coding._exact` (``+ - * /`` and tables only), so every number
handed to ``constriction`` is the same on every platform. ``constriction``
receives only ``Bernoulli`` probabilities and ``Categorical`` tables, whose
conversion to its fixed-point integers uses IEEE arithmetic alone; its
``Quantized*`` families evaluate libm functions and are not used.

New column types plug in by subclassing :class:`ColumnModel` and
registering it with :func:`register_column_model`.
"""

import math

import constriction
import numpy as np

from ..likelihoods import Bernoulli, Categorical, DiscretizedLogistic, Gaussian, Mixed
from ._exact import LOGISTIC, NORMAL, bernoulli_probabilities, cdf_lookup, exp, fixed_log2, table_log2
from ._quantization import MAX_INTEGER_VALUES, MAX_STEPS, decimal_values

MISSING_PRECISION = 16  # missing rates of table columns are multiples of 2**-16

__all__ = ["LatentGrid", "BinnedDistribution", "ColumnModel", "BernoulliColumns", "column_model_for",
           "register_column_model"]

_FLOOR = 2.0 ** -60  # added to every table entry: a row of zeros (far tails) stays normalizable
_CONSTRICTION_BITS = 24  # constriction's models give every symbol at least 2**-24
_WORK_ENTRIES = 1 << 16  # table entries computed at a time


def _categorical():
    # constriction model objects are not picklable: build them on demand
    return constriction.stream.model.Categorical(perfect=False)


def _cheapest_code_bits(n_symbols, floor=2.0 ** -_CONSTRICTION_BITS):
    """-log2 of the largest probability a model over ``n_symbols`` symbols can give one of them."""
    return -math.log2(1.0 - (n_symbols - 1) * floor) if n_symbols > 1 else 0.0


def _rows(observed, j, n):
    """The rows whose column ``j`` is observed: all (a slice, no copies) when ``observed`` is None."""
    return slice(None) if observed is None else np.flatnonzero(observed[:, j])


def _some(rows):
    return isinstance(rows, slice) or len(rows) > 0


class BinnedDistribution:
    """Integer symbols ``0 .. n_bins - 1`` under a continuous law binned at the integers.

    Bin ``k`` holds the mass of ``[k - 1/2, k + 1/2]`` of the law with location
    ``mean`` and scale ``std`` (both in bin units, one per symbol); the two
    end bins also hold the tails. A symbol is coded in two stages, its group
    of ``group`` consecutive bins and then its bin within the group, so each
    symbol needs about ``2 sqrt(n_bins)`` CDF values instead of ``n_bins``.

    Parameters
    ----------
    n_bins : int
    cdf : CDFLookup
        The standard law's CDF (:data:`~skvae.coding._exact.NORMAL` or
        :data:`~skvae.coding._exact.LOGISTIC`).
    group : int, optional
        Bins per group; default about ``sqrt(n_bins)``. When it does not
        divide ``n_bins`` the last group is padded with empty bins, which
        are never pushed; a popped one means a corrupted stream.
    """

    def __init__(self, n_bins, cdf, group=None):
        self.n_bins = int(n_bins)
        self.cdf = cdf
        self.group = int(group) if group else max(1, math.isqrt(self.n_bins))
        self.n_groups = -(-self.n_bins // self.group)

    def _masses(self, first, count, width, mean, std):
        """Masses of ``count`` consecutive intervals of ``width`` bins from edge ``first`` (a scalar, or
        one per row), shape (n, count); the tails fold into the end bins."""
        out = np.empty((len(mean), count))
        rows = max(1, _WORK_ENTRIES // (count + 1))  # pieces that stay in cache: about 3x faster than at once
        for start in range(0, len(mean), rows):
            part = slice(start, start + rows)
            self._masses_into(out[part], first if np.ndim(first) == 0 else first[part], count, width,
                              mean[part], std[part])
        return out

    def _masses_into(self, out, first, count, width, mean, std):
        cdf = self.cdf.progression(first, width, count + 1, mean, std)
        top = self.n_bins - 0.5
        # edges never lie below -1/2, so only a first edge can be the bottom one
        if np.ndim(first) == 0:  # the same edges in every row
            if first <= -0.5:
                cdf[:, 0] = 0.0
            if first + count * width >= top:
                cdf[:, int(math.ceil((top - first) / width)):] = 1.0
        else:
            cdf[first <= -0.5, 0] = 0.0
            rows = np.flatnonzero(first + count * width >= top)
            if _some(rows):
                reach = np.ceil((top - first[rows]) / width)  # index of the first edge at or above the top
                cdf[rows] = np.where(np.arange(count + 1)[None, :] >= reach[:, None], 1.0, cdf[rows])
        np.subtract(cdf[:, 1:], cdf[:, :-1], out=out)
        np.maximum(out, 0.0, out=out)  # never negative (see CDFLookup); kept so by construction all the same
        out += _FLOOR

    def _group_table(self, mean, std):
        return self._masses(-0.5, self.n_groups, self.group, mean, std)

    def _bin_table(self, groups, mean, std):
        return self._masses(groups * self.group - 0.5, self.group, 1, mean, std)

    def push(self, coder, symbols, mean, std):
        """Encode int symbols (1-D) so that :meth:`pop` returns them."""
        if self.n_bins == 1:
            return
        groups = symbols // self.group
        offsets = (symbols - groups * self.group).astype(np.int32)
        if self.group > 1:
            coder.encode_reverse(offsets, _categorical(), self._bin_table(groups, mean, std))
        if self.n_groups > 1:
            coder.encode_reverse(groups.astype(np.int32), _categorical(), self._group_table(mean, std))

    def log2_prob(self, symbols, mean, std):
        """Fixed-point log2 probability of each symbol (int64, 1-D), exactly as both coder sides compute it."""
        total = np.zeros(len(mean), dtype=np.int64)
        if self.n_bins == 1:
            return total
        groups = symbols // self.group
        if self.group > 1:
            total += table_log2(self._bin_table(groups, mean, std), symbols - groups * self.group)
        if self.n_groups > 1:
            total += table_log2(self._group_table(mean, std), groups)
        return total

    def min_bits(self):
        """The fewest bits any symbol can cost (each stage leaves 2**-24 to every other entry)."""
        return sum(_cheapest_code_bits(k) for k in (self.n_groups, self.group) if k > 1 and self.n_bins > 1)

    def pop(self, coder, mean, std):
        """Decode one symbol per entry of ``mean`` (int64, 1-D)."""
        if self.n_bins == 1:
            return np.zeros(len(mean), dtype=np.int64)
        groups = np.zeros(len(mean), dtype=np.int64)
        if self.n_groups > 1:
            groups = coder.decode(_categorical(), self._group_table(mean, std)).astype(np.int64)
        symbols = groups * self.group
        if self.group > 1:
            symbols = symbols + coder.decode(_categorical(), self._bin_table(groups, mean, std))
        if symbols.max(initial=0) >= self.n_bins:  # a padded bin: only a corrupted stream yields one
            raise ValueError("corrupted chunk: a decoded symbol is outside its range")
        return symbols


class LatentGrid:
    """Uniform discretization of a standard normal latent space.

    Cell ``k`` (an integer in ``[-n_half, n_half]``) is the interval
    ``[(k - 1/2) step, (k + 1/2) step]`` with ``step = 2**-precision``; the two
    end cells also hold the prior's tails. ``n_half * step`` is ``clip``
    rounded up so that the ``2 n_half + 1`` cells split into an odd number of
    equal groups of about ``sqrt(n_cells)`` (the posterior is coded group,
    then cell, and every cell a pop can return must exist: no padding). The
    coder evaluates the decoder at the cell centres ``k * step``.

    Parameters
    ----------
    precision : int
        The cell width is ``2**-precision`` prior standard deviations.
    clip : float
        Half-width of the gridded interval, in prior standard deviations.
    arithmetic : int, default=2
        The file's arithmetic version: 1 reads the normal CDF table by nearest
        entry (files of version 1 only; see :func:`use_arithmetic`).
    """

    def __init__(self, precision, clip, arithmetic=2):
        self.precision = int(precision)
        self.step = 2.0 ** -self.precision
        needed = 2 * int(math.ceil(clip / self.step)) + 1
        group = 2 * int(round(math.sqrt(needed) / 2)) + 1
        n_groups = -(-needed // group)
        n_groups += 1 - n_groups % 2
        self.n_half = (n_groups * group - 1) // 2
        self.posterior = BinnedDistribution(self.n_cells, cdf_lookup(NORMAL, arithmetic), group)
        self.prior_probs = self._prior_probs()

    def _prior_probs(self):
        return self.posterior._masses(-0.5, self.n_cells, 1, np.full(1, float(self.n_half)),
                                      np.full(1, 1.0 / self.step))[0]

    @property
    def n_cells(self):
        return 2 * self.n_half + 1

    def prior_model(self):
        return constriction.stream.model.Categorical(self.prior_probs, perfect=False)

    def posterior_params(self, mu, logvar):
        """Mean and standard deviation of q(z|x) in grid units, flattened, float64."""
        mean = np.clip(mu.ravel() / self.step, -self.n_half, self.n_half)
        std = np.clip(exp(0.5 * logvar.ravel()) / self.step, 2.0 ** -10, 4.0 * self.n_cells)
        return mean, std

    def nearest(self, mean):
        """The cell containing each posterior mean (used where nothing can be popped)."""
        return np.clip(np.rint(mean), -self.n_half, self.n_half).astype(np.int32)

    def pop_posterior(self, coder, mean, std):
        return (self.posterior.pop(coder, mean + self.n_half, std) - self.n_half).astype(np.int32)

    def push_posterior(self, coder, cells, mean, std):
        self.posterior.push(coder, cells.astype(np.int64) + self.n_half, mean + self.n_half, std)

    # Prior coding: the categorical's symbols are cells shifted to 0 .. n_cells - 1.
    def push_prior(self, coder, cells, model):
        coder.encode_reverse(cells + np.int32(self.n_half), model)

    def pop_prior(self, coder, count, model):
        return coder.decode(model, count) - np.int32(self.n_half)

    def posterior_log2(self, cells, mean, std):
        """Fixed-point log2 q(cell) per entry (grid units, flattened)."""
        return self.posterior.log2_prob(cells.astype(np.int64) + self.n_half, mean + self.n_half, std)

    def prior_log2(self, cells):
        """Fixed-point log2 p(cell) under the discretized prior, per entry."""
        if getattr(self, "_prior_log2", None) is None:
            rows = np.repeat(self.prior_probs[None, :], self.n_cells, axis=0)
            self._prior_log2 = table_log2(rows, np.arange(self.n_cells))
        return self._prior_log2[cells.astype(np.intp) + self.n_half]

    def posterior_entropy_bits(self, mean, std):
        """Entropy (bits) of the binned posteriors given in grid units, summed (float, for reports)."""
        mass = self.posterior._masses(-0.5, self.n_cells, 1, mean + self.n_half, std)
        mass /= mass.sum(axis=1, keepdims=True)
        return float(-(mass * np.log2(mass)).sum())


class ColumnModel:
    """Adapter from a likelihood to the entropy model of the data columns.

    Subclasses define ``kind`` (written into the file's column schema) and
    implement :meth:`check`, :meth:`symbols`, :meth:`push`, :meth:`pop` and,
    where symbols are not the values, :meth:`restore`. ``params`` are the
    decoder's outputs as float64 arrays of shape (n, n_params).
    """

    kind = None

    def __init__(self, likelihood, n_features, precision, grid=None):
        self.likelihood = likelihood
        self.n_features = n_features
        self.precision = precision

    def schema(self):
        """JSON-serializable description of the columns, stored in the header."""
        return [{"kind": self.kind, "count": self.n_features}]

    def check(self, X, column_names=None):
        """Raise ValueError if X holds values this model cannot code."""
        self.likelihood.check_support(X, column_names=column_names)

    def symbols(self, X):
        """Integer symbols of a block of rows, shape (n, n_features), int32."""
        return np.asarray(X).astype(np.int32, copy=False)

    def network_input(self, symbols):
        """The row values the encoder sees for these symbols (float64)."""
        return self.restore(symbols, np.float64)

    def push(self, coder, symbols, params, observed=None):
        """Encode the symbols (n, n_features) under p(x | decoder output ``params``).

        ``observed`` (bool, like ``symbols``), when given, selects the entries
        to code; the others (missing cells of a table) are skipped.
        """
        raise NotImplementedError

    def pop(self, coder, params, observed=None):
        """Decode (n, n_features) symbols under p(x | decoder output ``params``) (-1 where not ``observed``)."""
        raise NotImplementedError

    def log2_probs(self, symbols, params, observed=None):
        """Fixed-point log2 p(x | params) per row (int64) of the ``observed`` entries, the same on every platform."""
        raise NotImplementedError

    def restore(self, symbols, dtype):
        """The symbols as an array of the caller's dtype."""
        return symbols.astype(dtype)

    def min_bits_per_row(self):
        """The fewest bits a row's columns can cost (0 if some row may be free)."""
        raise NotImplementedError


class BernoulliColumns(ColumnModel):
    """0/1 columns coded with constriction's Bernoulli model.

    ``P(x = 1) = sigmoid(logit)`` rounded to a multiple of ``2**-precision``
    inside ``[2**-precision, 1 - 2**-precision]``
    (:func:`~skvae.coding._exact.bernoulli_probabilities`).
    """

    kind = "bernoulli"

    def _probs(self, params):
        return bernoulli_probabilities(params, self.precision).ravel()

    def min_bits_per_row(self):
        return self.n_features * _cheapest_code_bits(2, 2.0 ** -self.precision)

    def push(self, coder, symbols, params, observed=None):
        symbols, probs = symbols.ravel(), self._probs(params)
        if observed is not None:
            keep = observed.ravel()
            symbols, probs = np.ascontiguousarray(symbols[keep]), np.ascontiguousarray(probs[keep])
        if len(symbols):
            coder.encode_reverse(symbols, constriction.stream.model.Bernoulli(perfect=False), probs)

    def log2_probs(self, symbols, params, observed=None):
        p1 = self._probs(params).reshape(symbols.shape)
        terms = fixed_log2(np.where(symbols == 1, p1, 1.0 - p1))  # 1 - p1 exact: a 2**-precision grid
        return (terms if observed is None else np.where(observed, terms, 0)).sum(axis=1)

    def pop(self, coder, params, observed=None):
        probs = self._probs(params)
        model = constriction.stream.model.Bernoulli(perfect=False)
        if observed is None:
            return coder.decode(model, probs).reshape(-1, self.n_features)
        keep = observed.ravel()
        flat = np.full(len(probs), -1, dtype=np.int32)
        if keep.any():
            flat[keep] = coder.decode(model, np.ascontiguousarray(probs[keep]))
        return flat.reshape(-1, self.n_features)


class CategoricalColumns(ColumnModel):
    """Categorical columns: the symbols are the category codes, coded under the softmax of the logits."""

    kind = "categorical"

    def _column_tables(self, params):
        likelihood = self.likelihood
        logits = params[:, likelihood._index]                           # (n, columns, max K)
        logits = np.where(likelihood._valid, logits, -np.inf)
        weights = exp(logits - logits.max(axis=2, keepdims=True)) + _FLOOR  # exact; constriction normalizes
        return [np.ascontiguousarray(weights[:, j, :k]) for j, k in enumerate(likelihood.n_categories)]

    def push(self, coder, symbols, params, observed=None):
        for j, table in reversed(list(enumerate(self._column_tables(params)))):
            rows = _rows(observed, j, len(symbols))
            if _some(rows):
                coder.encode_reverse(np.ascontiguousarray(symbols[rows, j]), _categorical(),
                                     np.ascontiguousarray(table[rows]))

    def pop(self, coder, params, observed=None):
        tables = self._column_tables(params)
        out = np.full((len(params), self.n_features), -1, dtype=np.int32)
        for j, table in enumerate(tables):
            rows = _rows(observed, j, len(params))
            if _some(rows):
                out[rows, j] = coder.decode(_categorical(), np.ascontiguousarray(table[rows]))
        return out

    def log2_probs(self, symbols, params, observed=None):
        total = np.zeros(len(symbols), dtype=np.int64)
        for j, table in enumerate(self._column_tables(params)):
            rows = _rows(observed, j, len(symbols))
            total[rows] += table_log2(table[rows], symbols[rows, j])
        return total

    def min_bits_per_row(self):
        return sum(_cheapest_code_bits(k) for k in self.likelihood.n_categories)

    def schema(self):
        return [{"kind": self.kind, "count": self.n_features, "categories": list(self.likelihood.n_categories)}]


class _BinnedColumns(ColumnModel):
    """Columns of integer symbols ``0 .. n_j - 1``, each under a binned continuous law.

    Subclasses give :attr:`_laws` (one :class:`BinnedDistribution` per
    column) and :meth:`_locations` (location and scale per entry, in symbol
    units).
    """

    def push(self, coder, symbols, params, observed=None):
        loc, scale = self._locations(params)
        for j in reversed(range(self.n_features)):
            rows = _rows(observed, j, len(symbols))
            if _some(rows):
                self._laws[j].push(coder, symbols[rows, j].astype(np.int64), loc[rows, j], scale[rows, j])

    def pop(self, coder, params, observed=None):
        loc, scale = self._locations(params)
        out = np.full((len(params), self.n_features), -1, dtype=np.int32)
        for j, law in enumerate(self._laws):
            rows = _rows(observed, j, len(params))
            if _some(rows):
                out[rows, j] = law.pop(coder, loc[rows, j], scale[rows, j])
        return out

    def min_bits_per_row(self):
        return sum(law.min_bits() for law in self._laws)

    def log2_probs(self, symbols, params, observed=None):
        loc, scale = self._locations(params)
        total = np.zeros(len(symbols), dtype=np.int64)
        for j, law in enumerate(self._laws):
            rows = _rows(observed, j, len(symbols))
            total[rows] += law.log2_prob(symbols[rows, j].astype(np.int64), loc[rows, j], scale[rows, j])
        return total


class IntegerColumns(_BinnedColumns):
    """Integer columns under the discretized logistic: symbol = value - low.

    Coded on ``[low, high]``, the range seen in fit or, for a column listed in
    ``grid`` (``{'0': [low, high], ...}`` in this model's column order), the
    wider range the file stores; the tails beyond it fold into its end bins.
    """

    kind = "integer"
    max_values = MAX_INTEGER_VALUES

    def __init__(self, likelihood, n_features, precision, grid=None):
        super().__init__(likelihood, n_features, precision)
        self.low, self.high = likelihood.low.copy(), likelihood.high.copy()
        for key, entry in (grid or {}).items():
            j = int(key)
            low, high = (int(v) for v in entry)
            if not (0 <= j < n_features and low <= self.low[j] and high >= self.high[j]):
                raise ValueError(f"bad integer range {entry!r} for integer column {key}")
            self.low[j], self.high[j] = low, high
        sizes = (self.high - self.low + 1).astype(np.int64)
        if sizes.max(initial=0) > self.max_values:
            raise ValueError(f"integer columns with more than {self.max_values} values cannot be coded; "
                             f"a column spans {int(sizes.max())}")
        self._offsets = self.low
        self._laws = [BinnedDistribution(int(k), LOGISTIC) for k in sizes]

    def check(self, X, column_names=None):
        super().check(X, column_names)
        X = np.asarray(X, dtype=np.float64)
        off = (X < self.low) | (X > self.high)
        if off.any():
            i, j = (int(v) for v in np.argwhere(off)[0])
            name = column_names[j] if column_names is not None else j
            raise ValueError(f"column {name!r} holds {X[i, j]:g}, outside the range {self.low[j]:g}.."
                             f"{self.high[j]:g} this file codes it on")

    def symbols(self, X):
        return (np.asarray(X, dtype=np.float64) - self._offsets).astype(np.int32)

    def restore(self, symbols, dtype):
        return (symbols + self._offsets).astype(dtype)

    def _locations(self, params):
        likelihood, n = self.likelihood, self.n_features
        raw_loc, raw_log_scale = params[:, :n], params[:, n:]
        loc = likelihood._center + likelihood._half * raw_loc
        scale = np.maximum(likelihood._half * exp(raw_log_scale), exp(likelihood.min_log_scale))
        return loc - self._offsets, scale

    def schema(self):
        return [{"kind": self.kind, "count": self.n_features, "low": self.low.tolist(),
                 "high": self.high.tolist()}]


class QuantizedGaussianColumns(_BinnedColumns):
    """Real-valued columns whose values lie on a grid ``k * step``, coded as integers k.

    ``grid`` maps each column (``'0'``, ``'1'``, ... in this model's order) to
    ``[step, k_min, k_max]``; the coder measures ``k_min``/``k_max`` on the
    array it encodes and stores them in the file. The model of k is the
    decoder's Gaussian binned at the grid, tails folded into the end bins.
    Lossless only for data on the grid, which :meth:`check` verifies value by
    value.
    """

    kind = "gaussian"
    max_values = MAX_STEPS

    def __init__(self, likelihood, n_features, precision, grid=None):
        super().__init__(likelihood, n_features, precision)
        if grid is None or len(grid) != n_features:
            raise ValueError("real-valued (Gaussian) columns have no lossless code without a grid: give "
                             "BitsBackCoder(quantization='auto') or quantization=step")
        entries = [grid[str(j)] for j in range(n_features)]
        self.grid = {str(j): [float(a), int(b), int(c)] for j, (a, b, c) in enumerate(entries)}
        self.steps = np.array([e[0] for e in entries], dtype=np.float64)
        self.k_min = np.array([e[1] for e in entries], dtype=np.int64)
        self.k_max = np.array([e[2] for e in entries], dtype=np.int64)
        if not (np.isfinite(self.steps).all() and (self.steps > 0).all() and (self.k_max >= self.k_min).all()):
            raise ValueError(f"bad quantization grid {grid!r}")
        if (self.k_max - self.k_min).max(initial=0) >= self.max_values:
            raise ValueError(f"a quantized column spans more than {self.max_values} grid steps")
        self._laws = [BinnedDistribution(int(k + 1), NORMAL) for k in self.k_max - self.k_min]

    def schema(self):
        return [{"kind": self.kind, "count": self.n_features, "grid": [self.grid[str(j)]
                                                                       for j in range(self.n_features)]}]

    def check(self, X, column_names=None):
        X = np.asarray(X)
        k = np.rint(X.astype(np.float64) / self.steps)
        # compared in X's own dtype: float32 0.1 is on the grid of step 0.1
        off = (decimal_values(k, self.steps).astype(X.dtype) != X) | (k < self.k_min) | (k > self.k_max)
        if off.any():
            i, j = (int(v) for v in np.argwhere(off)[0])
            name = column_names[j] if column_names is not None else j
            raise ValueError(f"column {name!r} holds {float(X[i, j])!r}, which is not on the quantization grid "
                             f"of step {float(self.steps[j])!r}: quantized coding is lossless only for data on "
                             f"the grid")

    def symbols(self, X):
        return (np.rint(np.asarray(X, dtype=np.float64) / self.steps) - self.k_min).astype(np.int32)

    def restore(self, symbols, dtype):
        return decimal_values(symbols + self.k_min, self.steps).astype(dtype)

    def _locations(self, params):
        likelihood, n = self.likelihood, self.n_features
        loc = params[:, :n]
        scale = exp(np.clip(params[:, n:], likelihood.min_log_scale, likelihood.max_log_scale))
        if likelihood.center is not None:  # the decoder works on standardized columns
            loc = loc * likelihood.scale + likelihood.center
            scale = scale * likelihood.scale
        return loc / self.steps - self.k_min, scale / self.steps


class MixedColumns(ColumnModel):
    """Per-part column models of a :class:`~skvae.likelihoods.Mixed` likelihood, with missing cells.

    ``missing`` (``{'j': q}``, measured on the file and stored in it) lists
    the columns that have missing cells, each with its missing rate ``q``
    in units of ``2**-MISSING_PRECISION``. A missing cell has symbol -1 and
    value NaN; its value is not coded. The 0/1 missingness of those columns
    is coded per row under Bernoulli(q) after the values, so decoding pops it
    first and then only the observed values.
    """

    kind = "mixed"

    def __init__(self, likelihood, n_features, precision, grid=None, missing=None):
        super().__init__(likelihood, n_features, precision)
        self.parts = []
        for (part, cols), sl in zip(likelihood.parts, likelihood._param_slices):
            part_grid = None if grid is None else {str(i): grid[str(c)] for i, c in enumerate(cols)
                                                   if str(c) in grid}
            if part.name == "gaussian" and not part_grid:
                raise ValueError(f"columns {list(cols)} are real-valued (Gaussian) and have no lossless code "
                                 f"without a grid: give BitsBackCoder(quantization='auto') or quantization=step")
            self.parts.append((column_model_for(part, len(cols), precision, part_grid), np.asarray(cols), sl))
        self.missing = {str(int(j)): int(q) for j, q in (missing or {}).items()}
        if not all(0 <= int(j) < n_features and 0 < q < 1 << MISSING_PRECISION for j, q in self.missing.items()):
            raise ValueError(f"bad missing rates {missing!r}")
        self._mask_columns = np.array(sorted(int(j) for j in self.missing), dtype=np.int64)
        self._mask_probs = np.array([self.missing[str(j)] for j in self._mask_columns], dtype=np.float64) \
            / (1 << MISSING_PRECISION)  # exact: multiples of 2**-16

    def schema(self):
        entries = [{**entry, "columns": cols.tolist()} for model, cols, _ in self.parts for entry in model.schema()]
        if self.missing:  # only then: files of complete tables keep their fingerprints
            entries.append({"kind": "missing", "rates": self.missing})
        return entries

    def _filled(self, X):
        """X with missing cells set to each part's value of symbol 0 (so the parts see valid values)."""
        X = np.asarray(X)
        missing = np.isnan(X) if X.dtype.kind == "f" else np.zeros(X.shape, dtype=bool)
        if not missing.any():
            return X, missing
        X = X.copy()
        for model, cols, _ in self.parts:
            fill = model.restore(np.zeros((1, len(cols)), dtype=np.int32), np.float64)
            X[:, cols] = np.where(missing[:, cols], fill, X[:, cols])
        return X, missing

    def check(self, X, column_names=None):
        X, missing = self._filled(X)
        allowed = np.zeros(self.n_features, dtype=bool)
        allowed[self._mask_columns] = True
        bad = missing & ~allowed
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(f"column {column_names[j] if column_names is not None else j!r} has a missing "
                             f"value in row {i}, which this file does not code")
        for model, cols, _ in self.parts:
            model.check(X[:, cols], column_names=None if column_names is None else [column_names[c] for c in cols])

    def symbols(self, X):
        X, missing = self._filled(X)
        out = np.empty(X.shape, dtype=np.int32)
        for model, cols, _ in self.parts:
            out[:, cols] = model.symbols(X[:, cols])
        if missing.any():
            out[missing] = -1
        return out

    def restore(self, symbols, dtype):
        missing = symbols < 0
        if missing.any() and np.dtype(dtype).kind != "f":
            raise ValueError("corrupted data: a missing cell in a table stored without them")
        symbols = np.where(missing, 0, symbols)
        out = np.empty(symbols.shape, dtype=dtype)
        for model, cols, _ in self.parts:
            out[:, cols] = model.restore(symbols[:, cols], dtype)
        if missing.any():
            out[missing] = np.nan
        return out

    def _observed(self, symbols):
        return None if not self.missing else symbols >= 0

    def _mask_model(self, n):
        return constriction.stream.model.Bernoulli(perfect=False), np.tile(self._mask_probs, n)

    def push(self, coder, symbols, params):
        observed = self._observed(symbols)
        for model, cols, sl in self.parts:
            model.push(coder, np.ascontiguousarray(symbols[:, cols]), params[:, sl],
                       None if observed is None else np.ascontiguousarray(observed[:, cols]))
        if observed is not None and len(symbols):  # pushed last: popped first, before the values
            model, probs = self._mask_model(len(symbols))
            coder.encode_reverse((~observed[:, self._mask_columns]).astype(np.int32).ravel(), model, probs)

    def pop(self, coder, params):
        n = params.shape[0]
        observed = None
        if self.missing and n:
            model, probs = self._mask_model(n)
            observed = np.ones((n, self.n_features), dtype=bool)
            observed[:, self._mask_columns] = coder.decode(model, probs).reshape(n, -1) == 0
        out = np.empty((n, self.n_features), dtype=np.int32)
        for model, cols, sl in reversed(self.parts):  # a stack: last pushed, first popped
            out[:, cols] = model.pop(coder, params[:, sl],
                                     None if observed is None else np.ascontiguousarray(observed[:, cols]))
        return out

    def min_bits_per_row(self):
        # a part with a column that may be missing may cost nothing; each mask bit costs at least this
        total = sum(model.min_bits_per_row() for model, cols, _ in self.parts
                    if not np.isin(cols, self._mask_columns).any())
        return total + sum(_cheapest_code_bits(2, min(p, 1.0 - p)) for p in self._mask_probs)

    def log2_probs(self, symbols, params):
        observed = self._observed(symbols)
        total = np.zeros(len(symbols), dtype=np.int64)
        for model, cols, sl in self.parts:
            total += model.log2_probs(np.ascontiguousarray(symbols[:, cols]), params[:, sl],
                                      None if observed is None else observed[:, cols])
        if observed is not None:
            p = np.broadcast_to(self._mask_probs, (len(symbols), len(self._mask_probs)))
            total += fixed_log2(np.where(observed[:, self._mask_columns], 1.0 - p, p)).sum(axis=1)
        return total


_COLUMN_MODELS = {Bernoulli: BernoulliColumns, Categorical: CategoricalColumns,
                  DiscretizedLogistic: IntegerColumns, Mixed: MixedColumns, Gaussian: QuantizedGaussianColumns}


def register_column_model(likelihood_class, column_model_class):
    """Let the coder handle a new likelihood class (extension point)."""
    _COLUMN_MODELS[likelihood_class] = column_model_class


def use_arithmetic(columns, arithmetic):
    """``columns`` (a :class:`ColumnModel`) with the CDF lookups of arithmetic version ``arithmetic``.

    Version 1 read the tabulated CDFs by nearest entry, version 2
    interpolates (:class:`~skvae.coding._exact.CDFLookup`); nothing else in
    the column models differs between them. Every binned law (``_laws``, also
    inside a table's parts) gets the lookup of its version; 2 changes nothing.
    """
    for model, _, _ in getattr(columns, "parts", ()):
        use_arithmetic(model, arithmetic)
    for law in getattr(columns, "_laws", ()):
        law.cdf = cdf_lookup(law.cdf, arithmetic)
    return columns


def column_model_for(likelihood, n_features, precision, grid=None, missing=None, arithmetic=2):
    """The :class:`ColumnModel` for a fitted likelihood object, or a clear ValueError.

    ``grid`` gives the quantization of real-valued columns (see
    :class:`QuantizedGaussianColumns`) and the stored ranges of integer
    columns, keyed by column index as a string; ``missing`` the missing rates
    of a table's columns (see :class:`MixedColumns`); ``arithmetic`` the
    file's arithmetic version (1: nearest-entry CDF lookups, see
    :func:`use_arithmetic`).
    """
    if arithmetic != 2:
        return use_arithmetic(column_model_for(likelihood, n_features, precision, grid, missing), arithmetic)
    if missing and not isinstance(likelihood, Mixed):
        raise ValueError("only tables (a column schema) can have missing cells")
    for cls in type(likelihood).__mro__:
        if cls in _COLUMN_MODELS:
            if missing:
                return _COLUMN_MODELS[cls](likelihood, n_features, precision, grid, missing=missing)
            return _COLUMN_MODELS[cls](likelihood, n_features, precision, grid)
    supported = sorted(c.name or c.__name__ for c in _COLUMN_MODELS)
    raise ValueError(
        f"BitsBackCoder codes discrete data only; the estimator's likelihood {likelihood!r} is not "
        f"supported (supported: {supported}). Real-valued (Gaussian) columns have no lossless code: "
        f"round them to integers on a grid of your choice and declare them 'integer'."
    )


from . import _mixture_columns  # noqa: E402,F401  registers Gaussian mixtures (n_components > 1)
