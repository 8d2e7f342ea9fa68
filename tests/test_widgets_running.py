"""Explorers of notebook 05 (bnlab.widgets.running), driven from Python."""

from __future__ import annotations

import numpy as np
import pytest
from _support import image_bytes

import bnlab
import bnlab.walkthrough
from bnlab import widgets

# ---------------------------------------------------------------- notebook 05

@pytest.fixture
def running():
    return widgets.RunningStatsExplorer()


def test_running_defaults(running):
    e = running
    seed_mean, seed_var = bnlab.batch_stats(bnlab.seed_batch().z.astype(np.float64))
    np.testing.assert_allclose(e.true_mean, seed_mean)
    np.testing.assert_allclose(e.true_var, seed_var)
    assert e.batches.shape == (100, 16, 3)
    assert e.keras_momentum == e.pytorch_momentum == 0.9
    trace = bnlab.running.track_running_stats(e.batches, "keras", 0.9)
    np.testing.assert_allclose(e.keras["mean"], trace["mean"])
    assert e.keras["batch_weight"] == pytest.approx(0.1)
    assert e.pytorch["batch_weight"] == pytest.approx(0.9)
    np.testing.assert_allclose(e.final["keras_mean"], e.keras["mean"][-1])
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "running mean after 100 steps" in e.table.value
    # the drawn curves are the traces
    lines = e.drawn["mean_lines"]
    keras_line = next(line for label, line in lines.items() if label.startswith("keras"))
    np.testing.assert_allclose(keras_line.get_ydata(), e.keras["mean"][:, 0])


def test_running_momentum_slider(running):
    e = running
    before = image_bytes(e)
    e.momentum_slider.value = 0.5
    assert e.keras_momentum == e.pytorch_momentum == 0.5
    np.testing.assert_allclose(e.keras["mean"], e.pytorch["mean"])  # 0.5 means the same in both
    assert image_bytes(e) != before
    assert "0.5" in e.table.value


def test_running_pass_as_keras_gives_equal_means(running):
    e = running
    e.batch_size_slider.value = 4
    e.pass_as.value = "keras"
    assert e.pytorch_momentum == pytest.approx(0.1)
    np.testing.assert_allclose(e.keras["mean"], e.pytorch["mean"], atol=1e-12)
    ratio = e.pytorch["var"][-1] / e.keras["var"][-1]
    np.testing.assert_allclose(ratio, 4 / 3, rtol=1e-3)
    e.pass_as.value = "same"
    assert not np.allclose(e.keras["mean"], e.pytorch["mean"])


def test_running_batch_size_steps_seed_feature(running):
    e = running
    image = image_bytes(e)
    e.batch_size_slider.value = 64
    assert e.batches.shape == (100, 64, 3) and e.keras["n"] == 64
    assert image_bytes(e) != image
    e.steps_slider.value = 250
    assert e.batches.shape == (250, 64, 3) and e.keras["mean"].shape == (251, 3)
    assert e.drawn["axes"][0].get_xlim() == (0, 300)
    first = e.batches.copy()
    e.new_stream.click()
    assert e.seed_slider.value == 1
    assert not np.allclose(e.batches, first)
    image = image_bytes(e)
    e.feature_choice.value = 2
    assert e.feature == 2
    assert e.drawn["axes"][0].get_title() == "running mean (feature 2)"
    np.testing.assert_allclose(e.drawn["true_mean"].get_ydata(), [e.true_mean[2]] * 2)
    assert image_bytes(e) != image


def test_running_new_stream_wraps_around():
    e = widgets.RunningStatsExplorer()
    e.seed_slider.value = e.seed_slider.max
    e.new_stream.click()
    assert e.seed_slider.value == 0


def test_running_custom_truth_and_bad_truth():
    e = widgets.RunningStatsExplorer(true_mean=[5.0, -5.0], true_var=[4.0, 0.25])
    assert e.batches.shape[2] == 2
    assert abs(e.keras["batch_mean"][:, 0].mean() - 5.0) < 0.5
    with pytest.raises(ValueError, match="positive"):
        widgets.RunningStatsExplorer(true_mean=[0.0], true_var=[-1.0])
    with pytest.raises(ValueError, match="same shape"):
        widgets.RunningStatsExplorer(true_mean=[0.0, 1.0], true_var=[1.0])


