"""The BatchNorm layer: train/eval semantics in both conventions, against hand-written formulas."""

from __future__ import annotations

import numpy as np
import pytest

from bnlab import (
    CONVENTIONS,
    BatchNorm,
    batchnorm_backward,
    batchnorm_forward,
    numerical_gradient,
    rel_error,
)

CONVENTION_NAMES = ["keras", "pytorch"]


@pytest.fixture
def rng():
    return np.random.default_rng(1502)


def hand_update(convention, momentum, running_mean, running_var, z, axes):
    """One running-statistics update, written from the frameworks' formulas."""
    n = int(np.prod([z.shape[a] for a in axes]))
    mean = z.mean(axis=axes)
    var = z.var(axis=axes)  # biased
    if convention == "keras":
        return (
            momentum * running_mean + (1 - momentum) * mean,
            momentum * running_var + (1 - momentum) * var,
        )
    unbiased = var * n / (n - 1)
    return (
        (1 - momentum) * running_mean + momentum * mean,
        (1 - momentum) * running_var + momentum * unbiased,
    )


# --- construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_defaults_come_from_the_convention(convention):
    bn = BatchNorm(4, convention=convention)
    conv = CONVENTIONS[convention]
    assert bn.eps == conv.eps and bn.momentum == conv.momentum
    assert bn.convention is conv
    np.testing.assert_array_equal(bn.gamma, np.ones(4))
    np.testing.assert_array_equal(bn.beta, np.zeros(4))
    np.testing.assert_array_equal(bn.running_mean, np.zeros(4))
    np.testing.assert_array_equal(bn.running_var, np.ones(4))
    assert bn.num_batches_tracked == 0
    assert bn.dgamma is None and bn.dbeta is None
    assert bn.axis == 0 and bn.feature_shape == (4,)


def test_default_values():
    keras, torch_ = BatchNorm(2), BatchNorm(2, convention="pytorch")
    assert (keras.eps, keras.momentum) == (1e-3, 0.99)
    assert (torch_.eps, torch_.momentum) == (1e-5, 0.1)
    assert keras.convention.name == "keras"  # the default convention


def test_explicit_eps_and_momentum_override_the_defaults():
    bn = BatchNorm(2, convention="pytorch", eps=1e-3, momentum=0.5)
    assert (bn.eps, bn.momentum) == (1e-3, 0.5)
    bn = BatchNorm(2, convention="keras", momentum=0.0)
    assert bn.momentum == 0.0  # 0 is a value, not "use the default"


def test_repr():
    assert repr(BatchNorm(3, convention="pytorch", axis=(0, 2, 3))) == (
        "BatchNorm(3, convention='pytorch', eps=1e-05, momentum=0.1, axis=(0, 2, 3))"
    )


def test_feature_shape_tuple():
    bn = BatchNorm((2, 3))
    assert bn.feature_shape == (2, 3) and bn.gamma.shape == (2, 3)
    z = np.random.default_rng(0).normal(size=(5, 2, 3))
    y = bn.forward(z, training=True)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)


# --- training mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_training_forward_uses_batch_statistics(rng, convention):
    bn = BatchNorm(3, convention=convention)
    bn.gamma[:] = [2.0, 0.5, -1.0]
    bn.beta[:] = [0.0, 1.0, 3.0]
    z = rng.normal(4.0, 3.0, size=(16, 3))
    y = bn.forward(z, training=True)
    expected, _ = batchnorm_forward(z, bn.gamma, bn.beta, eps=bn.eps)
    np.testing.assert_array_equal(y, expected)
    by_hand = bn.gamma * (z - z.mean(0)) / np.sqrt(z.var(0) + bn.eps) + bn.beta
    np.testing.assert_allclose(y, by_hand, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_running_stats_follow_the_convention_over_several_steps(rng, convention):
    momentum = 0.8 if convention == "keras" else 0.3
    bn = BatchNorm(3, convention=convention, momentum=momentum)
    running_mean, running_var = np.zeros(3), np.ones(3)
    for step in range(1, 6):
        z = rng.normal(step, 1.0 + step, size=(5 + step, 3))
        bn.forward(z, training=True)
        running_mean, running_var = hand_update(
            convention, momentum, running_mean, running_var, z, (0,)
        )
        np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-13)
        np.testing.assert_allclose(bn.running_var, running_var, rtol=1e-13)
        assert bn.num_batches_tracked == step


