"""The network pieces in bnlab.layers: gradient checks, loss, SGD, containers and bad input.

Gradient checks run in float64 with random upstream gradients (an all-ones
upstream gradient makes BN's input gradient vanish and proves nothing) and
require rel_error < 1e-6.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bnlab import BatchNorm, numerical_gradient, rel_error
from bnlab.layers import (
    SGD,
    Dense,
    ReLU,
    Sequential,
    ShiftScaleNoise,
    Sigmoid,
    SoftmaxCrossEntropy,
    as_rng,
    layer_params,
    softmax_cross_entropy,
)

TOL = 1e-6


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def away_from_zero(rng, shape, gap=0.1):
    """Normal values pushed at least ``gap`` away from 0 (ReLU's kink)."""
    x = rng.standard_normal(shape)
    return np.sign(x) * (np.abs(x) + gap)


def check_layer_input_grad(layer, x, rng, training=True):
    out = layer.forward(x, training=training)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    dx_num = numerical_gradient(lambda xx: layer.forward(xx, training=training), x, dout)
    assert rel_error(dx, dx_num) < TOL
    return dout


# --- Dense --------------------------------------------------------------------------------------

def test_dense_gradients(rng):
    layer = Dense(5, 4, init_scale=0.5, rng=rng)
    layer.b[:] = rng.standard_normal(4)
    x = rng.standard_normal((7, 5))
    dout = check_layer_input_grad(layer, x, rng)
    layer.forward(x, training=True)
    layer.backward(dout)
    f = lambda _: layer.forward(x, training=True)  # reads the perturbed parameter
    assert rel_error(layer.dW, numerical_gradient(f, layer.W, dout)) < TOL
    assert rel_error(layer.db, numerical_gradient(f, layer.b, dout)) < TOL


def test_dense_forward_is_affine_and_caches_input(rng):
    layer = Dense(3, 2, rng=rng)
    layer.b[:] = [1.0, -2.0]
    x = rng.standard_normal((4, 3))
    np.testing.assert_allclose(layer.forward(x, training=False), x @ layer.W + layer.b)
    layer.backward(np.ones((4, 2)))
    np.testing.assert_allclose(layer.dW, x.T @ np.ones((4, 2)))
    np.testing.assert_allclose(layer.db, [4.0, 4.0])


@pytest.mark.parametrize("init_scale, expected", [(0.1, 0.1), ("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(1 / 400))])
def test_dense_init_scale(init_scale, expected):
    layer = Dense(400, 300, init_scale=init_scale, rng=0)
    assert layer.W.std() == pytest.approx(expected, rel=0.02)
    assert abs(layer.W.mean()) < 0.01 * expected * 10
    np.testing.assert_array_equal(layer.b, 0.0)


def test_dense_is_seeded_and_without_bias():
    a, b = Dense(4, 3, rng=7), Dense(4, 3, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.W, b.W)
    layer = Dense(4, 3, bias=False, rng=0)
    assert layer.b is None and [name for name, _, _ in layer_params(layer)] == ["W"]
    layer.forward(np.ones((2, 4)), training=True)
    layer.backward(np.ones((2, 3)))
    assert layer.db is None


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(in_features=0, out_features=3), ValueError, "in_features"),
        (dict(in_features=2.5, out_features=3), TypeError, "in_features"),
        (dict(in_features=2, out_features=-1), ValueError, "out_features"),
        (dict(in_features=2, out_features=3, init_scale=-0.1), ValueError, "init_scale"),
        (dict(in_features=2, out_features=3, init_scale=0.0), ValueError, "init_scale"),
        (dict(in_features=2, out_features=3, init_scale="glorious"), ValueError, "init_scale.*he"),
        (dict(in_features=2, out_features=3, init_scale=None), TypeError, "init_scale"),
        (dict(in_features=2, out_features=3, rng="seed"), TypeError, "rng"),
        (dict(in_features=2, out_features=3, dtype=np.int32), TypeError, "dtype"),
    ],
)
def test_dense_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Dense(**kwargs)


def test_dense_rejects_bad_input(rng):
    layer = Dense(3, 2, rng=rng)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones((4, 2)))
    with pytest.raises(ValueError, match="x must have 3 columns"):
        layer.forward(np.ones((4, 5)), training=True)
    with pytest.raises(ValueError, match="2-D"):
        layer.forward(np.ones(3), training=True)
    with pytest.raises(ValueError, match="empty"):
        layer.forward(np.ones((0, 3)), training=True)
    with pytest.raises(TypeError, match="x must hold real numbers"):
        layer.forward(np.array([["a", "b", "c"]]), training=True)
    with pytest.raises(TypeError, match="training"):
        layer.forward(np.ones((4, 3)), training="yes")
    layer.forward(np.ones((4, 3)), training=True)
    with pytest.raises(ValueError, match="dout must have shape"):
        layer.backward(np.ones((4, 3)))


