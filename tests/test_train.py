"""The training experiment (bnlab.train) and its data (bnlab.datasets).

Short runs only (500 steps at most, a fraction of a second each); the
full-length figures are in benchmarks/bench_training.py.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from _support import require_module

from bnlab.layers import BatchNorm, Dense, ShiftScaleNoise, Sigmoid
from bnlab.train import (
    LABEL_NOISY_BN,
    LABEL_WITH_BN,
    LABEL_WITHOUT_BN,
    PERCENTILE_LEVELS,
    History,
    build_mlp,
    compare,
    evaluate,
    run_experiment,
)


@pytest.fixture(scope="module")
def data():
    require_module("sklearn", "pip install scikit-learn (it ships the digits data)")
    from bnlab.datasets import load_digits_split

    return load_digits_split(0)


@pytest.fixture(scope="module")
def short_comparison(data):
    """The paper's setting (sigmoid, N(0, 0.1^2), lr 0.5, batch 60) for 500 steps, three variants."""
    return compare(include_noisy=True, steps=500, eval_every=50, seed=0, data=data)


# --- data ---------------------------------------------------------------------------------------

def test_digits_split_shapes_types_and_scaling(data):
    x_train, y_train, x_test, y_test = data
    assert x_train.shape == (1438, 64) and x_test.shape == (359, 64)
    assert y_train.shape == (1438,) and y_test.shape == (359,)
    assert x_train.dtype == x_test.dtype == np.float64
    assert y_train.dtype.kind == "i"
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert data.num_features == 64 and data.num_classes == 10


