"""Platform-independent arithmetic for the bits-back coder.

Everything the coder hands to the entropy coder must come out bit for bit the
same on every machine. IEEE 754 prescribes the correctly rounded result of
``+ - * /``, comparisons, ``floor``/``rint`` and scaling by powers of two,
so numpy's element-wise versions of these agree on every platform and with
every SIMD kernel. It prescribes nothing for ``exp``, ``log``, ``erf`` and the
like (libm, numpy's SIMD kernels and scipy differ in the last bit), nor for
the order of a floating-point sum (BLAS and numpy's reductions choose it
freely). This module therefore uses only the prescribed operations, on
float64:

* ``exp2(y)``: ``y = n + f`` with integer ``n`` and ``f`` in ``[0, 1)``;
  ``2**f`` by linear interpolation in a table of ``2**(i / 256)``, then an
  exact scaling by ``2**n``. Relative error below ``1e-6``.
* ``exp(x) = exp2(x * LOG2E)`` and ``sigmoid(x) = 1 / (1 + exp(-x))``.
* ``normal_cdf(t)``: linear interpolation in a table of the standard normal
  CDF at ``t = -8 + i / 128``; absolute error below ``2e-6``; 0 and 1 beyond
  the table (the mass there is below ``7e-16``).

The tables come from integers alone (Python's exact integer arithmetic:
integer square roots for ``2**(i/256)``, a Machin series for pi and the
Taylor series of the normal CDF at 2**-160 resolution), each entry converted
to the nearest float64 by Python's correctly rounded integer division, so they
are identical everywhere. The exp2 table is computed at first use; the CDF
table takes seconds, so it ships in ``_cdf_table.py`` (base64 of little-endian
float64), and a test recomputes it. The interpolated
functions are not the exact ones, but the coder only needs encoder and decoder
to agree; the approximation costs far less than a millibit per symbol.
"""

import base64
import functools
import math

import numpy as np

__all__ = ["LOG2E", "exp2", "exp", "sigmoid", "normal_cdf", "CDFLookup", "NORMAL", "LOGISTIC", "cdf_lookup",
           "bernoulli_probabilities"]

LOG2E = 1.4426950408889634  # float64 nearest to 1 / ln 2; a literal, so the same bits everywhere

_EXP2_STEPS = 256        # table of 2**(i / 256), i = 0 .. 256
_CDF_STEPS = 128         # normal CDF at t = -8 + i / 128
_CDF_RANGE = 8
_WORK_BITS = 160         # fixed-point resolution of the series: 2**-160 (terms reach 2**46)


def _int_root_of_two_power(numerator, log2_denominator, bits):
    """floor(2**(numerator / 2**log2_denominator) * 2**bits) by repeated integer square roots."""
    value = 1 << (numerator + (bits << log2_denominator))  # 2**numerator scaled by 2**(bits * 2**k)
    for _ in range(log2_denominator):
        value = math.isqrt(value)  # floor(sqrt(floor(x))) == floor(sqrt(x)), so the result is exact
    return value


@functools.lru_cache(maxsize=None)
def _exp2_table():
    k = int(math.log2(_EXP2_STEPS))
    return np.array([_int_root_of_two_power(i, k, 64) / (1 << 64) for i in range(_EXP2_STEPS + 1)])


