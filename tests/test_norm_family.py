"""The normalization family's functions: formulas, identities, gradients, dtypes and bad input.

Layer, group, instance and RMS normalization (bnlab.core) are checked
against direct NumPy transcriptions of their definitions (``np.mean`` /
``np.var`` over the right axes), against each other (the GN paper's
identities: one operation over different axes), against finite differences
(float64, random upstream gradients, rel_error <= 1e-7), and for every bad
input of DESIGN.md, with the message asserted. The framework references are
in test_reference_family.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import bnlab
from bnlab import (
    batch_stats,
    batchnorm_backward,
    batchnorm_forward,
    group_norm,
    group_norm_backward,
    group_norm_forward,
    instance_norm,
    instance_norm_backward,
    instance_norm_forward,
    layer_norm,
    layer_norm_backward,
    layer_norm_forward,
    normalize_backward,
    normalize_forward,
    numerical_gradient,
    rel_error,
    rms_norm,
    rms_norm_backward,
    rms_norm_forward,
)

GRAD_TOL = 1e-7
EPS = 1e-5


@pytest.fixture
def rng():
    return np.random.default_rng(20180322)  # the GN paper's submission date


def maps(rng, shape=(4, 6, 3, 5), offset=3.0):
    """Conv-like maps with a different offset and scale per channel."""
    c = shape[1]
    bshape = (1, c) + (1,) * (len(shape) - 2)
    return (rng.standard_normal(shape) * rng.uniform(0.5, 3.0, c).reshape(bshape)
            + rng.uniform(-offset, offset, c).reshape(bshape))


def direct_norm(x, axes, eps):
    """The definition, read off the GN paper's Eqs. 1-3: NumPy's mean and variance over ``axes``."""
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def refused(error, *fragments):
    return pytest.raises(error, match=".*".join(re.escape(f) for f in fragments))


# --- formulas against their definitions ------------------------------------------------------------


def test_layer_norm_is_its_definition(rng):
    x = maps(rng)
    gamma = rng.normal(1.0, 0.3, size=(6, 3, 5))
    beta = rng.normal(size=(6, 3, 5))
    expected = direct_norm(x, (1, 2, 3), EPS) * gamma + beta
    np.testing.assert_allclose(layer_norm(x, (6, 3, 5), gamma, beta), expected, rtol=1e-12, atol=1e-13)
    # tokens (N, T, D) normalized over D only: the transformer's LN, not the GN paper's
    tokens = rng.normal(2.0, 3.0, size=(3, 4, 7))
    np.testing.assert_allclose(layer_norm(tokens, 7), direct_norm(tokens, (2,), EPS), rtol=1e-12, atol=1e-13)
    # an int normalized_shape means (int,); no batch dimension at all is fine too (as torch)
    np.testing.assert_array_equal(layer_norm(tokens, 7), layer_norm(tokens, (7,)))
    np.testing.assert_allclose(layer_norm(tokens[0, 0], 7), direct_norm(tokens[0, 0], (0,), EPS), rtol=1e-12)


@pytest.mark.parametrize("num_groups", [1, 2, 3, 6])
def test_group_norm_is_its_definition(rng, num_groups):
    x = maps(rng)
    gamma = rng.normal(1.0, 0.3, size=6)
    beta = rng.normal(size=6)
    grouped = x.reshape(4, num_groups, 6 // num_groups, 3, 5)
    x_hat = direct_norm(grouped, (2, 3, 4), EPS).reshape(x.shape)
    expected = x_hat * gamma[:, None, None] + beta[:, None, None]
    np.testing.assert_allclose(group_norm(x, num_groups, gamma, beta), expected, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(group_norm(x, num_groups), x_hat, rtol=1e-12, atol=1e-13)


def test_group_norm_on_dense_and_1d_inputs(rng):
    dense = rng.normal(1.0, 2.0, size=(5, 8))
    expected = direct_norm(dense.reshape(5, 4, 2), (2,), EPS).reshape(5, 8)
    np.testing.assert_allclose(group_norm(dense, 4), expected, rtol=1e-12, atol=1e-13)
    signal = maps(rng, (3, 4, 7))
    expected = direct_norm(signal.reshape(3, 2, 2, 7), (2, 3), EPS).reshape(signal.shape)
    np.testing.assert_allclose(group_norm(signal, 2), expected, rtol=1e-12, atol=1e-13)


def test_instance_norm_is_its_definition(rng):
    x = maps(rng)
    gamma, beta = rng.normal(1.0, 0.3, size=6), rng.normal(size=6)
    expected = direct_norm(x, (2, 3), EPS) * gamma[:, None, None] + beta[:, None, None]
    np.testing.assert_allclose(instance_norm(x, gamma, beta), expected, rtol=1e-12, atol=1e-13)
    signal = maps(rng, (3, 4, 7))
    np.testing.assert_allclose(instance_norm(signal), direct_norm(signal, (2,), EPS), rtol=1e-12, atol=1e-13)


def test_rms_norm_is_its_definition(rng):
    x = rng.normal(1.0, 2.0, size=(3, 4, 6))
    gamma = rng.normal(1.0, 0.3, size=6)
    for eps in (1e-6, 1e-3):
        expected = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + eps) * gamma
        np.testing.assert_allclose(rms_norm(x, 6, gamma, eps), expected, rtol=1e-13)
    expected = x / np.sqrt(np.mean(x**2, axis=(1, 2), keepdims=True) + 1e-6)
    np.testing.assert_allclose(rms_norm(x, (4, 6), eps=1e-6), expected, rtol=1e-13)


def test_rms_norm_eps_none_is_the_dtypes_machine_epsilon(rng):
    tiny = rng.normal(size=(2, 5)) * 1e-8  # mean square ~1e-16: eps matters
    for dtype in (np.float64, np.float32):
        x = tiny.astype(dtype)
        eps = np.finfo(dtype).eps
        y = rms_norm(x, 5)
        assert y.dtype == dtype
        expected = x.astype(np.float64) / np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1, keepdims=True) + eps)
        np.testing.assert_allclose(y, expected, rtol=1e-12 if dtype == np.float64 else 1e-5)
        assert np.abs(y).max() > 10 * np.abs(rms_norm(x, 5, eps=1e-3)).max()  # another eps differs
    _, cache = rms_norm_forward(tiny, 5)
    assert cache["eps"] == np.finfo(np.float64).eps
    # eps is inside the square root: with x = 0 the output is 0, not NaN
    np.testing.assert_array_equal(rms_norm(np.zeros((2, 3)), 3), 0.0)


def test_normalize_forward_over_any_axes(rng):
    x = maps(rng)
    for axis in (0, (0, 2, 3), (1, 2, 3), (2, 3), (0, 1), -1):
        x_hat, cache = normalize_forward(x, axis, eps=EPS)
        axes = tuple(a % 4 for a in np.atleast_1d(axis))
        np.testing.assert_allclose(x_hat, direct_norm(x, axes, EPS), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(cache["x_hat"], x_hat, rtol=0, atol=0)
        assert cache["n"] == int(np.prod([x.shape[a] for a in axes]))


def test_the_variance_stays_accurate_far_from_zero():
    """The shifted two-pass variance of BN serves the family: float32 data at an offset of 1e4."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((8, 4, 16, 16)) + 1e4).astype(np.float32)
    reference = direct_norm(x.astype(np.float64), (1, 2, 3), EPS)
    y = layer_norm(x, (4, 16, 16))
    assert np.abs(y - reference).max() < 2e-3  # E[x^2] - E[x]^2 in float32 would be off by O(1)
    y = group_norm(x, 2)
    assert np.abs(y - direct_norm(x.astype(np.float64).reshape(8, 2, 2, 16, 16), (2, 3, 4), EPS)
                  .reshape(x.shape)).max() < 2e-3


