"""After training (notebooks 10-11), bnlab on its own: BatchNorm's new options, folding, recalibration,
distribution shifts and the framework translation, against hand-written formulas; and their bad input.

The frameworks themselves are compared in ``tests/test_reference_after_training.py``.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

import bnlab
from bnlab import (
    BatchNorm,
    fold_batchnorm,
    fold_model,
    recalibrate_batchnorm,
    shift_digits,
    translate,
)
from bnlab.layers import SGD, Conv2D, Dense, ReLU, Sequential, ShiftScaleNoise, layer_params
from bnlab.running import convert_momentum

CONVENTION_NAMES = ["keras", "pytorch"]


@pytest.fixture
def rng():
    return np.random.default_rng(1710)


def refused(error, *fragments):
    """pytest.raises matching every fragment (plain text, in order) of the message."""
    return pytest.raises(error, match=".*".join(re.escape(f) for f in fragments))


def stored_var(convention, batch, axes=0):
    """The batch variance a convention stores: biased (keras) or unbiased (pytorch)."""
    n = batch.size // np.prod([s for i, s in enumerate(batch.shape) if i not in np.atleast_1d(axes)])
    var = batch.var(axis=axes)
    return var if convention == "keras" else var * n / (n - 1)


# --- momentum="cumulative" ------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_cumulative_is_the_plain_average_of_the_batches(rng, convention):
    bn = BatchNorm(3, convention=convention, momentum="cumulative")
    batches = [rng.normal(rng.uniform(-3, 3, 3), rng.uniform(0.5, 3, 3), size=(5 + k, 3)) for k in range(6)]
    for k, batch in enumerate(batches, start=1):
        bn.forward(batch, training=True)
        np.testing.assert_allclose(bn.running_mean, np.mean([b.mean(0) for b in batches[:k]], axis=0),
                                   rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(bn.running_var,
                                   np.mean([stored_var(convention, b) for b in batches[:k]], axis=0),
                                   rtol=1e-13)
        assert bn.num_batches_tracked == k
    assert bn.momentum == "cumulative"  # the setting stays; the weight 1/k is computed per step


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_cumulative_first_batch_replaces_the_initial_values(rng, convention):
    batch = rng.normal(5.0, 2.0, size=(4, 2, 3, 3))
    bn = BatchNorm(2, convention=convention, momentum="cumulative", axis=(0, 2, 3))
    bn.forward(batch, training=True)
    np.testing.assert_allclose(bn.running_mean, batch.mean(axis=(0, 2, 3)), rtol=1e-14)
    np.testing.assert_allclose(bn.running_var, stored_var(convention, batch, (0, 2, 3)), rtol=1e-14)


def test_cumulative_keeps_float32_and_shows_in_repr(rng):
    bn = BatchNorm(2, momentum="cumulative", dtype=np.float32)
    bn.forward(rng.normal(size=(4, 2)).astype(np.float32), training=True)
    assert bn.running_mean.dtype == bn.running_var.dtype == np.float32
    assert "momentum='cumulative'" in repr(bn)


def test_momentum_none_still_means_the_default():
    assert BatchNorm(2, convention="pytorch", momentum=None).momentum == 0.1
    assert BatchNorm(2, convention="keras", momentum=None).momentum == 0.99


# --- affine=False -------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_affine_false_has_no_gamma_beta_and_only_normalizes(rng, convention):
    bn = BatchNorm(3, convention=convention, affine=False)
    assert bn.gamma is None and bn.beta is None
    z = rng.normal(2.0, 3.0, size=(8, 3))
    y = bn.forward(z, training=True)
    np.testing.assert_allclose(y, (z - z.mean(0)) / np.sqrt(z.var(0) + bn.eps), rtol=1e-12, atol=1e-13)
    dy = rng.normal(size=z.shape)
    dz = bn.backward(dy)
    assert bn.dgamma is None and bn.dbeta is None
    num = bnlab.numerical_gradient(
        lambda z_: BatchNorm(3, convention=convention, affine=False).forward(z_, training=True), z.copy(), dy)
    assert bnlab.rel_error(dz, num) < 1e-7
    y_eval = bn.forward(z, training=False)
    np.testing.assert_allclose(y_eval, (z - bn.running_mean) / np.sqrt(bn.running_var + bn.eps), rtol=1e-13)
    np.testing.assert_allclose(bn.backward(dy), dy / np.sqrt(bn.running_var + bn.eps), rtol=1e-14)
    assert bn.dgamma is None and layer_params(bn) == []
    assert "affine=False" in repr(bn)


# --- track_running_stats=False ------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_without_running_stats_eval_uses_the_batch(rng, convention):
    bn = BatchNorm(3, convention=convention, track_running_stats=False)
    assert bn.running_mean is None and bn.running_var is None and bn.num_batches_tracked is None
    bn.gamma[:] = [1.0, 2.0, -0.5]
    z = rng.normal(1.0, 2.0, size=(6, 3))
    y_train = bn.forward(z, training=True)
    y_eval = bn.forward(z, training=False)
    np.testing.assert_array_equal(y_eval, y_train)
    assert bn.running_mean is None and bn.num_batches_tracked is None
    # eval output depends on the batch, and so does its gradient (the full BN backward)
    dy = rng.normal(size=z.shape)
    dz = bn.backward(dy)
    num = bnlab.numerical_gradient(lambda z_: bn.forward(z_, training=False), z.copy(), dy)
    assert bnlab.rel_error(dz, num) < 1e-7
    assert abs(dz.sum(axis=0)).max() < 1e-12
    bn.reset_running_stats()  # nothing to reset, like PyTorch
    assert bn.running_mean is None
    assert "track_running_stats=False" in repr(bn)


def test_without_running_stats_a_batch_of_one_is_refused_in_eval_too():
    bn = BatchNorm(4, convention="pytorch", axis=(0, 2, 3), track_running_stats=False)
    for training in (True, False):
        with refused(ValueError, "only one value per feature"):
            bn.forward(np.ones((1, 4, 1, 1)), training=training)
    with refused(ValueError, "track_running_stats=False", "evaluation normalizes with the batch"):
        bn.forward(np.ones((1, 4, 1, 1)), training=False)
    assert bn.forward(np.arange(8.0).reshape(1, 4, 2, 1), training=False).shape == (1, 4, 2, 1)


# --- reset_running_stats ------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_reset_running_stats(rng, convention):
    bn = BatchNorm(3, convention=convention)
    for _ in range(3):
        bn.forward(rng.normal(4.0, 2.0, size=(5, 3)), training=True)
    bn.gamma[:] = 2.0
    before = bn.running_mean
    bn.reset_running_stats()
    np.testing.assert_array_equal(bn.running_mean, 0.0)
    np.testing.assert_array_equal(bn.running_var, 1.0)
    assert bn.num_batches_tracked == 0
    assert bn.running_mean is not before and bn.running_mean.dtype == bn.dtype
    np.testing.assert_array_equal(bn.gamma, 2.0)  # parameters are not statistics


# --- trainable ----------------------------------------------------------------------------------


def test_frozen_keras_layer_runs_in_inference_mode(rng):
    bn = BatchNorm(3, convention="keras", momentum=0.5)
    for _ in range(3):
        bn.forward(rng.normal(2.0, 3.0, size=(6, 3)), training=True)
    bn.gamma[:], bn.beta[:] = [1.5, 0.5, -1.0], [0.1, 0.2, 0.3]
    bn.trainable = False
    state = (bn.running_mean.copy(), bn.running_var.copy(), bn.num_batches_tracked)
    z = rng.normal(size=(6, 3))
    y = bn.forward(z, training=True)
    np.testing.assert_array_equal(y, bn.forward(z, training=False))
    np.testing.assert_array_equal(bn.running_mean, state[0])
    np.testing.assert_array_equal(bn.running_var, state[1])
    assert bn.num_batches_tracked == state[2]
    bn.forward(z, training=True)
    dy = rng.normal(size=z.shape)
    np.testing.assert_allclose(bn.backward(dy), dy * bn.gamma / np.sqrt(bn.running_var + bn.eps), rtol=1e-14)
    assert bn.dgamma is None and bn.dbeta is None
    assert "trainable=False" in repr(bn)
    bn.trainable = True  # unfreezing restores training mode
    assert not np.allclose(bn.forward(z, training=True), y)
    assert bn.num_batches_tracked == state[2] + 1


def test_frozen_pytorch_layer_still_updates_running_stats(rng):
    bn = BatchNorm(3, convention="pytorch")
    bn.trainable = False
    z = rng.normal(2.0, 3.0, size=(6, 3))
    y = bn.forward(z, training=True)
    np.testing.assert_allclose(y, (z - z.mean(0)) / np.sqrt(z.var(0) + bn.eps), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(bn.running_mean, 0.1 * z.mean(0), rtol=1e-13)
    assert bn.num_batches_tracked == 1
    dz = bn.backward(rng.normal(size=z.shape))
    assert abs(dz.sum(axis=0)).max() < 1e-12  # the batch-coupled training backward
    assert bn.dgamma is None and bn.dbeta is None


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_sgd_leaves_a_frozen_layer_alone(rng, convention):
    model = Sequential([Dense(4, 3, rng=0, bias=False), BatchNorm(3, convention=convention), ReLU(),
                        Dense(3, 2, rng=1)])
    model[1].trainable = False
    assert [name for name, _, _ in model.named_params_and_grads()] == ["0.W", "3.W", "3.b"]
    gamma, beta, W0 = model[1].gamma.copy(), model[1].beta.copy(), model[0].W.copy()
    model.forward(rng.normal(size=(8, 4)), training=True)
    model.backward(rng.normal(size=(8, 2)))
    SGD(0.5).step(model)
    np.testing.assert_array_equal(model[1].gamma, gamma)
    np.testing.assert_array_equal(model[1].beta, beta)
    assert not np.array_equal(model[0].W, W0)  # the rest learns
    model[1].trainable = True
    assert len(model.params_and_grads()) == 5


# --- fold_batchnorm -------------------------------------------------------------------------------


def _trained_bn(rng, width, convention="pytorch", axis=0, shape=None, **kwargs):
    bn = BatchNorm(width, convention=convention, axis=axis, **kwargs)
    for _ in range(4):
        bn.forward(rng.normal(rng.uniform(-2, 2), 2.0, size=shape or (6, width)), training=True)
    if bn.affine:
        bn.gamma[:] = rng.uniform(0.5, 2.0, width) * rng.choice([-1, 1], width)
        bn.beta[:] = rng.normal(size=width)
    return bn


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_fold_dense_equals_dense_then_bn_in_eval(rng, bias, affine):
    x = rng.normal(size=(9, 5))
    W, b = rng.normal(size=(5, 4)), (rng.normal(size=4) if bias else None)
    bn = _trained_bn(rng, 4, affine=affine)
    W2, b2 = fold_batchnorm(W, b, bn.running_mean, bn.running_var, bn.gamma, bn.beta, bn.eps)
    expected = bn.forward(x @ W + (0 if b is None else b), training=False)
    np.testing.assert_allclose(x @ W2 + b2, expected, rtol=1e-12, atol=1e-13)
    # by hand: W' = W * s per output column, b' = (b - mean) * s + beta
    s = (bn.gamma if affine else 1.0) / np.sqrt(bn.running_var + bn.eps)
    np.testing.assert_allclose(W2, W * s, rtol=1e-15)
    np.testing.assert_allclose(b2, ((0 if b is None else b) - bn.running_mean) * s + (bn.beta if affine else 0),
                               rtol=1e-14)


def test_fold_out_axis_0_and_conv_weights(rng):
    W = rng.normal(size=(4, 5))
    bn = _trained_bn(rng, 4)
    args = (bn.running_mean, bn.running_var, bn.gamma, bn.beta, bn.eps)
    W_rows, b_rows = fold_batchnorm(W, None, *args, out_axis=0)  # torch.nn.Linear's (out, in)
    W_cols, b_cols = fold_batchnorm(W.T, None, *args, out_axis=-1)
    np.testing.assert_array_equal(W_rows, W_cols.T)
    np.testing.assert_array_equal(b_rows, b_cols)
    Wc = rng.normal(size=(4, 3, 2, 2))
    W2, _ = fold_batchnorm(Wc, None, *args, out_axis=0)
    s = bn.gamma / np.sqrt(bn.running_var + bn.eps)
    np.testing.assert_allclose(W2, Wc * s[:, None, None, None], rtol=1e-15)
    np.testing.assert_array_equal(fold_batchnorm(Wc, None, *args, out_axis=-4)[0], W2)


def test_fold_keeps_dtypes_and_does_not_mutate(rng):
    bn = _trained_bn(rng, 3)
    W = rng.normal(size=(4, 3)).astype(np.float32)
    b = np.zeros(3, np.float32)
    W_copy, b_copy = W.copy(), b.copy()
    W2, b2 = fold_batchnorm(W, b, bn.running_mean, bn.running_var, bn.gamma, bn.beta, bn.eps)
    assert W2.dtype == b2.dtype == np.float32
    np.testing.assert_array_equal(W, W_copy)
    np.testing.assert_array_equal(b, b_copy)
    assert fold_batchnorm(W, None, bn.running_mean, bn.running_var, None, None, 1e-5)[1].dtype == np.float32
    W_int, b_int = fold_batchnorm(np.ones((2, 3), int), None, np.zeros(3), np.ones(3), None, None, 1e-5)
    assert W_int.dtype == b_int.dtype == np.float64


def test_forgetting_the_old_bias_is_caught(rng):
    """The classic folding bug (ultralytics/yolov3#807): keep b instead of (b - mean) * s + beta."""
    x, W, b = rng.normal(size=(5, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)
    bn = _trained_bn(rng, 2)
    W2, b2 = fold_batchnorm(W, b, bn.running_mean, bn.running_var, bn.gamma, bn.beta, bn.eps)
    expected = bn.forward(x @ W + b, training=False)
    np.testing.assert_allclose(x @ W2 + b2, expected, rtol=1e-12)
    wrong = (b * 0 - bn.running_mean) * bn.gamma / np.sqrt(bn.running_var + bn.eps) + bn.beta
    assert not np.allclose(x @ W2 + wrong, expected)


# --- fold_model -----------------------------------------------------------------------------------


def _mlp(rng, convention="keras", bias=False):
    model = Sequential([Dense(6, 5, rng=1, bias=bias), BatchNorm(5, convention=convention), ReLU(),
                        Dense(5, 4, rng=2, bias=bias), BatchNorm(4, convention=convention), ReLU(),
                        Dense(4, 3, rng=3)])
    for _ in range(5):
        model.forward(rng.normal(1.0, 2.0, size=(8, 6)), training=True)
    for layer in model:
        if isinstance(layer, BatchNorm):
            layer.gamma[:] = rng.uniform(0.5, 2.0, layer.gamma.shape)
            layer.beta[:] = rng.normal(size=layer.beta.shape)
    return model


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_fold_model_equals_the_model_in_eval_and_leaves_it_untouched(rng, convention):
    model = _mlp(rng, convention)
    snapshot = copy.deepcopy(model)
    folded = fold_model(model)
    assert [type(layer).__name__ for layer in folded] == ["Dense", "ReLU", "Dense", "ReLU", "Dense"]
    assert all(folded[i].b is not None for i in (0, 2))
    x = rng.normal(1.0, 2.0, size=(20, 6))
    np.testing.assert_allclose(folded.forward(x, training=False), model.forward(x, training=False),
                               rtol=1e-12, atol=1e-13)
    assert not any(a is b for a, b in zip(folded, model))
    for before, after in zip(snapshot, model):
        for name in ("W", "b", "gamma", "beta", "running_mean", "running_var"):
            if getattr(before, name, None) is not None:
                np.testing.assert_array_equal(getattr(before, name), getattr(after, name))
    assert model[0].b is None  # the original dense layer kept its missing bias


def test_fold_model_float32(rng):
    model = _mlp(rng)
    for layer in model:
        if isinstance(layer, Dense):
            layer.dtype, layer.W = np.dtype(np.float32), layer.W.astype(np.float32)
            layer.b = None if layer.b is None else layer.b.astype(np.float32)
    folded = fold_model(model)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    y, y_folded = model.forward(x, training=False), folded.forward(x, training=False)
    assert y_folded.dtype == np.float32
    assert 0 < np.abs(y - y_folded).max() < 1e-5


def test_fold_model_skips_what_cannot_fold(rng):
    no_stats = BatchNorm(5, track_running_stats=False)
    after_relu = _trained_bn(rng, 5)
    model = Sequential([Dense(6, 5, rng=0), no_stats, ReLU(), after_relu, Dense(5, 2, rng=1), ReLU()])
    folded = fold_model(model)
    assert [type(layer).__name__ for layer in folded] == ["Dense", "BatchNorm", "ReLU", "BatchNorm", "Dense",
                                                          "ReLU"]
    x = rng.normal(size=(7, 6))
    np.testing.assert_array_equal(folded.forward(x, training=False), model.forward(x, training=False))


def test_fold_model_keeps_shared_generators_shared():
    model = Sequential([Dense(3, 2, rng=0), BatchNorm(2), ShiftScaleNoise(2, rng=np.random.default_rng(0)),
                        ShiftScaleNoise(2)])
    model[3].rng = model[2].rng
    folded = fold_model(model)
    assert folded[1].rng is folded[2].rng and folded[1].rng is not model[2].rng


def _conv(rng, bias=False):
    return Conv2D(2, 3, 3, bias=bias, rng=rng)


@pytest.mark.parametrize("bias", [False, True])
def test_fold_model_conv2d_path(rng, bias):
    conv = _conv(rng, bias)
    if bias:
        conv.b[:] = rng.normal(size=conv.b.shape)
    bn = _trained_bn(rng, 3, axis=(0, 2, 3), shape=(2, 3, 4, 4))
    model = Sequential([conv, bn, ReLU()])
    folded = fold_model(model)
    assert isinstance(folded[0], Conv2D) and len(folded) == 2 and (conv.b is None) is (not bias)
    x = rng.normal(size=(2, 2, 5, 5))
    np.testing.assert_allclose(folded.forward(x, training=False), model.forward(x, training=False),
                               rtol=1e-12, atol=1e-13)


# --- recalibrate_batchnorm ------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_recalibration_is_the_equal_weight_average(rng, convention):
    model = _mlp(rng, convention)
    batches = [rng.normal(0.5, 1.5, size=(7, 6)) for _ in range(5)]
    recalibrate_batchnorm(model, batches)
    first = [b @ model[0].W for b in batches]  # what the first BN sees
    np.testing.assert_allclose(model[1].running_mean, np.mean([f.mean(0) for f in first], axis=0), rtol=1e-12)
    np.testing.assert_allclose(model[1].running_var, np.mean([stored_var(convention, f) for f in first], axis=0),
                               rtol=1e-12)
    assert model[1].num_batches_tracked == model[4].num_batches_tracked == 5


def test_recalibration_restores_settings_and_touches_nothing_else(rng):
    model = _mlp(rng, "keras")
    model.layers.insert(2, ShiftScaleNoise(5, rng=3))
    model[1].trainable = False  # frozen (keras): recalibrated all the same, and still frozen after
    model[5].momentum = 0.7
    params = copy.deepcopy([p for p, _ in model.params_and_grads()])
    noise_state = copy.deepcopy(model[2].rng.bit_generator.state)
    old_mean = model[1].running_mean.copy()
    recalibrate_batchnorm(model, (rng.normal(size=(6, 6)) for _ in range(3)))  # a generator is fine
    assert not np.allclose(model[1].running_mean, old_mean)
    assert model[1].trainable is False and model[1].momentum == 0.99
    assert model[5].momentum == 0.7 and model[5].trainable
    for before, (after, _) in zip(params, model.params_and_grads()):
        np.testing.assert_array_equal(before, after)
    assert model[2].rng.bit_generator.state == noise_state  # the noise layer ran in evaluation mode


def test_recalibration_accepts_a_stacked_array_and_adapts_to_shifted_inputs(rng):
    model = _mlp(rng, "pytorch")
    shifted = rng.normal(3.0, 0.5, size=(4, 10, 6))
    recalibrate_batchnorm(model, shifted)
    np.testing.assert_allclose(model[1].running_mean, (shifted.reshape(-1, 6) @ model[0].W).mean(0), rtol=1e-12)


def test_recalibration_refusals_leave_the_model_as_it_was(rng):
    model = _mlp(rng)
    state = [(bn.running_mean.copy(), bn.running_var.copy(), bn.num_batches_tracked, bn.momentum)
             for bn in (model[1], model[4])]
    with refused(ValueError, "batches[2]", "only one value per feature"):
        recalibrate_batchnorm(model, [rng.normal(size=(5, 6)), rng.normal(size=(5, 6)), rng.normal(size=(1, 6))])
    with refused(ValueError, "batches[0]", "x must have 6 columns"):
        recalibrate_batchnorm(model, [rng.normal(size=(5, 4))])
    for bn, (mean, var, tracked, momentum) in zip((model[1], model[4]), state):
        np.testing.assert_array_equal(bn.running_mean, mean)
        np.testing.assert_array_equal(bn.running_var, var)
        assert (bn.num_batches_tracked, bn.momentum) == (tracked, momentum)


def test_recalibration_bad_input(rng):
    model = _mlp(rng)
    for empty in ([], (), iter([]), np.empty((0, 4, 6))):
        with refused(ValueError, "batches is empty", "at least one batch"):
            recalibrate_batchnorm(model, empty)
    with refused(ValueError, "batches as one array must have shape (S, N, ...)", "got shape (4, 6)"):
        recalibrate_batchnorm(model, rng.normal(size=(4, 6)))
    with refused(TypeError, "batches must be an iterable of input batches, got int"):
        recalibrate_batchnorm(model, 3)
    with refused(ValueError, "model has no BatchNorm layer with running statistics", "nothing to recalibrate"):
        recalibrate_batchnorm(Sequential([Dense(6, 2, rng=0)]), [rng.normal(size=(4, 6))])
    with refused(ValueError, "model has no BatchNorm layer with running statistics"):
        recalibrate_batchnorm(Sequential([BatchNorm(6, track_running_stats=False)]), [rng.normal(size=(4, 6))])
    with refused(TypeError, "model must be a bnlab Sequential, got list"):
        recalibrate_batchnorm(list(model), [rng.normal(size=(4, 6))])


# --- shift_digits ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return bnlab.datasets.load_digits_split(0).x_test


def test_shift_formulas(digits):
    x = digits
    np.testing.assert_allclose(shift_digits(x, "contrast", 0.4), 0.4 * x, rtol=1e-15)
    np.testing.assert_allclose(shift_digits(x, "brightness", -0.2), x - 0.2, rtol=1e-15)
    np.testing.assert_allclose(shift_digits(x, "contrast_brightness"), 0.5 * x + 0.3, rtol=1e-15)
    np.testing.assert_allclose(shift_digits(x, "invert"), 1 - x, atol=1e-15)
    np.testing.assert_allclose(shift_digits(x, "invert", 0.5), np.full_like(x, 0.5), atol=1e-15)
    noise = shift_digits(x, "noise", 0.3) - x
    assert abs(noise.std() - 0.3) < 0.01 and abs(noise.mean()) < 0.01
    np.testing.assert_array_equal(shift_digits(x, "noise", 0.0), x)


def test_shift_is_deterministic_and_leaves_x_alone(digits):
    x = digits.copy()
    x.flags.writeable = False
    np.testing.assert_array_equal(shift_digits(x, "noise"), shift_digits(x, "noise", rng=0))
    assert not np.array_equal(shift_digits(x, "noise", rng=0), shift_digits(x, "noise", rng=1))
    assert not np.array_equal(shift_digits(x, "noise", rng=np.random.default_rng(5)), shift_digits(x, "noise"))
    assert shift_digits(x.astype(np.float32), "noise").dtype == np.float32
    assert shift_digits(np.arange(4).reshape(2, 2), "contrast").dtype == np.float64
    assert set(bnlab.datasets.SHIFT_KINDS) == {"contrast", "brightness", "contrast_brightness", "noise", "invert"}


@pytest.mark.parametrize(("kind", "strength", "error", "fragments"), [
    ("blur", None, ValueError, ("kind must be one of", "'blur'")),
    (None, None, ValueError, ("kind must be one of",)),
    ("noise", -0.1, ValueError, ("strength for kind 'noise' is a standard deviation", "-0.1")),
    ("contrast", 0.0, ValueError, ("contrast factor a must be positive", "got 0.0")),
    ("contrast_brightness", (-1.0, 0.0), ValueError, ("contrast factor a must be positive",)),
    ("invert", 1.5, ValueError, ("strength for kind 'invert' must be in [0, 1]", "1.5")),
    ("brightness", "0.3", TypeError, ("strength for kind 'brightness' must be a finite real number",)),
    ("brightness", float("nan"), TypeError, ("must be a finite real number",)),
    ("contrast_brightness", 0.5, TypeError, ("must be a pair (a, b)", "got 0.5")),
    ("contrast_brightness", (0.5, None), TypeError, ("strength's b must be a finite real number",)),
])
def test_shift_bad_arguments(digits, kind, strength, error, fragments):
    with refused(error, *fragments):
        shift_digits(digits, kind, strength)


def test_shift_bad_images(digits):
    bad = digits.copy()
    bad[3, 5] = np.nan
    with refused(ValueError, "x contains 1 non-finite value(s)"):
        shift_digits(bad, "contrast")
    with refused(ValueError, "x is empty"):
        shift_digits(np.empty((0, 64)), "contrast")
    with refused(TypeError, "x must hold real numbers"):
        shift_digits(np.full((2, 2), "a"), "contrast")
    with refused(TypeError, "rng must be a numpy.random.Generator or an int seed"):
        shift_digits(digits, "noise", rng="seed")


# --- translate / render_translation ---------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.1, 0.3, 0.01, 0.0, 1.0])
def test_translate_momentum_both_ways(momentum):
    t = translate("pytorch", momentum, ndim=4)
    assert t.pytorch["momentum"] == momentum
    assert t.keras["momentum"] == pytest.approx(1 - momentum, abs=1e-15)
    assert t.keras["momentum"] == pytest.approx(convert_momentum(momentum, "pytorch", "keras"), abs=1e-12)
    back = translate("keras", t.keras["momentum"], eps=t.keras["epsilon"], ndim=4)
    assert back.pytorch == t.pytorch and back.keras == t.keras and back.bnlab == t.bnlab
    assert t.batch_weight == back.batch_weight == pytest.approx(momentum)


def test_translate_defaults_layouts_and_explicit_eps():
    t = translate("pytorch", ndim=4)
    assert t.pytorch == {"layer": "BatchNorm2d", "momentum": 0.1, "eps": 1e-5, "affine": True}
    assert t.keras == {"axis": -1, "momentum": 0.9, "epsilon": 1e-5, "center": True, "scale": True}
    assert t.bnlab["pytorch"]["axis"] == (0, 2, 3) and t.bnlab["keras"]["axis"] == (0, 1, 2)
    assert t.layouts == {"pytorch": "(N, C, H, W)", "keras": "(N, H, W, C)"}
    k = translate("keras")
    assert k.keras["epsilon"] == k.pytorch["eps"] == 1e-3 and k.pytorch["momentum"] == 0.01
    assert k.pytorch["layer"] == "BatchNorm1d" and k.bnlab["keras"]["axis"] == 0
    assert any("eps" in note and "1e-3" in note for note in k.notes)
    assert translate("keras", ndim=4, axis=1).bnlab["keras"]["axis"] == (0, 2, 3)
    assert translate("pytorch", ndim=3).pytorch["layer"] == "BatchNorm1d"
    assert translate("pytorch", ndim=5).pytorch["layer"] == "BatchNorm3d"
    assert (t.same_training_output, t.same_running_mean, t.same_running_var, t.same_eval_output) == (
        True, True, False, False)


def test_translate_cumulative_has_no_keras_equivalent():
    t = translate("pytorch", "cumulative", ndim=2)
    assert t.keras is None and t.pytorch["momentum"] is None and t.batch_weight == "1/k"
    assert t.bnlab["pytorch"]["momentum"] == t.bnlab["keras"]["momentum"] == "cumulative"
    assert not t.same_running_mean
    assert "Keras has no equivalent" in t.notes[0]
    with refused(ValueError, "Keras has no cumulative average"):
        translate("keras", "cumulative")


def test_rendered_bnlab_code_builds_the_layers_it_names():
    t = translate("pytorch", 0.3, eps=1e-4, ndim=4, affine=False, num_features=7)
    code = t.code()
    namespace = {}
    exec(code["bnlab"], namespace)  # noqa: S102 - the printed code must build what it says
    for name in ("pytorch", "keras"):
        bn = namespace[f"bn_{name}"]
        settings = t.bnlab[name]
        assert (bn.convention.name, bn.momentum, bn.eps, bn.axis, bn.affine) == (
            settings["convention"], settings["momentum"], settings["eps"], settings["axis"], settings["affine"])
        assert bn.feature_shape == (7,)
    assert "torch.nn.BatchNorm2d(" in code["PyTorch"] and "affine=False" in code["PyTorch"]
    assert "center=False" in code["Keras 3"] and "momentum=0.7" in code["Keras 3"]


def test_render_translation_columns_and_blocks():
    t = translate("keras", 0.99, ndim=4)
    text = bnlab.render_translation(t)
    header = text.splitlines()[0]
    assert header.index("# PyTorch") < header.index("# Keras 3") < header.index("# bnlab")
    assert "momentum=0.01" in text and "momentum=0.99" in text and "Notes" in text
    assert "x.transpose(0, 3, 1, 2) for PyTorch" in text
    stacked = bnlab.render_translation(t, columns=False)
    assert stacked.index("# PyTorch") < stacked.index("# Keras 3") < stacked.index("# bnlab")
    assert max(len(line) for line in stacked.splitlines() if not line.startswith("- ")) < 50
    assert "C," in text  # num_features not given: shown as C


@pytest.mark.parametrize(("kwargs", "error", "fragments"), [
    (dict(framework="tensorflow"), ValueError, ("framework must be one of ['keras', 'pytorch']", "'tensorflow'")),
    (dict(framework=None), ValueError, ("framework must be one of",)),
    (dict(framework="pytorch", ndim=6), ValueError, ("ndim must be 2, 3, 4 or 5", "got 6")),
    (dict(framework="pytorch", ndim=4, axis=-1), ValueError, ("PyTorch's BatchNorm always normalizes", "axis 1")),
    (dict(framework="keras", ndim=4, axis=0), ValueError, ("axis=0 must name a feature axis", "axis 0 is the batch")),
    (dict(framework="keras", ndim=2, axis=2), ValueError, ("axis=2 must name a feature axis",)),
    (dict(framework="keras", axis=1.0), TypeError, ("axis must be an int",)),
    (dict(framework="pytorch", momentum=1.5), ValueError, ("momentum must be in [0, 1]", "1.5")),
    (dict(framework="pytorch", momentum="fast"), ValueError, ("momentum must be a number in [0, 1]", "'fast'")),
    (dict(framework="pytorch", momentum=[0.1]), TypeError, ("momentum must be a real number",)),
    (dict(framework="keras", eps=0), ValueError, ("eps must be positive and finite", "got 0")),
    (dict(framework="keras", eps="1e-3"), TypeError, ("eps must be a positive real number",)),
    (dict(framework="keras", affine="yes"), TypeError, ("affine must be True or False",)),
    (dict(framework="keras", num_features=0), ValueError, ("num_features must be a positive int or None",)),
])
def test_translate_bad_input(kwargs, error, fragments):
    with refused(error, *fragments):
        translate(**kwargs)


def test_render_translation_bad_input():
    with refused(TypeError, "translation must come from bnlab.conventions.translate, got dict"):
        bnlab.render_translation({"pytorch": {}})
    with refused(ValueError, "gap must be a positive int", "got 0"):
        bnlab.render_translation(translate("keras"), gap=0)


# --- BatchNorm's new arguments: bad input ---------------------------------------------------------


@pytest.mark.parametrize("momentum", ["Cumulative", "fast", "", "0.9"])
def test_momentum_string_other_than_cumulative(momentum):
    with refused(ValueError, "momentum must be a number in [0, 1], None (the convention's default, 0.99) or "
                             "\"cumulative\"", f"got {momentum!r}"):
        BatchNorm(3, momentum=momentum)


@pytest.mark.parametrize("name", ["affine", "track_running_stats"])
@pytest.mark.parametrize("value", [1, "yes", None])
def test_bool_switches_must_be_bools(name, value):
    with refused(TypeError, f"{name} must be True or False", f"got {value!r}"):
        BatchNorm(3, **{name: value})


@pytest.mark.parametrize("value", [0, "no", None])
def test_trainable_must_be_a_bool(value):
    bn = BatchNorm(3)
    with refused(TypeError, "trainable must be True or False", f"got {value!r}"):
        bn.trainable = value
    assert bn.trainable is True


W5 = np.ones((6, 5))
STATS5 = dict(running_mean=np.zeros(5), running_var=np.ones(5), gamma=np.ones(5), beta=np.zeros(5))


def fold(**override):
    kwargs = dict(W=W5, b=np.zeros(5), **STATS5, eps=1e-5, out_axis=-1)
    kwargs.update(override)
    return fold_batchnorm(**kwargs)


def test_fold_good_call():
    fold()


@pytest.mark.parametrize("arg", ["b", "running_mean", "running_var", "gamma", "beta"])
def test_fold_mismatched_shapes(arg):
    with refused(ValueError, f"{arg} must have shape (5,)", "one value per output feature: W.shape[1] = 5",
                 "got shape (4,)"):
        fold(**{arg: np.ones(4)})
    # the (out, in) layout of torch.nn.Linear read with out_axis=0: every statistic must be 6 long now
    six = {name: np.ones(6) for name in ("b", *STATS5)}
    six[arg] = np.ones(5)
    with refused(ValueError, f"{arg} must have shape (6,)", "W.shape[0] = 6", "got shape (5,)"):
        fold(**six, out_axis=0)


@pytest.mark.parametrize("out_axis", [2, -3, 5])
def test_fold_out_axis_out_of_range(out_axis):
    with refused(ValueError, f"out_axis={out_axis} is out of range for W of shape (6, 5)", "valid axes: -2..1"):
        fold(out_axis=out_axis)


@pytest.mark.parametrize("out_axis", [1.0, True, None, (0,)])
def test_fold_out_axis_kind(out_axis):
    with refused(TypeError, "out_axis must be an int"):
        fold(out_axis=out_axis)


def test_fold_other_bad_values():
    with refused(ValueError, "running_var must be non-negative", "-1.0"):
        fold(running_var=np.array([1.0, -1.0, 1.0, 1.0, 1.0]))
    bad = W5.copy()
    bad[2, 3] = np.inf
    with refused(ValueError, "W contains 1 non-finite value(s) (inf first at index (2, 3))"):
        fold(W=bad)
    with refused(ValueError, "eps must be positive and finite"):
        fold(eps=0.0)
    with refused(ValueError, "W must be an array of weights with at least one dimension, got a scalar"):
        fold(W=3.0)
    with refused(TypeError, "gamma must hold real numbers"):
        fold(gamma=np.array(["a"] * 5))


def test_fold_model_refuses_mismatched_pairs(rng):
    with refused(TypeError, "model must be a bnlab Sequential, got list"):
        fold_model([Dense(3, 2, rng=0)])
    model = Sequential([Dense(3, 2, rng=0), BatchNorm((2, 1), axis=0)])
    with refused(ValueError, "layers[1] (BatchNorm with num_features (2, 1)) cannot fold into layers[0]",
                 "num_features (2,)"):
        fold_model(model)
    conv = _conv(rng)
    wrong_axis = BatchNorm(3, axis=(0, 1, 2))  # per-column statistics of an (N, C, H, W) map
    with refused(ValueError, "cannot fold into layers[0] (Conv2D)", "reduce over axis (0, 2, 3)"):
        fold_model(Sequential([conv, wrong_axis]))


# --- the public face ------------------------------------------------------------------------------

AFTER_TRAINING_NAMES = ["fold_batchnorm", "fold_model", "recalibrate_batchnorm", "shift_digits", "translate",
                        "Translation", "render_translation"]


@pytest.mark.parametrize("name", AFTER_TRAINING_NAMES)
def test_exported_with_numpydoc_docstrings_naming_their_notebook(name):
    assert name in bnlab.__all__
    obj = getattr(bnlab, name)
    doc = obj.__doc__ or ""
    assert re.search(r"Introduced in notebook 1[01]", doc), name
    if name != "Translation":
        assert "Parameters" in doc and "Returns" in doc and "Notes" in doc, name


@pytest.mark.parametrize("name", ["precise_bn_experiment", "adabn_experiment", "bn_position_experiment",
                                  "folding_experiment"])
def test_experiments_are_documented(name):
    from bnlab import train

    doc = getattr(train, name).__doc__
    assert name in train.__all__
    assert "Parameters" in doc and "Returns" in doc and "Measured" in doc and "Introduced in notebook 1" in doc


def test_batchnorm_documents_its_new_arguments():
    doc = BatchNorm.__doc__
    for word in ('"cumulative"', "affine", "track_running_stats", "trainable", "notebook 10"):
        assert word in doc, word
    assert "Introduced in notebook 10" in BatchNorm.reset_running_stats.__doc__