def test_running_failed_update_keeps_state(running, monkeypatch):
    """An error inside compute (whatever its cause) shows a message and keeps the last state."""
    e = running
    keras, image, renders = e.keras, image_bytes(e), e.renders
    monkeypatch.setattr(e, "_true_var", np.array([np.nan, 1.0, 1.0]))
    e.momentum_slider.value = 0.7
    assert e.error is not None and "NaN" in e.error
    assert "NaN" in e.message.value
    assert e.keras is keras and image_bytes(e) == image and e.renders == renders


@pytest.fixture
def train_eval():
    return widgets.TrainEvalExplorer()


def test_train_eval_defaults(train_eval):
    e = train_eval
    assert not e.training and e.trained_steps == 20 and e.test_batch.shape == (16, 3)
    trace = bnlab.running.track_running_stats(e._stream, "keras", 0.9)
    np.testing.assert_allclose(e.running_mean, trace["mean"][20])
    expected = bnlab.affine(bnlab.normalize(e.test_batch, e.running_mean, e.running_var, eps=1e-3),
                            np.ones(3), np.zeros(3))
    np.testing.assert_allclose(e.y, expected)
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "nothing in the layer changed" in e.drawn["status"].get_text()


def test_train_eval_eval_mode_sample_independent_of_batch(train_eval):
    e = train_eval
    sample = e.sample_output.copy()
    image = image_bytes(e)
    e.test_size_slider.value = 1
    assert e.error is None
    np.testing.assert_allclose(e.sample_output, sample)
    assert image_bytes(e) != image


def test_train_eval_training_mode_depends_on_batch(train_eval):
    e = train_eval
    e.mode.value = "train"
    assert e.training
    mean, var = bnlab.batch_stats(e.test_batch)
    np.testing.assert_allclose(e.y, bnlab.normalize(e.test_batch, mean, var, eps=1e-3))
    assert "updated the running statistics" in e.drawn["status"].get_text()
    sample16 = e.sample_output.copy()
    e.test_size_slider.value = 2
    assert not np.allclose(e.sample_output, sample16)
    np.testing.assert_allclose(e.y[0], -e.y[1])


def test_train_eval_batch_of_one_in_training_shows_message_keeps_state(train_eval):
    e = train_eval
    e.mode.value = "train"
    y, image, renders = e.y.copy(), image_bytes(e), e.renders
    e.test_size_slider.value = 1
    assert e.error is not None and "one value per feature" in e.error
    assert "evaluation mode" in e.message.value
    np.testing.assert_array_equal(e.y, y)
    assert image_bytes(e) == image and e.renders == renders
    e.mode.value = "eval"  # the fix the message suggests
    assert e.error is None and e.message.value == "" and e.y.shape == (1, 3)


def test_train_eval_warm_up_and_momentum(train_eval):
    e = train_eval
    e.trained_steps_slider.value = 0
    np.testing.assert_allclose(e.running_mean, 0.0)
    np.testing.assert_allclose(e.running_var, 1.0)
    heights = [bar.get_height() for bar in e.drawn["mean_bars"]]
    np.testing.assert_allclose(heights, 0.0)
    image = image_bytes(e)
    e.trained_steps_slider.value = 300
    np.testing.assert_allclose(e.running_mean, e.true_mean, atol=0.3)
    assert image_bytes(e) != image
    e.momentum_slider.value = 0.999
    assert np.all(np.abs(e.running_mean) < 0.35 * np.abs(e.true_mean))  # 1 - 0.999**300 = 26%


# ---------------------------------------------------------------- the figures in words

def test_running_stats_describes_its_figure_with_its_numbers():
    e = widgets.RunningStatsExplorer()
    e.momentum_slider.value = 0.5
    e.feature_choice.value = 2
    text = e.describe()
    assert "feature 2" in text and "momentum 0.5" in text
    assert f"Keras mean {e.final['keras_mean'][2]:.3g}" in text
    assert f"PyTorch mean {e.final['pytorch_mean'][2]:.3g}, variance {e.final['pytorch_var'][2]:.3g}" in text
    assert e.image.tooltip == text


def test_train_eval_describes_its_figure_with_its_numbers():
    e = widgets.TrainEvalExplorer()
    before = e.describe()
    e.mode.value = "train"
    text = e.describe()
    assert text != before and "training mode" in text and "evaluation mode" in before
    assert f"{e.sample_output[0] + 0.0:.3g}" in text and f"after {e.trained_steps} training batches" in text