# --- one operation over different axes: the GN paper's identities --------------------------------


def test_group_norm_with_one_group_is_layer_norm_over_c_h_w(rng):
    x = maps(rng)
    np.testing.assert_allclose(group_norm(x, 1), layer_norm(x, (6, 3, 5)), rtol=1e-12, atol=1e-13)
    # with per-channel gamma and beta, it is LN with those broadcast over (H, W)
    gamma, beta = rng.normal(1.0, 0.3, size=6), rng.normal(size=6)
    wide = np.broadcast_to(gamma[:, None, None], (6, 3, 5)), np.broadcast_to(beta[:, None, None], (6, 3, 5))
    np.testing.assert_allclose(group_norm(x, 1, gamma, beta), layer_norm(x, (6, 3, 5), *wide),
                               rtol=1e-12, atol=1e-13)


def test_group_norm_with_c_groups_is_instance_norm(rng):
    x = maps(rng)
    gamma, beta = rng.normal(1.0, 0.3, size=6), rng.normal(size=6)
    np.testing.assert_allclose(group_norm(x, 6, gamma, beta), instance_norm(x, gamma, beta),
                               rtol=1e-12, atol=1e-13)
    dy = rng.standard_normal(x.shape)
    _, gn_cache = group_norm_forward(x, 6, gamma, beta)
    _, in_cache = instance_norm_forward(x, gamma, beta)
    for gn_grad, in_grad in zip(group_norm_backward(dy, gn_cache), instance_norm_backward(dy, in_cache)):
        np.testing.assert_allclose(gn_grad, in_grad, rtol=1e-10, atol=1e-12)


