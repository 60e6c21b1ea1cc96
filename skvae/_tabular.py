"""Column schemas: how a mixed-type table maps to numeric codes and back.

With ``likelihood='auto'`` or a per-column specification, the estimator
turns each column into numbers the network can use (0/1 flags, category
codes, integers, reals), picks the observation model of each column, and
turns model samples back into the original column types.
"""

import numbers

import numpy as np

from .likelihoods import (MAX_GAUSSIAN_COMPONENTS, Bernoulli, Categorical, DiscretizedLogistic, Gaussian, Mixed,
                          gaussian_components)

KINDS = ("bernoulli", "categorical", "integer", "gaussian")  # 'gaussian:K' in a dict spec: gaussian, K components


class Column:
    """What the schema knows about one column."""

    n_components = 1  # Gaussians of a 'gaussian' column (class default: schemas pickled before it existed)

    def __init__(self, name, kind, dtype=None, categories=None, low=None, high=None, n_components=1):
        self.name, self.kind, self.dtype = name, kind, dtype
        self.categories, self.low, self.high = categories, low, high
        self.n_components = int(n_components)


def _is_frame(X):
    return hasattr(X, "columns") and hasattr(X, "iloc")


def _columns_of(X):
    """(name, 1-D values, pandas dtype or None) of each column."""
    if _is_frame(X):
        columns = [(name, X[name].to_numpy(), X[name].dtype) for name in X.columns]
    else:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array, got shape {X.shape}")
        columns = [(j, X[:, j], None) for j in range(X.shape[1])]
    for name, values, _ in columns:
        if values.dtype == object:
            _check_scalars(values, name)
    return columns


def _check_scalars(values, name):
    import pandas as pd

    for value in values:
        if not (isinstance(value, (str, bytes, numbers.Number, np.generic)) or value is None or value is pd.NA):
            raise TypeError(f"column {name!r} holds {value!r} of type {type(value).__name__}; each argument must "
                            f"be a string or a number (or a bool, or missing)")


def _numeric(values, name):
    """A column's values as float64, missing entries (NaN, None, pandas NA) as NaN; infinity is refused."""
    import pandas as pd

    if values.dtype == object:
        missing = pd.isna(values)
        if missing.any():
            values = np.where(missing, np.nan, values)
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"column {name!r} is not numeric; declare it categorical") from None
    if np.isinf(values).any():
        raise ValueError(f"column {name!r} contains infinity")
    return values


def is_binary_array(X):
    """Whether ``likelihood='auto'`` takes the plain Bernoulli path for X.

    True for a numeric array or sparse matrix (not a DataFrame, whose column
    types the schema path keeps) whose every value is 0 or 1.
    """
    if _is_frame(X):
        return False
    if hasattr(X, "tocoo"):  # scipy sparse, any format
        values = X.tocoo().data
    else:
        try:
            values = np.asarray(X)
        except (TypeError, ValueError):
            return False
    if values.dtype.kind == "b":
        return True
    if values.dtype.kind not in "iuf":
        return False
    flat = values.reshape(-1)
    step = 1 << 22  # bounded temporaries on large arrays
    return all(bool(((part == 0) | (part == 1)).all()) for part in (flat[i:i + step]
                                                                    for i in range(0, len(flat), step)))


def _value_kind(values, dtype):
    """'bool', 'integer', 'float' or 'other' for a column's storage type.

    Arrays and DataFrames follow the same rule: the dtype decides, and an
    object column is judged by the values it holds.
    """
    import pandas as pd

    if dtype is None:
        dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype) and \
            not pd.api.types.is_object_dtype(dtype):
        return "other"
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(values, skipna=True)  # missing entries do not decide
        return {"boolean": "bool", "integer": "integer", "floating": "float",
                "mixed-integer-float": "float", "decimal": "float"}.get(inferred, "other")
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return "other"


def _infer_kind(name, values, dtype):
    """The 'auto' rule: bool and 0/1 columns Bernoulli, other integer-typed columns integer, other float
    columns Gaussian, anything else (categories, strings, mixed objects) categorical."""
    storage = _value_kind(values, dtype)
    if storage == "other":
        return "categorical"
    if storage == "bool":
        return "bernoulli"
    numeric = _numeric(values, name)
    if np.isin(numeric[~np.isnan(numeric)], (0.0, 1.0)).all():
        return "bernoulli"
    return "integer" if storage == "integer" else "gaussian"


