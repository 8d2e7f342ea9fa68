"""Numerical gradients and the relative error used to compare gradients.

Introduced in ``notebooks/06_backward_pass.ipynb``.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _validate as v

__all__ = ["rel_error", "numerical_gradient"]


def rel_error(a, b):
    """Largest element-wise relative error, as CS231n defines it.

    Parameters
    ----------
    a, b : array_like, same shape

    Returns
    -------
    float

    Notes
    -----
    .. math:: \\max_i \\frac{|a_i - b_i|}{\\max(|a_i| + |b_i|, 10^{-12})}

    0 means identical; about 1e-7 or less is a passed gradient check in float64.
    """
    a = v.as_float_array("a", a)
    b = v.as_float_array("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("a and b are empty; there is nothing to compare")
    v.check_finite("a", a)
    v.check_finite("b", b)
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)))


def numerical_gradient(f, x, df, h=1e-5):
    """Centred finite-difference gradient of ``sum(f(x) * df)`` with respect to ``x``.

    Parameters
    ----------
    f : callable
        ``f(x) -> ndarray``; called ``2 * x.size`` times.
    x : ndarray (floating, writable)
        Perturbed in place one element at a time and restored exactly (also
        when ``f`` raises), so it is left as it was found. Use float64:
        float32 differences are noisy.
    df : ndarray, same shape as ``f(x)``
        Upstream gradient. Use random values: an all-ones ``df`` makes BN's
        input gradient vanish and proves nothing.
    h : float, default 1e-5
        Step.

    Returns
    -------
    grad : ndarray, same shape as ``x``

    Notes
    -----
    .. math:: \\frac{\\partial L}{\\partial x_i} \\approx
              \\sum_j \\frac{f_j(x + h e_i) - f_j(x - h e_i)}{2h} \\, df_j
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(
            "x must be a floating NumPy array (it is perturbed in place and restored), "
            f"got {type(x).__name__}{' of dtype ' + str(x.dtype) if isinstance(x, np.ndarray) else ''}"
        )
    if not x.flags.writeable:
        raise ValueError("x must be writable: it is perturbed in place and restored")
    if isinstance(h, bool) or not isinstance(h, numbers.Real):
        raise TypeError(f"h must be a positive finite step (a real number), got {h!r}")
    if not np.isfinite(h) or h <= 0:
        raise ValueError(f"h must be a positive finite step, got {h!r}")
    v.check_finite("x", x)
    df = v.as_float_array("df", df)
    v.check_finite("df", df)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i].copy()
        try:
            x[i] = old + h
            plus = np.array(f(x), dtype=np.float64, copy=True)
            x[i] = old - h
            minus = np.array(f(x), dtype=np.float64, copy=True)
        finally:
            x[i] = old  # restored exactly, even when f raises
        if plus.shape != df.shape:
            raise ValueError(f"df must have the shape of f(x), {plus.shape}, got {df.shape}")
        grad[i] = np.sum((plus - minus) * df) / (2 * h)
    return grad
