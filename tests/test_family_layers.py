"""The family's layers and the convolution pieces: LayerNorm, GroupNorm, RMSNorm, Conv2D, GlobalAvgPool2D, Flatten.

Gradient checks run in float64 against bnlab.numerical_gradient with random
upstream gradients and random gamma, beta, W, b (never 1 and 0, which hide
mistakes), and require rel_error <= 1e-7: for each layer, and for a whole
small CNN with batch and group normalization, the loss gradient with respect
to the input and every parameter. The framework comparisons are in
test_reference_family.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import bnlab
from bnlab import (
    BatchNorm,
    Conv2D,
    Flatten,
    GlobalAvgPool2D,
    GroupNorm,
    LayerNorm,
    RMSNorm,
    numerical_gradient,
    rel_error,
)
from bnlab.layers import SGD, Dense, ReLU, Sequential, layer_params, softmax_cross_entropy

TOL = 1e-7


@pytest.fixture
def rng():
    return np.random.default_rng(150203167)


def refused(error, *fragments):
    return pytest.raises(error, match=".*".join(re.escape(f) for f in fragments))


def randomize(layer, rng):
    """Random values for every parameter (gamma near 1, others around 0)."""
    for name, param, _ in layer_params(layer):
        param[...] = rng.normal(1.0 if name == "gamma" else 0.0, 0.5, size=param.shape)
    return layer


def gradcheck_layer(layer, x, rng, training=True):
    """Input and parameter gradients of one layer against finite differences; returns the worst error."""
    out = layer.forward(x, training=training)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    analytic = {name: grad.copy() for name, _, grad in layer_params(layer)}
    worst = rel_error(dx, numerical_gradient(lambda xx: layer.forward(xx, training=training), x, dout))
    for name, param, _ in layer_params(layer):
        numeric = numerical_gradient(lambda _: layer.forward(x, training=training), param, dout)
        worst = max(worst, rel_error(analytic[name], numeric))
    assert worst <= TOL, f"{layer!r}: rel_error {worst:.2e}"
    return worst


# --- the norm layers -------------------------------------------------------------------------------


@pytest.mark.parametrize("normalized_shape, shape", [(5, (4, 5)), ((4, 3), (2, 3, 4, 3)), ((3, 4, 4), (2, 3, 4, 4))])
def test_layer_norm_layer(rng, normalized_shape, shape):
    layer = randomize(LayerNorm(normalized_shape), rng)
    x = rng.normal(1.0, 2.0, size=shape)
    gradcheck_layer(layer, x, rng)
    expected = bnlab.layer_norm(x, normalized_shape, layer.gamma, layer.beta)
    np.testing.assert_array_equal(layer.forward(x, training=True), expected)
    np.testing.assert_array_equal(layer.forward(x, training=False), expected)  # no running statistics
    assert layer.gamma.shape == layer.dgamma.shape == layer.beta.shape == layer.dbeta.shape


@pytest.mark.parametrize("num_groups, shape", [(1, (3, 6, 2, 3)), (3, (3, 6, 2, 3)), (6, (3, 6, 2, 3)),
                                               (2, (5, 6)), (3, (2, 6, 4))])
def test_group_norm_layer(rng, num_groups, shape):
    layer = randomize(GroupNorm(num_groups, 6), rng)
    x = rng.normal(1.0, 2.0, size=shape)
    gradcheck_layer(layer, x, rng)
    np.testing.assert_array_equal(layer.forward(x, training=False),
                                  bnlab.group_norm(x, num_groups, layer.gamma, layer.beta))
    assert layer.dgamma.shape == layer.dbeta.shape == (6,)


def test_group_norm_layer_handles_a_batch_of_one(rng):
    layer = randomize(GroupNorm(2, 4), rng)
    x = rng.normal(size=(1, 4, 3, 3))
    gradcheck_layer(layer, x, rng)


@pytest.mark.parametrize("eps", [None, 1e-4])
def test_rms_norm_layer(rng, eps):
    layer = randomize(RMSNorm((3, 4), eps=eps), rng)
    assert layer.beta is None and [name for name, _, _ in layer_params(layer)] == ["gamma"]
    x = rng.normal(0.5, 2.0, size=(2, 3, 4))
    gradcheck_layer(layer, x, rng)
    np.testing.assert_array_equal(layer.forward(x, training=True), bnlab.rms_norm(x, (3, 4), layer.gamma, eps))


def test_norm_layers_keep_float32_and_store_grads_in_their_dtype(rng):
    x = rng.normal(size=(2, 4, 3, 3)).astype(np.float32)
    for layer in (LayerNorm((4, 3, 3)), GroupNorm(2, 4), RMSNorm(3)):
        y = layer.forward(x, training=True)
        assert y.dtype == np.float32
        assert layer.backward(np.ones_like(y)).dtype == np.float32
        assert layer.dgamma.dtype == np.float64  # the layer's dtype
    layer = GroupNorm(2, 4, dtype=np.float32)
    assert layer.gamma.dtype == np.float32
    layer.forward(x.astype(np.float64), training=True)
    layer.backward(np.ones(x.shape))
    assert layer.dgamma.dtype == np.float32


def test_norm_layer_reprs_and_params():
    assert repr(LayerNorm(5)) == "LayerNorm(5, eps=1e-05)"
    assert repr(LayerNorm((3, 4, 4), eps=1e-3)) == "LayerNorm((3, 4, 4), eps=0.001)"
    assert repr(GroupNorm(2, 8)) == "GroupNorm(2, 8, eps=1e-05)"
    assert repr(RMSNorm(16)) == "RMSNorm(16, eps=None)"
    assert repr(RMSNorm(16, eps=1e-6)) == "RMSNorm(16, eps=1e-06)"
    layer = GroupNorm(2, 8)
    assert [name for name, _, grad in layer_params(layer)] == ["gamma", "beta"]
    assert all(grad is None for _, _, grad in layer_params(layer))
    np.testing.assert_array_equal(layer.gamma, 1.0)
    np.testing.assert_array_equal(layer.beta, 0.0)


def test_norm_layers_bad_input(rng):
    with refused(ValueError, "x must have shape (*, 5) to be normalized over normalized_shape=(5,)",
                 "got shape (3, 4)"):
        LayerNorm(5).forward(np.ones((3, 4)), training=True)
    with refused(ValueError, "x must have shape (N, 6, *spatial) (num_channels of this layer)",
                 "got shape (2, 4, 3)"):
        GroupNorm(3, 6).forward(np.ones((2, 4, 3)), training=True)
    with refused(ValueError, "x must have shape (N, 6, *spatial)", "got shape (6,)"):
        GroupNorm(3, 6).forward(np.ones(6), training=True)
    with refused(ValueError, "x must have shape (*, 3)", "got shape (2, 4)"):
        RMSNorm(3).forward(np.ones((2, 4)), training=True)
    for layer in (LayerNorm(3), GroupNorm(1, 3), RMSNorm(3)):
        with refused(RuntimeError, "call forward(x, training=...) before backward"):
            layer.backward(np.ones((2, 3)))
        with refused(TypeError, "training must be True or False"):
            layer.forward(np.ones((2, 3)), training=1)
        with refused(ValueError, "x is empty"):
            layer.forward(np.ones((0, 3)), training=True)
        with refused(TypeError, "x must hold real numbers"):
            layer.forward(np.ones((2, 3), dtype=bool), training=True)
        bad = np.ones((2, 3))
        bad[1, 2] = np.nan
        with refused(ValueError, "x contains 1 non-finite value(s) (NaN first at index (1, 2))"):
            layer.forward(bad, training=True)
        layer.forward(np.arange(6.0).reshape(2, 3), training=True)
        with refused(ValueError, "dy must have shape (2, 3) (the shape of x), got shape (3, 2)"):
            layer.backward(np.ones((3, 2)))
        layer.gamma = np.ones(4)  # a learner broke the parameter
        with refused(ValueError, "gamma must have shape (3,)", "got shape (4,)"):
            layer.forward(np.ones((2, 3)), training=True)


def test_norm_layer_constructor_checks():
    with refused(TypeError, "normalized_shape must be a positive int or a tuple of positive ints", "'5'"):
        LayerNorm("5")
    with refused(ValueError, "normalized_shape must be a positive int or a non-empty tuple", "0"):
        RMSNorm(0)
    with refused(ValueError, "num_groups=4 must divide num_channels=6"):
        GroupNorm(4, 6)
    with refused(TypeError, "num_channels must be a positive int, got 6.0"):
        GroupNorm(2, 6.0)
    with refused(ValueError, "num_groups must be a positive int, got 0"):
        GroupNorm(0, 6)
    for eps in (0, -1e-5, float("nan")):
        with refused(ValueError, "eps must be positive and finite"):
            LayerNorm(3, eps=eps)
        with refused(ValueError, "eps must be positive and finite"):
            RMSNorm(3, eps=eps)
    with refused(TypeError, "dtype must be a floating dtype, got int64"):
        GroupNorm(1, 3, dtype=np.int64)


# --- Conv2D ----------------------------------------------------------------------------------------


def direct_conv(x, W, b, padding):
    """Cross-correlation written as loops over output positions (independent of the im2col code)."""
    ph, pw = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, height, width = xp.shape
    c_out, _, kh, kw = W.shape
    out = np.zeros((n, c_out, height - kh + 1, width - kw + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            patch = xp[:, :, i:i + kh, j:j + kw]
            out[:, :, i, j] = np.tensordot(patch, W, axes=([1, 2, 3], [1, 2, 3]))
    return out + (0.0 if b is None else b[None, :, None, None])


CONV_CASES = [(3, 0, True), (3, 1, True), ((2, 3), 0, True), ((2, 3), 1, True), (3, 1, False), (1, 0, True),
              ((3, 2), (1, 0), True)]


@pytest.mark.parametrize("kernel_size, padding, bias", CONV_CASES)
def test_conv2d_forward_and_gradients(rng, kernel_size, padding, bias):
    conv = randomize(Conv2D(2, 3, kernel_size, padding=padding, bias=bias, rng=rng), rng)
    x = rng.standard_normal((2, 2, 5, 6))
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    y = conv.forward(x, training=True)
    assert y.shape == (2, 3, 5 + 2 * ph - kh + 1, 6 + 2 * pw - kw + 1)
    np.testing.assert_allclose(y, direct_conv(x, conv.W, conv.b, (ph, pw)), rtol=1e-12, atol=1e-13)
    gradcheck_layer(conv, x, rng)
    assert conv.dW.shape == conv.W.shape == (3, 2, kh, kw)
    assert (conv.db is None) == (not bias)


def test_conv2d_initialisation_dtype_and_repr():
    conv = Conv2D(16, 32, 3, rng=0)
    assert conv.W.shape == (32, 16, 3, 3) and conv.b.shape == (32,)
    assert conv.W.std() == pytest.approx(np.sqrt(2 / (16 * 9)), rel=0.05)  # He, fan-in C_in*kh*kw
    np.testing.assert_array_equal(conv.b, 0.0)
    assert Conv2D(16, 32, 3, init_scale="xavier", rng=0).W.std() == pytest.approx(np.sqrt(1 / 144), rel=0.05)
    assert Conv2D(16, 32, 3, init_scale=0.01, rng=0).W.std() == pytest.approx(0.01, rel=0.05)
    np.testing.assert_array_equal(Conv2D(2, 3, 3, rng=5).W, Conv2D(2, 3, 3, rng=5).W)  # seeded
    assert repr(Conv2D(1, 8, 3, padding=1, bias=False)) == (
        "Conv2D(1, 8, kernel_size=3, padding=1, init_scale='he', bias=False)")
    assert repr(Conv2D(1, 8, (2, 3))) == "Conv2D(1, 8, kernel_size=(2, 3), padding=0, init_scale='he', bias=True)"
    conv = Conv2D(1, 2, 3, padding=1, dtype=np.float32, rng=0)
    y = conv.forward(np.ones((2, 1, 4, 4)), training=True)
    assert y.dtype == conv.W.dtype == np.float32
    conv.backward(np.ones_like(y))
    assert conv.dW.dtype == conv.db.dtype == np.float32


def test_conv2d_bad_input():
    conv = Conv2D(2, 3, 3, rng=0)
    with refused(ValueError, "x must have shape (N, 2, H, W) (in_channels of this layer), got shape (4, 3, 5, 5)"):
        conv.forward(np.ones((4, 3, 5, 5)), training=True)
    with refused(ValueError, "x must have shape (N, 2, H, W)", "got shape (2, 5, 5)"):
        conv.forward(np.ones((2, 5, 5)), training=True)
    with refused(ValueError, "x's padded spatial size (2, 5) is smaller than the kernel (3, 3)"):
        conv.forward(np.ones((1, 2, 2, 5)), training=True)
    with refused(ValueError, "x is empty"):
        conv.forward(np.ones((0, 2, 5, 5)), training=True)
    with refused(RuntimeError, "call forward(x, training=...) before backward"):
        conv.backward(np.ones((1, 3, 3, 3)))
    conv.forward(np.ones((1, 2, 5, 5)), training=True)
    with refused(ValueError, "dout must have shape (1, 3, 3, 3) (the shape of the last forward's output)"):
        conv.backward(np.ones((1, 3, 5, 5)))
    for kernel_size in (0, (3, 0), -1):
        with refused(ValueError, "kernel_size must be >= 1"):
            Conv2D(2, 3, kernel_size)
    for kernel_size in (3.0, "3", (3, 3, 3), (3.0, 3), True):
        with refused(TypeError, "kernel_size must be an int or a pair of ints"):
            Conv2D(2, 3, kernel_size)
    with refused(ValueError, "padding must be >= 0"):
        Conv2D(2, 3, 3, padding=-1)
    with refused(TypeError, "in_channels must be a positive int"):
        Conv2D(2.0, 3, 3)
    with refused(ValueError, "init_scale must be a positive number or one of"):
        Conv2D(2, 3, 3, init_scale="lecun")


# --- pooling and flattening ------------------------------------------------------------------------


def test_global_avg_pool(rng):
    pool = GlobalAvgPool2D()
    x = rng.standard_normal((3, 4, 5, 2))
    out = pool.forward(x, training=True)
    np.testing.assert_allclose(out, x.mean(axis=(2, 3)))
    gradcheck_layer(pool, x, rng)
    dx = pool.backward(np.ones((3, 4)))
    np.testing.assert_allclose(dx, 0.1)  # each of the 10 positions gets a tenth
    with refused(ValueError, "x must have shape (N, C, H, W) with H, W >= 1, got shape (3, 4)"):
        pool.forward(np.ones((3, 4)), training=True)
    with refused(ValueError, "dout must have shape (3, 4)"):
        pool.backward(np.ones((3, 5)))
    assert repr(pool) == "GlobalAvgPool2D()" and layer_params(pool) == []


def test_flatten(rng):
    flat = Flatten()
    x = rng.standard_normal((3, 2, 4, 5))
    np.testing.assert_array_equal(flat.forward(x, training=True), x.reshape(3, 40))
    gradcheck_layer(flat, x, rng)
    with refused(ValueError, "dout must have shape (3, 40)"):
        flat.backward(np.ones((3, 39)))
    with refused(RuntimeError, "call forward(x, training=...) before backward"):
        Flatten().backward(np.ones((3, 40)))


# --- a whole CNN -----------------------------------------------------------------------------------


def small_cnn(rng):
    return Sequential([
        Conv2D(2, 4, 3, padding=1, bias=False, rng=rng),
        BatchNorm(4, convention="pytorch", axis=(0, 2, 3)),
        ReLU(),
        Conv2D(4, 6, (2, 3), padding=1, bias=False, rng=rng),
        GroupNorm(3, 6),
        ReLU(),
        GlobalAvgPool2D(),
        Dense(6, 3, init_scale=0.5, rng=rng),
    ])


def test_whole_cnn_loss_gradient(rng):
    """Loss gradient of conv-BN-ReLU-conv-GN-ReLU-pool-dense w.r.t. the input and every parameter.

    Seeded, so deterministic (worst here: 8.9e-8, the input gradient). The element-wise
    criterion meets the finite differences' own noise on a whole network: about 1e-11 absolute
    (float64 rounding of the loss over 2h), so an element 1000 times smaller than the largest
    shows 1e-7 to 1e-6 on other seeds, and an input within h of a ReLU kink more; the layers'
    own checks above are far below that.
    """
    model = small_cnn(rng)
    for layer in model:
        randomize(layer, rng)
    x = rng.standard_normal((4, 2, 5, 5))
    labels = np.array([0, 2, 1, 2])

    def loss(xx):
        return np.array(softmax_cross_entropy(model.forward(xx, training=True), labels)[0])

    _, dscores = softmax_cross_entropy(model.forward(x, training=True), labels)
    dx = model.backward(dscores)
    analytic = {name: grad.copy() for name, _, grad in model.named_params_and_grads()}
    assert set(analytic) == {"0.W", "1.gamma", "1.beta", "3.W", "4.gamma", "4.beta", "7.W", "7.b"}
    errors = {"x": rel_error(dx, numerical_gradient(loss, x, np.ones(())))}
    for name, param, _ in model.named_params_and_grads():
        errors[name] = rel_error(analytic[name], numerical_gradient(lambda _: loss(x), param, np.ones(())))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst}: rel_error {errors[worst]:.2e} ({errors})"


def test_cnn_trains_with_sgd_and_bn_keeps_per_channel_running_stats(rng):
    model = small_cnn(rng)
    x = rng.standard_normal((8, 2, 5, 5))
    labels = rng.integers(0, 3, size=8)
    optimizer = SGD(0.5)
    losses = []
    for _ in range(30):
        loss, dscores = softmax_cross_entropy(model.forward(x, training=True), labels)
        losses.append(loss)
        model.backward(dscores)
        optimizer.step(model)
    assert losses[-1] < 0.5 * losses[0]
    bn = model[1]
    assert bn.running_mean.shape == (4,) and bn.num_batches_tracked == 30
    scores = model.forward(x, training=False)  # evaluation: running statistics, any batch size
    assert scores.shape == (8, 3)
    assert model.forward(x[:1], training=False).shape == (1, 3)
    assert "Conv2D(2, 4, kernel_size=3, padding=1" in repr(model) and "GroupNorm(3, 6" in repr(model)


def test_sgd_updates_the_new_layers_in_place(rng):
    layers = [LayerNorm(4), RMSNorm(4), GroupNorm(2, 4), Conv2D(1, 2, 1, rng=0)]
    inputs = [rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 4)),
              rng.normal(size=(3, 1, 2, 2))]
    for layer, x in zip(layers, inputs):
        before = {name: param.copy() for name, param, _ in layer_params(layer)}
        arrays = {name: param for name, param, _ in layer_params(layer)}
        y = layer.forward(x, training=True)
        layer.backward(rng.standard_normal(y.shape))
        SGD(0.5).step([(param, grad) for _, param, grad in layer_params(layer)])
        for name, param, grad in layer_params(layer):
            assert param is arrays[name]  # the same array, changed in place
            np.testing.assert_allclose(param, before[name] - 0.5 * grad)