class TableSchema:
    """Column kinds, categories and ranges learned from a training table.

    Parameters
    ----------
    columns : list of Column
    from_frame : bool
        Whether the training data was a pandas DataFrame (samples are then
        returned as one, with the original dtypes and categories).
    missing_in_fit : bool, default=False
        Whether the training table had missing cells (the encoder then also
        sees which cells are missing).
    array_dtype : numpy dtype or None, default=None
        The dtype of a numeric training array, which decoded rows get back.
    """

    def __init__(self, columns, from_frame, missing_in_fit=False, array_dtype=None):
        self.columns = columns
        self.from_frame = from_frame
        self.missing_in_fit = missing_in_fit
        self.array_dtype = array_dtype

    @classmethod
    def infer(cls, X, spec="auto"):
        """Learn a schema from training data.

        ``spec`` is ``'auto'`` or a dict from kind (``'bernoulli'``,
        ``'categorical'``, ``'integer'``, ``'gaussian'``, or ``'gaussian:K'``
        for a mixture of K Gaussians per column) to column names or
        indices; columns it does not list are inferred by one rule for
        arrays and DataFrames alike: bool and 0/1 columns are Bernoulli,
        other columns of an integer dtype integer, other float columns
        Gaussian, and category, string or mixed columns categorical (an
        object column counts as the type of the values it holds). A
        ``'gaussian'`` column, declared or inferred, has
        :data:`~skvae.likelihoods.GAUSSIAN_COMPONENTS` components.
        """
        from_frame = _is_frame(X)
        raw = _columns_of(X)
        names = [name for name, _, _ in raw]
        declared, components = {}, {}
        if isinstance(spec, dict):
            for kind, cols in spec.items():
                k = gaussian_components(kind)
                if k is not None:
                    kind = "gaussian"
                elif kind not in KINDS:
                    raise ValueError(f"unknown likelihood {kind!r} in the column specification; use "
                                     f"{KINDS + ('gaussian:K',)}")
                for col in ([cols] if isinstance(cols, (str, numbers.Integral)) else cols):
                    name = names[col] if (from_frame and isinstance(col, numbers.Integral)
                                          and col not in names) else col
                    if name not in names:
                        raise ValueError(f"the column specification names {col!r}, which is not a column")
                    declared[name] = kind
                    if k is not None:
                        components[name] = k
        elif spec != "auto":
            raise ValueError(f"spec must be 'auto' or a dict, got {spec!r}")
        columns = []
        for name, values, dtype in raw:
            kind = declared.get(name) or _infer_kind(name, values, dtype)
            column = cls._learn_column(name, kind, values, dtype)
            if kind == "gaussian":
                column.n_components = components.get(name, gaussian_components("gaussian"))
            columns.append(column)
        import pandas as pd

        missing = any(bool(pd.isna(values).any()) for _, values, _ in raw)
        array_dtype = None
        if not from_frame and isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
            array_dtype = X.dtype
        return cls(columns, from_frame, missing_in_fit=missing, array_dtype=array_dtype)

    @staticmethod
    def _learn_column(name, kind, values, dtype):
        import pandas as pd

        if kind == "categorical":
            if isinstance(dtype, pd.CategoricalDtype):
                categories = np.asarray(dtype.categories)
            else:
                present = pd.Series(values).dropna()
                if not len(present) and len(values):
                    raise ValueError(f"column {name!r} has no observed value (every entry is missing)")
                categories = np.asarray(sorted(present.unique(), key=lambda v: (str(type(v)), v)), dtype=object)
            return Column(name, kind, dtype, categories=categories)
        numeric = _numeric(values, name)
        if np.isnan(numeric).all() and len(numeric):
            raise ValueError(f"column {name!r} has no observed value (every entry is missing)")
        if kind == "integer":
            observed = numeric[~np.isnan(numeric)]
            if not np.array_equal(observed, np.round(observed)):
                raise ValueError(f"column {name!r} is declared integer but holds non-integer values")
            return Column(name, kind, dtype, low=observed.min(), high=observed.max())
        return Column(name, kind, dtype)

    @property
    def spec(self):
        """Dict from kind to the list of column names (or indices) of that kind.

        Gaussian columns with the default number of components
        (:data:`~skvae.likelihoods.GAUSSIAN_COMPONENTS`) are listed under
        ``'gaussian'``, others with K components under ``'gaussian:K'``, so
        the dict, given as ``likelihood``, reproduces the schema.
        """
        out = {}
        for col in self.columns:
            out.setdefault(_kind_name(col), []).append(col.name)
        return out

    def likelihood(self):
        """The per-column observation model as one :class:`~skvae.likelihoods.Mixed`."""
        parts = []
        groups = [(kind, None) for kind in KINDS if kind != "gaussian"]  # the gaussian kind is last in KINDS
        groups += [("gaussian", k) for k in sorted({c.n_components for c in self.columns if c.kind == "gaussian"})]
        for kind, n_components in groups:  # KINDS' order; Gaussian columns grouped by their component count
            idx = [j for j, col in enumerate(self.columns) if col.kind == kind
                   and (n_components is None or col.n_components == n_components)]
            if not idx:
                continue
            cols = [self.columns[j] for j in idx]
            if kind == "bernoulli":
                model = Bernoulli()
            elif kind == "gaussian":
                model = Gaussian() if n_components == 1 else Gaussian(n_components=n_components)
            elif kind == "categorical":
                model = Categorical([len(c.categories) for c in cols])
            else:
                model = DiscretizedLogistic([c.low for c in cols], [c.high for c in cols])
            parts.append((model, idx))
        return Mixed(parts, missing_mask=self.missing_in_fit)

    def encode(self, X):
        """Numeric codes of a table with this schema, float64 of shape (n, n_columns); missing cells NaN.

        Raises ``ValueError`` naming the column and value for unseen
        categories; supports are checked by the likelihood.
        """
        import pandas as pd

        raw = _columns_of(X)
        if len(raw) != len(self.columns):
            raise ValueError(f"X has {len(raw)} columns, the schema has {len(self.columns)}")
        out = np.empty((len(raw[0][1]) if raw else 0, len(raw)), dtype=np.float64)
        for j, (col, (_, values, _)) in enumerate(zip(self.columns, raw)):
            if col.kind == "categorical":
                codes = pd.Index(col.categories).get_indexer(values).astype(np.float64)
                missing = pd.isna(values)
                unseen = (codes < 0) & ~missing
                if unseen.any():
                    raise ValueError(f"column {col.name!r} holds the unseen category "
                                     f"{values[np.flatnonzero(unseen)[0]]!r}; categories seen in fit: "
                                     f"{list(col.categories)}")
                codes[missing] = np.nan
                out[:, j] = codes
            else:
                out[:, j] = _numeric(values, col.name)
        return out

    def decode(self, A, cast=True):
        """Turn codes back into the original column types (a DataFrame if fitted on one).

        With ``cast=False`` numeric columns stay float (for means, which are
        not values of an integer or boolean column); categories are decoded
        either way.
        """
        import pandas as pd

        A = np.asarray(A, dtype=np.float64)
        decoded = {}
        for j, col in enumerate(self.columns):
            values = A[:, j]
            if col.kind == "categorical":
                missing = np.isnan(values)  # a missing cell (decoded by the coder)
                codes = np.where(missing, 0, values).astype(np.int64)
                if isinstance(col.dtype, pd.CategoricalDtype):
                    values = pd.Categorical.from_codes(np.where(missing, -1, codes), dtype=col.dtype)
                else:
                    values = np.where(missing, None, col.categories[codes])
            elif cast and col.dtype is not None:
                values = _cast(values, col.dtype)
            decoded[col.name] = values
        if self.from_frame:
            return pd.DataFrame(decoded, columns=[c.name for c in self.columns])
        if any(c.kind == "categorical" for c in self.columns):
            return np.column_stack([np.asarray(v, dtype=object) for v in decoded.values()])
        if cast and self.array_dtype is not None:
            return _cast(A, self.array_dtype)  # integer samples clipped to the dtype's range
        return A

    def column_names(self):
        return [c.name for c in self.columns]

    def to_json(self):
        """A JSON-ready description (for pickle-free model files); ValueError if a name or category is not
        a str, int, float or bool."""
        spec = {"from_frame": bool(self.from_frame)}
        if self.array_dtype is not None:
            spec["array_dtype"] = self.array_dtype.str
        if self.missing_in_fit:
            spec["missing_in_fit"] = True
        return {**spec,
                "columns": [{"name": _json_scalar(c.name, "column name"), "kind": c.kind,
                             "dtype": _dtype_to_json(c.dtype),
                             "categories": None if c.categories is None else
                             [_json_scalar(v, f"category of column {c.name!r}") for v in c.categories],
                             "low": None if c.low is None else float(c.low),
                             "high": None if c.high is None else float(c.high),
                             # written only for mixtures: one-component schemas keep their bytes
                             **({"n_components": c.n_components} if c.n_components != 1 else {})}
                            for c in self.columns]}

    @classmethod
    def from_json(cls, spec):
        """Inverse of :meth:`to_json`; ValueError for a malformed description."""
        try:
            columns = []
            for c in spec["columns"]:
                if c["kind"] not in KINDS:
                    raise ValueError(f"unknown column kind {c['kind']!r}")
                categories = None if c["categories"] is None else np.asarray(c["categories"], dtype=object)
                n_components = c.get("n_components", 1)
                if isinstance(n_components, bool) or not isinstance(n_components, int) or \
                        not 1 <= n_components <= MAX_GAUSSIAN_COMPONENTS or (c["kind"] != "gaussian"
                                                                            and n_components != 1):
                    raise ValueError(f"bad n_components {n_components!r} of a {c['kind']} column")
                columns.append(Column(c["name"], c["kind"], _dtype_from_json(c["dtype"]), categories=categories,
                                      low=c["low"], high=c["high"], n_components=n_components))
            array_dtype = spec.get("array_dtype")
            if array_dtype is not None:
                array_dtype = np.dtype(array_dtype)
                if array_dtype.kind not in "biuf":
                    raise ValueError(f"bad array dtype {array_dtype}")
            return cls(columns, bool(spec["from_frame"]), missing_in_fit=bool(spec.get("missing_in_fit", False)),
                       array_dtype=array_dtype)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad column schema: {exc!r}") from None


