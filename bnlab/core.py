"""Batch normalization step by step: pure NumPy functions of arrays.

No printing, no plotting, no globals, no mutation of inputs. State (running
statistics) is passed in and the new state returned.

``axis`` always names the axes reduced over, as in NumPy: ``0`` for a dense
layer's ``(N, D)`` activations, ``(0, 2, 3)`` for a convolution's
``(N, C, H, W)``. Statistics come back with those axes removed.

Floating input keeps its dtype (float32 in, float32 out); integer input is
computed in float64; ``gamma``, ``beta`` and ``dy`` follow ``z``'s dtype.
"""

from __future__ import annotations

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
]

# How many leading samples the variance's shift reference is averaged over.
_SHIFT_SAMPLES = 16


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
    letters = string.ascii_letters[: a.ndim]
    kept = "".join(letter for i, letter in enumerate(letters) if i not in axes)
    total = np.einsum(f"{letters},{letters}->{kept}", a, b)
    return np.reshape(total, v.broadcast_shape(a.shape, axes))


def _shifted_moments(z, axes):
    """Mean, population variance and the shifted data ``z - shift`` (kept for reuse).

    The shifted, corrected two-pass algorithm: subtract a reference ``shift``
    close to the data (the mean of the first few samples), then
    ``mean = shift + mean(d)`` and ``var = mean(d**2) - mean(d)**2`` with
    ``d = z - shift``. Because ``d`` is of the order of the standard
    deviation, no catastrophic cancellation happens even far from zero, where
    ``np.var`` in float32 (which accumulates row by row) loses digits.
    """
    first = axes[0]
    head = tuple(
        slice(0, _SHIFT_SAMPLES) if i == first else slice(0, 1) if i in axes else slice(None)
        for i in range(z.ndim)
    )
    # Non-finite input or overflow is reported by _check_stats_finite, which
    # locates the culprit: no RuntimeWarning (inf - inf, ...) before that error.
    with np.errstate(invalid="ignore", over="ignore"):
        shift = z[head].mean(axis=axes, keepdims=True)
        d = z - shift
        d_mean = d.mean(axis=axes, keepdims=True)
        var = _sum_of_products(d, d, axes) / v.values_per_feature(z.shape, axes)
        var -= np.square(d_mean)
        mean = shift + d_mean
    np.maximum(var, 0, out=var)  # rounding can leave -1e-9 for a constant feature
    return mean, var, d, d_mean


def _check_stats_finite(z, mean, var, name="z"):
    """Cheap check on the statistics; locate the culprit only when something is wrong."""
    if np.isfinite(mean).all() and np.isfinite(var).all():
        return
    v.check_finite(name, z)
    raise ValueError(
        f"the statistics of {name} overflowed in {z.dtype} (values up to {np.abs(z).max():.3g}); "
        "rescale the input or use float64"
    )


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

    Introduced in ``notebooks/02_normalization.ipynb``.
    """
    z, axes, n = _prepare_z(z, axis, training=True)
    eps = v.check_eps(eps)
    gamma = _stat("gamma", gamma, z, axes, "the per-feature scale")
    beta = _stat("beta", beta, z, axes, "the per-feature shift")
    return _forward(z, gamma, beta, eps, axes, n)


def _forward(z, gamma, beta, eps, axes, n):
    """:func:`batchnorm_forward` on checked arguments (gamma, beta already broadcastable)."""
    mean, var, d, d_mean = _shifted_moments(z, axes)
    _check_stats_finite(z, mean, var)
    inv_std = 1.0 / np.sqrt(var + eps)
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


class BatchNormCache(dict):
    """The cache of :func:`batchnorm_forward`: a dict whose ``"z_hat"`` is computed on first read.

    ``z_hat = (d - d_mean) * inv_std`` from the shifted copy ``d = z - shift``
    kept by the forward pass. The closed-form backward works from ``d``
    directly, so a training step never pays for ``z_hat``; a notebook or a
    test that reads ``cache["z_hat"]`` gets it (computed once, then stored).
    """

    def __missing__(self, key):
        if key != "z_hat":
            raise KeyError(key)
        z_hat = (self["d"] - self["d_mean"]) * self["inv_std"]
        self["z_hat"] = z_hat
        return z_hat

    def __contains__(self, key):
        return key == "z_hat" or dict.__contains__(self, key)

    def get(self, key, default=None):
        return self[key] if key in self else default


def _check_dy(dy, cache):
    if not isinstance(cache, BatchNormCache):
        raise TypeError("cache must be the dict returned by batchnorm_forward")
    d = cache["d"]
    dy = v.as_float_array("dy", dy, dtype=d.dtype)
    v.check_shape("dy", dy, d.shape, "the shape of z")
    return dy


def _check_grads_finite(dy, *grads):
    if all(np.isfinite(g).all() for g in grads):
        return
    v.check_finite("dy", dy)
    raise ValueError("the gradients overflowed; rescale dy or use float64")


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
    amount changes nothing after normalization.

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    dy = _check_dy(dy, cache)
    # z_hat = (d - d_mean) * inv_std is never formed: with d = z - shift from the forward pass,
    #   dgamma = sum(dy * z_hat) = inv_std * (sum(dy * d) - d_mean * dbeta)
    #   z_hat * dgamma / n = d * k - d_mean * k,  k = inv_std * dgamma / n
    d, d_mean, inv_std = cache["d"], cache["d_mean"], cache["inv_std"]
    axes, n = cache["axis"], cache["n"]
    with np.errstate(invalid="ignore", over="ignore"):  # reported just below, with the location
        dbeta = dy.sum(axis=axes, keepdims=True)
        dgamma = inv_std * (_sum_of_products(dy, d, axes) - d_mean * dbeta)
    _check_grads_finite(dy, dbeta, dgamma)
    k = inv_std * dgamma / n
    dz = d * k                              # = z_hat * dgamma / n + d_mean * k
    dz += dbeta / n - d_mean * k            # = (dbeta + z_hat * dgamma) / n
    np.subtract(dy, dz, out=dz)
    dz *= cache["gamma"] * inv_std
    shape = v.feature_shape(d.shape, axes)
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
