"""Batch normalization step by step, and the rest of its family: pure NumPy functions of arrays.

No printing, no plotting, no globals, no mutation of inputs. State (running
statistics) is passed in and the new state returned.

``axis`` always names the axes reduced over, as in NumPy: ``0`` for a dense
layer's ``(N, D)`` activations, ``(0, 2, 3)`` for a convolution's
``(N, C, H, W)``. Statistics come back with those axes removed.

Floating input keeps its dtype (float32 in, float32 out); integer input is
computed in float64; ``gamma``, ``beta`` and ``dy`` follow ``z``'s dtype.

Batch, layer, instance and group normalization are one operation over
different axes (Wu & He 2018, Eqs. 1-7): :func:`normalize_forward` and
:func:`normalize_backward` over any axes, built on the private pair
``_moments`` / ``_normalize_grad`` that :func:`batchnorm_forward`,
:func:`batchnorm_backward` and :func:`layer_norm`, :func:`group_norm`,
:func:`instance_norm` (and their ``*_forward`` / ``*_backward`` pairs) all
use. :func:`rms_norm` has its own short pair (no mean).
"""

from __future__ import annotations

import functools
import numbers
import string

import numpy as np

from . import _validate as v
from .conventions import get_convention

__all__ = [
    "batch_stats",
    "normalize",
    "affine",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_graph",
    "update_running_stats",
    "fold_batchnorm",
    "normalize_forward",
    "normalize_backward",
    "layer_norm",
    "layer_norm_forward",
    "layer_norm_backward",
    "group_norm",
    "group_norm_forward",
    "group_norm_backward",
    "instance_norm",
    "instance_norm_forward",
    "instance_norm_backward",
    "rms_norm",
    "rms_norm_forward",
    "rms_norm_backward",
]

# How many leading samples the variance's shift reference is averaged over.
_SHIFT_SAMPLES = 16
# Below this many values _times_last_axis_constant multiplies directly.
_EINSUM_MIN_SIZE = 1 << 16


def _prepare_z(z, axis, *, training, name="z"):
    z = v.as_float_array(name, z)
    if z.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (a batch), got a scalar")
    axes = v.normalize_axis(axis, z.ndim)
    n = v.check_batch(name, z, axes, training=training)
    return z, axes, n


def _stat(name, value, z, axes, what):
    """Check a per-feature statistic/parameter and reshape it to broadcast against ``z``."""
    array = v.as_float_array(name, value, dtype=z.dtype)
    v.check_shape(name, array, v.feature_shape(z.shape, axes), what)
    v.check_finite(name, array)
    return array.reshape(v.broadcast_shape(z.shape, axes))


def _sum_of_products(a, b, axes):
    """``sum(a * b)`` over ``axes`` (kept as size-1 axes) in one pass, without a temporary ``a * b``.

    ``np.einsum`` accumulates in the arrays' dtype, as ``(a * b).sum(axis=axes)``
    does (tests/test_variance_accuracy.py holds the variance to the same
    accuracy); it is only faster: no product array to allocate, write and
    read back.
    """
    total = np.einsum(_reduction_subscripts(a.ndim, axes), a, b)
    return total.reshape(v.broadcast_shape(a.shape, axes))


@functools.lru_cache(maxsize=128)
def _reduction_subscripts(ndim, axes):
    """``"abc,abc->b"`` for ``ndim=3, axes=(0, 2)`` (cached: a training step asks for the same ones)."""
    letters = string.ascii_letters[:ndim]
    kept = "".join(letter for i, letter in enumerate(letters) if i not in axes)
    return f"{letters},{letters}->{kept}"


@functools.lru_cache(maxsize=128)
def _shift_index(ndim, axes):
    """Index of the values the variance's shift is averaged over: the first samples along ``axes[0]``."""
    first = axes[0]
    return tuple(
        slice(0, _SHIFT_SAMPLES) if i == first else slice(0, 1) if i in axes else slice(None)
        for i in range(ndim)
    )


def _times_last_axis_constant(a, factors):
    """``a * factors`` for ``factors`` constant along ``a``'s last axis (shape ``(..., 1)``).

    Through ``np.einsum``: NumPy's broadcasting multiply is 1.3-2x slower when
    the broadcast value changes every few hundred elements (rows shorter than
    about 8192 values), as it does per (sample, channel) in group norm.
    """
    if a.size < _EINSUM_MIN_SIZE:  # small arrays: einsum's call overhead outweighs the gain
        return a * factors
    letters = string.ascii_letters[: a.ndim]
    factors = np.broadcast_to(factors, a.shape[:-1] + (1,))[..., 0]
    return np.einsum(f"{letters},{letters[:-1]}->{letters}", a, factors)


def _shifted_moments(z, axes):
    """Mean, population variance and the shifted data ``z - shift`` (kept for reuse).

    The shifted, corrected two-pass algorithm: subtract a reference ``shift``
    close to the data (the mean of the first few samples), then
    ``mean = shift + mean(d)`` and ``var = mean(d**2) - mean(d)**2`` with
    ``d = z - shift``. Because ``d`` is of the order of the standard
    deviation, no catastrophic cancellation happens even far from zero, where
    ``np.var`` in float32 (which accumulates row by row) loses digits.
    """
    n = v.values_per_feature(z.shape, axes)
    # Non-finite input or overflow is reported by _check_stats_finite, which
    # locates the culprit: no RuntimeWarning (inf - inf, ...) before that error.
    # (np.add.reduce(...) / count is what .mean() computes, without its Python overhead.)
    with np.errstate(invalid="ignore", over="ignore"):
        shift = np.add.reduce(z[_shift_index(z.ndim, axes)], axis=axes, keepdims=True)
        shift /= min(_SHIFT_SAMPLES, z.shape[axes[0]])
        d = z - shift
        d_mean = np.add.reduce(d, axis=axes, keepdims=True)
        d_mean /= n
        var = _sum_of_products(d, d, axes) / n
        var -= np.square(d_mean)
        mean = shift + d_mean
    np.maximum(var, 0, out=var)  # rounding can leave -1e-9 for a constant feature
    return mean, var, d, d_mean


def _check_stats_finite(z, mean, var, name="z", locate=None):
    """Cheap check on the statistics; locate the culprit only when something is wrong.

    ``locate``: the array to name the culprit's index in, when ``z`` is a
    reshaped view of it (the family works on rows of a 2-D view).
    """
    if np.isfinite(mean).all() and np.isfinite(var).all():
        return
    v.check_finite(name, z if locate is None else locate)
    raise ValueError(
        f"the statistics of {name} overflowed in {z.dtype} (values up to {np.abs(z).max():.3g}); "
        "rescale the input or use float64"
    )


def _moments(x, axes, eps, name="x", locate=None):
    """The forward half every member of the family shares: statistics over ``axes`` and ``inv_std``.

    Returns ``d = x - shift`` (the shifted copy, kept for the backward pass),
    its mean ``d_mean``, ``mean``, ``var`` (population) and
    ``inv_std = 1 / sqrt(var + eps)``, the statistics with ``axes`` kept as
    size-1 axes. ``x_hat = (d - d_mean) * inv_std``.
    """
    mean, var, d, d_mean = _shifted_moments(x, axes)
    _check_stats_finite(x, mean, var, name, locate)
    inv_std = 1.0 / np.sqrt(var + eps)
    return d, d_mean, mean, var, inv_std


