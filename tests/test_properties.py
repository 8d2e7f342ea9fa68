"""Properties of batch normalization over random shapes, dtypes, scales and offsets (hypothesis).

Set ``BNLAB_HYPOTHESIS_EXAMPLES`` (for example to 1000) for a longer search
than the default, which keeps this file to a few seconds.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import bnlab
from bnlab import (
    BatchNorm,
    affine,
    batch_stats,
    batchnorm_backward,
    batchnorm_backward_graph,
    batchnorm_forward,
    normalize,
    numerical_gradient,
    rel_error,
    update_running_stats,
)

EXAMPLES = int(os.environ.get("BNLAB_HYPOTHESIS_EXAMPLES", "50"))
PROPERTY = settings(
    deadline=None, max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow]
)
FLOATS = (np.float32, np.float64)


def ulps(dtype, k):
    """``k`` units of roundoff of ``dtype``."""
    return k * float(np.finfo(dtype).eps)


class Batch:
    """A drawn example: the batch, its reduction axis and its per-feature parameters."""

    def __init__(self, z, axis, rng):
        self.z, self.axis, self.rng = z, axis, rng
        axes = (axis,) if isinstance(axis, int) else axis
        self.axes = axes
        self.feature_shape = tuple(s for i, s in enumerate(z.shape) if i not in axes)
        self.bshape = tuple(1 if i in axes else s for i, s in enumerate(z.shape))
        self.n = int(np.prod([z.shape[a] for a in axes]))

    def per_feature(self, values):
        return np.asarray(values).reshape(self.bshape)

    def gamma_beta(self):
        gamma = self.rng.normal(1.0, 0.5, self.feature_shape).astype(self.z.dtype)
        beta = self.rng.normal(0.0, 1.0, self.feature_shape).astype(self.z.dtype)
        return gamma, beta

    def upstream(self):
        """A random upstream gradient (never all ones)."""
        return self.rng.standard_normal(self.z.shape).astype(self.z.dtype)

    def __repr__(self):  # what hypothesis prints for a failing example
        return (
            f"Batch(shape={self.z.shape}, dtype={self.z.dtype}, axis={self.axis}, z=\n{self.z!r})"
        )


@st.composite
def batches(
    draw, dtypes=FLOATS, min_n=2, max_n=32, log_scale=(-2.0, 2.0), max_offset=1e3, exact_scale=False
):
    """(N, D) with axis 0, or (N, C, H, W) with axis (0, 2, 3); per-feature scales and an offset.

    With ``exact_scale`` every feature's batch standard deviation is exactly its drawn scale
    (the Gaussian draw is standardized first): no feature has a tiny variance by chance.
    """
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    if draw(st.booleans()):
        shape = (draw(st.integers(min_n, max_n)), draw(st.integers(1, 5)))
        axis = 0
    else:
        # N * H * W values per channel, at most max_n
        n_ = draw(st.integers(1, min(4, max_n)))
        h_ = draw(st.integers(1, min(4, max_n // n_)))
        w_ = draw(st.integers(1, min(4, max_n // (n_ * h_))))
        shape = (n_, draw(st.integers(1, 3)), h_, w_)
        axis = (0, 2, 3)
        assume(n_ * h_ * w_ >= min_n)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale_exp = draw(st.floats(*log_scale))
    offset = draw(st.one_of(st.just(0.0), st.floats(-max_offset, max_offset)))
    probe = Batch(np.empty(shape, dtype), axis, rng)
    scales = probe.per_feature(10.0 ** (scale_exp + rng.uniform(-0.5, 0.5, probe.feature_shape)))
    offsets = probe.per_feature(offset + rng.uniform(-1, 1, probe.feature_shape) * abs(offset) / 10)
    noise = rng.standard_normal(shape)
    if exact_scale:
        noise -= noise.mean(axis=probe.axes, keepdims=True)
        spread = noise.std(axis=probe.axes, keepdims=True)
        assume(np.all(spread > 1e-3))
        noise /= spread
    z = (offsets + scales * noise).astype(dtype)
    return Batch(z, axis, rng)


EPS = st.sampled_from([1e-5, 1e-3, 1e-1])


def exact_moments(batch):
    """Per-feature mean and population variance, correctly rounded sums (math.fsum) in float64."""
    values = np.moveaxis(batch.z.astype(np.float64), batch.axes, range(len(batch.axes)))
    values = values.reshape(batch.n, -1)
    means = np.array([math.fsum(col) / batch.n for col in values.T])
    variances = np.array([math.fsum((col - m) ** 2) / batch.n for col, m in zip(values.T, means)])
    return means.reshape(batch.feature_shape), variances.reshape(batch.feature_shape)


# --- normalization --------------------------------------------------------------------------------


@PROPERTY
@given(batch=batches(), eps=EPS)
def test_normalized_output_has_mean_zero_and_variance_var_over_var_plus_eps(batch, eps):
    z, axis = batch.z, batch.axis
    ones, zeros = np.ones(batch.feature_shape, z.dtype), np.zeros(batch.feature_shape, z.dtype)
    y, _ = batchnorm_forward(z, ones, zeros, eps=eps, axis=axis)
    mean, var = batch_stats(z, axis=axis)
    z_hat = normalize(z, mean, var, eps=eps, axis=axis)
    reference_var = z.astype(np.float64).var(axis=batch.axes)  # same data, in float64
    expected = reference_var / (reference_var + eps)  # < 1: eps pulls the variance down
    tol = ulps(z.dtype, 64)
    # normalize() receives the mean rounded to z's dtype: that rounding (|mean| * eps_dtype / 2)
    # shifts every z_hat alike; batchnorm_forward never rounds the mean (shifted algorithm)
    mean_rounding = (
        ulps(z.dtype, 1) * np.abs(mean.astype(np.float64)) / np.sqrt(reference_var + eps)
    )
    for out, mean_tol in ((y, tol), (z_hat, tol + mean_rounding)):
        assert out.dtype == z.dtype and out.shape == z.shape
        out64 = out.astype(np.float64)
        assert np.all(np.abs(out64.mean(axis=batch.axes)) <= mean_tol)
        np.testing.assert_allclose(out64.var(axis=batch.axes), expected, rtol=0, atol=tol)


@PROPERTY
@given(batch=batches(), eps=EPS)
def test_batch_stats_match_float64_reference(batch, eps):
    mean, var = batch_stats(batch.z, axis=batch.axis)
    ref_mean, ref_var = exact_moments(batch)
    assert mean.dtype == var.dtype == batch.z.dtype
    # a few ulps of the spread, plus the rounding of the mean itself to z's dtype
    mean_tol = ulps(batch.z.dtype, 64) * np.sqrt(ref_var) + ulps(batch.z.dtype, 1) * np.abs(
        ref_mean
    )
    assert np.all(np.abs(mean - ref_mean) <= mean_tol)
    np.testing.assert_allclose(var, ref_var, rtol=ulps(batch.z.dtype, 64), atol=0)


@PROPERTY
@given(
    batch=batches(dtypes=(np.float64,), min_n=2, log_scale=(-0.5, 0.5), max_offset=10),
    log_a=st.floats(-2, 2),
    negative=st.booleans(),
    b=st.floats(-1e3, 1e3),
    eps=EPS,
)
def test_affine_invariance_of_the_input(batch, log_a, negative, b, eps):
    """BN(a z + b) with eps is BN(z) with eps / a^2; a < 0 flips z_hat: y = -gamma z_hat + beta.

    The gradient with respect to the transformed input is 1/|a| times the
    original one, for either sign of a (Ioffe & Szegedy's scale invariance:
    larger inputs get smaller gradients); dgamma flips sign with a, dbeta
    does not change.
    """
    z, axis = batch.z, batch.axis
    a = -(10.0**log_a) if negative else 10.0**log_a
    gamma, beta = batch.gamma_beta()
    dy = batch.upstream()

    y_t, cache_t = batchnorm_forward(a * z + b, gamma, beta, eps=eps, axis=axis)
    y, cache = batchnorm_forward(z, gamma, beta, eps=eps / a**2, axis=axis)
    sign = np.sign(a)
    tol = 1e-9
    np.testing.assert_allclose(cache_t["z_hat"], sign * cache["z_hat"], rtol=0, atol=tol)
    np.testing.assert_allclose(
        y_t,
        affine(sign * cache["z_hat"], gamma, beta, axis=axis),
        rtol=0,
        atol=tol * (1 + np.abs(gamma).max()),
    )
    if negative:  # y' + y = 2 beta: the output is mirrored around beta, not unchanged
        np.testing.assert_allclose(
            y_t + y,
            np.broadcast_to(2 * batch.per_feature(beta), y.shape),
            rtol=0,
            atol=tol * (1 + np.abs(gamma).max()),
        )
    else:
        np.testing.assert_allclose(y_t, y, rtol=0, atol=tol * (1 + np.abs(gamma).max()))

    dz_t, dgamma_t, dbeta_t = batchnorm_backward(dy, cache_t)
    dz, dgamma, dbeta = batchnorm_backward(dy, cache)
    np.testing.assert_allclose(dz_t * abs(a), dz, rtol=0, atol=1e-8 * np.abs(dz).max() + 1e-12)
    np.testing.assert_allclose(dgamma_t, sign * dgamma, rtol=0, atol=1e-8 * batch.n)
    np.testing.assert_allclose(dbeta_t, dbeta, rtol=1e-12, atol=1e-12)


@PROPERTY
@given(
    batch=batches(dtypes=(np.float64,), log_scale=(-1, 1), max_offset=10),
    log_a=st.floats(0.05, 1),
    shrink=st.booleans(),
    b=st.floats(-10, 10),
)
def test_same_eps_is_not_invariant(batch, log_a, shrink, b):
    """With the same eps, BN(a z + b) differs from BN(z) exactly as eps / a^2 versus eps says."""
    a = 10.0 ** (-log_a if shrink else log_a)
    eps = 1e-1
    ones = np.ones(batch.feature_shape)
    zeros = np.zeros(batch.feature_shape)
    z_hat_t, _ = batchnorm_forward(a * batch.z + b, ones, zeros, eps=eps, axis=batch.axis)
    z_hat, _ = batchnorm_forward(batch.z, ones, zeros, eps=eps, axis=batch.axis)
    var = batch.z.var(axis=batch.axes)
    ratio = np.sqrt((var + eps) / (var + eps / a**2))  # z_hat_t / z_hat, per feature
    np.testing.assert_allclose(z_hat_t, z_hat * batch.per_feature(ratio), rtol=1e-9, atol=1e-12)


# --- backward -------------------------------------------------------------------------------------


def well_conditioned(*grads):
    """rel_error is element-wise: an element that is ~0 by chance turns a 1e-11 finite-difference
    error into a large relative one. Skip such draws (a few percent); the absolute error is
    checked on every draw."""
    return all(np.abs(g).min() > 1e-3 * np.abs(g).max() for g in grads)


@PROPERTY
@given(
    batch=batches(
        dtypes=(np.float64,),
        min_n=4,
        max_n=8,
        log_scale=(-0.5, 0.5),
        max_offset=10,
        exact_scale=True,
    ),
    eps=EPS,
)
def test_gradient_check_against_numerical_gradient(batch, eps):
    """Well-conditioned inputs: 4 to 8 values per feature, standard deviations 0.3 to 3."""
    z, axis = batch.z, batch.axis
    gamma, beta = batch.gamma_beta()
    dy = batch.upstream()
    _, cache = batchnorm_forward(z, gamma, beta, eps=eps, axis=axis)
    dz, dgamma, dbeta = batchnorm_backward(dy, cache)

    num_dz = numerical_gradient(
        lambda z_: batchnorm_forward(z_, gamma, beta, eps=eps, axis=axis)[0], z.copy(), dy
    )
    num_dgamma = numerical_gradient(
        lambda g_: batchnorm_forward(z, g_, beta, eps=eps, axis=axis)[0], gamma.copy(), dy
    )
    num_dbeta = numerical_gradient(
        lambda b_: batchnorm_forward(z, gamma, b_, eps=eps, axis=axis)[0], beta.copy(), dy
    )

    for analytic, numeric in ((dz, num_dz), (dgamma, num_dgamma), (dbeta, num_dbeta)):
        assert analytic.shape == numeric.shape
        assert np.abs(analytic - numeric).max() <= 1e-8 * np.abs(numeric).max() + 1e-12
    assume(well_conditioned(dz, dgamma, dbeta))
    assert rel_error(dz, num_dz) < 1e-7
    assert rel_error(dgamma, num_dgamma) < 1e-7
    assert rel_error(dbeta, num_dbeta) < 1e-7


def test_gradient_check_detects_a_wrong_backward():
    """The check above can fail: the eval-mode formula (ignoring the batch terms) is caught."""
    rng = np.random.default_rng(5)
    z, dy = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    gamma, beta = rng.normal(1, 0.3, size=3), rng.normal(size=3)
    _, cache = batchnorm_forward(z, gamma, beta)
    wrong_dz = dy * cache["gamma"] * cache["inv_std"]
    num_dz = numerical_gradient(lambda z_: batchnorm_forward(z_, gamma, beta)[0], z.copy(), dy)
    assert rel_error(wrong_dz, num_dz) > 1e-2
    assert rel_error(batchnorm_backward(dy, cache)[0], num_dz) < 1e-7


@PROPERTY
@given(batch=batches(dtypes=(np.float64,)), eps=EPS)
def test_closed_form_backward_equals_graph_backward(batch, eps):
    gamma, beta = batch.gamma_beta()
    dy = batch.upstream()
    _, cache = batchnorm_forward(batch.z, gamma, beta, eps=eps, axis=batch.axis)
    closed = batchnorm_backward(dy, cache)
    graph = batchnorm_backward_graph(dy, cache)
    # the scale roundoff is relative to: dz is formed from gamma * inv_std * dy and cancels
    # (to ~1e-11 for a batch of two); dgamma and dbeta are sums of n terms of size |dy|
    dz_scale = np.abs(batch.per_feature(gamma) * cache["inv_std"] * dy).max()
    sum_scale = batch.n * np.abs(dy).max()
    for c, g, scale in zip(closed, graph, (dz_scale, sum_scale, sum_scale)):
        assert c.shape == g.shape and c.dtype == g.dtype == np.float64
        np.testing.assert_allclose(c, g, rtol=1e-9, atol=1e-12 * scale)


@PROPERTY
@given(batch=batches(), eps=EPS)
def test_input_gradient_sums_to_zero_over_the_batch(batch, eps):
    """Moving every sample of a feature by the same amount changes nothing after BN."""
    gamma, beta = batch.gamma_beta()
    _, cache = batchnorm_forward(batch.z, gamma, beta, eps=eps, axis=batch.axis)
    dy = batch.upstream()
    dz, _, _ = batchnorm_backward(dy, cache)
    total = np.abs(dz.astype(np.float64).sum(axis=batch.axes))
    # roundoff is relative to the size of the terms dz is formed from (gamma * inv_std * dy),
    # not to dz itself, which cancels to nearly 0 for a batch of two
    terms = np.abs(batch.per_feature(gamma) * cache["inv_std"] * dy).astype(np.float64)
    assert np.all(total <= ulps(dz.dtype, 16) * batch.n * terms.sum(axis=batch.axes))


@PROPERTY
@given(batch=batches(min_n=3), eps=EPS)
def test_all_ones_upstream_gradient_gives_zero_input_gradient(batch, eps):
    """The trap: with dy = 1 the loss is sum(y) = n * sum(beta), whatever z is, so dz = 0.

    A gradient check with an all-ones dy compares zero with zero and proves
    nothing; with a random dy the same gradient is far from zero.
    """
    z, axis = batch.z, batch.axis
    gamma, beta = batch.gamma_beta()
    _, cache = batchnorm_forward(z, gamma, beta, eps=eps, axis=axis)
    dz, dgamma, dbeta = batchnorm_backward(np.ones_like(z), cache)
    scale = np.abs(batch.per_feature(gamma) * cache["inv_std"]).astype(
        np.float64
    )  # |dz| per unit dy
    assert np.all(np.abs(dz) <= ulps(z.dtype, 32) * batch.n * scale)
    np.testing.assert_allclose(dbeta, batch.n, rtol=ulps(z.dtype, 4))
    assert np.all(np.abs(dgamma) <= ulps(z.dtype, 32) * batch.n)  # sum of z_hat is 0

    dz_random, _, _ = batchnorm_backward(batch.upstream(), cache)
    biggest = np.abs(dz_random).max(axis=batch.axes, keepdims=True)
    informative = cache["var"] / (cache["var"] + eps) > 0.5  # features not dominated by eps
    if batch.n >= 4:
        assert np.all((biggest > 1e-3 * scale)[informative])


def test_all_ones_numerical_gradient_cannot_tell_a_broken_backward():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5, 2))
    gamma, beta = np.array([1.5, 0.5]), np.array([0.1, -0.2])

    def f(z_):
        return batchnorm_forward(z_, gamma, beta)[0]

    ones = np.ones_like(z)
    num_ones = numerical_gradient(f, z.copy(), ones)
    assert np.abs(num_ones).max() < 1e-9  # a "backward" returning zeros would look right
    num_random = numerical_gradient(f, z.copy(), rng.normal(size=z.shape))
    assert np.abs(num_random).max() > 0.1  # ... and is caught with a random dy


# --- dtype policy ---------------------------------------------------------------------------------


@PROPERTY
@given(
    batch=batches(dtypes=(np.float32,), max_offset=10),
    param_dtype=st.sampled_from([np.float32, np.float64, np.int64]),
    running_dtype=st.sampled_from([np.float32, np.float64]),
)
def test_float32_in_float32_out_everywhere(batch, param_dtype, running_dtype):
    z, axis, fs = batch.z, batch.axis, batch.feature_shape
    gamma = np.ones(fs, param_dtype) * 2
    beta = np.ones(fs, param_dtype)
    mean, var = batch_stats(z, axis=axis)
    assert mean.dtype == var.dtype == np.float32
    assert (
        normalize(z, mean.astype(param_dtype), var.astype(param_dtype), axis=axis).dtype
        == np.float32
    )
    assert affine(z, gamma, beta, axis=axis).dtype == np.float32
    y, cache = batchnorm_forward(z, gamma, beta, axis=axis)
    assert y.dtype == np.float32
    for key in ("z_hat", "mean", "var", "inv_std", "gamma"):
        assert cache[key].dtype == np.float32, key
    dy = batch.upstream().astype(param_dtype)
    for grads in (batchnorm_backward(dy, cache), batchnorm_backward_graph(dy, cache)):
        assert all(g.dtype == np.float32 for g in grads)
    # running statistics keep their own dtype, whatever the batch's
    rm, rv = np.zeros(fs, running_dtype), np.ones(fs, running_dtype)
    new_mean, new_var = update_running_stats(
        rm, rv, mean, var, 0.9, convention="pytorch", n=batch.n
    )
    assert new_mean.dtype == new_var.dtype == running_dtype
    new_mean, new_var = update_running_stats(rm, rv, mean.astype(np.float64), var, 0.9)
    assert new_mean.dtype == new_var.dtype == running_dtype


def test_gamma_beta_dy_follow_z_dtype_values():
    """float64 gamma with float32 z is rounded to float32 first, not the other way round."""
    rng = np.random.default_rng(0)
    z32 = rng.normal(size=(8, 3)).astype(np.float32)
    gamma64 = np.array([1 / 3, 2 / 3, 1.1])
    beta64 = np.array([0.1, 0.2, 0.3])
    y, cache = batchnorm_forward(z32, gamma64, beta64)
    y_ref, _ = batchnorm_forward(z32, gamma64.astype(np.float32), beta64.astype(np.float32))
    np.testing.assert_array_equal(y, y_ref)
    # float32 gamma with float64 z: computed in float64
    z64 = z32.astype(np.float64)
    y64, cache64 = batchnorm_forward(z64, gamma64.astype(np.float32), beta64.astype(np.float32))
    assert y64.dtype == np.float64 and cache64["gamma"].dtype == np.float64
    dy = rng.normal(size=(8, 3))
    dz, dgamma, dbeta = batchnorm_backward(dy, cache)  # float64 dy into a float32 cache
    assert dz.dtype == dgamma.dtype == dbeta.dtype == np.float32


@pytest.mark.parametrize("int_dtype", [np.int8, np.int32, np.int64, np.uint16])
def test_integer_input_is_computed_in_float64(int_dtype):
    z = np.array([[1, 2], [3, 5], [4, 9]], dtype=int_dtype)
    mean, var = batch_stats(z)
    assert mean.dtype == var.dtype == np.float64
    np.testing.assert_allclose(var, z.astype(np.float64).var(axis=0), rtol=1e-15)
    y, cache = batchnorm_forward(z, np.ones(2, int_dtype), np.zeros(2, int_dtype))
    assert y.dtype == np.float64
    assert normalize(z, mean, var).dtype == np.float64
    assert affine(z, [1, 2], [0, 0]).dtype == np.float64
    dz, dgamma, dbeta = batchnorm_backward(np.ones(z.shape, int_dtype), cache)
    assert dz.dtype == dgamma.dtype == dbeta.dtype == np.float64
    new = update_running_stats(np.zeros(2, np.int64), np.ones(2, np.int64), mean, var, 0.5)
    assert new[0].dtype == new[1].dtype == np.float64


@pytest.mark.parametrize("layer_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("z_dtype", [np.float32, np.float64, np.int32])
def test_batchnorm_layer_dtypes(layer_dtype, z_dtype):
    bn = BatchNorm(3, convention="pytorch", dtype=layer_dtype)
    z = (np.arange(12).reshape(4, 3) ** 2).astype(z_dtype)
    out_dtype = np.float64 if np.dtype(z_dtype).kind == "i" else np.dtype(z_dtype)
    for training in (True, False):
        y = bn.forward(z, training=training)
        assert y.dtype == out_dtype
        dz = bn.backward(np.ones(z.shape, np.float64))
        assert dz.dtype == out_dtype
        for arr in (bn.gamma, bn.beta, bn.running_mean, bn.running_var, bn.dgamma, bn.dbeta):
            assert arr.dtype == layer_dtype
    assert bnlab.BatchNorm(2).running_var.dtype == np.float64
