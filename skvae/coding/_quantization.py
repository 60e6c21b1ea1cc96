"""The grids on which real-valued columns are coded, and the ranges of integer columns.

A real value has a lossless code only on a grid ``k * step``. The coder's
``quantization`` names the step of each real-valued column, or ``'auto'``:
the coarsest decimal step ``10**-d`` (``d = 0 .. MAX_DECIMALS``) on which
every value of the encoded column lies exactly, which is the precision the
values were written with in a CSV file or rounded to with ``np.round``. The
grid actually used (step and range of k) is measured on the encoded array and
stored in each file, so decoding never needs the quantization setting.

Integer columns have probability on every integer; a file whose values leave
the range seen in fit stores the widened range of those columns
(:func:`measure_integer_ranges`), and the coder codes them on it.
"""

import numbers

import numpy as np

from .._validation import _check_real

__all__ = ["MAX_DECIMALS", "MAX_STEPS", "MAX_INTEGER_VALUES", "check_quantization", "decimal_values",
           "measure_grid", "measure_integer_ranges", "shortest_decimals"]

MAX_DECIMALS = 12
MAX_STEPS = 1 << 31  # the widest k range a quantized column may span
MAX_INTEGER_VALUES = 1 << 20  # the widest range an integer column may span in one file


def check_quantization(quantization):
    """Raise TypeError/ValueError unless ``quantization`` is a valid setting."""
    if quantization is None:
        return
    steps = quantization.values() if isinstance(quantization, dict) else [quantization]
    for step in steps:
        if isinstance(step, str):
            if step != "auto":
                raise ValueError(f"quantization must be 'auto', a positive step or a dict of them, got {step!r}")
        elif isinstance(step, numbers.Real) and not isinstance(step, bool):
            _check_real(step, "quantization step", low=0.0, low_open=True)
        else:
            raise TypeError(f"quantization must be 'auto', a positive step or a dict of them, got {step!r}")


def decimal_values(k, step):
    """``k * step``, computed as ``k / (1 / step)`` when that is an integer, so decimal grids are exact."""
    inverse = np.round(1.0 / step)
    exact_inverse = np.abs(inverse * step - 1.0) < 1e-12
    return np.where(exact_inverse, k / np.where(exact_inverse, inverse, 1.0), k * step)



def shortest_decimals(values):
    """float64 of each value's shortest decimal that rounds back to it in the values' own (narrow) dtype.

    A float32 0.1 is 0.100000001490116... in float64, on no decimal grid; the
    decimal 0.1 rounds back to it, so a table's float32 column is coded as
    those decimals and restored bit for bit by the cast to float32 that
    decoding applies. Nine significant digits always suffice for float32,
    so every finite value finds one; NaN stays NaN.
    """
    narrow = np.asarray(values)
    wide = narrow.astype(np.float64)
    out = wide.copy()
    done = ~np.isfinite(wide) | (wide == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.abs(np.where(done, 1.0, wide)))).astype(np.int64)
    for digits in range(1, np.finfo(narrow.dtype).precision + 4):
        shift = digits - 1 - exponent  # decimals after the point at this many significant digits
        scale = 10.0 ** np.abs(shift)
        with np.errstate(over="ignore", invalid="ignore"):
            candidate = np.where(shift >= 0, np.rint(wide * scale) / scale, np.rint(wide / scale) * scale)
        hit = ~done & (candidate.astype(narrow.dtype) == narrow)
        out[hit] = candidate[hit]
        done |= hit
        if done.all():
            break
    return out

def _on_grid(values, step):
    """k of every value and whether each value is exactly ``k * step`` in its own dtype."""
    with np.errstate(over="ignore", invalid="ignore"):
        k = np.rint(np.asarray(values, dtype=np.float64) / step)
        exact = (np.abs(k) < 2.0 ** 53) & (decimal_values(k, step).astype(values.dtype) == values)
    return k, exact


def _decimal_step(values, name):
    """The coarsest step ``10**-d`` on which every value lies, or a ValueError naming a value off them all."""
    for d in range(MAX_DECIMALS + 1):
        step = 10.0 ** -d
        k, exact = _on_grid(values, step)
        if exact.all():
            return step
        if len(k) and k.max() - k.min() >= MAX_STEPS:
            break  # finer steps only widen the range
    value = values[~exact][0]
    raise ValueError(f"column {name!r} holds {value.item()!r}, which lies on no decimal grid of step 1 to "
                     f"1e-{MAX_DECIMALS} with fewer than 2**31 steps across the column, so quantization='auto' "
                     f"cannot code it losslessly: round the column (e.g. np.round(x, 6)) or give "
                     f"quantization=step for values of the form k * step")


def measure_grid(X, columns, names, quantization):
    """``{str(j): [step, k_min, k_max]}`` for the real-valued ``columns`` of X, or None.

    ``names`` are the column names used in messages and as dict keys; a dict
    ``quantization`` may also be keyed by column index.
    """
    if not columns or quantization is None:
        return None
    check_quantization(quantization)
    if isinstance(quantization, dict):
        real = {names[j] for j in columns} | set(columns)
        unknown = [key for key in quantization if key not in real]
        if unknown:
            raise ValueError(f"quantization names {unknown[0]!r}, which is not a real-valued column; its keys "
                             f"are column names or indices, here {[names[j] for j in columns]} (or give one "
                             f"setting for every real column, e.g. quantization='auto' or 0.01)")
    grid = {}
    for j in columns:
        step = quantization.get(names[j], quantization.get(j)) if isinstance(quantization, dict) else quantization
        if step is None:
            raise ValueError(f"quantization gives no step for the real-valued column {names[j]!r} "
                             f"(a step, or 'auto' for the coarsest decimal grid of its values)")
        values = np.asarray(X[:, j])
        if values.dtype.kind != "f":
            values = values.astype(np.float64)
        values = values[~np.isnan(values)]  # missing cells are not coded
        if step == "auto":
            step = _decimal_step(values, names[j])
        k, exact = _on_grid(values, step)
        far = ~(np.abs(k) < 2.0 ** 53)
        if far.any():
            raise ValueError(f"column {names[j]!r} holds {float(values[far][0])!r}, too many quantization "
                             f"steps of {float(step)!r} from 0 to code")
        grid[str(j)] = [float(step), int(k.min(initial=0)), int(k.max(initial=0))]
    return grid


def measure_integer_ranges(X, integer_columns, names):
    """``{str(j): [low, high]}`` of the integer columns whose values in X leave the range seen in fit, or None.

    ``integer_columns`` maps column index to its ``(low, high)`` seen in fit;
    the stored range is the union of that range and X's values, so rows in
    the fit range are coded as before.
    """
    ranges = {}
    for j, (low, high) in integer_columns.items():
        values = np.asarray(X[:, j], dtype=np.float64)
        values = values[~np.isnan(values)]  # missing cells are not coded
        if not len(values):
            continue
        lo, hi = min(float(low), float(values.min())), max(float(high), float(values.max()))
        if hi - lo + 1 > MAX_INTEGER_VALUES:
            raise ValueError(f"column {names[j]!r} spans {lo:g}..{hi:g} in this array, more than the "
                             f"{MAX_INTEGER_VALUES} integers the coder codes in one column")
        if lo < low or hi > high:
            ranges[str(j)] = [int(lo), int(hi)]
    return ranges or None
