"""bnlab.running: running statistics over a stream, and momentum conversion (notebook 05)."""

from __future__ import annotations

import numpy as np
import pytest

import bnlab
from bnlab.conventions import CONVENTIONS
from bnlab.running import convert_momentum, track_running_stats


def _stream(steps=40, n=6, d=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return bnlab.random_batch(rng, (steps, n, d), loc=[1.0, -2.0, 0.5], scale=[0.5, 2.0, 1.0], dtype=dtype)


@pytest.mark.parametrize("convention, momentum", [
    ("keras", 0.9), ("keras", 0.0), ("keras", 1.0), ("pytorch", 0.1), ("pytorch", 0.73), ("pytorch", None),
])
def test_trace_equals_update_running_stats_step_by_step(convention, momentum):
    batches = _stream()
    trace = track_running_stats(batches, convention, momentum)
    m = CONVENTIONS[convention].momentum if momentum is None else momentum
    rm, rv = np.zeros(3), np.ones(3)
    np.testing.assert_array_equal(trace["mean"][0], rm)
    np.testing.assert_array_equal(trace["var"][0], rv)
    for k, batch in enumerate(batches):
        mean, var = bnlab.batch_stats(batch)
        np.testing.assert_allclose(trace["batch_mean"][k], mean, rtol=1e-12)
        rm, rv = bnlab.update_running_stats(rm, rv, mean, var, m, convention=convention, n=batch.shape[0])
        np.testing.assert_allclose(trace["mean"][k + 1], rm, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(trace["var"][k + 1], rv, rtol=1e-12, atol=1e-14)
    assert trace["batch_weight"] == pytest.approx(CONVENTIONS[convention].batch_weight(m))
    assert trace["n"] == batches.shape[1]


def test_trace_equals_batchnorm_layer_in_training():
    batches = _stream()
    for convention, momentum in (("keras", 0.9), ("pytorch", 0.1)):
        bn = bnlab.BatchNorm(3, convention=convention, momentum=momentum)
        for batch in batches:
            bn.forward(batch, training=True)
        trace = track_running_stats(batches, convention, momentum)
        np.testing.assert_allclose(trace["mean"][-1], bn.running_mean, rtol=1e-12)
        np.testing.assert_allclose(trace["var"][-1], bn.running_var, rtol=1e-12)


def test_equivalent_settings_same_mean_different_variance():
    batches = _stream(steps=300, n=4)
    keras = track_running_stats(batches, "keras", 0.9)
    torch = track_running_stats(batches, "pytorch", convert_momentum(0.9, "keras", "pytorch"))
    np.testing.assert_allclose(keras["mean"], torch["mean"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(torch["var"][-1] / keras["var"][-1], 4 / 3, rtol=1e-8)


def test_float32_stream_keeps_dtype():
    trace = track_running_stats(_stream(dtype=np.float32), "keras", 0.9)
    assert trace["mean"].dtype == np.float32 and trace["var"].dtype == np.float32


@pytest.mark.parametrize("batches, error, words", [
    (np.zeros((5, 3)), ValueError, "shape (S, N, D)"),
    (np.zeros((4, 1, 3)), ValueError, "at least 2"),
    (np.zeros((0, 4, 3)), ValueError, "empty"),
    (np.full((2, 3, 2), np.nan), ValueError, "NaN"),
    (np.array([[["a"]]]), TypeError, ""),
])
def test_track_running_stats_bad_input(batches, error, words):
    with pytest.raises(error, match=None if not words else words.replace("(", r"\(").replace(")", r"\)")):
        track_running_stats(batches, "keras", 0.9)


def test_track_running_stats_bad_momentum_and_convention():
    with pytest.raises(ValueError, match="momentum"):
        track_running_stats(_stream(), "keras", 1.5)
    with pytest.raises(ValueError, match="convention"):
        track_running_stats(_stream(), "caffe", 0.9)


def test_convert_momentum():
    assert convert_momentum(0.9, "keras", "pytorch") == pytest.approx(0.1)
    assert convert_momentum(0.99, "keras", "pytorch") == pytest.approx(0.01)
    assert convert_momentum(0.1, "pytorch", "keras") == pytest.approx(0.9)
    assert convert_momentum(0.3, "keras", "keras") == pytest.approx(0.3)
    for m in np.linspace(0, 1, 11):
        back = convert_momentum(convert_momentum(m, "keras", "pytorch"), "pytorch", "keras")
        assert back == pytest.approx(m, abs=1e-15)
        # the converted momentum gives a new batch the same weight
        assert CONVENTIONS["pytorch"].batch_weight(convert_momentum(m, "keras", "pytorch")) == pytest.approx(
            CONVENTIONS["keras"].batch_weight(m))
    with pytest.raises(ValueError, match="momentum"):
        convert_momentum(-0.1, "keras", "pytorch")
    with pytest.raises(TypeError, match="momentum"):
        convert_momentum("0.9", "keras", "pytorch")
    with pytest.raises(ValueError, match="convention"):
        convert_momentum(0.9, "keras", "jax")