def _kind_name(column):
    """'gaussian:K' for a Gaussian column of a K other than the default, else the column's kind."""
    if column.kind == "gaussian" and column.n_components != gaussian_components("gaussian"):
        return f"gaussian:{column.n_components}"
    return column.kind


def _json_scalar(value, what):
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalars
    if isinstance(value, (str, bool, int, float)):
        return value
    raise ValueError(f"a {what} ({value!r}) is not a str, int, float or bool and cannot be saved")


def _dtype_to_json(dtype):
    if dtype is None:
        return None
    import pandas as pd

    if isinstance(dtype, pd.CategoricalDtype):
        return {"categories": [_json_scalar(v, "category") for v in dtype.categories],
                "ordered": bool(dtype.ordered)}
    return str(dtype)


def _dtype_from_json(spec):
    if spec is None:
        return None
    import pandas as pd

    try:
        if isinstance(spec, dict):
            return pd.CategoricalDtype(spec["categories"], ordered=bool(spec["ordered"]))
        return pd.api.types.pandas_dtype(spec)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"bad column dtype {spec!r}: {exc}") from None


def _cast(values, dtype):
    """Model values (float64) as a column of ``dtype``, numpy or pandas extension (Int64, boolean, Float64).

    Samples beyond an integer dtype's range are clipped to it, not wrapped.
    """
    import pandas as pd

    missing = np.isnan(values)
    if missing.any() and isinstance(dtype, np.dtype):
        # a numpy bool or integer column cannot hold a missing cell: pandas' own upcasts
        if dtype.kind == "b":
            return np.where(missing, None, values.astype(bool)).astype(object)
        if dtype.kind in "iu":
            return values
    if pd.api.types.is_bool_dtype(dtype):
        if missing.any():  # pandas' nullable boolean
            return pd.array(np.where(missing, None, values.astype(bool)).astype(object), dtype=dtype)
        values = values.astype(bool)
    elif pd.api.types.is_integer_dtype(dtype):
        info = np.iinfo(dtype.numpy_dtype if hasattr(dtype, "numpy_dtype") else dtype)
        values = np.clip(values, info.min, min(info.max, 2.0 ** 63 - 1024))
        if not missing.any():
            values = values.astype(info.dtype)  # else pd.array turns NaN into NA
    if isinstance(dtype, np.dtype):
        return values.astype(dtype)
    return pd.array(values, dtype=dtype)