def test_one_step_from_the_defaults_keras_versus_pytorch(rng):
    z = rng.normal(10.0, 2.0, size=(8, 2))
    keras, torch_ = BatchNorm(2), BatchNorm(2, convention="pytorch")
    keras.forward(z, training=True)
    torch_.forward(z, training=True)
    # keras' 0.99 moves 1% of the way, pytorch's 0.1 moves 10% of the way
    np.testing.assert_allclose(keras.running_mean, 0.01 * z.mean(0), rtol=1e-12)
    np.testing.assert_allclose(torch_.running_mean, 0.1 * z.mean(0), rtol=1e-12)
    np.testing.assert_allclose(keras.running_var, 0.99 + 0.01 * z.var(0), rtol=1e-12)
    np.testing.assert_allclose(torch_.running_var, 0.9 + 0.1 * z.var(0, ddof=1), rtol=1e-12)


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_running_stats_converge_to_the_stored_estimator(rng, convention):
    """Fed the same batch forever, the running mean becomes the batch mean and the running
    variance the biased (keras) or unbiased (pytorch) batch variance."""
    z = rng.normal(-3.0, 2.0, size=(6, 2))
    bn = BatchNorm(2, convention=convention, momentum=0.5)
    for _ in range(80):
        bn.forward(z, training=True)
    np.testing.assert_allclose(bn.running_mean, z.mean(0), rtol=1e-12)
    ddof = 0 if convention == "keras" else 1
    np.testing.assert_allclose(bn.running_var, z.var(0, ddof=ddof), rtol=1e-12)
    # so in eval mode keras reproduces the training output, pytorch (n / (n - 1)) does not
    y_train = bn.forward(z, training=True)
    y_eval = bn.forward(z, training=False)
    if convention == "keras":
        np.testing.assert_allclose(y_eval, y_train, rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_allclose(
            y_eval,
            y_train * np.sqrt((z.var(0) + bn.eps) / (z.var(0, ddof=1) + bn.eps)),
            rtol=1e-10,
            atol=1e-12,
        )
        assert not np.allclose(y_eval, y_train, rtol=1e-3)


def test_momentum_edges():
    z = np.array([[1.0], [3.0]])
    frozen = BatchNorm(1, convention="keras", momentum=1.0)
    frozen.forward(z, training=True)
    assert (frozen.running_mean[0], frozen.running_var[0]) == (0.0, 1.0)
    last_only = BatchNorm(1, convention="pytorch", momentum=1.0)
    last_only.forward(z, training=True)
    assert (last_only.running_mean[0], last_only.running_var[0]) == (2.0, 2.0)  # unbiased: 2 / 1


def test_running_stats_are_new_arrays_not_updated_in_place():
    bn = BatchNorm(2)
    old_mean = bn.running_mean
    bn.forward(np.array([[1.0, 2.0], [3.0, 5.0]]), training=True)
    assert bn.running_mean is not old_mean
    np.testing.assert_array_equal(old_mean, 0.0)


# --- evaluation mode ------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_eval_uses_running_stats_and_changes_nothing(rng, convention):
    bn = BatchNorm(3, convention=convention)
    for _ in range(3):
        bn.forward(rng.normal(2.0, 3.0, size=(10, 3)), training=True)
    bn.gamma[:] = [1.5, -0.5, 2.0]
    bn.beta[:] = [0.1, 0.2, 0.3]
    state = (bn.running_mean.copy(), bn.running_var.copy(), bn.num_batches_tracked)
    z = rng.normal(size=(7, 3))
    y = bn.forward(z, training=False)
    by_hand = bn.gamma * (z - bn.running_mean) / np.sqrt(bn.running_var + bn.eps) + bn.beta
    np.testing.assert_allclose(y, by_hand, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(bn.running_mean, state[0])
    np.testing.assert_array_equal(bn.running_var, state[1])
    assert bn.num_batches_tracked == state[2]
    # in eval mode each sample is normalized on its own: no dependence on the rest of the batch
    np.testing.assert_allclose(bn.forward(z[2:3], training=False), y[2:3], rtol=1e-15)
    # while in training mode it depends on the batch
    y_train = bn.forward(z, training=True)
    assert not np.allclose(bn.forward(z[:4], training=True), y_train[:4])


def test_fresh_layer_in_eval_is_nearly_the_identity():
    z = np.array([[1.0, -2.0], [3.0, 4.0]])
    bn = BatchNorm(2, convention="keras")
    np.testing.assert_allclose(bn.forward(z, training=False), z / np.sqrt(1 + 1e-3), rtol=1e-15)


def test_eval_batch_of_one():
    bn = BatchNorm(2, convention="pytorch")
    bn.forward(np.array([[0.0, 1.0], [2.0, 5.0]]), training=True)
    y = bn.forward(np.array([[1.0, 3.0]]), training=False)
    assert y.shape == (1, 2)
    np.testing.assert_allclose(
        y, (np.array([[1.0, 3.0]]) - bn.running_mean) / np.sqrt(bn.running_var + 1e-5)
    )


# --- backward -------------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_backward_after_training_is_batchnorm_backward(rng, convention):
    bn = BatchNorm(3, convention=convention)
    bn.gamma[:] = rng.normal(1.0, 0.3, size=3)
    bn.beta[:] = rng.normal(size=3)
    z = rng.normal(1.0, 2.0, size=(9, 3))
    dy = rng.normal(size=(9, 3))
    bn.forward(z, training=True)
    dz = bn.backward(dy)
    _, cache = batchnorm_forward(z, bn.gamma, bn.beta, eps=bn.eps)
    dz_core, dgamma_core, dbeta_core = batchnorm_backward(dy, cache)
    np.testing.assert_array_equal(dz, dz_core)
    np.testing.assert_array_equal(bn.dgamma, dgamma_core)
    np.testing.assert_array_equal(bn.dbeta, dbeta_core)
    assert bn.dgamma.shape == bn.dbeta.shape == (3,)


def test_backward_after_training_against_numerical_gradient(rng):
    gamma, beta = rng.normal(1.0, 0.3, size=3), rng.normal(size=3)
    z = rng.normal(size=(6, 3))
    dy = rng.normal(size=(6, 3))

    def layer():
        bn = BatchNorm(3, convention="pytorch")
        bn.gamma[:], bn.beta[:] = gamma, beta
        return bn

    bn = layer()
    bn.forward(z, training=True)
    dz = bn.backward(dy)
    num = numerical_gradient(lambda z_: layer().forward(z_, training=True), z.copy(), dy)
    assert rel_error(dz, num) < 1e-7


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_backward_after_eval_against_numerical_gradient(rng, convention):
    bn = BatchNorm(3, convention=convention)
    for _ in range(2):
        bn.forward(rng.normal(0.5, 2.0, size=(8, 3)), training=True)
    bn.gamma[:] = [1.2, -0.7, 0.4]
    bn.beta[:] = [0.3, 0.0, -1.0]
    z = rng.normal(size=(5, 3))
    dy = rng.normal(size=(5, 3))
    state = (bn.running_mean.copy(), bn.running_var.copy())

    def f(_):
        return bn.forward(z, training=False)

    num_dz = numerical_gradient(lambda z_: bn.forward(z_, training=False), z.copy(), dy)
    num_dgamma = numerical_gradient(f, bn.gamma, dy)  # perturbs bn.gamma in place, restores it
    num_dbeta = numerical_gradient(f, bn.beta, dy)
    bn.forward(z, training=False)
    dz = bn.backward(dy)
    assert rel_error(dz, num_dz) < 1e-7
    assert rel_error(bn.dgamma, num_dgamma) < 1e-7
    assert rel_error(bn.dbeta, num_dbeta) < 1e-7
    # eval BN is a fixed per-feature affine map: dz = dy * gamma / sqrt(running_var + eps)
    np.testing.assert_allclose(dz, dy * bn.gamma / np.sqrt(bn.running_var + bn.eps), rtol=1e-14)
    # and the gradient check changed nothing
    np.testing.assert_array_equal(bn.running_mean, state[0])
    np.testing.assert_array_equal(bn.running_var, state[1])


def test_backward_follows_the_last_forward(rng):
    bn = BatchNorm(2, convention="pytorch")
    z = rng.normal(size=(4, 2))
    dy = rng.normal(size=(4, 2))
    bn.forward(z, training=True)
    dz_train = bn.backward(dy)
    bn.forward(z, training=False)
    dz_eval = bn.backward(dy)
    np.testing.assert_allclose(
        dz_eval, dy * bn.gamma / np.sqrt(bn.running_var + bn.eps), rtol=1e-14
    )
    assert not np.allclose(dz_train, dz_eval)
    np.testing.assert_allclose(
        dz_train.sum(axis=0), 0.0, atol=1e-12
    )  # batch coupling in training only


def test_gamma_changed_in_place_is_used_by_the_next_forward(rng):
    """SGD updates gamma and beta in place; the layer must see the new values."""
    bn = BatchNorm(2)
    z = rng.normal(size=(5, 2))
    y1 = bn.forward(z, training=True)
    bn.gamma *= 3.0
    bn.beta += 1.0
    y2 = bn.forward(z, training=True)
    np.testing.assert_allclose(y2, 3.0 * y1 + 1.0, rtol=1e-13)


# --- convolutional layout -------------------------------------------------------------------------


@pytest.mark.parametrize("convention", CONVENTION_NAMES)
def test_conv_layer_axis_0_2_3(rng, convention):
    bn = BatchNorm(3, convention=convention, axis=(0, 2, 3))
    bn.gamma[:] = [1.0, 2.0, 0.5]
    bn.beta[:] = [0.0, -1.0, 1.0]
    running_mean, running_var = np.zeros(3), np.ones(3)
    for step in range(3):
        z = rng.normal(step, 2.0, size=(2, 3, 4, 5))
        y = bn.forward(z, training=True)
        running_mean, running_var = hand_update(
            convention, bn.momentum, running_mean, running_var, z, (0, 2, 3)
        )
        # n = 2 * 4 * 5 = 40 values per channel for pytorch's n / (n - 1)
        np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-13)
        np.testing.assert_allclose(bn.running_var, running_var, rtol=1e-13)
        mean = z.mean(axis=(0, 2, 3), keepdims=True)
        var = z.var(axis=(0, 2, 3), keepdims=True)
        g, b = bn.gamma[None, :, None, None], bn.beta[None, :, None, None]
        np.testing.assert_allclose(
            y, g * (z - mean) / np.sqrt(var + bn.eps) + b, rtol=1e-12, atol=1e-12
        )
    assert bn.running_mean.shape == (3,)

    z = rng.normal(size=(1, 3, 2, 2))
    y = bn.forward(z, training=False)
    rm, rv = bn.running_mean[None, :, None, None], bn.running_var[None, :, None, None]
    g, b = bn.gamma[None, :, None, None], bn.beta[None, :, None, None]
    np.testing.assert_allclose(y, g * (z - rm) / np.sqrt(rv + bn.eps) + b, rtol=1e-13)
    dy = rng.normal(size=z.shape)
    dz = bn.backward(dy)
    num = numerical_gradient(lambda z_: bn.forward(z_, training=False), z.copy(), dy)
    assert rel_error(dz, num) < 1e-7
    np.testing.assert_allclose(bn.dbeta, dy.sum(axis=(0, 2, 3)), rtol=1e-13)


def test_conv_layer_training_backward_matches_core(rng):
    bn = BatchNorm(2, convention="pytorch", axis=(0, 2, 3))
    z = rng.normal(size=(3, 2, 2, 2))
    dy = rng.normal(size=z.shape)
    bn.forward(z, training=True)
    dz = bn.backward(dy)
    _, cache = batchnorm_forward(z, bn.gamma, bn.beta, eps=bn.eps, axis=(0, 2, 3))
    expected = batchnorm_backward(dy, cache)
    np.testing.assert_array_equal(dz, expected[0])
    np.testing.assert_array_equal(bn.dgamma, expected[1])


def test_conv_1x1_map_with_batch_one_refused_in_training_only():
    """PyTorch's "Expected more than 1 value per channel when training", for N x C x 1 x 1."""
    bn = BatchNorm(4, convention="pytorch", axis=(0, 2, 3))
    z = np.ones((1, 4, 1, 1))
    with pytest.raises(ValueError, match="only one value per feature"):
        bn.forward(z, training=True)
    assert bn.forward(z, training=False).shape == (1, 4, 1, 1)


# --- training is explicit -------------------------------------------------------------------------


def test_training_must_be_an_explicit_bool(rng):
    bn = BatchNorm(2)
    z = rng.normal(size=(3, 2))
    with pytest.raises(TypeError, match="training"):
        bn.forward(z)
    with pytest.raises(TypeError, match="positional argument"):
        bn.forward(z, True)  # keyword only: forward(z, training=True) reads as what it does
    for bad in (1, 0, None, "train"):
        with pytest.raises(TypeError, match=r"training must be True or False"):
            bn.forward(z, training=bad)
    assert bn.num_batches_tracked == 0
    bn.forward(z, training=np.bool_(True))
    assert bn.num_batches_tracked == 1