def test_digits_split_is_stratified_seeded_and_fresh(data):
    from bnlab.datasets import load_digits_split

    counts = np.bincount(data.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 20% of 174..183 images per class
    again = load_digits_split(np.random.default_rng(0))
    for a, b in zip(data, again):
        np.testing.assert_array_equal(a, b)
    other = load_digits_split(1)
    assert not np.array_equal(data.y_test, other.y_test)
    again.x_train[:] = -1  # a caller may write into its copy
    np.testing.assert_array_equal(load_digits_split(0).x_train, data.x_train)
    assert load_digits_split(0, test_fraction=0.5).x_test.shape == (898, 64)


@pytest.mark.parametrize("fraction, error", [(0, ValueError), (1.0, ValueError), (-0.2, ValueError),
                                             ("0.2", TypeError), (0.0001, ValueError)])
def test_digits_split_rejects_bad_test_fraction(data, fraction, error):
    from bnlab.datasets import load_digits_split

    with pytest.raises(error, match="test_fraction"):
        load_digits_split(0, test_fraction=fraction)


# --- the model ----------------------------------------------------------------------------------

def test_build_mlp_puts_bn_before_the_nonlinearity_without_bias():
    model = build_mlp(64, (100, 100, 100), 10, batch_norm=True, rng=0)
    kinds = [type(layer).__name__ for layer in model]
    assert kinds == ["Dense", "BatchNorm", "Sigmoid"] * 3 + ["Dense"]
    assert all(layer.b is None for layer in model.layers[:-1] if isinstance(layer, Dense))
    assert model[-1].b is not None and model[-1].W.shape == (100, 10)
    plain = build_mlp(64, (100, 100, 100), 10, batch_norm=False, rng=0)
    assert [type(layer).__name__ for layer in plain] == ["Dense", "Sigmoid"] * 3 + ["Dense"]
    # the same initial weights with and without BN
    for a, b in zip([l for l in model if isinstance(l, Dense)], [l for l in plain if isinstance(l, Dense)]):
        np.testing.assert_array_equal(a.W, b.W)
    noisy = build_mlp(64, (20,), 10, batch_norm=True, noisy_bn=True, activation="relu", rng=0)
    assert [type(layer).__name__ for layer in noisy] == ["Dense", "BatchNorm", "ShiftScaleNoise", "ReLU", "Dense"]


def test_evaluate(data):
    model = build_mlp(64, (10,), 10, batch_norm=False, rng=0)
    loss, accuracy = evaluate(model, data.x_test, data.y_test)
    assert loss == pytest.approx(np.log(10), rel=0.05) and 0 <= accuracy <= 1


# --- the experiment -------------------------------------------------------------------------------

def assert_same_history(a, b):
    for name in ("steps", "test_accuracy", "test_loss", "train_loss", "batch_loss", "percentiles"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.diverged, a.diverged_at, a.config) == (b.diverged, b.diverged_at, b.config)


def test_same_seed_same_history(data):
    kwargs = dict(batch_norm=True, noisy_bn=True, steps=120, eval_every=40, seed=5, data=data)
    first, second = run_experiment(**kwargs), run_experiment(**kwargs)
    assert_same_history(first, second)
    third = run_experiment(**{**kwargs, "seed": 6})
    assert not np.array_equal(first.batch_loss, third.batch_loss)


def test_bn_is_far_ahead_at_step_500(short_comparison):
    """The paper's Figure 1(a), scaled down: ~37% without BN, ~96% with BN."""
    without, with_bn = short_comparison[LABEL_WITHOUT_BN], short_comparison[LABEL_WITH_BN]
    assert with_bn.accuracy_at(500) > 0.9
    assert with_bn.accuracy_at(500) - without.accuracy_at(500) > 0.3
    assert not without.diverged and not with_bn.diverged


def test_noisy_bn_still_trains_well(short_comparison):
    """Santurkar et al.: BN with a moving, noisy output distribution trains about as fast."""
    bn, noisy = short_comparison[LABEL_WITH_BN], short_comparison[LABEL_NOISY_BN]
    assert noisy.accuracy_at(500) > 0.9
    assert abs(noisy.accuracy_at(500) - bn.accuracy_at(500)) < 0.05
    # ... although the sigmoid's input distribution jumps around far more
    jumps = {label: np.abs(np.diff(h.percentiles[1:, 1])).mean() for label, h in short_comparison.items()}
    assert jumps[LABEL_NOISY_BN] > 2 * jumps[LABEL_WITH_BN]


def test_history_shapes_and_percentiles(short_comparison):
    for label, history in short_comparison.items():
        assert history.label == label
        np.testing.assert_array_equal(history.steps, np.arange(0, 501, 50))
        n_eval = len(history.steps)
        for name in ("test_accuracy", "test_loss", "train_loss"):
            assert getattr(history, name).shape == (n_eval,), name
            assert np.isfinite(getattr(history, name)).all(), name
        assert history.batch_loss.shape == (500,)
        assert history.percentiles.shape == (n_eval, 3)
        assert history.percentile_levels == PERCENTILE_LEVELS == (15, 50, 85)
        assert (np.diff(history.percentiles, axis=1) >= 0).all()
        assert history.final_test_accuracy == history.test_accuracy[-1]
        assert history.accuracy_at(499) == history.test_accuracy[-2]
        assert history.train_loss[-1] == pytest.approx(history.batch_loss[450:].mean())
        assert history.wall_time > 0 and history.model is not None
    # same initial weights: at step 0 BN (still with its initial running statistics 0 and 1)
    # is the identity up to 1/sqrt(1 + eps), so the percentiles agree
    np.testing.assert_allclose(short_comparison[LABEL_WITH_BN].percentiles[0],
                               short_comparison[LABEL_WITHOUT_BN].percentiles[0], rtol=1e-4)


def test_history_is_json_serialisable_and_repeatable_from_its_config(short_comparison, data):
    history = short_comparison[LABEL_WITH_BN]
    record = json.loads(json.dumps(history.to_dict()))
    assert record["label"] == LABEL_WITH_BN and record["steps"][-1] == 500
    assert "with BN" in repr(history)
    again = run_experiment(**{**history.config, "steps": 100}, data=data)
    np.testing.assert_array_equal(again.batch_loss, history.batch_loss[:100])


def test_uneven_eval_steps_and_progress(data):
    calls = []
    history = run_experiment(batch_norm=False, steps=130, eval_every=50, data=data,
                             progress=lambda step, total: calls.append((step, total)))
    np.testing.assert_array_equal(history.steps, [0, 50, 100, 130])
    assert calls == [(0, 130), (50, 130), (100, 130), (130, 130)]


def test_compare_runs_the_same_settings_and_reports_overall_progress(data):
    calls = []
    results = compare(steps=20, eval_every=10, seed=3, activation="relu", init_scale="he",
                      learning_rate=0.1, data=data, progress=lambda done, total: calls.append((done, total)))
    assert list(results) == [LABEL_WITHOUT_BN, LABEL_WITH_BN]
    configs = [dict(h.config) for h in results.values()]
    assert [c.pop("batch_norm") for c in configs] == [False, True]
    assert configs[0] == configs[1]
    assert calls[0] == (0, 40) and calls[-1] == (40, 40)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    with pytest.raises(TypeError, match="batch_norm"):
        compare(batch_norm=True, data=data)


def test_relu_at_a_large_learning_rate_diverges_gracefully_without_bn(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value warnings
        history = run_experiment(batch_norm=False, activation="relu", init_scale="he",
                                 learning_rate=2.0, steps=500, data=data)
    assert history.diverged and 1 <= history.diverged_at < 50
    assert "max_loss" in history.diverged_reason
    assert len(history.batch_loss) == history.diverged_at
    assert history.batch_loss[-1] > 1e3
    assert np.isnan(history.accuracy_at(500)) and np.isnan(history.final_test_accuracy)
    assert "diverged at step" in repr(history)


def test_overflow_inside_bn_counts_as_divergence(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = run_experiment(batch_norm=True, activation="relu", init_scale="he",
                                 learning_rate=1e4, steps=200, max_loss=None, data=data)
    assert history.diverged and history.diverged_at > 1
    assert "refused its input" in history.diverged_reason


def test_relu_with_bn_trains_at_a_large_learning_rate(data):
    history = run_experiment(batch_norm=True, activation="relu", init_scale="he", learning_rate=1.0,
                             steps=300, eval_every=100, data=data)
    assert not history.diverged and history.final_test_accuracy > 0.9


def test_batch_of_one_is_fine_without_bn(data):
    history = run_experiment(batch_norm=False, batch_size=1, steps=5, eval_every=5, data=data)
    assert len(history.batch_loss) == 5


def test_custom_data_and_default_data(data):
    small = (data.x_train[:200], data.y_train[:200], data.x_test[:50], data.y_test[:50])
    history = run_experiment(steps=10, eval_every=10, batch_size=100, hidden_sizes=(8,), data=small)
    assert history.steps[-1] == 10
    assert len(run_experiment(steps=1, eval_every=1).steps) == 2  # loads the digits itself


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(learning_rate=0), ValueError, "learning_rate must be positive"),
        (dict(learning_rate=-0.5), ValueError, "learning_rate"),
        (dict(learning_rate="fast"), TypeError, "learning_rate"),
        (dict(batch_size=5000), ValueError, r"batch_size=5000 is larger than the training set \(1438"),
        (dict(batch_size=1), ValueError, "batch_size=1 with batch_norm=True.*no variance"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(activation="tanh"), ValueError, r"activation must be one of \['relu', 'sigmoid'\]"),
        (dict(steps=0), ValueError, "steps must be >= 1"),
        (dict(steps=-10), ValueError, "steps"),
        (dict(steps=100.0), TypeError, "steps must be an int"),
        (dict(eval_every=0), ValueError, "eval_every"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(hidden_sizes=()), ValueError, "hidden_sizes"),
        (dict(hidden_sizes=(100, 0)), ValueError, "hidden_sizes"),
        (dict(init_scale=-0.1), ValueError, "init_scale"),
        (dict(init_scale="lecun"), ValueError, "init_scale"),
        (dict(batch_norm=False, noisy_bn=True), ValueError, "noisy_bn=True .* needs batch_norm=True"),
        (dict(noise_scale=0.5), ValueError, "scale"),
        (dict(noise_shift=-1.0), ValueError, "shift"),
        (dict(bn_momentum=1.5), ValueError, "momentum"),
        (dict(tracked_unit=100), ValueError, "tracked_unit"),
        (dict(max_loss=0), ValueError, "max_loss"),
        (dict(batch_norm="yes"), TypeError, "batch_norm"),
        (dict(progress="bar"), TypeError, "progress"),
        (dict(data=(1, 2)), TypeError, "data"),
    ],
)
def test_bad_input(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        run_experiment(**{"data": data, "steps": 10, **kwargs})


def test_bad_custom_data(data):
    with pytest.raises(ValueError, match="x_test must be"):
        run_experiment(data=(data.x_train, data.y_train, np.zeros((0, 64)), data.y_test[:0]), steps=1)
    with pytest.raises(ValueError, match="same number of features"):
        run_experiment(data=(data.x_train, data.y_train, data.x_test[:, :10], data.y_test), steps=1)
    with pytest.raises(TypeError, match="y_train must hold integer"):
        run_experiment(data=(data.x_train, data.y_train * 1.0, data.x_test, data.y_test), steps=1)
    x = data.x_train.copy()
    x[3, 5] = np.nan
    with pytest.raises(ValueError, match="x_train contains 1 non-finite"):
        run_experiment(data=(x, data.y_train, data.x_test, data.y_test), steps=1)


def test_history_type_and_layers_used(short_comparison):
    history = short_comparison[LABEL_NOISY_BN]
    assert isinstance(history, History)
    kinds = {type(layer) for layer in history.model}
    assert {BatchNorm, ShiftScaleNoise, Sigmoid} <= kinds