def _normalize_grad(g, cache, scale=None):
    """The backward half every member shares: ``dx`` from ``dx_hat = scale * g``.

    ``scale`` (broadcastable, constant over the reduced axes, e.g. BN's or
    IN's gamma; None for 1) is factored out of the sums, so they are sums of
    ``g`` itself. Works from ``x_hat`` when the cache holds it, else from
    the shifted copy ``d`` without forming ``x_hat``.

    Returns ``dx`` and the two sums over the reduced axes (kept as size-1
    axes): ``sum(g)`` and ``sum(g * x_hat)``.
    """
    axes, n, inv_std = cache["axis"], cache["n"], cache["inv_std"]
    sum_g = g.sum(axis=axes, keepdims=True)
    if dict.__contains__(cache, "d"):
        # x_hat = (d - d_mean) * inv_std is never formed:
        #   sum(g * x_hat) = inv_std * (sum(g * d) - d_mean * sum(g))
        #   x_hat * sum(g * x_hat) / n = d * k - d_mean * k,  k = inv_std * sum(g * x_hat) / n
        d, d_mean = cache["d"], cache["d_mean"]
        sum_g_xhat = inv_std * (_sum_of_products(g, d, axes) - d_mean * sum_g)
        k = inv_std * sum_g_xhat / n
        dx = d * k
        dx += sum_g / n - d_mean * k        # = (sum(g) + x_hat * sum(g * x_hat)) / n
    else:
        x_hat = cache["x_hat"]
        sum_g_xhat = _sum_of_products(g, x_hat, axes)
        dx = x_hat * (sum_g_xhat / n)
        dx += sum_g / n
    np.subtract(g, dx, out=dx)
    dx *= inv_std if scale is None else scale * inv_std
    return dx, sum_g, sum_g_xhat


def batch_stats(z, axis=0):
    """Per-feature batch mean and population variance.

    Parameters
    ----------
    z : ndarray, shape (N, D) or (N, C, H, W) or any
        The batch. Float keeps its dtype, int becomes float64.
    axis : int or tuple of int, default 0
        Axes reduced over: 0 for (N, D), (0, 2, 3) for (N, C, H, W).

    Returns
    -------
    mean : ndarray, shape (D,) or (C,): z's shape without ``axis``
    var : ndarray, same shape as ``mean``
        Population (biased, ``ddof=0``) variance, as the paper's Algorithm 1.

    Notes
    -----
    .. math:: \\mu_B = \\frac{1}{m}\\sum_i z_i, \\qquad
              \\sigma_B^2 = \\frac{1}{m}\\sum_i (z_i - \\mu_B)^2

    Computed with a shifted two-pass algorithm that stays accurate in float32
    far from zero (relative error a few 1e-5 for 4096 samples at offsets of
    1e4 and 1e6, where ``np.var`` in float32 is off by orders of magnitude;
    see ``tests/test_variance_accuracy.py``). A batch of one value per
    feature is accepted here and gives variance 0.

    Introduced in ``notebooks/01_batch_statistics.ipynb``.
    """
    z, axes, _ = _prepare_z(z, axis, training=False)
    mean, var, _, _ = _shifted_moments(z, axes)
    _check_stats_finite(z, mean, var)
    return mean.reshape(v.feature_shape(z.shape, axes)), var.reshape(v.feature_shape(z.shape, axes))


def normalize(z, mean, var, eps=1e-5, axis=0):
    """Normalize ``z`` with the given per-feature statistics.

    Parameters
    ----------
    z : ndarray, shape (N, D) or (N, C, H, W)
    mean, var : ndarray, shape (D,) or (C,)
        Per-feature statistics (batch statistics in training, running ones in
        evaluation). ``var`` must be non-negative.
    eps : float, default 1e-5
        Added to the variance; must be positive.
    axis : int or tuple of int, default 0

    Returns
    -------
    z_hat : ndarray, same shape and dtype as ``z``

    Notes
    -----
    .. math:: \\hat z = \\frac{z - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}

    Introduced in ``notebooks/02_normalization.ipynb``.
    """
    z, axes, _ = _prepare_z(z, axis, training=False)
    v.check_finite("z", z)
    eps = v.check_eps(eps)
    mean = _stat("mean", mean, z, axes, "the per-feature mean")
    var = _stat("var", var, z, axes, "the per-feature variance")
    if (var < 0).any():
        raise ValueError(f"var must be non-negative (a variance), got minimum {float(var.min())!r}")
    return (z - mean) / np.sqrt(var + eps)


def affine(z_hat, gamma, beta, axis=0):
    """Learnable scale and shift.

    Parameters
    ----------
    z_hat : ndarray, shape (N, D) or (N, C, H, W)
    gamma, beta : ndarray, shape (D,) or (C,)
    axis : int or tuple of int, default 0

    Returns
    -------
    y : ndarray, same shape and dtype as ``z_hat``

    Notes
    -----
    .. math:: y = \\gamma \\hat z + \\beta

    With ``gamma = sqrt(var + eps)`` and ``beta = mean`` BN gives back its input.

    Introduced in ``notebooks/03_scale_and_shift.ipynb``.
    """
    z_hat, axes, _ = _prepare_z(z_hat, axis, training=False, name="z_hat")
    v.check_finite("z_hat", z_hat)
    gamma = _stat("gamma", gamma, z_hat, axes, "the per-feature scale")
    beta = _stat("beta", beta, z_hat, axes, "the per-feature shift")
    return gamma * z_hat + beta


def batchnorm_forward(z, gamma, beta, eps=1e-5, axis=0):
    """Training-mode batch normalization: batch statistics, normalize, scale and shift.

    Parameters
    ----------
    z : ndarray, shape (N, D) or (N, C, H, W)
        At least two values per feature (otherwise there is no variance).
    gamma, beta : ndarray, shape (D,) or (C,)
    eps : float, default 1e-5
    axis : int or tuple of int, default 0

    Returns
    -------
    y : ndarray, same shape and dtype as ``z``
    cache : BatchNormCache (a dict)
        What :func:`batchnorm_backward` needs: ``z`` (a reference to the
        input, not a copy), ``z_hat``, ``mean``, ``var``, ``inv_std``,
        ``gamma``, ``eps``, ``axis``, ``n``, and the shifted copy ``d`` with
        its mean ``d_mean``. ``z_hat`` is computed from ``d`` when first
        read (the closed-form backward works from ``d`` and does not need
        it). The step-by-step :func:`batchnorm_backward_graph` recomputes
        from ``z``, so changing ``z`` in place before it changes its gradients.

    Notes
    -----
    .. math:: y = \\gamma \\frac{z - \\mu_B}{\\sqrt{\\sigma_B^2 + \\epsilon}} + \\beta

    :func:`normalize_forward` over ``axis`` followed by the affine step,
    folded into the same pass (same statistics code, same speed).

    Introduced in ``notebooks/02_normalization.ipynb``.
    """
    z, axes, n = _prepare_z(z, axis, training=True)
    eps = v.check_eps(eps)
    gamma = _stat("gamma", gamma, z, axes, "the per-feature scale")
    beta = _stat("beta", beta, z, axes, "the per-feature shift")
    return _forward(z, gamma, beta, eps, axes, n)


def _forward(z, gamma, beta, eps, axes, n):
    """:func:`batchnorm_forward` on checked arguments (gamma, beta already broadcastable).

    :func:`normalize_forward`'s statistics (:func:`_moments`), then the affine
    step folded into the same pass.
    """
    d, d_mean, mean, var, inv_std = _moments(z, axes, eps, name="z")
    # y = gamma * (d - d_mean) * inv_std + beta, with gamma * inv_std folded into one
    # per-feature scale: two passes over the data instead of four.
    scale = gamma * inv_std
    y = d * scale
    y += beta - d_mean * scale
    cache = BatchNormCache({
        "z": z,
        "d": d,
        "d_mean": d_mean,
        "mean": mean,
        "var": var,
        "inv_std": inv_std,
        "gamma": gamma,
        "eps": eps,
        "axis": axes,
        "n": n,
    })
    return y, cache


