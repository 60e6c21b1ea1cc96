"""Entropy models for the bits-back coder, built from skvae's own objects.

Two kinds of symbols are coded:

* the latent vector z, discretized on a fixed uniform grid
  (:class:`LatentGrid`): the prior p(z) = N(0, I) becomes a categorical
  distribution over the grid cells and the posterior q(z|x) a Gaussian
  quantized to the same cells;
* the data columns, coded under p(x|z) through an adapter per likelihood
  (:class:`BernoulliColumns` for 0/1 columns, :class:`CategoricalColumns`,
  :class:`IntegerColumns`, :class:`QuantizedGaussianColumns` for real values
  on a grid, :class:`MixedColumns` for tables). Adapters take the decoder's
  output and turn it into ``constriction`` model parameters by calling the
  fitted likelihood object itself, so the coder and the training objective
  share one observation model.

Every parameter handed to ``constriction`` is computed in float64 and rounded
to a dyadic grid, so that encoder and decoder feed it bit-identical numbers
whenever the network outputs are identical.

New column types plug in by subclassing :class:`ColumnModel` and
registering it with :func:`register_column_model`.
"""

import math

import constriction
import numpy as np
import torch
from scipy.special import ndtr

from ..likelihoods import Bernoulli, Categorical, DiscretizedLogistic, Gaussian, Mixed

__all__ = ["LatentGrid", "ColumnModel", "BernoulliColumns", "column_model_for", "register_column_model"]

_PARAM_BITS = 30  # model parameters are rounded to multiples of 2**-30 (in grid units)


def _round_dyadic(values, bits):
    """Round float64 values to multiples of 2**-bits (exact in float64)."""
    scale = float(2 ** bits)
    return np.rint(values * scale) / scale


class LatentGrid:
    """Uniform discretization of a standard normal latent space.

    Cell ``k`` (an integer in ``[-n_half, n_half]``) is the interval
    ``[(k - 1/2) step, (k + 1/2) step]`` with ``step = 2**-precision``; the two
    end cells also hold the prior's tails beyond ``±clip``. The coder
    evaluates the decoder at the cell centres ``k * step``.

    Parameters
    ----------
    precision : int
        The cell width is ``2**-precision`` prior standard deviations.
    clip : float
        Half-width of the gridded interval, in prior standard deviations.
    """

    def __init__(self, precision, clip):
        self.step = 2.0 ** -precision
        self.n_half = int(math.ceil(clip / self.step))
        edges = (np.arange(-self.n_half, self.n_half + 2, dtype=np.float64) - 0.5) * self.step
        edges[0], edges[-1] = -np.inf, np.inf
        # 2**-40 resolution: far below constriction's 24-bit precision, far above ulp noise.
        self.prior_probs = _round_dyadic(np.diff(ndtr(edges)), 40)

    @property
    def n_cells(self):
        return 2 * self.n_half + 1

    # constriction model objects are not picklable: build them on demand.
    def prior_model(self):
        return constriction.stream.model.Categorical(self.prior_probs, perfect=False)

    def posterior_family(self):
        return constriction.stream.model.QuantizedGaussian(-self.n_half, self.n_half)

    def posterior_params(self, mu, logvar):
        """Mean and standard deviation of q(z|x) in grid units, flattened, float64."""
        mean = mu.detach().double().cpu().numpy().ravel() / self.step
        std = np.exp(0.5 * logvar.detach().double().cpu().numpy().ravel()) / self.step
        mean = np.clip(_round_dyadic(mean, _PARAM_BITS), -self.n_half, self.n_half)
        std = np.clip(_round_dyadic(std, _PARAM_BITS), 2.0 ** -10, 4.0 * self.n_cells)
        return mean, std

    def nearest(self, mean):
        """The cell containing each posterior mean (used where nothing can be popped)."""
        return np.clip(np.rint(mean), -self.n_half, self.n_half).astype(np.int32)

    def values(self, cells, latent_dim):
        """Cell centres as a float32 tensor of shape (n, latent_dim)."""
        z = cells.astype(np.float32).reshape(-1, latent_dim) * np.float32(self.step)
        return torch.from_numpy(z)

    # Prior coding: the categorical's symbols are cells shifted to 0 .. n_cells - 1.
    def push_prior(self, coder, cells, model):
        coder.encode_reverse(cells + np.int32(self.n_half), model)

    def pop_prior(self, coder, count, model):
        return coder.decode(model, count) - np.int32(self.n_half)

    def posterior_entropy_bits(self, mean, std):
        """Entropy (bits) of the discretized posteriors given in grid units, summed."""
        k = np.arange(-self.n_half, self.n_half + 1, dtype=np.float64)
        upper = ndtr((k[None, :] + 0.5 - mean[:, None]) / std[:, None])
        lower = ndtr((k[None, :] - 0.5 - mean[:, None]) / std[:, None])
        mass = np.clip(upper - lower, 0.0, None)
        mass /= mass.sum(axis=1, keepdims=True)
        nz = mass > 0
        return float(-(mass[nz] * np.log2(mass[nz])).sum())


