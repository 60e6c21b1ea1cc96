"""The DataFrame index a file keeps, so that a decoded table has the rows' labels back.

A default index (0 .. n-1) costs nothing; a RangeIndex is two numbers; other
indexes of int or str labels are stored in the header as a JSON list (up to
``MAX_INDEX_BYTES``). Anything else (dates, tuples, a MultiIndex) is refused
with a message that says how to keep or drop it.
"""

import json
import numbers

import numpy as np

__all__ = ["MAX_INDEX_BYTES", "index_to_json", "index_from_json"]

MAX_INDEX_BYTES = 512 << 10


def _refuse(index, why):
    raise ValueError(f"the DataFrame's index ({type(index).__name__} of dtype {index.dtype}) cannot be stored in "
                     f"the file: {why}. Keep it yourself and pass X.reset_index(drop=True), or "
                     f"X.reset_index() to code it as a column")


def _label(value):
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return None


def index_to_json(index):
    """A JSON-ready description of a DataFrame index, or None for the default 0 .. n-1."""
    import pandas as pd

    name = _label(index.name)
    if index.name is not None and name is None:
        _refuse(index, f"its name {index.name!r} is not a str or int")
    if isinstance(index, pd.RangeIndex):
        if index.start == 0 and index.step == 1 and index.name is None:
            return None
        return {"range": [int(index.start), int(index.step)], "name": name}
    if isinstance(index, pd.MultiIndex):
        _refuse(index, "a MultiIndex is not supported")
    labels = [_label(v) for v in index.tolist()]
    kinds = {type(v) for v in labels}
    if not (kinds <= {int} or kinds <= {str}) or not labels:
        _refuse(index, "only int or str labels are stored")
    spec = {"labels": labels, "dtype": str(index.dtype), "name": name}
    if len(json.dumps(spec)) > MAX_INDEX_BYTES:
        _refuse(index, f"its labels take more than {MAX_INDEX_BYTES} bytes")
    return spec


def index_from_json(spec, n_rows):
    """The index described by :func:`index_to_json` for ``n_rows`` rows; ValueError if it is malformed."""
    import pandas as pd

    if spec is None:
        return pd.RangeIndex(n_rows)
    try:
        if "range" in spec:
            start, step = (int(v) for v in spec["range"])
            if step == 0:
                raise ValueError("step 0")
            return pd.RangeIndex(start, start + step * n_rows, step, name=spec["name"])
        labels = spec["labels"]
        if len(labels) != n_rows:
            raise ValueError(f"{len(labels)} labels for {n_rows} rows")
        return pd.Index(np.asarray(labels, dtype=object), dtype=spec["dtype"], name=spec["name"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"corrupted bits-back file: bad DataFrame index ({exc})") from None
