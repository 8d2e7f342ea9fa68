"""The after-training experiments of bnlab.train (notebooks 10-11), qualitatively, with quick settings."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bnlab.datasets import load_digits_split
from bnlab.train import (
    ADABN_SHIFTS,
    adabn_experiment,
    bn_position_experiment,
    folding_experiment,
    precise_bn_experiment,
    run_experiment,
)


@pytest.fixture(scope="module")
def data():
    return load_digits_split(0)


def refused(error, *fragments):
    return pytest.raises(error, match=".*".join(re.escape(f) for f in fragments))


def test_precise_bn_repairs_a_lagging_running_average(data):
    # momentum 0.999 over 2 epochs at batch 32 (88 steps): the EMA still gives the initial 0 and 1
    # weight 0.999 ** 88 = 0.92, so evaluation is far off; precise BN re-estimates with the final weights
    calls = []
    result = precise_bn_experiment(batch_size=32, learning_rate=0.1, bn_momentum=0.999, epochs=2, seeds=(0, 1),
                                   data=data, progress=lambda done, total: calls.append((done, total)))
    assert result["steps"] == 88
    assert result["ema_initial_weight"] == pytest.approx(0.999 ** 88)
    assert result["ema_accuracy"].shape == result["precise_accuracy"].shape == (2,)
    assert np.all(result["precise_accuracy"] > 0.85)
    assert np.all(result["precise_accuracy"] > result["ema_accuracy"] + 0.2)
    assert calls == [(0, 2), (1, 2), (2, 2)]


def test_precise_bn_does_not_depend_on_the_momentum_and_is_repeatable(data):
    """Training-mode BN never reads the running statistics: the same seed trains the same weights."""
    kwargs = dict(batch_size=32, learning_rate=0.1, epochs=1, seeds=(3,), data=data)
    fast = precise_bn_experiment(bn_momentum=0.5, **kwargs)
    slow = precise_bn_experiment(bn_momentum=0.999, **kwargs)
    np.testing.assert_array_equal(fast["precise_accuracy"], slow["precise_accuracy"])
    again = precise_bn_experiment(bn_momentum=0.5, **kwargs)
    np.testing.assert_array_equal(again["ema_accuracy"], fast["ema_accuracy"])
    assert abs(fast["ema_accuracy"][0] - fast["precise_accuracy"][0]) < 0.05  # a fast EMA is current


def test_adabn_repairs_contrast_not_structure(data):
    result = adabn_experiment(epochs=3, seeds=(0,), data=data)
    acc = result["accuracy"]
    assert list(acc) == ["clean", *ADABN_SHIFTS]
    contrast, noise, inverted = (acc[name] for name in ADABN_SHIFTS)
    assert acc["clean"]["trained"][0] > 0.9
    assert contrast["trained"][0] < acc["clean"]["trained"][0] - 0.15   # the shift hurts ...
    assert contrast["AdaBN"][0] > acc["clean"]["trained"][0] - 0.03      # ... and re-estimation repairs it
    # a x + b through a bias-free first layer is undone exactly by the re-estimated statistics
    assert contrast["AdaBN"][0] == acc["clean"]["AdaBN"][0]
    assert noise["AdaBN"][0] < acc["clean"]["trained"][0] - 0.1          # noise is not a moment shift
    assert abs(noise["AdaBN"][0] - noise["trained"][0]) < 0.1
    assert inverted["trained"][0] < 0.2 and inverted["AdaBN"][0] < 0.2    # inversion fails either way


def test_adabn_custom_shifts_and_batches(data):
    result = adabn_experiment(shifts={"brighter": ("brightness", 0.5)}, epochs=1, seeds=(1,),
                              adapt_batch_size=64, data=data)
    assert list(result["accuracy"]) == ["clean", "brighter"]
    assert result["accuracy"]["brighter"]["AdaBN"][0] > 0.8


def test_bn_position_same_budget_and_same_machinery(data):
    result = bn_position_experiment(epochs=2, seeds=(0,), data=data)
    steps = 2 * (len(data.x_train) // 32)
    for position in ("before", "after"):
        assert result[position]["batch_loss"].shape == (1, steps)
        assert result[position]["test_accuracy"][0] > 0.85
    # "before" is run_experiment's network, batches and SGD, step for step
    history = run_experiment(batch_norm=True, activation="relu", hidden_sizes=(64, 64, 64), learning_rate=0.2,
                             init_scale="he", batch_size=32, steps=steps, eval_every=steps, seed=0,
                             bn_momentum=0.9, data=data)
    np.testing.assert_array_equal(result["before"]["batch_loss"][0], history.batch_loss)
    assert result["before"]["test_accuracy"][0] == history.final_test_accuracy
    assert not np.array_equal(result["after"]["batch_loss"][0], history.batch_loss)


def test_folding_keeps_the_outputs_and_drops_the_bn_layers(data):
    calls = []
    result = folding_experiment(epochs=1, repeats=10, data=data, progress=lambda d, t: calls.append((d, t)))
    assert (result["layers_before"], result["layers_after"]) == (10, 7)
    assert result["max_abs_diff_float64"] < 1e-12 * result["max_abs_score"]
    assert 0 < result["max_abs_diff_float32"] < 1e-5 * result["max_abs_score"]
    assert result["same_predictions_float32"]
    assert result["seconds_unfolded"] > 0 and result["seconds_folded"] > 0
    assert result["speedup"] == pytest.approx(result["seconds_unfolded"] / result["seconds_folded"])
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(("function", "kwargs", "error", "fragments"), [
    (precise_bn_experiment, dict(seeds=()), ValueError, ("seeds is empty",)),
    (precise_bn_experiment, dict(seeds=3), TypeError, ("seeds must be a sequence of non-negative ints",)),
    (precise_bn_experiment, dict(seeds=(-1,)), ValueError, ("each of seeds must be >= 0",)),
    (precise_bn_experiment, dict(recalibration_batch_size=1), ValueError, ("recalibration_batch_size must be >= 2",)),
    (precise_bn_experiment, dict(recalibration_batch_size=5000), ValueError, ("larger than the training set",)),
    (precise_bn_experiment, dict(bn_momentum=1.5), ValueError, ("momentum must be in [0, 1]",)),
    (precise_bn_experiment, dict(progress="bar"), TypeError, ("progress must be callable",)),
    (precise_bn_experiment, dict(epochs=0), ValueError, ("epochs must be >= 1",)),
    (adabn_experiment, dict(shifts={"x": "contrast"}), TypeError, ("shifts['x'] must be a (kind, strength) pair",)),
    (adabn_experiment, dict(shifts={"x": ("blur", 1)}), ValueError, ("kind must be one of",)),
    (adabn_experiment, dict(adapt_batch_size=1000), ValueError, ("adapt_batch_size=1000 is larger than the test",)),
    (adabn_experiment, dict(batch_size=5000), ValueError, ("batch_size=5000 is larger than the training set",)),
    (bn_position_experiment, dict(batch_size=1), ValueError, ("batch_size=1", "at least two samples")),
    (bn_position_experiment, dict(learning_rate=0), ValueError, ("learning_rate must be positive",)),
    (folding_experiment, dict(repeats=0), ValueError, ("repeats must be >= 1",)),
    (folding_experiment, dict(data=(1, 2)), TypeError, ("data must be a DigitsSplit",)),
])
def test_bad_arguments_are_refused_before_training(function, kwargs, error, fragments):
    with refused(error, *fragments):
        function(**kwargs)


def test_train_bn_mlp_is_the_network_the_experiments_train(data):
    from bnlab.train import train_bn_mlp

    history = train_bn_mlp(seed=1, epochs=1, data=data)
    assert len(history.model) == 10 and not history.diverged
    assert history.config["steps"] == len(data.x_train) // 32
    adabn = adabn_experiment(epochs=1, seeds=(1,), shifts={}, data=data)
    assert history.final_test_accuracy == adabn["accuracy"]["clean"]["trained"][0]
    with refused(ValueError, "batch_size=5000 is larger than the training set"):
        train_bn_mlp(batch_size=5000, data=data)
    with refused(ValueError, "seed must be >= 0"):
        train_bn_mlp(seed=-1, data=data)