class NormalizeCache(dict):
    """The cache of :func:`normalize_forward` and of the family's forward functions.

    A dict holding the shifted copy ``d = x - shift``, its mean ``d_mean``,
    ``inv_std``, ``mean``, ``var``, ``eps``, ``axis`` and ``n`` (values per
    group); ``"x_hat"`` (also readable as ``"z_hat"``) is computed from
    ``d`` on first read, ``(d - d_mean) * inv_std``, and then stored. A
    forward that forms ``x_hat`` anyway (layer and group norm with an
    affine) stores it instead of ``d``. ``producer`` names the function
    that made the cache, so a backward can refuse someone else's.
    """

    producer = "normalize_forward"

    def __missing__(self, key):
        if key not in ("x_hat", "z_hat") or not dict.__contains__(self, "d"):
            raise KeyError(key)
        x_hat = (self["d"] - self["d_mean"]) * self["inv_std"]
        self[key] = x_hat
        return x_hat

    def __contains__(self, key):
        return (key in ("x_hat", "z_hat") and dict.__contains__(self, "d")) or dict.__contains__(self, key)

    def get(self, key, default=None):
        return self[key] if key in self else default


class BatchNormCache(NormalizeCache):
    """The cache of :func:`batchnorm_forward`: a dict whose ``"z_hat"`` is computed on first read.

    ``z_hat = (d - d_mean) * inv_std`` from the shifted copy ``d = z - shift``
    kept by the forward pass. The closed-form backward works from ``d``
    directly, so a training step never pays for ``z_hat``; a notebook or a
    test that reads ``cache["z_hat"]`` gets it (computed once, then stored).
    """

    producer = "batchnorm_forward"

    def __missing__(self, key):
        if key != "z_hat":
            raise KeyError(key)
        return NormalizeCache.__missing__(self, key)

    def __contains__(self, key):
        return key == "z_hat" or dict.__contains__(self, key)


def _check_dy(dy, cache):
    if not isinstance(cache, BatchNormCache):
        raise TypeError("cache must be the dict returned by batchnorm_forward")
    d = cache["d"]
    dy = v.as_float_array("dy", dy, dtype=d.dtype)
    v.check_shape("dy", dy, d.shape, "the shape of z")
    return dy


def _check_grads_finite(dy, *grads, name="dy"):
    if all(np.isfinite(g).all() for g in grads):
        return
    v.check_finite(name, dy)
    raise ValueError(f"the gradients overflowed; rescale {name} or use float64")