# --- activations and noise ------------------------------------------------------------------------

def test_sigmoid_gradient_and_values(rng):
    layer = Sigmoid()
    check_layer_input_grad(layer, 3 * rng.standard_normal((6, 5)), rng)
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(layer.forward(x, training=False), 1 / (1 + np.exp(-x)), rtol=1e-15)


def test_sigmoid_saturates_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = Sigmoid().forward(np.array([-1e4, -800.0, 800.0, 1e4]), training=True)
    np.testing.assert_array_equal(out, [0.0, 0.0, 1.0, 1.0])


def test_relu_gradient_and_values(rng):
    layer = ReLU()
    check_layer_input_grad(layer, away_from_zero(rng, (6, 5)), rng)
    np.testing.assert_array_equal(layer.forward(np.array([-1.0, 0.0, 2.0]), training=True), [0, 0, 2])
    np.testing.assert_array_equal(layer.backward(np.array([5.0, 5.0, 5.0])), [0, 0, 5])


def test_noise_gradient_with_fixed_draws(rng):
    layer = ShiftScaleNoise(5, shift=1.5, scale=3.0, rng=0)
    x = rng.standard_normal((6, 5))

    def f(xx):
        layer.rng = np.random.default_rng(0)  # the same draws at every call
        return layer.forward(xx, training=True)

    out = f(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    assert rel_error(dx, numerical_gradient(f, x, dout)) < TOL


def test_noise_draws_fresh_shift_and_scale_each_training_step(rng):
    layer = ShiftScaleNoise(200, shift=0.5, scale=2.0, rng=3)
    x = rng.standard_normal((4, 200))
    y1 = layer.forward(x, training=True)
    s1, m1 = layer.last_scale.copy(), layer.last_shift.copy()
    np.testing.assert_allclose(y1, x * s1 + m1)
    layer.forward(x, training=True)
    assert not np.allclose(s1, layer.last_scale) and not np.allclose(m1, layer.last_shift)
    assert s1.min() >= 0.5 and s1.max() <= 2.0 and np.abs(m1).max() <= 0.5
    # per-unit: the same shift and scale for every sample of the batch
    np.testing.assert_allclose((y1[0] - y1[1]) / (x[0] - x[1]), s1)


def test_noise_is_identity_in_evaluation(rng):
    layer = ShiftScaleNoise(3, rng=0)
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones((4, 3)))
    x = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    dout = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(layer.backward(dout), dout)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(shift=-1.0), ValueError, "shift"),
        (dict(scale=0.5), ValueError, "scale"),
        (dict(scale=float("nan")), TypeError, "scale"),
        (dict(shift="big"), TypeError, "shift"),
    ],
)
def test_noise_rejects_bad_magnitudes(kwargs, error, match):
    with pytest.raises(error, match=match):
        ShiftScaleNoise(3, **kwargs)


# --- loss ---------------------------------------------------------------------------------------

def test_softmax_cross_entropy_gradient(rng):
    scores = rng.standard_normal((8, 5))
    labels = rng.integers(0, 5, 8)
    loss, dscores = softmax_cross_entropy(scores, labels)
    num = numerical_gradient(lambda s: np.array(softmax_cross_entropy(s, labels)[0]), scores, np.array(1.0))
    assert rel_error(dscores, num) < TOL
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(probs[np.arange(8), labels]).mean(), rel=1e-12)
    np.testing.assert_allclose(dscores.sum(axis=1), 0.0, atol=1e-15)