def test_rms_norm_is_layer_norm_on_zero_mean_rows(rng):
    x = rng.normal(size=(5, 8))
    x -= x.mean(axis=1, keepdims=True)
    gamma = rng.normal(1.0, 0.3, size=8)
    np.testing.assert_allclose(rms_norm(x, 8, gamma, eps=EPS), layer_norm(x, 8, gamma, eps=EPS), rtol=1e-12)
    shifted = x + 1.0  # not zero-mean any more: they part
    assert np.abs(rms_norm(shifted, 8, gamma, eps=EPS) - layer_norm(shifted, 8, gamma, eps=EPS)).max() > 0.1


def test_the_family_is_normalize_forward_over_different_axes(rng):
    x = maps(rng)
    bn = normalize_forward(x, (0, 2, 3), EPS)[0]
    np.testing.assert_allclose(batchnorm_forward(x, np.ones(6), np.zeros(6), EPS, axis=(0, 2, 3))[0], bn,
                               rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer_norm(x, (6, 3, 5)), normalize_forward(x, (1, 2, 3), EPS)[0],
                               rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(instance_norm(x), normalize_forward(x, (2, 3), EPS)[0], rtol=1e-12, atol=1e-13)
    grouped = normalize_forward(x.reshape(4, 2, 3, 3, 5), (2, 3, 4), EPS)[0].reshape(x.shape)
    np.testing.assert_allclose(group_norm(x, 2), grouped, rtol=1e-12, atol=1e-13)


def test_bn_backward_is_normalize_backward_of_gamma_dy(rng):
    x = maps(rng)
    gamma, beta = rng.normal(1.0, 0.3, size=6), rng.normal(size=6)
    dy = rng.standard_normal(x.shape)
    _, bn_cache = batchnorm_forward(x, gamma, beta, axis=(0, 2, 3))
    dz, _, _ = batchnorm_backward(dy, bn_cache)
    _, cache = normalize_forward(x, (0, 2, 3), EPS)
    np.testing.assert_allclose(normalize_backward(dy * gamma[:, None, None], cache), dz, rtol=1e-10, atol=1e-13)
    # the BN cache serves normalize_backward as well (same statistics)
    np.testing.assert_allclose(normalize_backward(dy * gamma[:, None, None], bn_cache), dz, rtol=1e-10,
                               atol=1e-13)


def test_bn_on_conv_maps_uses_n_h_w_values_per_channel(rng):
    x = maps(rng)
    n, c, h, w = x.shape
    mean, var = batch_stats(x, axis=(0, 2, 3))
    per_channel = x.transpose(1, 0, 2, 3).reshape(c, n * h * w)  # all N*H*W values of each channel
    np.testing.assert_allclose(mean, per_channel.mean(axis=1), rtol=1e-13)
    np.testing.assert_allclose(var, per_channel.var(axis=1), rtol=1e-12)
    _, cache = batchnorm_forward(x, np.ones(c), np.zeros(c), axis=(0, 2, 3))
    assert cache["n"] == n * h * w == 60
    layer = bnlab.BatchNorm(c, convention="pytorch", axis=(0, 2, 3))
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * var * 60 / 59, rtol=1e-12)  # unbiased, n = N*H*W


