"""bnlab.pitfalls: the classic framework bugs, simulated (notebook 11), checked against BatchNorm itself."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import bnlab
from bnlab import pitfalls
from bnlab.layers import SGD, BatchNorm, Sequential
from bnlab.running import track_running_stats

# ---------------------------------------------------------------- track_running_stats(momentum="cumulative")


@pytest.mark.parametrize("convention", ["keras", "pytorch"])
def test_cumulative_trace_is_batchnorm_cumulative(convention):
    batches = np.random.default_rng(0).normal(1.0, 2.0, size=(12, 5, 3))
    trace = track_running_stats(batches, convention, "cumulative")
    bn = BatchNorm(3, convention=convention, momentum="cumulative")
    for k, batch in enumerate(batches, start=1):
        bn.forward(batch, training=True)
        np.testing.assert_allclose(trace["mean"][k], bn.running_mean, rtol=0, atol=1e-14)
        np.testing.assert_allclose(trace["var"][k], bn.running_var, rtol=0, atol=1e-14)
    # the plain average: the initial 0 and 1 are gone after the first batch
    np.testing.assert_allclose(trace["mean"][-1], trace["batch_mean"].mean(axis=0), atol=1e-14)
    assert trace["batch_weight"] == "1/k"


def test_cumulative_trace_refuses_other_words():
    with pytest.raises(ValueError, match="cumulative"):
        track_running_stats(np.zeros((2, 3, 1)), "keras", "cumul")


# ---------------------------------------------------------------- evaluating in training mode


def test_eval_mode_experiment_is_what_batchnorm_does():
    r = pitfalls.eval_mode_experiment(batch_size=6, passes=10)
    bn = BatchNorm(1, convention="pytorch")
    bn.running_mean, bn.running_var = r["trained_running_mean"].copy(), r["trained_running_var"].copy()
    bn.num_batches_tracked = r["trained_batches_tracked"]
    eval_layer = copy.deepcopy(bn)
    for k, (probe, batch) in enumerate(zip(r["probe_batches"], r["loop_batches"])):
        assert probe[0, 0] == r["sample"]  # sample 0 is in every probe batch
        np.testing.assert_allclose(copy.deepcopy(bn).forward(probe, training=True)[0, 0], r["train_outputs"][k],
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(eval_layer.forward(probe, training=False)[0, 0], r["eval_outputs"][k],
                                   rtol=0, atol=1e-12)
        bn.forward(batch, training=True)
        np.testing.assert_allclose(bn.running_mean[0], r["train_running_mean"][k + 1], rtol=0, atol=1e-12)
    assert bn.num_batches_tracked == r["train_batches_tracked"] == 210
    assert eval_layer.num_batches_tracked == r["eval_batches_tracked"] == 200
    np.testing.assert_array_equal(eval_layer.running_mean, r["trained_running_mean"])


def test_eval_mode_symptom_and_fix():
    r = pitfalls.eval_mode_experiment()
    assert np.ptp(r["eval_outputs"]) == 0.0          # the fix: the same output in every batch
    assert np.std(r["train_outputs"]) > 0.2          # the bug: it depends on the companions
    assert np.ptp(r["eval_running_mean"]) == 0.0
    assert np.ptp(r["train_running_mean"]) > 0.05
    # larger validation batches: the batch statistics are closer to the running ones
    big = pitfalls.eval_mode_experiment(batch_size=64)
    assert np.std(big["train_outputs"]) < 0.5 * np.std(r["train_outputs"])


# ---------------------------------------------------------------- a batch of one


def test_batch_of_one_experiment_defaults():
    r = pitfalls.batch_of_one_experiment()
    assert r["batch_sizes"].tolist() == [32, 32, 32, 1]
    assert r["refused"].tolist() == [3]
    assert "one value per feature" in r["message"] and "evaluation mode" in r["message"]
    assert r["kept"].tolist() == [True, True, True, False] and r["dropped_samples"] == 1
    assert r["eval_output_shape"] == (1, 8, 1, 1)


@pytest.mark.parametrize(("batch_size", "sizes", "refused"), [
    (48, [48, 48, 1], [2]), (33, [33, 33, 31], []), (97, [97], []), (1, [1] * 97, list(range(97)))])
def test_batch_of_one_experiment_sizes(batch_size, sizes, refused):
    r = pitfalls.batch_of_one_experiment(batch_size=batch_size)
    assert r["batch_sizes"].tolist() == sizes and r["refused"].tolist() == refused
    assert (r["message"] is None) == (not refused)


def test_batch_of_one_matches_a_bnlab_layer_on_every_batch():
    r = pitfalls.batch_of_one_experiment(num_samples=13, batch_size=4, channels=3)
    features = np.random.default_rng(0).normal(size=(13, 3, 1, 1))
    bn = BatchNorm(3, convention="pytorch", axis=(0, 2, 3))
    refused = []
    for i, start in enumerate(range(0, 13, 4)):
        try:
            bn.forward(features[start:start + 4], training=True)
        except ValueError:
            refused.append(i)
    assert refused == r["refused"].tolist() == [3]


# ---------------------------------------------------------------- a "frozen" BN


def _frozen_by_hand(r, convention, trainable, training, sgd=True):
    bn = BatchNorm(1, convention=convention, momentum=0.1 if convention == "pytorch" else 0.9, eps=1e-5)
    bn.gamma[:], bn.beta[:] = pitfalls.PRETRAINED["gamma"], pitfalls.PRETRAINED["beta"]
    bn.trainable = trainable
    model, optimizer = Sequential([bn]), SGD(0.1)
    dys = np.random.default_rng(1).normal(size=r["batches"].shape)
    means = [bn.running_mean[0]]
    for batch, dy in zip(r["batches"], dys):
        model.forward(batch, training=training)
        model.backward(dy)
        if sgd:
            optimizer.step(model)
        means.append(bn.running_mean[0])
    return np.array(means), bn


def test_frozen_bn_experiment_is_what_batchnorm_does():
    r = pitfalls.frozen_bn_experiment(steps=30)
    cases = {"pytorch_frozen": ("pytorch", False, True, True), "pytorch_eval": ("pytorch", False, False, True),
             "keras_frozen": ("keras", False, True, True), "keras2_frozen": ("keras", True, True, False)}
    for name, (convention, trainable, training, sgd) in cases.items():
        means, bn = _frozen_by_hand(r, convention, trainable, training, sgd)
        np.testing.assert_allclose(means, r["running_mean"][name], rtol=0, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(bn.running_var[0], r["running_var"][name][-1], rtol=0, atol=1e-12)
        if not trainable:  # frozen: SGD never touched gamma and beta
            assert (bn.gamma[0], bn.beta[0]) == (pitfalls.PRETRAINED["gamma"], pitfalls.PRETRAINED["beta"])


def test_frozen_bn_symptom_and_fix():
    r = pitfalls.frozen_bn_experiment()
    moved = r["running_mean"]["pytorch_frozen"]
    assert abs(moved[-1] - r["new_mean"]) < 0.5 and r["eval_change"]["pytorch_frozen"] > 1.0
    for name in ("pytorch_eval", "keras_frozen"):
        assert np.ptp(r["running_mean"][name]) == 0.0 and r["eval_change"][name] == 0.0
    np.testing.assert_allclose(r["running_mean"]["keras2_frozen"], moved, atol=1e-12)  # Keras 2 = PyTorch here


# ---------------------------------------------------------------- the momentum mix-up


def test_momentum_mixup_experiment():
    r = pitfalls.momentum_mixup_experiment()
    assert r["batch_weight"] == {"right": 0.1, "copied": 0.9, "default_kept": 0.01}
    trace = track_running_stats(np.random.default_rng(0).normal(
        np.where(np.arange(200) < 80, 1.0, 3.0)[:, None, None], 1.0, size=(200, 16, 1)), "keras", 0.9)
    np.testing.assert_allclose(trace["mean"][:, 0], r["curves"]["right"], atol=1e-12)  # Keras 0.9 = PyTorch 0.1
    assert 10 <= r["reach_steps"]["right"] <= 40 and r["reach_steps"]["copied"] <= 2
    assert r["reach_steps"]["default_kept"] is None          # 0.99: not there 120 batches later
    assert r["wobble"]["copied"] > 4 * r["wobble"]["right"]
    assert r["truth"][0] == 1.0 and r["truth"][-1] == 3.0 and len(r["truth"]) == 201


# ---------------------------------------------------------------- recalibration


def test_recalibration_experiment_cumulative_is_batchnorm_after_reset():
    r = pitfalls.recalibration_experiment(recalibration_steps=20)
    bn = BatchNorm(1, convention="pytorch")
    for batch in r["train_batches"]:
        bn.forward(batch, training=True)
    np.testing.assert_allclose(bn.running_mean[0], r["final"]["pytorch_default"], atol=1e-12)
    bn.reset_running_stats()
    bn.momentum = "cumulative"
    for k, batch in enumerate(r["recalibration_batches"]):
        bn.forward(batch, training=True)
        np.testing.assert_allclose(bn.running_mean[0], r["cumulative"][k], atol=1e-12)
    np.testing.assert_allclose(r["final"]["cumulative"], r["recalibration_batch_means"].mean(), atol=1e-12)


def test_recalibration_symptom_and_fix():
    r = pitfalls.recalibration_experiment()
    truth = r["final_truth"]
    errors = {name: abs(value - truth) for name, value in r["final"].items()}
    assert errors["keras_default"] > 0.8          # 0.99 trails the drift far behind
    assert errors["cumulative"] < 0.1 < errors["pytorch_default"] + 0.1
    assert errors["cumulative"] < errors["pytorch_default"] < errors["keras_default"]


# ---------------------------------------------------------------- per-device statistics


@pytest.mark.parametrize("per_device", [2, 4, 16])
def test_device_stats_follow_sigma_over_root_n(per_device):
    r = pitfalls.device_stats_experiment(per_device=per_device, draws=2000)
    sigma, n = np.sqrt(r["true_var"]), per_device
    assert r["spread"]["device_mean"] == pytest.approx(sigma / np.sqrt(n), rel=0.08)
    assert r["spread"]["global_mean"] == pytest.approx(sigma / np.sqrt(8 * n), rel=0.08)
    assert r["average_var"]["device"] == pytest.approx(r["true_var"] * (n - 1) / n, rel=0.06)
    mean, var = bnlab.batch_stats(np.random.default_rng(0).normal(1.0, 2.0, size=(8, n)), axis=1)
    np.testing.assert_allclose(r["device_mean"], mean)
    np.testing.assert_allclose(r["device_var"], var)
    assert r["global_mean"] == pytest.approx(float(np.mean(r["device_mean"])))


# ---------------------------------------------------------------- by name, determinism, bad input


@pytest.mark.parametrize("name", list(pitfalls.PITFALLS))
def test_pitfall_experiment_by_name_is_deterministic(name):
    a = pitfalls.pitfall_experiment(name, seed=3)
    b = pitfalls.pitfall_experiment(name, seed=3)
    c = pitfalls.pitfall_experiment(name, seed=4)
    assert a["name"] == name

    def arrays(result):
        found = []
        for value in result.values():
            if isinstance(value, np.ndarray):
                found.append(value)
            elif isinstance(value, dict):
                found += [v for v in value.values() if isinstance(v, np.ndarray)]
        return found

    for x, y in zip(arrays(a), arrays(b)):
        np.testing.assert_array_equal(x, y)
    if name != "batch_of_one":  # its refusals depend on the sizes only
        assert any(not np.array_equal(x, y) for x, y in zip(arrays(a), arrays(c)))
    bigger = pitfalls.pitfall_experiment(name, batch_size=20)
    assert 20 in bigger["config"].values()


@pytest.mark.parametrize(("call", "error", "words"), [
    (lambda: pitfalls.pitfall_experiment("nope"), ValueError, "name must be one of"),
    (lambda: pitfalls.pitfall_experiment("frozen_bn", batch_size=1), ValueError, "Expected more than 1 value"),
    (lambda: pitfalls.device_stats_experiment(per_device=1), ValueError, "per_device=1"),
    (lambda: pitfalls.eval_mode_experiment(seed=1.5), TypeError, "seed must be an int"),
    (lambda: pitfalls.eval_mode_experiment(batch_size=64, passes=100), ValueError, "batch_size * passes"),
    (lambda: pitfalls.momentum_mixup_experiment(jump_at=300), ValueError, "jump_at"),
    (lambda: pitfalls.frozen_bn_experiment(new_std=0.0), ValueError, "new_std must be positive"),
    (lambda: pitfalls.frozen_bn_experiment(new_mean="1"), TypeError, "new_mean"),
    (lambda: pitfalls.batch_of_one_experiment(num_samples=0), ValueError, "num_samples must be >= 1"),
    (lambda: pitfalls.device_stats_experiment(true_std=-1.0), ValueError, "true_std"),
])
def test_bad_input_is_refused_with_a_message(call, error, words):
    with pytest.raises(error, match=words.replace("*", r"\*")):
        call()