class ColumnModel:
    """Adapter from a likelihood to the entropy model of the data columns.

    Subclasses define ``kind`` (written into the file's column schema) and
    implement :meth:`check`, :meth:`symbols`, :meth:`network_input`,
    :meth:`push`, :meth:`pop` and :meth:`restore`.
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
        raise NotImplementedError

    def symbols(self, X):
        """Integer symbols of a block of rows, shape (n, n_features), int32."""
        raise NotImplementedError

    def network_input(self, symbols):
        """What the encoder network sees for these symbols (float32 tensor)."""
        raise NotImplementedError

    def push(self, coder, symbols, params):
        """Encode the symbols (n, n_features) under p(x | decoder output ``params``)."""
        raise NotImplementedError

    def pop(self, coder, params):
        """Decode (n, n_features) symbols under p(x | decoder output ``params``)."""
        raise NotImplementedError

    def restore(self, symbols, dtype):
        """The symbols as an array of the caller's dtype."""
        return symbols.astype(dtype)


class BernoulliColumns(ColumnModel):
    """0/1 columns coded with constriction's Bernoulli model.

    ``P(x = 1)`` comes from ``likelihood.probs`` evaluated in float64 and is
    rounded to a multiple of ``2**-precision`` inside ``[2**-precision,
    1 - 2**-precision]``.
    """

    kind = "bernoulli"

    def check(self, X, column_names=None):
        self.likelihood.check_support(X, column_names=column_names)

    def symbols(self, X):
        return np.asarray(X).astype(np.int32, copy=False)

    def network_input(self, symbols):
        return torch.from_numpy(symbols.astype(np.float32))

    def _probs(self, params):
        scale = float(2 ** self.precision)
        p = self.likelihood.probs(params.double())
        # in place on the float64 tensor: round to the dyadic grid, keep both outcomes codable
        return p.mul_(scale).round_().clamp_(1.0, scale - 1.0).div_(scale).numpy().ravel()

    def push(self, coder, symbols, params):
        coder.encode_reverse(symbols.ravel(), constriction.stream.model.Bernoulli(perfect=False),
                             self._probs(params))

    def pop(self, coder, params):
        flat = coder.decode(constriction.stream.model.Bernoulli(perfect=False), self._probs(params))
        return flat.reshape(-1, self.n_features)


class _TableColumns(ColumnModel):
    """Columns coded with constriction's Categorical model and a probability table per symbol.

    Subclasses give :meth:`_tables`, the probabilities of every symbol
    ``0 .. K_j - 1`` of every column as an ``(n, n_features, max K)`` float64
    tensor (zero padded), and :attr:`_offsets` mapping symbols to values.
    Probabilities are rounded to multiples of ``2**-precision``; constriction's
    non-perfect mode keeps every symbol codable.
    """

    _offsets = 0.0

    def _sizes(self):
        raise NotImplementedError

    def _tables(self, params):
        raise NotImplementedError

    def check(self, X, column_names=None):
        self.likelihood.check_support(X, column_names=column_names)

    def symbols(self, X):
        return (np.asarray(X, dtype=np.float64) - self._offsets).astype(np.int32)

    def restore(self, symbols, dtype):
        return (symbols + self._offsets).astype(dtype)

    def network_input(self, symbols):
        return torch.from_numpy(self.restore(symbols, np.float32))

    def _column_tables(self, params):
        scale = float(2 ** self.precision)
        tables = self._tables(params.double()).mul_(scale).round_().div_(scale).numpy()
        return [np.ascontiguousarray(tables[:, j, :k]) for j, k in enumerate(self._sizes())]

    def push(self, coder, symbols, params):
        family = constriction.stream.model.Categorical(perfect=False)
        for j, table in reversed(list(enumerate(self._column_tables(params)))):
            coder.encode_reverse(np.ascontiguousarray(symbols[:, j]), family, table)

    def pop(self, coder, params):
        family = constriction.stream.model.Categorical(perfect=False)
        return np.stack([coder.decode(family, table) for table in self._column_tables(params)], axis=1)