def test_softmax_cross_entropy_is_stable_for_huge_scores(rng):
    scores = rng.standard_normal((4, 3))
    labels = np.array([0, 1, 2, 1])
    loss, dscores = softmax_cross_entropy(scores, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss_big, dscores_big = softmax_cross_entropy(scores + 1e6, labels)  # a shift per row changes nothing
        wrong, _ = softmax_cross_entropy(np.array([[1000.0, -1000.0]]), np.array([1]))
    assert loss_big == pytest.approx(loss, rel=1e-9)
    np.testing.assert_allclose(dscores_big, dscores, atol=1e-9)
    assert wrong == pytest.approx(2000.0)


def test_softmax_cross_entropy_of_a_diverged_network_is_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(invalid="ignore"):
            loss, _ = softmax_cross_entropy(np.array([[np.nan, 1.0]]), np.array([0]))
    assert np.isnan(loss)


def test_softmax_cross_entropy_layer(rng):
    loss_layer = SoftmaxCrossEntropy()
    with pytest.raises(RuntimeError, match="forward"):
        loss_layer.backward()
    scores, labels = rng.standard_normal((5, 4)), np.array([0, 1, 2, 3, 0])
    loss = loss_layer.forward(scores, labels)
    expected_loss, expected_grad = softmax_cross_entropy(scores, labels)
    assert loss == expected_loss == loss_layer.loss
    np.testing.assert_array_equal(loss_layer.backward(), expected_grad)


@pytest.mark.parametrize(
    "scores, labels, error, match",
    [
        (np.zeros((3, 4)), np.array([0, 1, 4]), ValueError, "labels must be class indices in 0..3"),
        (np.zeros((3, 4)), np.array([0, -1, 2]), ValueError, "labels"),
        (np.zeros((3, 4)), np.array([0.0, 1.0, 2.0]), TypeError, "labels must be integer"),
        (np.zeros((3, 4)), np.array([0, 1]), ValueError, r"labels must have shape \(3,\)"),
        (np.zeros(4), np.array([0]), ValueError, "scores must be 2-D"),
        (np.zeros((0, 4)), np.zeros(0, int), ValueError, "empty"),
    ],
)
def test_softmax_cross_entropy_rejects_bad_input(scores, labels, error, match):
    with pytest.raises(error, match=match):
        softmax_cross_entropy(scores, labels)


# --- Sequential: the whole MLP with BN --------------------------------------------------------------

def small_mlp(rng, activation=Sigmoid, noise=False):
    """5-6-4-3 with BN before each nonlinearity, gamma/beta moved off their initial 1/0."""
    layers = []
    sizes = (5, 6, 4)
    for fan_in, width in zip(sizes, sizes[1:]):
        layers.append(Dense(fan_in, width, init_scale=0.7, bias=False, rng=rng))
        bn = BatchNorm(width, eps=1e-5, momentum=0.9)
        bn.gamma[:] = rng.uniform(0.5, 1.5, width)
        bn.beta[:] = rng.uniform(-0.5, 0.5, width)
        layers.append(bn)
        if noise:
            layers.append(ShiftScaleNoise(width, rng=0))
        layers.append(activation())
    layers.append(Dense(sizes[-1], 3, init_scale=0.7, rng=rng))
    layers[-1].b[:] = rng.standard_normal(3)
    return Sequential(layers)


@pytest.mark.parametrize("activation", [Sigmoid, ReLU])
def test_mlp_with_bn_gradients(rng, activation):
    model = small_mlp(rng, activation)
    x = rng.standard_normal((8, 5))
    out = model.forward(x, training=True)
    dout = rng.standard_normal(out.shape)
    dx = model.backward(dout)
    named = model.named_params_and_grads()
    grads = {name: grad.copy() for name, _, grad in named}

    f = lambda xx: model.forward(xx, training=True)
    assert rel_error(dx, numerical_gradient(f, x, dout)) < TOL
    for name, param, _ in named:
        num = numerical_gradient(lambda _: model.forward(x, training=True), param, dout)
        assert rel_error(grads[name], num) < TOL, name
    assert {"1.gamma", "1.beta", "4.gamma", "4.beta"} <= set(grads)


def test_mlp_with_noisy_bn_full_loss_gradients(rng):
    """Loss -> scores -> ... -> parameters through BN, noise and sigmoid."""
    model = small_mlp(rng, Sigmoid, noise=True)
    noise_layers = [layer for layer in model if isinstance(layer, ShiftScaleNoise)]
    x = rng.standard_normal((8, 5))
    labels = rng.integers(0, 3, 8)

    def scores_of(_):
        for i, layer in enumerate(noise_layers):
            layer.rng = np.random.default_rng(i)  # the same draws at every call
        return model.forward(x, training=True)

    def loss_of(_):
        return np.array(softmax_cross_entropy(scores_of(None), labels)[0])

    _, dscores = softmax_cross_entropy(scores_of(None), labels)
    model.backward(dscores)
    grads = {name: grad.copy() for name, _, grad in model.named_params_and_grads()}
    for name, param, _ in model.named_params_and_grads():
        assert rel_error(grads[name], numerical_gradient(loss_of, param, np.array(1.0))) < TOL, name


def test_mlp_backward_in_evaluation_mode(rng):
    model = small_mlp(rng)
    x = rng.standard_normal((8, 5))
    model.forward(x, training=True)  # move the running statistics off 0 / 1
    out = model.forward(x, training=False)
    dout = rng.standard_normal(out.shape)
    dx = model.backward(dout)
    assert rel_error(dx, numerical_gradient(lambda xx: model.forward(xx, training=False), x, dout)) < TOL


def test_sequential_container_and_errors(rng):
    model = small_mlp(rng)
    assert len(model) == 7 and isinstance(model[1], BatchNorm)
    assert [type(layer).__name__ for layer in model][:3] == ["Dense", "BatchNorm", "Sigmoid"]
    assert "BatchNorm" in repr(model)
    assert all(grad is None for _, grad in model.params_and_grads())
    with pytest.raises(ValueError, match="empty"):
        Sequential([])
    with pytest.raises(TypeError, match=r"layers\[1\]"):
        Sequential([Dense(2, 2, rng=0), "relu"])
    with pytest.raises(TypeError, match="training"):
        model.forward(np.ones((4, 5)), training=None)
    with pytest.raises(ValueError, match="batch"):
        model.forward(np.ones((1, 5)), training=True)  # BN refuses a batch of one in training


# --- SGD ----------------------------------------------------------------------------------------

def test_sgd_updates_every_parameter_in_place_including_bn(rng):
    model = small_mlp(rng)
    x = rng.standard_normal((8, 5))
    labels = rng.integers(0, 3, 8)
    _, dscores = softmax_cross_entropy(model.forward(x, training=True), labels)
    model.backward(dscores)
    before = [(param, param.copy(), grad.copy()) for param, grad in model.params_and_grads()]
    bn = model[1]
    gamma_array = bn.gamma
    SGD(0.3).step(model)
    for param, old, grad in before:
        np.testing.assert_allclose(param, old - 0.3 * grad, rtol=0, atol=1e-15)
    assert bn.gamma is gamma_array  # updated in place: the layer still holds the same array
    assert not np.allclose(bn.gamma, before[1][1])


def test_sgd_lowers_the_loss(rng):
    model = small_mlp(rng)
    x = rng.standard_normal((16, 5))
    labels = rng.integers(0, 3, 16)
    sgd = SGD(0.5)
    losses = []
    for _ in range(100):
        loss, dscores = softmax_cross_entropy(model.forward(x, training=True), labels)
        losses.append(loss)
        model.backward(dscores)
        sgd.step(model.params_and_grads())
    assert losses[-1] < 0.5 * losses[0]


def test_sgd_rejects_bad_input():
    for lr in (0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="learning_rate"):
            SGD(lr)
    with pytest.raises(TypeError, match="learning_rate"):
        SGD("0.1")
    sgd = SGD(0.1)
    with pytest.raises(RuntimeError, match="backward"):
        sgd.step([(np.zeros(3), None)])
    with pytest.raises(ValueError, match="shape"):
        sgd.step([(np.zeros(3), np.zeros(4))])
    with pytest.raises(TypeError, match="pair"):
        sgd.step([np.zeros(3)])
    with pytest.raises(TypeError, match="float ndarray"):
        sgd.step([(np.zeros(3, dtype=int), np.zeros(3))])


def test_as_rng():
    g = np.random.default_rng(0)
    assert as_rng(g) is g
    assert as_rng(5).integers(1000) == np.random.default_rng(5).integers(1000)
    assert isinstance(as_rng(None), np.random.Generator)
    with pytest.raises(ValueError, match="non-negative"):
        as_rng(-1)
    with pytest.raises(TypeError, match="Generator"):
        as_rng(np.random.RandomState(0))
    with pytest.raises(TypeError):
        as_rng(True)
