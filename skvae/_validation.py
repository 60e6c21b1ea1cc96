"""Parameter checks shared by the estimators, the diagnostics and the coder (no torch here).

Each raises ``TypeError`` for a value of the wrong type and ``ValueError`` for
one out of range, naming the parameter, the way scikit-learn's checks do.
"""

import numbers


def is_fitted(estimator):
    """Whether scikit-learn's ``check_is_fitted`` passes (False for an unfitted or non-estimator object)."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except (NotFittedError, TypeError):
        return False
    return True


def check_layer_sizes(sizes, name):
    """Hidden layer widths as a tuple of positive ints (an int means one layer)."""
    if isinstance(sizes, numbers.Integral):
        sizes = (sizes,)
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise ValueError(f"{name} must be positive integers, got {sizes!r}") from None
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
        raise ValueError(f"{name} must be positive integers, got {sizes!r}")
    return tuple(int(s) for s in sizes)


def _check_int(value, name, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")


def _check_real(value, name, low=None, high=None, low_open=False, high_open=False):
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not abs(value) < float("inf"):  # NaN passes every comparison below; inf is never meant
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if (low is not None and (value < low or (low_open and value == low))) or \
            (high is not None and (value > high or (high_open and value == high))):
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {left}{low}, {high}{right}, got {value!r}")