class CategoricalColumns(_TableColumns):
    """Categorical columns: the symbols are the category codes."""

    kind = "categorical"

    def _sizes(self):
        return self.likelihood.n_categories

    def _tables(self, params):
        return self.likelihood.probs(params)

    def schema(self):
        return [{"kind": self.kind, "count": self.n_features, "categories": list(self._sizes())}]


class IntegerColumns(_TableColumns):
    """Integer columns under the discretized logistic: symbol = value - low."""

    kind = "integer"
    max_values = 1 << 14  # a probability table per symbol: keep it bounded

    def __init__(self, likelihood, n_features, precision, grid=None):
        super().__init__(likelihood, n_features, precision)
        sizes = (likelihood.high - likelihood.low + 1).astype(np.int64)
        if sizes.max(initial=0) > self.max_values:
            raise ValueError(f"integer columns with more than {self.max_values} values cannot be coded; "
                             f"a column spans {int(sizes.max())}")
        self._offsets = likelihood.low

    def _sizes(self):
        return (self.likelihood.high - self.likelihood.low + 1).astype(np.int64)

    def _tables(self, params):
        k = torch.arange(int(self._sizes().max()), dtype=params.dtype)
        low = torch.as_tensor(self.likelihood.low, dtype=params.dtype)
        high = torch.as_tensor(self.likelihood.high, dtype=params.dtype)
        values = torch.minimum(low + k[:, None], high)[:, None, :]  # (max K, 1, n_features)
        table = self.likelihood.log_prob_per_feature(params, values).exp().permute(1, 2, 0)
        return table.masked_fill(low[:, None] + k[None, :] > high[:, None], 0.0)

    def schema(self):
        return [{"kind": self.kind, "count": self.n_features, "low": self.likelihood.low.tolist(),
                 "high": self.likelihood.high.tolist()}]


class MixedColumns(ColumnModel):
    """Per-part column models of a :class:`~skvae.likelihoods.Mixed` likelihood."""

    kind = "mixed"

    def __init__(self, likelihood, n_features, precision, grid=None):
        super().__init__(likelihood, n_features, precision)
        self.parts = []
        for (part, cols), sl in zip(likelihood.parts, likelihood._param_slices):
            part_grid = None if grid is None else {str(i): grid[str(c)] for i, c in enumerate(cols)
                                                   if str(c) in grid}
            if part.name == "gaussian" and not part_grid:
                raise ValueError(f"columns {list(cols)} are real-valued (Gaussian) and have no lossless code: "
                                 f"give BitsBackCoder(quantization=step) for data on a grid")
            self.parts.append((column_model_for(part, len(cols), precision, part_grid), np.asarray(cols), sl))

    def schema(self):
        return [{**entry, "columns": cols.tolist()} for model, cols, _ in self.parts for entry in model.schema()]

    def check(self, X, column_names=None):
        X = np.asarray(X)
        for model, cols, _ in self.parts:
            model.check(X[:, cols], column_names=None if column_names is None else [column_names[c] for c in cols])

    def symbols(self, X):
        X = np.asarray(X)
        out = np.empty(X.shape, dtype=np.int32)
        for model, cols, _ in self.parts:
            out[:, cols] = model.symbols(X[:, cols])
        return out

    def restore(self, symbols, dtype):
        out = np.empty(symbols.shape, dtype=dtype)
        for model, cols, _ in self.parts:
            out[:, cols] = model.restore(symbols[:, cols], dtype)
        return out

    def network_input(self, symbols):
        return torch.from_numpy(self.restore(symbols, np.float32))

    def push(self, coder, symbols, params):
        for model, cols, sl in self.parts:
            model.push(coder, np.ascontiguousarray(symbols[:, cols]), params[..., sl])

    def pop(self, coder, params):
        out = np.empty((params.shape[0], self.n_features), dtype=np.int32)
        for model, cols, sl in reversed(self.parts):  # a stack: last pushed, first popped
            out[:, cols] = model.pop(coder, params[..., sl])
        return out


