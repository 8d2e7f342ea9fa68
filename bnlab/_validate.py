"""Input checks shared by bnlab's public functions.

Every check raises ``ValueError`` (or ``TypeError`` for a wrong kind of value)
with a message naming the argument, what was expected and what came.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def as_float_array(name, value, dtype=None):
    """Return ``value`` as a floating ndarray.

    Floating input keeps its dtype, integer input becomes float64, and
    anything else (bool, complex, strings, objects) is a ``TypeError``.
    With ``dtype`` given, the array is cast to it (used for gamma, beta and
    dy, which follow z's dtype).
    """
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists, ...
        raise ValueError(f"{name} could not be read as an array of numbers ({exc})") from None
    kind = array.dtype.kind
    if kind not in "fiu":
        raise TypeError(
            f"{name} must hold real numbers (float or int), got dtype {array.dtype}"
            + (" (booleans are not accepted)" if kind == "b" else "")
        )
    if dtype is not None:
        # a value too large for dtype becomes inf; the caller's finiteness check reports it
        with np.errstate(over="ignore"):
            return array.astype(dtype, copy=False)
    if kind in "iu":
        return array.astype(np.float64)
    return array


def check_finite(name, array):
    """Raise ``ValueError`` naming the first NaN or infinity in ``array``."""
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = array[where]
        count = int(bad.sum())
        raise ValueError(
            f"{name} contains {count} non-finite value(s) ({'NaN' if np.isnan(value) else value}"
            f" first at index {where if len(where) != 1 else where[0]}); "
            "batch normalization needs finite numbers"
        )


def normalize_axis(axis, ndim, name="axis"):
    """Return ``axis`` as a sorted tuple of non-negative ints, checked against ``ndim``."""
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        axes = (int(axis),)
    else:
        try:
            axes = tuple(axis)
        except TypeError:
            raise TypeError(f"{name} must be an int or a tuple of ints, got {axis!r}") from None
        if not axes or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes):
            raise TypeError(f"{name} must be an int or a non-empty tuple of ints, got {axis!r}")
    result = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{name}={axis!r} is out of range for an input with {ndim} dimension(s) "
                f"(valid axes: {-ndim}..{ndim - 1})"
            )
        result.append(int(a) % ndim)
    if len(set(result)) != len(result):
        raise ValueError(f"{name}={axis!r} names the same axis twice")
    return tuple(sorted(result))


def feature_shape(shape, axes):
    """Shape of the per-feature statistics: ``shape`` without the reduced ``axes``."""
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def broadcast_shape(shape, axes):
    """``shape`` with the reduced ``axes`` set to 1 (statistics reshaped to this broadcast)."""
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def values_per_feature(shape, axes):
    """Number of values each feature's statistics are computed from."""
    return math.prod(shape[a] for a in axes)


def check_batch(name, z, axes, *, training):
    """Refuse an empty batch, and in training a batch with one value per feature."""
    if z.size == 0:
        raise ValueError(f"{name} is empty (shape {z.shape}); a batch needs at least one value per feature")
    n = values_per_feature(z.shape, axes)
    if training and n < 2:
        raise ValueError(
            f"{name} of shape {z.shape} has only one value per feature over axis {axes}: "
            "there is no variance to estimate in training mode (the normalized output would be all "
            "zeros). Use a batch of at least 2, or evaluation mode (training=False), which uses the "
            "running statistics"
        )
    return n


def check_shape(name, array, expected, what):
    if array.shape != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)} ({what}), got shape {array.shape}")


def check_eps(eps):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a positive real number, got {eps!r}")
    if not np.isfinite(eps) or eps <= 0:
        raise ValueError(
            f"eps must be positive and finite (it keeps 1/sqrt(var + eps) finite), got {eps!r}"
        )
    return float(eps)


def check_momentum(momentum):
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(f"momentum must be a real number in [0, 1], got {momentum!r}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
    return float(momentum)


def check_positive_int(name, value, what=""):
    """``value`` as a positive int; a bool, a float or a string is a ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int{what}, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int{what}, got {value!r}")
    return int(value)


def check_shape_arg(name, value):
    """A shape argument (``normalized_shape``): an int ``k`` means ``(k,)``; all entries positive ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        shape = (value,)
    else:
        # a string is iterable ("12" would become (1, 2)) and int(3.5) is 3: refuse both
        try:
            shape = None if isinstance(value, (str, bytes)) else tuple(value)
        except TypeError:
            shape = None
        if shape is None or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape
        ):
            raise TypeError(f"{name} must be a positive int or a tuple of positive ints, got {value!r}")
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"{name} must be a positive int or a non-empty tuple of positive ints, got {value!r}")
    return tuple(int(s) for s in shape)