def test_per_sample_statistics_do_not_mix_samples(rng):
    """LN, GN and IN see one sample at a time: a batch of one gives the same as inside a batch."""
    x = maps(rng)
    gamma, beta = rng.normal(1.0, 0.3, size=6), rng.normal(size=6)
    for func in (lambda a: layer_norm(a, (6, 3, 5)), lambda a: group_norm(a, 3, gamma, beta),
                 lambda a: instance_norm(a, gamma, beta)):
        whole = func(x)
        for i in range(len(x)):
            np.testing.assert_allclose(func(x[i:i + 1])[0], whole[i], rtol=1e-13, atol=1e-14)
    changed = x.copy()
    changed[1:] *= 10.0  # other samples change: sample 0's output does not
    np.testing.assert_allclose(group_norm(changed, 3)[0], group_norm(x, 3)[0], rtol=1e-13, atol=1e-14)
    # while BN's output of sample 0 does change
    bn_changed, bn_before = (normalize_forward(a, (0, 2, 3), EPS)[0] for a in (changed, x))
    assert np.abs(bn_changed[0] - bn_before[0]).max() > 0.1


def test_group_statistics_are_invariant_to_a_per_group_shift_and_scale(rng):
    x = maps(rng)
    scale = np.repeat(rng.uniform(0.5, 4.0, size=(4, 2)), 3, axis=1)[:, :, None, None]  # per (n, group)
    shift = np.repeat(rng.normal(size=(4, 2)) * 5, 3, axis=1)[:, :, None, None]
    np.testing.assert_allclose(group_norm(scale * x + shift, 2, eps=1e-12), group_norm(x, 2, eps=1e-12),
                               rtol=1e-9, atol=1e-10)