class QuantizedGaussianColumns(ColumnModel):
    """Real-valued columns whose values lie on a grid ``k * step``, coded as integers k.

    ``grid`` maps each column (``'0'``, ``'1'``, ... in this model's order) to
    ``[step, k_min, k_max]``; the coder measures ``k_min``/``k_max`` on the
    array it encodes and stores them in the file. The model of k is the
    decoder's Gaussian binned at the grid (constriction's QuantizedGaussian on
    ``[k_min, k_max]``, tails folded into the end bins). Lossless only for data
    on the grid, which :meth:`check` verifies value by value.
    """

    kind = "gaussian"

    def __init__(self, likelihood, n_features, precision, grid=None):
        super().__init__(likelihood, n_features, precision)
        if not grid or len(grid) != n_features:
            raise ValueError("real-valued (Gaussian) columns have no lossless code: give "
                             "BitsBackCoder(quantization=step) for data on a grid")
        entries = [grid[str(j)] for j in range(n_features)]
        self.grid = {str(j): [float(a), int(b), int(c)] for j, (a, b, c) in enumerate(entries)}
        self.steps = np.array([e[0] for e in entries], dtype=np.float64)
        self.k_min = np.array([e[1] for e in entries], dtype=np.int64)
        self.k_max = np.array([e[2] for e in entries], dtype=np.int64)
        if not (np.isfinite(self.steps).all() and (self.steps > 0).all() and (self.k_max >= self.k_min).all()):
            raise ValueError(f"bad quantization grid {grid!r}")

    def schema(self):
        return [{"kind": self.kind, "count": self.n_features, "grid": [self.grid[str(j)]
                                                                       for j in range(self.n_features)]}]

    def _values(self, k):
        """k * step, computed as k / (1 / step) when that is an integer, so decimal grids are exact."""
        inverse = np.round(1.0 / self.steps)
        exact_inverse = np.abs(inverse * self.steps - 1.0) < 1e-12
        return np.where(exact_inverse, k / np.where(exact_inverse, inverse, 1.0), k * self.steps)

    def check(self, X, column_names=None):
        X = np.asarray(X, dtype=np.float64)
        k = np.rint(X / self.steps)
        off = (self._values(k) != X) | (k < self.k_min) | (k > self.k_max)
        if off.any():
            i, j = np.argwhere(off)[0]
            name = column_names[j] if column_names is not None else j
            raise ValueError(f"column {name!r} holds {float(X[i, j])!r}, which is not on the quantization grid "
                             f"of step {float(self.steps[j])!r}: quantized coding is lossless only for data on "
                             f"the grid")

    def symbols(self, X):
        return (np.rint(np.asarray(X, dtype=np.float64) / self.steps) - self.k_min).astype(np.int32)

    def restore(self, symbols, dtype):
        return self._values(symbols + self.k_min).astype(dtype)

    def network_input(self, symbols):
        return torch.from_numpy(self.restore(symbols, np.float32))

    def _families_and_params(self, params):
        loc, log_scale = self.likelihood._split(params.double())
        scale = float(2 ** _PARAM_BITS)
        means = (loc.numpy() / self.steps - self.k_min)
        stds = np.exp(log_scale.numpy()) / self.steps
        means = np.rint(means * scale) / scale
        stds = np.clip(np.rint(stds * scale) / scale, 2.0 ** -10, None)
        for j in range(self.n_features):
            family = constriction.stream.model.QuantizedGaussian(0, int(self.k_max[j] - self.k_min[j]))
            yield family, np.ascontiguousarray(means[:, j]), np.ascontiguousarray(stds[:, j])

    def push(self, coder, symbols, params):
        for j, (family, mean, std) in reversed(list(enumerate(self._families_and_params(params)))):
            coder.encode_reverse(np.ascontiguousarray(symbols[:, j]), family, mean, std)

    def pop(self, coder, params):
        return np.stack([coder.decode(family, mean, std) for family, mean, std in self._families_and_params(params)],
                        axis=1)


_COLUMN_MODELS = {Bernoulli: BernoulliColumns, Categorical: CategoricalColumns,
                  DiscretizedLogistic: IntegerColumns, Mixed: MixedColumns, Gaussian: QuantizedGaussianColumns}


def register_column_model(likelihood_class, column_model_class):
    """Let the coder handle a new likelihood class (extension point)."""
    _COLUMN_MODELS[likelihood_class] = column_model_class


def column_model_for(likelihood, n_features, precision, grid=None):
    """The :class:`ColumnModel` for a fitted likelihood object, or a clear ValueError.

    ``grid`` gives the quantization of real-valued columns (see
    :class:`QuantizedGaussianColumns`), keyed by column index as a string.
    """
    for cls in type(likelihood).__mro__:
        if cls in _COLUMN_MODELS:
            return _COLUMN_MODELS[cls](likelihood, n_features, precision, grid)
    supported = sorted(c.name or c.__name__ for c in _COLUMN_MODELS)
    raise ValueError(
        f"BitsBackCoder codes discrete data only; the estimator's likelihood {likelihood!r} is not "
        f"supported (supported: {supported}). Real-valued (Gaussian) columns have no lossless code: "
        f"round them to integers on a grid of your choice and declare them 'integer'."
    )
