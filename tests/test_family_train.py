"""The family's experiments (bnlab.train): the small CNN on digit images and the batch-size experiment.

Short runs only (about 5 s for the module); the full-length figures are in
benchmarks/bench_norms.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _support import require_module

from bnlab.layers import (
    BatchNorm,
    Conv2D,
    Dense,
    GlobalAvgPool2D,
    GroupNorm,
    LayerNorm,
    ReLU,
    RMSNorm,
)
from bnlab.train import (
    NORM_LABELS,
    BatchSizeResult,
    EpochHistory,
    batch_size_experiment,
    build_cnn,
    run_cnn,
)


@pytest.fixture(scope="module")
def flat():
    require_module("sklearn", "pip install scikit-learn (it ships the digits data)")
    from bnlab.datasets import load_digits_split

    return load_digits_split(0)


@pytest.fixture(scope="module")
def images():
    require_module("sklearn", "pip install scikit-learn (it ships the digits data)")
    from bnlab.datasets import load_digits_images

    return load_digits_images(0)


@pytest.fixture(scope="module")
def one_epoch(images):
    """The default CNN for one epoch, with and without BN (about 1.5 s)."""
    return {norm: run_cnn(norm=norm, epochs=1, data=images) for norm in ("batch", None)}


@pytest.fixture(scope="module")
def small_grid(flat):
    """BN and LN at batch sizes 2 and 16, one epoch, one seed (about 1.5 s)."""
    calls = []
    result = batch_size_experiment(methods=("batch", "layer"), batch_sizes=(2, 16), epochs=1, seeds=(0,),
                                   data=flat, progress=lambda done, total: calls.append((done, total)))
    return result, calls


# --- data ----------------------------------------------------------------------------------------


def test_digit_images_are_the_flat_split_reshaped(flat, images):
    assert images.x_train.shape == (1438, 1, 8, 8) and images.x_test.shape == (359, 1, 8, 8)
    np.testing.assert_array_equal(images.x_train.reshape(1438, 64), flat.x_train)
    np.testing.assert_array_equal(images.y_test, flat.y_test)
    assert images.num_features == flat.num_features == 64 and images.num_classes == 10
    # row i of an image holds pixels 8i..8i+7 (load_digits' layout): a 0 has an empty centre
    zero = images.x_train[images.y_train == 0].mean(axis=0)[0]
    assert zero[3:5, 3:5].mean() < 0.5 * zero[1:7, [1, 6]].mean()


# --- the CNN -------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm, layer_type, groups", [("batch", BatchNorm, None), ("group", GroupNorm, 4),
                                                     ("layer", GroupNorm, 1), ("instance", GroupNorm, "C"),
                                                     (None, None, None)])
def test_build_cnn_layers(norm, layer_type, groups):
    model = build_cnn(channels=(8, 12), norm=norm, rng=0)
    types = [type(layer) for layer in model]
    if norm is None:
        assert types == [Conv2D, ReLU, Conv2D, ReLU, GlobalAvgPool2D, Dense]
        assert model[0].b is not None
        return
    assert types == [Conv2D, layer_type, ReLU, Conv2D, layer_type, ReLU, GlobalAvgPool2D, Dense]
    assert model[0].b is None and model[3].b is None  # the norm's beta replaces the bias
    assert model[0].W.shape == (8, 1, 3, 3) and model[3].W.shape == (12, 8, 3, 3)
    if norm == "batch":
        assert model[1].axis == (0, 2, 3) and model[1].convention.name == "pytorch"
        assert model[1].momentum == 0.1
    else:
        assert model[4].num_groups == (12 if groups == "C" else groups)
    out = model.forward(np.random.default_rng(0).random((5, 1, 8, 8)), training=True)
    assert out.shape == (5, 10)


def test_build_cnn_bad_arguments():
    with pytest.raises(ValueError, match=r"norm must be one of \['batch', 'group', 'layer', 'instance', None\]"):
        build_cnn(norm="rms")
    with pytest.raises(ValueError, match="num_groups=3 must divide every layer's width, got a layer of 8"):
        build_cnn(norm="group", num_groups=3)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        build_cnn(kernel_size=4)
    with pytest.raises(ValueError, match="channels is empty"):
        build_cnn(channels=())
    with pytest.raises(TypeError, match="each of channels must be an int"):
        build_cnn(channels=(8, 16.0))
    with pytest.raises(ValueError, match="momentum must be in"):
        build_cnn(bn_momentum=2)


def test_bn_cnn_is_far_ahead_after_one_epoch(one_epoch):
    with_bn, without = one_epoch["batch"], one_epoch[None]
    assert with_bn.test_accuracy[1] > without.test_accuracy[1] + 0.25
    assert with_bn.test_accuracy[1] > 0.5
    # same seed: the same initial weights (the norm layers draw nothing) and the same batches
    np.testing.assert_array_equal(build_cnn(norm="batch", rng=5)[0].W, build_cnn(norm=None, rng=5)[0].W)


def test_epoch_history_shapes_and_record(one_epoch):
    history = one_epoch["batch"]
    assert isinstance(history, EpochHistory) and history.label == "BN"
    np.testing.assert_array_equal(history.epochs, [0, 1])
    assert history.test_accuracy.shape == history.test_loss.shape == history.train_loss.shape == (2,)
    assert history.batch_loss.shape == (1438 // 32,)
    assert history.train_loss[1] == pytest.approx(history.batch_loss.mean())
    assert not history.diverged and history.final_test_accuracy == history.test_accuracy[-1]
    assert history.config["dtype"] == "float32" and history.model[0].W.dtype == np.float32
    assert "EpochHistory(BN, lr=0.4, batch_size=32, 1 epochs, seed=0" in repr(history)
    record = json.loads(json.dumps(history.to_dict()))
    assert record["label"] == "BN" and record["config"]["channels"] == [16, 32]


def test_run_cnn_is_deterministic_and_reports_progress(images):
    calls = []
    kwargs = dict(norm="group", channels=(4, 8), kernel_size=3, epochs=2, seed=3, data=images)
    first = run_cnn(progress=lambda epoch, total: calls.append((epoch, total)), **kwargs)
    second = run_cnn(**kwargs)
    np.testing.assert_array_equal(first.batch_loss, second.batch_loss)
    np.testing.assert_array_equal(first.test_accuracy, second.test_accuracy)
    assert calls == [(1, 2), (2, 2)]
    assert first.label == "GN"
    other_seed = run_cnn(**dict(kwargs, seed=4, epochs=1))
    assert other_seed.batch_loss[0] != first.batch_loss[0]


def test_run_cnn_bad_arguments(images, flat):
    with pytest.raises(ValueError, match="norm must be one of"):
        run_cnn(norm="batchnorm", data=images)
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        run_cnn(learning_rate=0, data=images)
    with pytest.raises(ValueError, match="batch_size=5000 is larger than the training set"):
        run_cnn(batch_size=5000, data=images)
    with pytest.raises(ValueError, match=r"x_train must be images of shape \(N, C, H, W\), got shape \(1438, 64\)"):
        run_cnn(data=flat)
    with pytest.raises(TypeError, match="progress must be callable"):
        run_cnn(progress=3, data=images)


def test_run_cnn_divergence_stops_quietly(images):
    history = run_cnn(norm=None, learning_rate=1e6, epochs=2, channels=(4, 8), kernel_size=3, data=images)
    assert history.diverged and "above max_loss=1000" in history.diverged_reason
    assert np.isnan(history.final_test_accuracy)
    assert len(history.batch_loss) == history.diverged_at < 2 * (1438 // 32)
    with pytest.raises(ValueError, match="max_loss must be positive"):
        run_cnn(max_loss=0, data=images)


# --- the batch-size experiment -------------------------------------------------------------------


def test_bn_collapses_at_batch_size_two_and_ln_does_not(small_grid):
    result, _ = small_grid
    bn, ln = result.mean_accuracy("batch"), result.mean_accuracy("layer")
    assert bn[0] < ln[0] - 0.2  # B = 2: BN's training statistics of two samples mislead evaluation
    assert bn[1] > bn[0] + 0.2  # BN recovers at B = 16
    assert abs(ln[0] - ln[1]) < 0.1  # LN does not care about the batch size


def test_batch_size_result_structure(small_grid):
    result, calls = small_grid
    assert isinstance(result, BatchSizeResult)
    assert result.accuracy.shape == (2, 2, 1)
    assert result.learning_rates == (0.05 * 2 / 32, 0.05 * 16 / 32)
    assert calls[-1] == (4, 4) and [done for done, _ in calls] == [1, 2, 3, 4]
    table = result.table()
    assert set(table) == {"BN", "LN"} and set(table["BN"]) == {2, 16}
    assert table["LN"][16] == pytest.approx(result.accuracy[1, 1, 0])
    record = json.loads(json.dumps(result.to_dict()))
    assert record["methods"] == ["BN", "LN"] and record["config"]["hidden"] == [64, 64, 64]
    with pytest.raises(ValueError, match="method must be one of"):
        result.mean_accuracy("group")


def test_batch_size_experiment_networks(flat):
    """Every method trains (one epoch at B = 32 is quick) and the norm choices build the right layers."""
    from bnlab.train import _build_family_mlp

    types = {norm: type(_build_family_mlp(64, (8, 8), 10, norm=norm, num_groups=4, rng=0)[1])
             for norm in ("batch", "layer", "group", "rms")}
    assert types == {"batch": BatchNorm, "layer": LayerNorm, "group": GroupNorm, "rms": RMSNorm}
    result = batch_size_experiment(methods=("group", "rms", None), batch_sizes=(32,), epochs=1, seeds=(0,),
                                   hidden=(32, 32), data=flat)
    assert np.all(result.accuracy > 0.3)
    assert NORM_LABELS[None] in result.table()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(methods=("batch", "instance")), ValueError, "norm must be one of"),
    (dict(methods=()), ValueError, "methods is empty"),
    (dict(batch_sizes=(1, 2)), ValueError, "each of batch_sizes must be >= 2"),
    (dict(batch_sizes=(2, 4000)), ValueError, "batch_sizes go up to 4000"),
    (dict(seeds=(-1,)), ValueError, "each of seeds must be >= 0"),
    (dict(hidden=()), ValueError, "hidden is empty"),
    (dict(epochs=0), ValueError, "epochs must be >= 1"),
    (dict(lr_at_32=-0.1), ValueError, "lr_at_32 must be positive"),
    (dict(num_groups=5), ValueError, "num_groups=5 must divide every hidden width"),
    (dict(progress="yes"), TypeError, "progress must be callable"),
])
def test_batch_size_experiment_bad_arguments(flat, kwargs, error, match):
    with pytest.raises(error, match=match):
        batch_size_experiment(data=flat, **kwargs)