def _arctan_inverse(n, bits):
    """arctan(1 / n) * 2**bits (floor of each term; error a few units)."""
    total, power, k, sign = 0, (1 << bits) // n, 1, 1
    while power:
        total += sign * (power // k)
        power //= n * n
        k += 2
        sign = -sign
    return total


def compute_normal_cdf_table():
    """The normal CDF table from integer arithmetic alone (a few seconds; shipped in ``_cdf_table``)."""
    bits = _WORK_BITS
    pi = 16 * _arctan_inverse(5, bits + 8) - 4 * _arctan_inverse(239, bits + 8) >> 8
    sqrt_2pi = math.isqrt(2 * pi << bits)  # sqrt(2 pi) * 2**bits
    n = _CDF_RANGE * _CDF_STEPS
    half = []
    for a in range(n + 1):  # t = a / 128 >= 0; Phi(t) = 1/2 + t / sqrt(2 pi) * sum_n (-t^2/2)^n / (n! (2n+1))
        term, total, j = 1 << bits, 1 << bits, 0
        while term:
            j += 1
            term = term * a * a // (2 * _CDF_STEPS * _CDF_STEPS * j)
            total += (-1) ** j * (term // (2 * j + 1))
        series = (a * total << bits) // (_CDF_STEPS * sqrt_2pi)  # t * sum / sqrt(2 pi), scaled by 2**bits
        half.append(series)
    one = 1 << bits
    upper = [(one // 2 + s) for s in half]                       # Phi(t), t >= 0
    lower = [(one // 2 - s) for s in reversed(half[1:])]         # Phi(-t) = 1 - Phi(t)
    return np.array([max(0, min(v, one)) / one for v in lower + upper])


@functools.lru_cache(maxsize=None)
def _normal_cdf_table():
    from ._cdf_table import NORMAL_CDF_TABLE
    table = np.frombuffer(base64.b64decode(NORMAL_CDF_TABLE), dtype="<f8")
    if len(table) != 2 * _CDF_RANGE * _CDF_STEPS + 1:
        raise ImportError("skvae's normal CDF table is damaged; reinstall skvae")
    # multiples of 2**-53: then lo + r * (hi - lo) never passes hi, and interpolation is monotone
    return np.rint(table * 2.0 ** 53) / 2.0 ** 53


def exp2(y):
    """2**y for a float64 array, the same bits on every platform (relative error < 1e-6)."""
    y = np.clip(np.asarray(y, dtype=np.float64), -1000.0, 1000.0)
    n = np.floor(y)
    u = (y - n) * _EXP2_STEPS            # exact: y - floor(y) loses no bits, the product is a power of two
    i = np.minimum(np.floor(u), _EXP2_STEPS - 1)
    table = _exp2_table()
    lo = table[i.astype(np.intp)]
    hi = table[i.astype(np.intp) + 1]
    return np.ldexp(lo + (u - i) * (hi - lo), n.astype(np.int32))


def exp(x):
    """e**x (see :func:`exp2`)."""
    return exp2(np.asarray(x, dtype=np.float64) * LOG2E)


def sigmoid(x):
    """1 / (1 + e**-x) (see :func:`exp2`)."""
    return 1.0 / (1.0 + exp(-np.asarray(x, dtype=np.float64)))


def normal_cdf(t):
    """Standard normal CDF of a float64 array, the same bits on every platform (error < 2e-6)."""
    table = _normal_cdf_table()
    last = len(table) - 1
    u = np.clip((np.asarray(t, dtype=np.float64) + _CDF_RANGE) * _CDF_STEPS, 0.0, float(last))
    i = np.minimum(np.floor(u), last - 1)
    index = i.astype(np.intp)
    lo, hi = table[index], table[index + 1]
    return lo + (u - i) * (hi - lo)


class CDFLookup:
    """A CDF tabulated at ``2**-resolution`` steps on ``[-span, span]``, read by linear interpolation.

    The coder evaluates CDFs millions of times per second, always at equally
    spaced points (bin edges); a lookup costs a multiply-add, a clip, a floor,
    two gathers and a multiply-add. The table is built at first use from the
    interpolating functions above (so it is the same everywhere) and made
    non-decreasing, and the interpolant is then non-decreasing too, so
    differences of lookups at increasing points are never negative (the
    binned laws clamp them at 0 all the same). Interpolation, not the nearest
    entry: a bin narrower than a table step (a scale of more than
    ``2**resolution`` bins, as an integer column spanning thousands of values
    has) would otherwise get no mass or a whole step's, and cost up to 24
    bits; interpolated, its mass is the density at a point of the step times
    its width, within a fraction ``2**-resolution`` of the law's.

    Parameters
    ----------
    cdf : callable
        :func:`normal_cdf` or :func:`sigmoid`.
    span : float
    resolution : int
    interpolate : bool, default=True
        False: read the nearest entry instead (the index + 1/2, truncated), the
        lookup of arithmetic version 1, kept to decode its files.
    """

    def __init__(self, cdf, span, resolution, interpolate=True):
        self.cdf, self.span, self.resolution = cdf, float(span), int(resolution)
        self.interpolate = bool(interpolate)
        self._table = None

    @property
    def table(self):
        if self._table is None:
            steps = 2 ** self.resolution
            points = np.arange(-int(self.span) * steps, int(self.span) * steps + 1, dtype=np.float64) / steps
            self._table = np.maximum.accumulate(self.cdf(points))
        return self._table

    def progression(self, first, step, count, loc, scale):
        """CDF at ``(first + k * step - loc) / scale`` for ``k = 0 .. count - 1``, shape (n, count).

        ``first``, ``step``, ``loc`` and ``scale`` hold one value per row (or a
        scalar); the points of a row are equally spaced, so the table index is
        one multiply-add per entry.
        """
        table = self.table
        slope = (2.0 ** self.resolution) / np.asarray(scale, dtype=np.float64)  # index units per unit
        # version 1 (nearest entry) rounds the index: + 1/2, then truncation (indices are clipped at 0 first)
        offset = self.span * 2.0 ** self.resolution + (0.0 if self.interpolate else 0.5)
        base = (first - np.asarray(loc, dtype=np.float64)) * slope + offset
        index = np.multiply.outer(np.broadcast_to(step * slope, base.shape), np.arange(count, dtype=np.float64))
        index += base[:, None]
        np.clip(index, 0.0, len(table) - 1.0, out=index)
        if not self.interpolate:
            return table[index.astype(np.intp)]
        lower = np.minimum(np.floor(index), len(table) - 2.0)
        entry = lower.astype(np.intp)
        lo = table[entry]
        index -= lower  # exact: the fraction of the step, in [0, 1]
        index *= table[entry + 1] - lo
        index += lo
        return index

    def __getstate__(self):  # rebuilt after unpickling (joblib workers), never shipped
        return {**self.__dict__, "_table": None}


NORMAL = CDFLookup(normal_cdf, 8, 11)
LOGISTIC = CDFLookup(sigmoid, 40, 9)
# arithmetic version 1 read the nearest entry; kept so that its files still decode
NORMAL_NEAREST = CDFLookup(normal_cdf, 8, 11, interpolate=False)
LOGISTIC_NEAREST = CDFLookup(sigmoid, 40, 9, interpolate=False)


def cdf_lookup(law, arithmetic):
    """The lookup of arithmetic version ``arithmetic`` (1: nearest entry, 2: interpolated) for NORMAL or LOGISTIC."""
    if arithmetic == 1:
        return {id(NORMAL): NORMAL_NEAREST, id(LOGISTIC): LOGISTIC_NEAREST}.get(id(law), law)
    return law


@functools.lru_cache(maxsize=None)
def _bernoulli_table(precision):
    """sigmoid at logits -span .. span in 2**-12 steps, rounded to the coder's grid; beyond span it is clamped."""
    scale = float(2 ** precision)
    span = int(math.ceil(precision * math.log(2))) + 1
    logits = np.arange(-span * 4096, span * 4096 + 1, dtype=np.float64) / 4096
    return span, np.clip(np.rint(sigmoid(logits) * scale), 1.0, scale - 1.0) / scale


def bernoulli_probabilities(logits, precision):
    """sigmoid(logits) rounded to multiples of ``2**-precision`` inside (0, 1), by a 2**-12-step lookup."""
    span, table = _bernoulli_table(precision)
    logits = np.asarray(logits, dtype=np.float64).ravel()
    out = np.empty(len(logits))
    for start in range(0, len(logits), 1 << 16):  # pieces that stay in cache
        index = logits[start:start + (1 << 16)] * 4096.0
        index += span * 4096 + 0.5
        np.clip(index, 0.0, len(table) - 1.0, out=index)
        out[start:start + len(index)] = table[index.astype(np.intp)]
    return out


LOG2_FRACTION_BITS = 32  # fixed-point log-probabilities: integers in units of 2**-32 bits
_LOG2_STEPS = 256


@functools.lru_cache(maxsize=None)
def _log2_table():
    """round(log2(1 + i / 256) * 2**32), i = 0 .. 256, by integer squaring (exact, the same everywhere)."""
    precision, bits = 96, LOG2_FRACTION_BITS + 8
    out = []
    for i in range(_LOG2_STEPS + 1):
        if i == _LOG2_STEPS:
            out.append(1 << LOG2_FRACTION_BITS)
            continue
        v, result = (_LOG2_STEPS + i) << (precision - 8), 0
        for _ in range(bits):
            v = (v * v) >> precision
            result <<= 1
            if v >= 2 << precision:
                v >>= 1
                result |= 1
        out.append((result + (1 << 7)) >> 8)
    return np.array(out, dtype=np.float64)  # below 2**33: exact in float64


def fixed_log2(x):
    """round(log2(x) * 2**32) as int64 for positive float64 x, the same on every platform.

    ``frexp`` (exact), linear interpolation in :func:`_log2_table` (error below
    3e-6 bits) and IEEE ``+ - * /`` only.
    """
    m, e = np.frexp(np.asarray(x, dtype=np.float64))
    u = (m * 2.0 - 1.0) * _LOG2_STEPS     # exact: m * 2 lies in [1, 2)
    i = np.minimum(np.floor(u), _LOG2_STEPS - 1)
    table = _log2_table()
    index = i.astype(np.intp)
    lo, hi = table[index], table[index + 1]
    return (e.astype(np.int64) - 1) * (1 << LOG2_FRACTION_BITS) + np.rint(lo + (u - i) * (hi - lo)).astype(np.int64)


def table_log2(table, symbols, floor_bits=24):
    """Fixed-point log2 of the probability constriction codes ``table[r, symbols[r]]`` with, per row.

    Each row is scaled by a power of two so that its largest entry lies in
    ``[2**39, 2**40)`` and floored to integers ``s`` (sum ``S``, exact in
    int64 in any order). constriction's ``Categorical(perfect=False)`` gives
    every one of the ``m`` entries of a row at least ``2**-floor_bits`` and
    the rest in proportion, so the probability is taken as
    ``(s * (2**floor_bits - m) + S) / (S * 2**floor_bits)`` (float64 ``*``
    and ``+`` only, the same everywhere). Without this floor an entry far in
    a tail (which the coder still pops now and then) would get a log
    probability hundreds of bits below what it costs, and its importance
    weight would be wildly wrong.
    """
    table = np.asarray(table, dtype=np.float64)
    _, e = np.frexp(table.max(axis=1))
    scaled = np.floor(np.ldexp(table, (40 - e)[:, None].astype(np.int32))).astype(np.int64)
    entry = scaled[np.arange(len(table)), np.asarray(symbols, dtype=np.intp)].astype(np.float64)
    total = scaled.sum(axis=1).astype(np.float64)
    leaky = entry * float(2 ** floor_bits - table.shape[1]) + total
    return fixed_log2(leaky) - fixed_log2(total) - (floor_bits << LOG2_FRACTION_BITS)


def index_weights(log_weights):
    """Categorical table (n, k) from fixed-point log-weights (k, n): 2**(w - max) by :func:`exp2`."""
    d = (log_weights - log_weights.max(axis=0, keepdims=True)).T.astype(np.float64)  # exact: |d| < 2**53
    return np.ascontiguousarray(exp2(np.maximum(d, -2.0 ** 62) / 2.0 ** LOG2_FRACTION_BITS) + 2.0 ** -60)