def test_input_gradient_sums_vanish_within_each_group(rng):
    """dx of a mean-and-variance normalization sums to 0 over each group, and is orthogonal to x_hat."""
    x = maps(rng)
    dy = rng.standard_normal(x.shape)
    y, cache = layer_norm_forward(x, (6, 3, 5), eps=1e-12)  # orthogonal to x_hat exactly as eps -> 0
    dx, _, _ = layer_norm_backward(dy, cache)
    np.testing.assert_allclose(dx.sum(axis=(1, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose((dx * y).sum(axis=(1, 2, 3)), 0.0, atol=1e-10)
    _, cache = group_norm_forward(x, 2)
    dx = group_norm_backward(dy, cache)[0].reshape(4, 2, -1)
    np.testing.assert_allclose(dx.sum(axis=2), 0.0, atol=1e-12)


# --- gradients against finite differences ----------------------------------------------------------


def _grad_check(forward, backward, args, names, rng):
    """Check the gradients ``backward`` gives for ``names`` (of "x", "gamma", "beta") against
    numerical_gradient of ``forward(*args)`` (float64, random dy); args are (x, _, gamma, beta, eps)."""
    y, cache = forward(*args)
    dy = rng.standard_normal(y.shape)
    grads = backward(dy, cache)
    positions = {"x": 0, "gamma": 2, "beta": 3}
    checked = 0
    for name, grad in zip(("x", "gamma", "beta"), grads):
        if name not in names:
            continue
        numeric = numerical_gradient(lambda _: forward(*args)[0], args[positions[name]], dy)
        err = rel_error(grad, numeric)
        assert err <= GRAD_TOL, f"d{name}: rel_error {err:.2e}"
        checked += 1
    return checked


@pytest.mark.parametrize("normalized_shape, shape", [((5,), (4, 5)), ((3, 4), (2, 3, 4)), ((6, 3, 5), (3, 6, 3, 5))])
def test_layer_norm_gradients(rng, normalized_shape, shape):
    x = rng.normal(1.0, 2.0, size=shape)
    gamma = rng.normal(1.0, 0.3, size=normalized_shape)
    beta = rng.normal(size=normalized_shape)
    args = [x, normalized_shape, gamma, beta, EPS]
    assert _grad_check(layer_norm_forward, layer_norm_backward, args, ("x", "gamma", "beta"), rng) == 3
    args = [x, normalized_shape, None, None, EPS]
    y, cache = layer_norm_forward(*args)
    _, dgamma, dbeta = layer_norm_backward(rng.standard_normal(y.shape), cache)
    assert dgamma is None and dbeta is None
    assert _grad_check(layer_norm_forward, layer_norm_backward, args, ("x",), rng) == 1


@pytest.mark.parametrize("num_groups, shape", [(1, (3, 6, 2, 3)), (2, (3, 6, 2, 3)), (6, (3, 6, 2, 3)),
                                               (2, (4, 8)), (2, (2, 4, 5))])
def test_group_norm_gradients(rng, num_groups, shape):
    x = maps(rng, shape)
    gamma, beta = rng.normal(1.0, 0.3, size=shape[1]), rng.normal(size=shape[1])
    args = [x, num_groups, gamma, beta, EPS]
    assert _grad_check(group_norm_forward, group_norm_backward, args, ("x", "gamma", "beta"), rng) == 3
    args = [x, num_groups, None, None, EPS]
    assert _grad_check(group_norm_forward, group_norm_backward, args, ("x",), rng) == 1


@pytest.mark.parametrize("shape", [(3, 4, 2, 3), (2, 3, 5)])
def test_instance_norm_gradients(rng, shape):
    x = maps(rng, shape)
    gamma, beta = rng.normal(1.0, 0.3, size=shape[1]), rng.normal(size=shape[1])

    def forward(x, _unused, gamma, beta, eps):
        return instance_norm_forward(x, gamma, beta, eps)

    assert _grad_check(forward, instance_norm_backward, [x, None, gamma, beta, EPS], ("x", "gamma", "beta"),
                       rng) == 3


@pytest.mark.parametrize("eps", [None, 1e-3])
def test_rms_norm_gradients(rng, eps):
    x = rng.normal(0.5, 2.0, size=(3, 4, 5))
    gamma = rng.normal(1.0, 0.3, size=(4, 5))

    def forward(x, shape, gamma, _unused, eps):
        return rms_norm_forward(x, shape, gamma, eps)

    assert _grad_check(forward, rms_norm_backward, [x, (4, 5), gamma, None, eps], ("x", "gamma"), rng) == 2


def test_normalize_backward_gradient(rng):
    x = maps(rng)
    dx_hat = rng.standard_normal(x.shape)
    for axis in ((0, 2, 3), (1, 2, 3), 1):
        _, cache = normalize_forward(x, axis)
        numeric = numerical_gradient(lambda a, axis=axis: normalize_forward(a, axis)[0], x, dx_hat)
        assert rel_error(normalize_backward(dx_hat, cache), numeric) <= GRAD_TOL


# --- dtypes, caches, inputs left alone -------------------------------------------------------------


FORWARDS = {
    "layer_norm": lambda x, g, b: layer_norm_forward(x, x.shape[1:], None if g is None else np.ones(x.shape[1:]),
                                                     None if b is None else np.zeros(x.shape[1:])),
    "group_norm": lambda x, g, b: group_norm_forward(x, 2, g, b),
    "instance_norm": lambda x, g, b: instance_norm_forward(x, g, b),
    "rms_norm": lambda x, g, b: rms_norm_forward(x, x.shape[1:], None if g is None else np.ones(x.shape[1:])),
}
BACKWARDS = {"layer_norm": layer_norm_backward, "group_norm": group_norm_backward,
             "instance_norm": instance_norm_backward, "rms_norm": rms_norm_backward}


@pytest.mark.parametrize("name", sorted(FORWARDS))
def test_float32_stays_float32_and_ints_become_float64(rng, name):
    gamma, beta = np.ones(4), np.zeros(4)  # float64 parameters follow x's dtype
    x32 = maps(rng, (3, 4, 2, 3)).astype(np.float32)
    y, cache = FORWARDS[name](x32, gamma, beta)
    assert y.dtype == np.float32
    grads = BACKWARDS[name](np.ones_like(y) * np.arange(y.size, dtype=np.float32).reshape(y.shape), cache)
    for grad in grads:
        assert grad is None or grad.dtype == np.float32
    ints = np.arange(72).reshape(3, 4, 2, 3) % 7
    y, cache = FORWARDS[name](ints, gamma, beta)
    assert y.dtype == np.float64
    assert ints.dtype.kind == "i"  # not cast in place
    np.testing.assert_allclose(y, FORWARDS[name](ints.astype(np.float64), gamma, beta)[0], rtol=1e-14)


@pytest.mark.parametrize("name", sorted(FORWARDS))
@pytest.mark.parametrize("affine", [True, False])
def test_inputs_and_caches_are_left_alone(rng, name, affine):
    x = maps(rng, (3, 4, 2, 3))
    x.flags.writeable = False
    gamma = np.ones(4) * 1.5 if affine else None
    beta = np.full(4, 0.5) if affine else None
    for array in (gamma, beta):
        if array is not None:
            array.flags.writeable = False
    y, cache = FORWARDS[name](x, gamma, beta)
    snapshot = {k: np.array(v, copy=True) for k, v in cache.items() if isinstance(v, np.ndarray)}
    dy = rng.standard_normal(y.shape)
    dy.flags.writeable = False
    first = BACKWARDS[name](dy, cache)
    second = BACKWARDS[name](dy, cache)  # reusable: nothing in the cache changed
    for a, b in zip(first, second):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    for key, value in snapshot.items():
        np.testing.assert_array_equal(cache[key], value)
    y += 1.0  # the returned output is not the cache's own array
    np.testing.assert_array_equal(BACKWARDS[name](dy, cache)[0], first[0])


def test_backward_refuses_another_functions_cache(rng):
    x = maps(rng, (2, 4, 3))
    dy = rng.standard_normal(x.shape)
    caches = {
        "layer_norm_forward": layer_norm_forward(x, (4, 3))[1],
        "group_norm_forward": group_norm_forward(x, 2)[1],
        "instance_norm_forward": instance_norm_forward(x)[1],
        "rms_norm_forward": rms_norm_forward(x, 3)[1],
        "normalize_forward": normalize_forward(x, (1, 2))[1],
    }
    backwards = {"layer_norm_forward": layer_norm_backward, "group_norm_forward": group_norm_backward,
                 "instance_norm_forward": instance_norm_backward, "rms_norm_forward": rms_norm_backward,
                 "normalize_forward": normalize_backward}
    for producer, backward in backwards.items():
        for other, cache in caches.items():
            if other != producer:
                with refused(TypeError, f"cache must be the dict returned by {producer}"):
                    backward(dy, cache)
        for bad in (None, {}, {"x_hat": x}, "cache"):
            with refused(TypeError, f"cache must be the dict returned by {producer}"):
                backward(dy, bad)


# --- bad input -------------------------------------------------------------------------------------

X4 = np.random.default_rng(1).normal(size=(2, 6, 3, 3))
X2 = np.random.default_rng(2).normal(size=(4, 5))

CALLS = {
    "layer_norm": lambda **kw: layer_norm(**{"x": X2, "normalized_shape": 5, **kw}),
    "group_norm": lambda **kw: group_norm(**{"x": X4, "num_groups": 3, **kw}),
    "instance_norm": lambda **kw: instance_norm(**{"x": X4, **kw}),
    "rms_norm": lambda **kw: rms_norm(**{"x": X2, "normalized_shape": 5, **kw}),
    "normalize_forward": lambda **kw: normalize_forward(**{"x": X4, "axis": (1, 2, 3), **kw}),
}
PARAM_SHAPES = {"layer_norm": (5,), "group_norm": (6,), "instance_norm": (6,), "rms_norm": (5,)}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_good_call(name):
    CALLS[name]()


@pytest.mark.parametrize("num_groups, channels", [(4, 6), (5, 6), (7, 6)])
def test_num_groups_must_divide_the_channels(num_groups, channels):
    with refused(ValueError, f"num_groups={num_groups} must divide the number of channels C={channels}",
                 "(x has shape (2, 6, 3, 3))"):
        group_norm(X4, num_groups)
    with refused(ValueError, f"num_groups={num_groups} must divide num_channels={channels}"):
        bnlab.GroupNorm(num_groups, channels)


@pytest.mark.parametrize("num_groups", [2.0, True, "2", None, [2]])
def test_num_groups_kind(num_groups):
    with refused(TypeError, "num_groups must be a positive int", f"got {num_groups!r}"):
        group_norm(X4, num_groups)


@pytest.mark.parametrize("num_groups", [0, -2])
def test_num_groups_positive(num_groups):
    with refused(ValueError, "num_groups must be a positive int", f"got {num_groups!r}"):
        group_norm(X4, num_groups)


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
@pytest.mark.parametrize("normalized_shape, shown", [(4, "(*, 4)"), ((3, 5), "(*, 3, 5)"), ((2, 4, 5), "(*, 2, 4, 5)")])
def test_normalized_shape_must_match_the_trailing_dims(name, normalized_shape, shown):
    with refused(ValueError, f"x must have shape {shown} to be normalized over normalized_shape=",
                 "got shape (4, 5)"):
        CALLS[name](normalized_shape=normalized_shape)


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
@pytest.mark.parametrize("normalized_shape", ["5", 5.0, True, (5, "a"), None, (5.0,)])
def test_normalized_shape_kind(name, normalized_shape):
    with refused(TypeError, "normalized_shape must be a positive int or a tuple of positive ints",
                 repr(normalized_shape)):
        CALLS[name](normalized_shape=normalized_shape)


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
@pytest.mark.parametrize("normalized_shape", [0, -5, (), (5, 0)])
def test_normalized_shape_positive(name, normalized_shape):
    with refused(ValueError, "normalized_shape must be a positive int or a non-empty tuple of positive ints",
                 repr(normalized_shape)):
        CALLS[name](normalized_shape=normalized_shape)


def test_too_few_dimensions():
    with refused(ValueError, "x must have shape (N, C, *spatial) (at least 2 dimensions), got shape (6,)"):
        group_norm(np.ones(6), 3)
    with refused(ValueError, "x must have shape (N, C, *spatial) with at least one spatial dimension",
                 "got shape (4, 6)"):
        instance_norm(np.ones((4, 6)))
    with refused(ValueError, "x must have shape (N, C, *spatial)", "got shape (6,)"):
        instance_norm(np.ones(6))
    for name in ("layer_norm", "rms_norm"):
        with refused(ValueError, "x must have at least one dimension, got a scalar"):
            CALLS[name](x=3.0)
    with refused(ValueError, "x must have shape (*, 2, 5)", "got shape (5,)"):
        layer_norm(np.ones(5), (2, 5))


def test_instance_norm_needs_two_positions():
    with refused(ValueError, "x of shape (2, 3, 1, 1) has only one position per channel",
                 "no variance to estimate", "spatial size of at least 2"):
        instance_norm(np.ones((2, 3, 1, 1)))


@pytest.mark.parametrize("name", sorted(CALLS))
def test_empty_input(name):
    empty = np.ones((0, 6, 3, 3)) if name in ("group_norm", "instance_norm", "normalize_forward") else np.ones((0, 5))
    with refused(ValueError, "x is empty", "(shape (0,"):
        CALLS[name](x=empty)


@pytest.mark.parametrize("value, shown", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_non_finite_input_is_located(name, value, shown):
    x = (X4 if name in ("group_norm", "instance_norm", "normalize_forward") else X2).copy()
    where = (1, 4, 2, 0) if x.ndim == 4 else (3, 2)
    x[where] = value
    with np.errstate(all="raise"):  # the error comes first, not a RuntimeWarning
        with refused(ValueError, f"x contains 1 non-finite value(s) ({shown} first at index {where})"):
            CALLS[name](x=x)


@pytest.mark.parametrize("name", ["layer_norm", "group_norm", "instance_norm", "rms_norm"])
@pytest.mark.parametrize("param", ["gamma", "beta"])
def test_parameters_of_the_wrong_shape(name, param):
    if name == "rms_norm" and param == "beta":
        return
    expected = PARAM_SHAPES[name]
    with refused(ValueError, f"{param} must have shape {expected}", "got shape (7,)"):
        CALLS[name](**{param: np.ones(7)})
    bad = np.ones(expected)
    bad[0] = np.nan
    with refused(ValueError, f"{param} contains 1 non-finite value(s) (NaN first at index 0)"):
        CALLS[name](**{param: bad})
    with refused(TypeError, f"{param} must hold real numbers (float or int), got dtype bool"):
        CALLS[name](**{param: np.ones(expected, dtype=bool)})


def test_parameter_messages_say_what_the_shape_is():
    with refused(ValueError, "gamma must have shape (5,) (normalized_shape: one value per normalized element), "
                             "got shape (4,)"):
        layer_norm(X2, 5, np.ones(4))
    with refused(ValueError, "beta must have shape (6,) (one value per channel), got shape (3,)"):
        group_norm(X4, 3, np.ones(6), np.ones(3))


@pytest.mark.parametrize("eps", [0, 0.0, -1e-5, float("nan"), float("inf")])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_eps_must_be_positive(name, eps):
    with refused(ValueError, "eps must be positive and finite", f"got {eps!r}"):
        CALLS[name](eps=eps)


@pytest.mark.parametrize("eps", ["1e-5", True, [1e-5]])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_eps_kind(name, eps):
    with refused(TypeError, "eps must be a positive real number", f"got {eps!r}"):
        CALLS[name](eps=eps)


def test_eps_none_only_for_rms_norm():
    rms_norm(X2, 5, eps=None)
    with refused(TypeError, "eps must be a positive real number, got None"):
        layer_norm(X2, 5, eps=None)


@pytest.mark.parametrize("kind", ["strings", "bools", "complex", "objects"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_x_of_the_wrong_kind(name, kind):
    shape = X4.shape if name in ("group_norm", "instance_norm", "normalize_forward") else X2.shape
    bad = {"strings": np.full(shape, "1.0"), "bools": np.ones(shape, dtype=bool),
           "complex": np.ones(shape, dtype=complex), "objects": np.full(shape, None, dtype=object)}[kind]
    with refused(TypeError, "x must hold real numbers (float or int), got dtype"):
        CALLS[name](x=bad)


def test_backward_checks_dy(rng):
    cases = [
        (layer_norm_backward, layer_norm_forward(X2, 5)[1], X2.shape),
        (group_norm_backward, group_norm_forward(X4, 3)[1], X4.shape),
        (instance_norm_backward, instance_norm_forward(X4)[1], X4.shape),
        (rms_norm_backward, rms_norm_forward(X2, 5)[1], X2.shape),
    ]
    for backward, cache, shape in cases:
        with refused(ValueError, f"dy must have shape {shape} (the shape of x), got shape (3,)"):
            backward(np.ones(3), cache)
        dy = np.ones(shape)
        dy[(1,) * len(shape)] = np.inf
        with np.errstate(all="raise"):
            with refused(ValueError, "dy contains 1 non-finite value(s) (inf first at index"):
                backward(dy, cache)
        with refused(TypeError, "dy must hold real numbers"):
            backward(np.ones(shape, dtype=bool), cache)
    _, cache = normalize_forward(X4, (2, 3))
    with refused(ValueError, "dx_hat must have shape (2, 6, 3, 3) (the shape of x), got shape (2, 6)"):
        normalize_backward(np.ones((2, 6)), cache)
    bad = np.ones(X4.shape)
    bad[0, 1, 2, 2] = np.nan
    with refused(ValueError, "dx_hat contains 1 non-finite value(s) (NaN first at index (0, 1, 2, 2))"):
        normalize_backward(bad, cache)


def test_float32_overflow_is_explained():
    big = np.array([[3e38, 1.0, -3e38], [1.0, 2.0, 3.0]], dtype=np.float32)
    with np.errstate(all="raise"):
        with refused(ValueError, "the statistics of x overflowed in float32", "use float64"):
            layer_norm(big, 3)
        with refused(ValueError, "the mean square of x overflowed in float32", "use float64"):
            rms_norm(np.full((2, 3), 1e30, dtype=np.float32), 3)
    layer_norm(big.astype(np.float64), 3)  # fine in float64


def test_axis_checks_of_normalize_forward():
    with refused(ValueError, "axis=(1, 4) is out of range for an input with 4 dimension(s)"):
        normalize_forward(X4, (1, 4))
    with refused(TypeError, "axis must be an int or a", "None"):
        normalize_forward(X4, None)
    # a group of one value is accepted (x_hat is 0 there), unlike batch norm in training
    x_hat, _ = normalize_forward(X4, 0, eps=EPS)
    assert x_hat.shape == X4.shape
    np.testing.assert_array_equal(normalize_forward(X4[:1], 0)[0], 0.0)