def batchnorm_backward(dy, cache):
    """Closed-form backward pass of :func:`batchnorm_forward`.

    Parameters
    ----------
    dy : ndarray, same shape as ``z``
        Upstream gradient dL/dy (follows z's dtype).
    cache : dict
        From :func:`batchnorm_forward`.

    Returns
    -------
    dz : ndarray, same shape as ``z``
    dgamma, dbeta : ndarray, shape (D,) or (C,)

    Notes
    -----
    With :math:`\\hat z` the normalized input, :math:`d\\hat z = dy\\,\\gamma`
    and :math:`m` values per feature:

    .. math::
        d\\beta = \\sum_i dy_i, \\qquad d\\gamma = \\sum_i dy_i \\hat z_i, \\qquad
        dz = \\frac{1}{m\\sqrt{\\sigma^2+\\epsilon}}\\Big(m\\,d\\hat z
             - \\sum_i d\\hat z_i - \\hat z \\sum_i d\\hat z_i \\hat z_i\\Big)
           = \\frac{\\gamma}{\\sqrt{\\sigma^2+\\epsilon}}
             \\Big(dy - \\frac{d\\beta + \\hat z\\, d\\gamma}{m}\\Big)

    The second form reuses the two sums that ``dbeta`` and ``dgamma`` already
    need. ``sum(dz)`` over the batch is 0: moving every sample by the same
    amount changes nothing after normalization. It is
    :func:`normalize_backward` with :math:`d\\hat z = \\gamma\\, dy` (the same code,
    gamma taken out of the sums); layer, instance and group norm use it too.

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    dy = _check_dy(dy, cache)
    # normalize_backward with dz_hat = gamma * dy: gamma is constant over the reduced axes, so it
    # comes out of the sums, which are then dbeta and dgamma themselves.
    with np.errstate(invalid="ignore", over="ignore"):  # reported just below, with the location
        dz, dbeta, dgamma = _normalize_grad(dy, cache, scale=cache["gamma"])
    _check_grads_finite(dy, dbeta, dgamma)
    shape = v.feature_shape(dz.shape, cache["axis"])
    return dz, dgamma.reshape(shape), dbeta.reshape(shape)


def batchnorm_backward_graph(dy, cache):
    """Step-by-step backward pass through BN's computational graph (for teaching and tests).

    Same inputs and outputs as :func:`batchnorm_backward`. The forward graph
    is recomputed from ``cache["z"]`` node by node::

        mu = mean(z)            xmu = z - mu          sq = xmu**2
        var = mean(sq)          std = sqrt(var + eps) inv_std = 1 / std
        z_hat = xmu * inv_std   y = gamma * z_hat + beta

    and each node's local derivative is applied in reverse order. Slower than
    the closed form (more passes over the data), identical up to rounding.

    Parameters
    ----------
    dy : ndarray, same shape as ``z``
        Upstream gradient dL/dy (follows z's dtype).
    cache : dict
        From :func:`batchnorm_forward`; ``cache["z"]`` is read again, so an
        in-place change of ``z`` since the forward pass changes the result.

    Returns
    -------
    dz : ndarray, same shape as ``z``
    dgamma, dbeta : ndarray, shape (D,) or (C,)

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    dy = _check_dy(dy, cache)
    v.check_finite("dy", dy)  # before any arithmetic: no RuntimeWarning ahead of the error
    z, gamma, eps, axes, n = cache["z"], cache["gamma"], cache["eps"], cache["axis"], cache["n"]
    # forward, node by node
    mu = z.mean(axis=axes, keepdims=True)
    xmu = z - mu
    sq = xmu**2
    var = sq.mean(axis=axes, keepdims=True)
    std = np.sqrt(var + eps)
    inv_std = 1.0 / std
    z_hat = xmu * inv_std
    # backward, node by node
    dbeta = dy.sum(axis=axes, keepdims=True)                  # y = gamma*z_hat + beta
    dgamma = (dy * z_hat).sum(axis=axes, keepdims=True)
    dz_hat = dy * gamma
    dinv_std = (dz_hat * xmu).sum(axis=axes, keepdims=True)   # z_hat = xmu * inv_std
    dxmu = dz_hat * inv_std
    dstd = -dinv_std / std**2                                 # inv_std = 1 / std
    dvar = 0.5 * dstd / std                                   # std = sqrt(var + eps)
    dsq = np.ones_like(sq) * dvar / n                         # var = mean(sq)
    dxmu = dxmu + 2 * xmu * dsq                               # sq = xmu**2
    dmu = -dxmu.sum(axis=axes, keepdims=True)                 # xmu = z - mu
    dz = dxmu + np.ones_like(z) * dmu / n                     # mu = mean(z)
    _check_grads_finite(dy, dbeta, dgamma)
    shape = v.feature_shape(z.shape, axes)
    return dz, dgamma.reshape(shape), dbeta.reshape(shape)


# ---------------------------------------------------------------------------
# The normalization family (Wu & He 2018, "Group Normalization", Eqs. 1-7).
# BN, LN, IN and GN all compute (x - mu) / sqrt(var + eps) and differ only in
# the set of values that share mu and var. normalize_forward /
# normalize_backward do it over any axes (BN above uses the same _moments and
# _normalize_grad). LN, IN and GN reduce over trailing axes, which they view
# as the rows of a 2-D (or 3-D) array: one contiguous reduction per group.
# RMSNorm skips the mean and has its own short pair.
# ---------------------------------------------------------------------------


def normalize_forward(x, axis, eps=1e-5):
    """Normalize ``x`` over any set of axes: the one operation behind BN, LN, IN and GN.

    Parameters
    ----------
    x : ndarray, any shape
        Float keeps its dtype, int becomes float64.
    axis : int or tuple of int
        Axes whose values share one mean and variance: ``0`` or ``(0, 2, 3)``
        is batch norm, ``(1, 2, 3)`` layer norm on ``(N, C, H, W)``,
        ``(2, 3)`` instance norm.
    eps : float, default 1e-5

    Returns
    -------
    x_hat : ndarray, same shape and dtype as ``x``
    cache : NormalizeCache (a dict)
        What :func:`normalize_backward` needs: the shifted copy ``d``, its
        mean ``d_mean``, ``mean``, ``var``, ``inv_std`` (with the reduced
        axes kept as size-1 axes), ``eps``, ``axis`` and ``n`` (values per
        group). ``cache["x_hat"]`` gives ``x_hat`` again (computed on read).

    Notes
    -----
    With :math:`S` the set of values sharing statistics (GN paper, Eqs. 1-2):

    .. math:: \\mu = \\frac{1}{m}\\sum_{k \\in S} x_k, \\qquad
              \\sigma^2 = \\frac{1}{m}\\sum_{k \\in S} (x_k - \\mu)^2, \\qquad
              \\hat x = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}

    Accurate shifted two-pass statistics as :func:`batch_stats`. A group of
    one value is accepted (``x_hat`` is 0 there); :func:`batchnorm_forward`
    refuses it in training.

    Introduced in notebook 09 (the normalization family).
    """
    x, axes, n = _prepare_z(x, axis, training=False, name="x")
    eps = v.check_eps(eps)
    d, d_mean, mean, var, inv_std = _moments(x, axes, eps)
    cache = NormalizeCache(d=d, d_mean=d_mean, mean=mean, var=var, inv_std=inv_std, eps=eps,
                           axis=axes, n=n)
    x_hat = d - d_mean
    x_hat *= inv_std
    return x_hat, cache


def normalize_backward(dx_hat, cache):
    """Closed-form backward pass of :func:`normalize_forward`.

    Parameters
    ----------
    dx_hat : ndarray, same shape as ``x``
        Upstream gradient dL/dx_hat (follows x's dtype).
    cache : dict
        From :func:`normalize_forward` (or :func:`batchnorm_forward`, whose
        statistics are the same).

    Returns
    -------
    dx : ndarray, same shape as ``x``

    Notes
    -----
    BN's closed form, unchanged for any set :math:`S` of :math:`m` values
    sharing statistics (sums over :math:`S`):

    .. math:: dx = \\frac{1}{m\\sqrt{\\sigma^2 + \\epsilon}}
              \\Big(m\\, d\\hat x - \\sum_S d\\hat x - \\hat x \\sum_S d\\hat x\\, \\hat x\\Big)

    :func:`batchnorm_backward` is this with :math:`d\\hat x = \\gamma\\, dy`
    (gamma taken out of the sums, which become ``dbeta`` and ``dgamma``).

    Introduced in notebook 09 (the normalization family).
    """
    if not isinstance(cache, NormalizeCache) or cache.producer not in ("normalize_forward",
                                                                      "batchnorm_forward"):
        raise TypeError("cache must be the dict returned by normalize_forward")
    d = cache["d"]
    dx_hat = v.as_float_array("dx_hat", dx_hat, dtype=d.dtype)
    v.check_shape("dx_hat", dx_hat, d.shape, "the shape of x")
    with np.errstate(invalid="ignore", over="ignore"):  # reported just below, with the location
        dx, sum_g, sum_g_xhat = _normalize_grad(dx_hat, cache)
    _check_grads_finite(dx_hat, sum_g, sum_g_xhat, name="dx_hat")
    return dx


def _family_input(x):
    x = v.as_float_array("x", x)
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension, got a scalar")
    return x


def _check_not_empty(x):
    if x.size == 0:
        raise ValueError(f"x is empty (shape {x.shape}); there is nothing to normalize")


def _trailing(x, normalized_shape):
    """Check that x ends in ``normalized_shape``; return it as a tuple and its size."""
    shape = v.check_shape_arg("normalized_shape", normalized_shape)
    k = len(shape)
    if x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise ValueError(
            f"x must have shape (*, {', '.join(map(str, shape))}) to be normalized over "
            f"normalized_shape={shape} (its last {k} dimension(s)), got shape {x.shape}"
        )
    _check_not_empty(x)
    return shape, int(np.prod(shape, dtype=np.int64))


def _family_param(name, value, dtype, shape, what):
    """gamma / beta: None (no affine) or an array of ``shape`` in x's dtype."""
    if value is None:
        return None
    array = v.as_float_array(name, value, dtype=dtype)
    v.check_shape(name, array, shape, what)
    v.check_finite(name, array)
    return array


def _channels_input(x, what):
    """x of shape (N, C, *spatial) for group and instance norm."""
    x = _family_input(x)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (N, C, *spatial) ({what}), got shape {x.shape}")
    _check_not_empty(x)
    return x


def _family_cache(producer, **entries):
    cache = NormalizeCache(entries)
    cache.producer = producer
    return cache


def _check_family_dy(dy, cache, producer):
    if not isinstance(cache, NormalizeCache) or cache.producer != producer:
        raise TypeError(f"cache must be the dict returned by {producer}")
    dy = v.as_float_array("dy", dy, dtype=cache["dtype"])
    v.check_shape("dy", dy, cache["x_shape"], "the shape of x")
    return dy


def _normalize_rows(x, rows, eps, cache):
    """Statistics of each row of ``rows`` (a view of ``x``); fills ``cache``; returns (d, d_mean, inv_std)."""
    d, d_mean, mean, var, inv_std = _moments(rows, (1,), eps, locate=x)
    cache.update(mean=mean, var=var, inv_std=inv_std, eps=eps, axis=(1,), n=rows.shape[1])
    return d, d_mean, inv_std


def _x_hat_in_place(d, d_mean, inv_std, cache):
    """``x_hat`` in ``d``'s memory (d is not needed once x_hat is stored)."""
    np.subtract(d, d_mean, out=d)
    d *= inv_std
    cache["x_hat"] = d
    return d


def layer_norm_forward(x, normalized_shape, gamma=None, beta=None, eps=1e-5):
    """Layer normalization with a cache for :func:`layer_norm_backward`.

    Parameters
    ----------
    x : ndarray, shape (*, *normalized_shape)
        E.g. (N, D) with ``normalized_shape=D``; (N, T, D) tokens with ``D``;
        (N, C, H, W) with ``(C, H, W)`` (the GN paper's LN).
    normalized_shape : int or tuple of int
        The trailing dimensions each sample is normalized over.
    gamma, beta : ndarray, shape normalized_shape, optional
        Element-wise scale and shift (torch's ``weight`` and ``bias``); None
        leaves it out.
    eps : float, default 1e-5

    Returns
    -------
    y : ndarray, same shape and dtype as ``x``
    cache : NormalizeCache (a dict)

    Notes
    -----
    For each sample (each index of the leading dimensions), over the
    :math:`m` values of its trailing ``normalized_shape``:

    .. math:: y = \\gamma \\odot \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} + \\beta

    The same computation in training and evaluation (no running statistics).
    ``torch.nn.functional.layer_norm`` semantics.

    Introduced in notebook 09 (the normalization family).
    """
    x = _family_input(x)
    shape, m = _trailing(x, normalized_shape)
    eps = v.check_eps(eps)
    what = "normalized_shape: one value per normalized element"
    gamma = _family_param("gamma", gamma, x.dtype, shape, what)
    beta = _family_param("beta", beta, x.dtype, shape, what)
    return _layer_norm_forward(x, shape, m, gamma, beta, eps)


def _layer_norm_forward(x, shape, m, gamma, beta, eps):
    """:func:`layer_norm_forward` on checked arguments (``m`` values in ``shape``)."""
    cache = _family_cache("layer_norm_forward", x_shape=x.shape, dtype=x.dtype,
                          normalized_shape=shape, gamma=gamma, has_beta=beta is not None)
    rows = x.reshape(-1, m)
    d, d_mean, inv_std = _normalize_rows(x, rows, eps, cache)
    if gamma is None and beta is None:
        cache.update(d=d, d_mean=d_mean)
        y = d - d_mean
        y *= inv_std
        return y.reshape(x.shape), cache
    x_hat = _x_hat_in_place(d, d_mean, inv_std, cache)
    y = x_hat * gamma.reshape(m) if gamma is not None else x_hat.copy()
    if beta is not None:
        y += beta.reshape(m)
    return y.reshape(x.shape), cache


def layer_norm_backward(dy, cache):
    """Backward pass of :func:`layer_norm_forward`.

    Parameters
    ----------
    dy : ndarray, same shape as ``x``
        Upstream gradient (follows x's dtype).
    cache : dict
        From :func:`layer_norm_forward`.

    Returns
    -------
    dx : ndarray, same shape as ``x``
    dgamma, dbeta : ndarray, shape normalized_shape, or None without gamma / beta

    Notes
    -----
    With :math:`d\\hat x = \\gamma \\odot dy` (element-wise gamma varies within
    a sample, so it stays inside the sums), :func:`normalize_backward` per
    sample; the parameter gradients sum over the samples:

    .. math:: d\\beta = \\sum_{\\text{samples}} dy, \\qquad
              d\\gamma = \\sum_{\\text{samples}} dy \\odot \\hat x

    Introduced in notebook 09 (the normalization family).
    """
    dy = _check_family_dy(dy, cache, "layer_norm_forward")
    shape, gamma = cache["normalized_shape"], cache["gamma"]
    rows = dy.reshape(-1, cache["n"])
    dgamma = dbeta = None
    with np.errstate(invalid="ignore", over="ignore"):  # reported just below, with the location
        if cache["has_beta"]:
            dbeta = rows.sum(axis=0).reshape(shape)
        if gamma is not None:
            dgamma = _sum_of_products(rows, cache["x_hat"], (0,)).reshape(shape)
            g = rows * gamma.reshape(-1)
        else:
            g = rows
        dx, sum_g, sum_g_xhat = _normalize_grad(g, cache)
    _check_grads_finite(dy, sum_g, sum_g_xhat)  # NaN or inf in dy (or overflow) shows in both sums
    return dx.reshape(cache["x_shape"]), dgamma, dbeta


def layer_norm(x, normalized_shape, gamma=None, beta=None, eps=1e-5):
    """Layer normalization, as ``torch.nn.functional.layer_norm``.

    Parameters
    ----------
    x : ndarray, shape (*, *normalized_shape)
    normalized_shape : int or tuple of int
        The trailing dimensions each sample is normalized over.
    gamma, beta : ndarray, shape normalized_shape, optional
        torch's ``weight`` and ``bias``; None leaves them out.
    eps : float, default 1e-5

    Returns
    -------
    y : ndarray, same shape and dtype as ``x``

    Notes
    -----
    .. math:: y = \\gamma \\odot \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} + \\beta,
              \\quad \\mu, \\sigma^2 \\text{ over the trailing dimensions of each sample}

    :func:`layer_norm_forward` with the cache dropped.

    Introduced in notebook 09 (the normalization family).
    """
    return layer_norm_forward(x, normalized_shape, gamma, beta, eps)[0]


def group_norm_forward(x, num_groups, gamma=None, beta=None, eps=1e-5):
    """Group normalization with a cache for :func:`group_norm_backward`.

    Parameters
    ----------
    x : ndarray, shape (N, C, *spatial)
    num_groups : int
        ``G``; must divide ``C``. 1 gives layer norm over (C, *spatial), C
        gives instance norm.
    gamma, beta : ndarray, shape (C,), optional
        Per-channel scale and shift; None leaves them out.
    eps : float, default 1e-5

    Returns
    -------
    y : ndarray, same shape and dtype as ``x``
    cache : NormalizeCache (a dict)

    Notes
    -----
    ``x`` is viewed as (N, G, C/G, *spatial); each sample's group of C/G
    channels and all their positions share one mean and variance (GN paper,
    Eq. 7):

    .. math:: y_{nc\\cdot} = \\gamma_c\\, \\frac{x_{nc\\cdot} - \\mu_{ng}}
              {\\sqrt{\\sigma^2_{ng} + \\epsilon}} + \\beta_c, \\qquad
              g = \\lfloor c / (C/G) \\rfloor

    ``torch.nn.functional.group_norm`` semantics.

    Introduced in notebook 09 (the normalization family).
    """
    x = _channels_input(x, "at least 2 dimensions")
    channels = x.shape[1]
    num_groups = v.check_positive_int("num_groups", num_groups)
    if channels % num_groups:
        raise ValueError(
            f"num_groups={num_groups} must divide the number of channels C={channels} "
            f"(x has shape {x.shape})"
        )
    eps = v.check_eps(eps)
    what = "one value per channel"
    gamma = _family_param("gamma", gamma, x.dtype, (channels,), what)
    beta = _family_param("beta", beta, x.dtype, (channels,), what)
    return _group_norm_forward(x, num_groups, gamma, beta, eps)


def _group_norm_forward(x, num_groups, gamma, beta, eps):
    """:func:`group_norm_forward` on checked arguments."""
    n_samples, channels = x.shape[:2]
    cache = _family_cache("group_norm_forward", x_shape=x.shape, dtype=x.dtype,
                          num_groups=num_groups, gamma=gamma, has_beta=beta is not None)
    rows = x.reshape(n_samples * num_groups, -1)  # (N*G, C/G * positions)
    d, d_mean, inv_std = _normalize_rows(x, rows, eps, cache)
    cache.update(d=d, d_mean=d_mean)
    # (N, G, C/G, positions): a (sample, channel) cell shares its group's statistics and its
    # channel's gamma, beta, so y = d * a + b with one a, b per cell (two passes over the data)
    cells = (n_samples, num_groups, channels // num_groups, -1)
    d_mean, inv_std = d_mean.reshape(n_samples, num_groups, 1, 1), inv_std.reshape(n_samples, num_groups, 1, 1)
    scale = inv_std if gamma is None else gamma.reshape(cells[1:3] + (1,)) * inv_std
    shift = -d_mean * scale
    if beta is not None:
        shift = shift + beta.reshape(cells[1:3] + (1,))
    y = _times_last_axis_constant(d.reshape(cells), scale)
    y += shift
    return y.reshape(x.shape), cache


def group_norm_backward(dy, cache):
    """Backward pass of :func:`group_norm_forward`.

    Parameters
    ----------
    dy : ndarray, same shape as ``x``, (N, C, *spatial)
    cache : dict
        From :func:`group_norm_forward`.

    Returns
    -------
    dx : ndarray, same shape as ``x``
    dgamma, dbeta : ndarray, shape (C,), or None without gamma / beta

    Notes
    -----
    :func:`normalize_backward` per (sample, group) with
    :math:`d\\hat x = \\gamma_c\\, dy`; :math:`d\\beta_c = \\sum_{n, \\text{pos}} dy`,
    :math:`d\\gamma_c = \\sum_{n, \\text{pos}} dy\\, \\hat x`. Gamma varies within a
    group, so the sums are first taken per (sample, channel) cell, where gamma
    is constant, then weighted by gamma and added over the group's channels:

    .. math:: \\sum_{\\text{group}} d\\hat x = \\sum_c \\gamma_c \\sum_{\\text{pos}} dy,
              \\qquad
              \\sum_{\\text{group}} d\\hat x\\, \\hat x = \\sum_c \\gamma_c
              \\sum_{\\text{pos}} dy\\, \\hat x

    Introduced in notebook 09 (the normalization family).
    """
    dy = _check_family_dy(dy, cache, "group_norm_forward")
    n_samples, channels = cache["x_shape"][:2]
    num_groups, gamma, m = cache["num_groups"], cache["gamma"], cache["n"]
    cells = (n_samples, num_groups, channels // num_groups, -1)
    dy4, d4 = dy.reshape(cells), cache["d"].reshape(cells)
    d_mean = cache["d_mean"].reshape(n_samples, num_groups, 1, 1)
    inv_std = cache["inv_std"].reshape(n_samples, num_groups, 1, 1)
    gamma4 = 1.0 if gamma is None else gamma.reshape(cells[1:3] + (1,))
    with np.errstate(invalid="ignore", over="ignore"):  # reported just below, with the location
        # per cell: sum(dy) and sum(dy * x_hat) = inv_std * (sum(dy * d) - d_mean * sum(dy))
        sum_dy = dy4.sum(axis=3, keepdims=True)
        sum_dy_xhat = inv_std * (_sum_of_products(dy4, d4, (3,)) - d_mean * sum_dy)
        # per group: the sums of dx_hat = gamma * dy and of dx_hat * x_hat
        sum_g = (gamma4 * sum_dy).sum(axis=2, keepdims=True)
        sum_g_xhat = (gamma4 * sum_dy_xhat).sum(axis=2, keepdims=True)
        # dx = inv_std * (gamma * dy - (sum_g + x_hat * sum_g_xhat) / m)
        #    = (gamma * inv_std) * dy + k * d + c,  with x_hat = (d - d_mean) * inv_std
        k = -inv_std * inv_std * sum_g_xhat / m
        c = -inv_std * sum_g / m - k * d_mean
        dx = _times_last_axis_constant(d4, k)
        dx += c
        dx += _times_last_axis_constant(dy4, gamma4 * inv_std)
    dgamma = None if gamma is None else sum_dy_xhat.sum(axis=0).reshape(channels)
    dbeta = sum_dy.sum(axis=0).reshape(channels) if cache["has_beta"] else None
    _check_grads_finite(dy, sum_dy, sum_dy_xhat)
    return dx.reshape(cache["x_shape"]), dgamma, dbeta


def group_norm(x, num_groups, gamma=None, beta=None, eps=1e-5):
    """Group normalization, as ``torch.nn.functional.group_norm``.

    Parameters
    ----------
    x : ndarray, shape (N, C, *spatial)
    num_groups : int
        ``G``; must divide ``C``.
    gamma, beta : ndarray, shape (C,), optional
        torch's ``weight`` and ``bias``; None leaves them out.
    eps : float, default 1e-5

    Returns
    -------
    y : ndarray, same shape and dtype as ``x``

    Notes
    -----
    .. math:: y = \\gamma_c \\frac{x - \\mu_{ng}}{\\sqrt{\\sigma^2_{ng} + \\epsilon}} + \\beta_c,
              \\quad \\mu_{ng}, \\sigma^2_{ng} \\text{ over the } C/G
              \\text{ channels of group } g \\text{ and all positions of sample } n

    :func:`group_norm_forward` with the cache dropped.

    Introduced in notebook 09 (the normalization family).
    """
    return group_norm_forward(x, num_groups, gamma, beta, eps)[0]


def instance_norm_forward(x, gamma=None, beta=None, eps=1e-5):
    """Instance normalization with a cache for :func:`instance_norm_backward`.

    Parameters
    ----------
    x : ndarray, shape (N, C, *spatial)
        At least one spatial dimension, and more than one position (one
        value has no variance; PyTorch refuses it too).
    gamma, beta : ndarray, shape (C,), optional
        Per-channel scale and shift; None leaves them out.
    eps : float, default 1e-5

    Returns
    -------
    y : ndarray, same shape and dtype as ``x``
    cache : NormalizeCache (a dict)

    Notes
    -----
    Per sample and channel, over the positions (GN paper, Eq. 5):

    .. math:: y_{nc\\cdot} = \\gamma_c\\, \\frac{x_{nc\\cdot} - \\mu_{nc}}
              {\\sqrt{\\sigma^2_{nc} + \\epsilon}} + \\beta_c

    Batch statistics always (``torch.nn.functional.instance_norm`` with
    ``use_input_stats=True`` and no running statistics). Gamma is constant
    over each (sample, channel) group, so the affine step is folded into
    the normalization as in :func:`batchnorm_forward`.

    Introduced in notebook 09 (the normalization family).
    """
    x = _channels_input(x, "at least one spatial dimension")
    if x.ndim < 3:
        raise ValueError(
            f"x must have shape (N, C, *spatial) with at least one spatial dimension, got shape {x.shape}"
        )
    n_samples, channels = x.shape[:2]
    positions = int(np.prod(x.shape[2:], dtype=np.int64))
    if positions < 2:
        raise ValueError(
            f"x of shape {x.shape} has only one position per channel: instance norm has no "
            "variance to estimate (the output would be all zeros); use a spatial size of at least 2"
        )
    eps = v.check_eps(eps)
    what = "one value per channel"
    gamma = _family_param("gamma", gamma, x.dtype, (channels,), what)
    beta = _family_param("beta", beta, x.dtype, (channels,), what)
    per_channel = x.reshape(n_samples, channels, positions)
    d, d_mean, mean, var, inv_std = _moments(per_channel, (2,), eps, locate=x)
    scale = inv_std if gamma is None else gamma[:, None] * inv_std
    y = d * scale
    y -= d_mean * scale
    if beta is not None:
        y += beta[:, None]
    cache = _family_cache("instance_norm_forward", x_shape=x.shape, dtype=x.dtype, gamma=gamma,
                          has_beta=beta is not None, d=d, d_mean=d_mean, mean=mean, var=var,
                          inv_std=inv_std, eps=eps, axis=(2,), n=positions)
    return y.reshape(x.shape), cache


def instance_norm_backward(dy, cache):
    """Backward pass of :func:`instance_norm_forward`.

    Parameters
    ----------
    dy : ndarray, same shape as ``x``, (N, C, *spatial)
    cache : dict
        From :func:`instance_norm_forward`.

    Returns
    -------
    dx : ndarray, same shape as ``x``
    dgamma, dbeta : ndarray, shape (C,), or None without gamma / beta

    Notes
    -----
    BN's closed form per (sample, channel): gamma is constant there, so it
    comes out of the sums, and :math:`d\\beta_c`, :math:`d\\gamma_c` are the
    per-(sample, channel) sums of :math:`dy` and :math:`dy\\,\\hat x` added
    over the samples.

    Introduced in notebook 09 (the normalization family).
    """
    dy = _check_family_dy(dy, cache, "instance_norm_forward")
    gamma = cache["gamma"]
    per_channel = dy.reshape(cache["d"].shape)
    with np.errstate(invalid="ignore", over="ignore"):  # reported just below, with the location
        dx, sum_dy, sum_dy_xhat = _normalize_grad(
            per_channel, cache, scale=None if gamma is None else gamma[:, None])
    dgamma = None if gamma is None else sum_dy_xhat.sum(axis=(0, 2))
    dbeta = sum_dy.sum(axis=(0, 2)) if cache["has_beta"] else None
    _check_grads_finite(dy, sum_dy, sum_dy_xhat)
    return dx.reshape(cache["x_shape"]), dgamma, dbeta


def instance_norm(x, gamma=None, beta=None, eps=1e-5):
    """Instance normalization, as ``torch.nn.functional.instance_norm`` without running statistics.

    Parameters
    ----------
    x : ndarray, shape (N, C, *spatial), at least one spatial dimension
    gamma, beta : ndarray, shape (C,), optional
        torch's ``weight`` and ``bias``; None leaves them out.
    eps : float, default 1e-5

    Returns
    -------
    y : ndarray, same shape and dtype as ``x``

    Notes
    -----
    .. math:: y = \\gamma_c \\frac{x - \\mu_{nc}}{\\sqrt{\\sigma^2_{nc} + \\epsilon}} + \\beta_c,
              \\quad \\mu_{nc}, \\sigma^2_{nc} \\text{ over the positions of channel } c
              \\text{ of sample } n

    torch's ``F.instance_norm(x, running_mean=None, running_var=None,
    weight, bias, use_input_stats=True, eps=eps)``: the running statistics
    come before ``weight`` in torch's argument list and are left out here.
    :func:`instance_norm_forward` with the cache dropped.

    Introduced in notebook 09 (the normalization family).
    """
    return instance_norm_forward(x, gamma, beta, eps)[0]


def _rms_eps(eps, dtype):
    if eps is None:
        return float(np.finfo(dtype).eps)
    return v.check_eps(eps)


def rms_norm_forward(x, normalized_shape, gamma=None, eps=None):
    """RMS normalization with a cache for :func:`rms_norm_backward`.

    Parameters
    ----------
    x : ndarray, shape (*, *normalized_shape)
    normalized_shape : int or tuple of int
        The trailing dimensions each sample is normalized over.
    gamma : ndarray, shape normalized_shape, optional
        Element-wise scale (torch's ``weight``); None leaves it out. There
        is no shift.
    eps : float, optional
        Added to the mean square, inside the square root. None:
        ``np.finfo(x.dtype).eps`` (2.2e-16 in float64, 1.2e-7 in float32),
        as PyTorch's ``torch.finfo(dtype).eps``.

    Returns
    -------
    y : ndarray, same shape and dtype as ``x``
    cache : NormalizeCache (a dict)
        ``x_hat`` (the normalized rows), ``inv_rms``, ``eps``, ``gamma``.

    Notes
    -----
    No mean subtraction (Zhang & Sennrich 2019), over the :math:`m` values of
    each sample's trailing dimensions:

    .. math:: y = \\frac{x}{\\sqrt{\\frac{1}{m}\\sum x^2 + \\epsilon}} \\odot \\gamma

    Equals :func:`layer_norm` on inputs whose samples have mean 0.
    ``torch.nn.functional.rms_norm`` semantics.

    Introduced in notebook 09 (the normalization family).
    """
    x = _family_input(x)
    shape, m = _trailing(x, normalized_shape)
    eps = _rms_eps(eps, x.dtype)
    gamma = _family_param("gamma", gamma, x.dtype, shape,
                          "normalized_shape: one value per normalized element")
    return _rms_norm_forward(x, shape, m, gamma, eps)


def _rms_norm_forward(x, shape, m, gamma, eps):
    """:func:`rms_norm_forward` on checked arguments (``eps`` already a number)."""
    rows = x.reshape(-1, m)
    with np.errstate(over="ignore", invalid="ignore"):  # located below
        mean_square = _sum_of_products(rows, rows, (1,)) / m
    if not np.isfinite(mean_square).all():
        v.check_finite("x", x)
        raise ValueError(
            f"the mean square of x overflowed in {x.dtype} (values up to {np.abs(x).max():.3g}); "
            "rescale the input or use float64"
        )
    inv_rms = 1.0 / np.sqrt(mean_square + eps)
    x_hat = rows * inv_rms
    y = x_hat * gamma.reshape(m) if gamma is not None else x_hat.copy()
    cache = _family_cache("rms_norm_forward", x_shape=x.shape, dtype=x.dtype, normalized_shape=shape,
                          gamma=gamma, x_hat=x_hat, inv_rms=inv_rms, mean_square=mean_square,
                          eps=eps, n=m)
    return y.reshape(x.shape), cache


def rms_norm_backward(dy, cache):
    """Backward pass of :func:`rms_norm_forward`.

    Parameters
    ----------
    dy : ndarray, same shape as ``x``
    cache : dict
        From :func:`rms_norm_forward`.

    Returns
    -------
    dx : ndarray, same shape as ``x``
    dgamma : ndarray, shape normalized_shape, or None without gamma

    Notes
    -----
    With :math:`r = 1/\\sqrt{\\overline{x^2} + \\epsilon}`, :math:`\\hat x = x r`
    and :math:`d\\hat x = \\gamma \\odot dy`, per sample:

    .. math:: dx = r\\Big(d\\hat x - \\frac{\\hat x}{m}\\sum d\\hat x\\, \\hat x\\Big),
              \\qquad d\\gamma = \\sum_{\\text{samples}} dy \\odot \\hat x

    BN's closed form without the mean term (nothing was subtracted).

    Introduced in notebook 09 (the normalization family).
    """
    dy = _check_family_dy(dy, cache, "rms_norm_forward")
    gamma, x_hat, m = cache["gamma"], cache["x_hat"], cache["n"]
    rows = dy.reshape(x_hat.shape)
    dgamma = None
    with np.errstate(invalid="ignore", over="ignore"):  # reported just below, with the location
        if gamma is not None:
            dgamma = _sum_of_products(rows, x_hat, (0,)).reshape(cache["normalized_shape"])
            g = rows * gamma.reshape(m)
        else:
            g = rows
        sum_g_xhat = _sum_of_products(g, x_hat, (1,))
        dx = x_hat * (sum_g_xhat / m)
        np.subtract(g, dx, out=dx)
        dx *= cache["inv_rms"]
    _check_grads_finite(dy, sum_g_xhat, *(() if dgamma is None else (dgamma,)))
    return dx.reshape(cache["x_shape"]), dgamma


def rms_norm(x, normalized_shape, gamma=None, eps=None):
    """RMS normalization, as ``torch.nn.functional.rms_norm``.

    Parameters
    ----------
    x : ndarray, shape (*, *normalized_shape)
    normalized_shape : int or tuple of int
    gamma : ndarray, shape normalized_shape, optional
        torch's ``weight``; None leaves it out.
    eps : float, optional
        Inside the square root; None means ``np.finfo(x.dtype).eps``.

    Returns
    -------
    y : ndarray, same shape and dtype as ``x``

    Notes
    -----
    .. math:: y = \\frac{x}{\\sqrt{\\frac{1}{m}\\sum x^2 + \\epsilon}} \\odot \\gamma

    :func:`rms_norm_forward` with the cache dropped.

    Introduced in notebook 09 (the normalization family).
    """
    return rms_norm_forward(x, normalized_shape, gamma, eps)[0]


def update_running_stats(
    running_mean, running_var, batch_mean, batch_var, momentum, convention="keras", n=None
):
    """One update of the running (moving) statistics, in the named convention.

    Parameters
    ----------
    running_mean, running_var : ndarray, shape (D,) or (C,)
        Current running statistics; their dtype is kept.
    batch_mean, batch_var : ndarray, same shape
        This batch's mean and population (biased) variance, as from
        :func:`batch_stats`.
    momentum : float in [0, 1]
        Its meaning depends on the convention (see below).
    convention : {"keras", "pytorch"}
    n : int, optional
        Values per feature in the batch. Required by ``"pytorch"`` (which
        stores the unbiased variance ``batch_var * n / (n - 1)``, so ``n >= 2``).

    Returns
    -------
    new_mean, new_var : ndarray, same shape and dtype as ``running_mean``

    Notes
    -----
    keras:   ``running = momentum * running + (1 - momentum) * batch`` (biased var)

    pytorch: ``running = (1 - momentum) * running + momentum * batch``
    (``batch_var * n / (n - 1)`` for the variance)

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """
    conv = get_convention(convention)
    momentum = v.check_momentum(momentum)
    rm = v.as_float_array("running_mean", running_mean)
    rv = v.as_float_array("running_var", running_var)
    bm = v.as_float_array("batch_mean", batch_mean)
    bv = v.as_float_array("batch_var", batch_var)
    for name, array in (("running_var", rv), ("batch_mean", bm), ("batch_var", bv)):
        v.check_shape(name, array, rm.shape, "the shape of running_mean")
    for name, array in (("running_mean", rm), ("running_var", rv), ("batch_mean", bm), ("batch_var", bv)):
        v.check_finite(name, array)
    for name, array in (("running_var", rv), ("batch_var", bv)):
        if (array < 0).any():
            raise ValueError(
                f"{name} must be non-negative (a variance), got minimum {float(array.min())!r}"
            )
    if n is not None or conv.unbiased_running_var:
        if n is None:
            raise ValueError(
                "n (values per feature in the batch) is required by the pytorch convention, "
                "which stores the unbiased variance batch_var * n / (n - 1)"
            )
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"n must be an int (values per feature in the batch), got {n!r}")
        if conv.unbiased_running_var and n <= 1:
            raise ValueError(
                f"n must be at least 2 for the pytorch convention (unbiased variance divides by n - 1), got {n}"
            )
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
    return _running_update(conv, momentum, rm, rv, bm, bv, n)


def _running_update(conv, momentum, rm, rv, bm, bv, n):
    """:func:`update_running_stats` on checked arguments."""
    if conv.unbiased_running_var:
        bv = bv * (n / (n - 1))
    if conv.momentum_weights_running:
        new_mean = momentum * rm + (1.0 - momentum) * bm
        new_var = momentum * rv + (1.0 - momentum) * bv
    else:
        new_mean = (1.0 - momentum) * rm + momentum * bm
        new_var = (1.0 - momentum) * rv + momentum * bv
    return new_mean.astype(rm.dtype, copy=False), new_var.astype(rv.dtype, copy=False)


def fold_batchnorm(W, b, running_mean, running_var, gamma, beta, eps, out_axis=-1):
    """Fold an evaluation-mode BN into the linear layer before it: one layer instead of two.

    A linear layer (dense or convolution) followed by BN in evaluation mode
    is one affine map per output feature, so it equals a single linear layer
    with rescaled weights and a new bias (the paper's Sec. 3.1; what
    ``torch.nn.utils.fusion.fuse_linear_bn_eval`` and ``fuse_conv_bn_eval`` do).

    Parameters
    ----------
    W : ndarray
        The linear layer's weights: ``(D, M)`` for bnlab's ``Dense``
        (``x @ W``, ``out_axis=-1``), ``(M, D)`` for ``torch.nn.Linear``
        (``out_axis=0``), ``(C_out, C_in, kh, kw)`` for a convolution
        (``out_axis=0``).
    b : ndarray, shape (M,), or None
        The linear layer's bias; None means no bias (zeros).
    running_mean, running_var : ndarray, shape (M,)
        The BN layer's running statistics (``running_var`` non-negative).
    gamma, beta : ndarray, shape (M,), or None
        The BN layer's scale and shift; None means no affine (``gamma = 1``,
        ``beta = 0``, PyTorch's ``affine=False``).
    eps : float > 0
        The BN layer's eps.
    out_axis : int, default -1
        The axis of ``W`` that indexes output features (``M`` long).

    Returns
    -------
    W_folded : ndarray, same shape and dtype as ``W``
    b_folded : ndarray, shape (M,)
        Dtype of ``b``, or of ``W`` when ``b`` is None.

    Notes
    -----
    With :math:`s = \\gamma / \\sqrt{\\sigma^2_{run} + \\epsilon}` per output feature,

    .. math:: \\mathrm{BN}(xW + b) = \\big(xW + b - \\mu_{run}\\big)\\, s + \\beta
              = x\\,\\underbrace{W \\mathrm{diag}(s)}_{W'}
              + \\underbrace{(b - \\mu_{run})\\, s + \\beta}_{b'}

    ``W'`` scales each output feature's weights (the slice of ``W`` at each
    index of ``out_axis``) by its ``s``. The scale ``s`` and the new bias
    are computed in the statistics' dtype and then cast to ``W``'s and
    ``b``'s, as PyTorch does; nothing is modified in place. Forgetting to
    push the old bias through ``s`` is a classic bug (it hides while the
    bias is 0, as it usually is before BN).

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    W = v.as_float_array("W", W)
    if W.ndim == 0:
        raise ValueError("W must be an array of weights with at least one dimension, got a scalar")
    v.check_finite("W", W)
    if isinstance(out_axis, bool) or not isinstance(out_axis, numbers.Integral):
        raise TypeError(f"out_axis must be an int (the axis of W indexing output features), got {out_axis!r}")
    if not -W.ndim <= out_axis < W.ndim:
        raise ValueError(
            f"out_axis={out_axis!r} is out of range for W of shape {W.shape} "
            f"(valid axes: {-W.ndim}..{W.ndim - 1})"
        )
    out_axis = int(out_axis) % W.ndim
    features = (W.shape[out_axis],)
    what = f"one value per output feature: W.shape[{out_axis}] = {features[0]}"

    def per_feature(name, value, optional=False):
        if value is None and optional:
            return None
        array = v.as_float_array(name, value)
        v.check_shape(name, array, features, what)
        v.check_finite(name, array)
        return array

    b = per_feature("b", b, optional=True)
    running_mean = per_feature("running_mean", running_mean)
    running_var = per_feature("running_var", running_var)
    if (running_var < 0).any():
        raise ValueError(
            f"running_var must be non-negative (a variance), got minimum {float(running_var.min())!r}"
        )
    gamma = per_feature("gamma", gamma, optional=True)
    beta = per_feature("beta", beta, optional=True)
    eps = v.check_eps(eps)
    scale = 1.0 / np.sqrt(running_var + eps)
    if gamma is not None:
        scale = gamma * scale
    bias_dtype = W.dtype if b is None else b.dtype
    b_folded = ((0.0 if b is None else b) - running_mean) * scale
    if beta is not None:
        b_folded = b_folded + beta
    shape = [1] * W.ndim
    shape[out_axis] = features[0]
    W_folded = W * scale.astype(W.dtype).reshape(shape)
    return W_folded, b_folded.astype(bias_dtype, copy=False)
