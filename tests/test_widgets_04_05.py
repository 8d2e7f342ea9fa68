"""Explorers and plot builders of notebooks 04 (shift/scale invariance) and 05 (running statistics).

The explorers are driven from Python, as a learner's clicks would: set a
control's value (its observer calls update), then assert the computed state
and that the rendered image changed.
"""

from __future__ import annotations

import numpy as np
import pytest

import bnlab
import bnlab.walkthrough
from bnlab import plots, widgets
from bnlab.data import SEED_EPS, SEED_SCALE, SEED_SHIFT

# ---------------------------------------------------------------- notebook 04

@pytest.fixture
def shift_scale():
    return widgets.ShiftScaleExplorer()


def _fresh_image(explorer):
    return bytes(explorer.image.value)


def test_shift_scale_defaults_are_the_seeds_experiment(shift_scale):
    e = shift_scale
    seed = bnlab.seed_batch()
    assert e.a == SEED_SCALE and e.b == SEED_SHIFT and e.eps == SEED_EPS
    np.testing.assert_allclose(e.z, seed.z)
    np.testing.assert_allclose(e.z_shifted, SEED_SCALE * seed.z + SEED_SHIFT)
    np.testing.assert_allclose(e.gamma, seed.gamma)
    np.testing.assert_allclose(e.beta, seed.beta)
    # the seed's y, and y' equal to it up to eps's effect
    steps = bnlab.walkthrough.walkthrough_steps()
    np.testing.assert_allclose(e.y, steps["y"], atol=1e-5)
    np.testing.assert_allclose(e.y_shifted, e.y, atol=1e-4)
    assert 1e-6 < e.max_gap < 1e-4
    assert e.effective_eps == pytest.approx(SEED_EPS / 4)
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert e.error is None and e.message.value == ""
    assert isinstance(e.widget, widgets.widgets.VBox)


def test_shift_slider_moves_z_prime_not_y(shift_scale):
    e = shift_scale
    before, y_before = _fresh_image(e), e.y_shifted.copy()
    e.shift_slider.value = -37.5
    assert e.b == -37.5
    np.testing.assert_allclose(e.z_shifted, e.a * e.z - 37.5)
    np.testing.assert_allclose(e.y_shifted, y_before, atol=1e-9)
    assert _fresh_image(e) != before
    assert "37.5" in e.drawn["shift_title"].get_text()


def test_scale_slider_tiny_a_collapses_towards_beta(shift_scale):
    e = shift_scale
    e.sign.value = 1
    e.scale_slider.value = 1.0
    assert e.max_gap == pytest.approx(0.0, abs=1e-12)
    before = _fresh_image(e)
    e.scale_slider.value = 1e-4
    assert e.a == pytest.approx(1e-4)
    assert e.effective_eps == pytest.approx(e.eps / 1e-8)
    assert e.max_gap > 1.0
    # z_hat' shrinks towards 0: y' towards beta
    assert np.abs(e.z_hat_shifted).max() < 0.1 * np.abs(e.z_hat).max()
    np.testing.assert_allclose(e.y_shifted, e.beta + e.gamma * e.z_hat_shifted)
    # the identity the notebook derives: z_hat' is z normalized with eps / a^2
    np.testing.assert_allclose(e.z_hat_shifted, e.z_hat_effective, atol=1e-10)
    assert _fresh_image(e) != before
    assert "max |y' − y|" in e.drawn["gap_text"].get_text()


def test_negative_a_flips_z_hat(shift_scale):
    e = shift_scale
    e.scale_slider.value = 3.0
    before = _fresh_image(e)
    e.sign.value = -1
    assert e.a == pytest.approx(-3.0)
    np.testing.assert_allclose(e.z_hat_shifted, -e.z_hat, atol=5e-5)  # eps/9 instead of eps
    np.testing.assert_allclose(e.y_shifted, 2 * e.beta - e.y, atol=1e-4)
    assert _fresh_image(e) != before


def test_eps_choice_changes_the_gap(shift_scale):
    e = shift_scale
    e.scale_slider.value = 0.01
    small = e.max_gap
    e.eps_choice.value = 1e-3
    assert e.eps == 1e-3 and e.max_gap > small
    e.eps_choice.value = SEED_EPS


@pytest.mark.parametrize("text, words", [
    ("1, 2, 3\n4, 5", "different numbers"),
    ("1, 2, x\n4, 5, 6", "not a number"),
    ("1, 2, 3", "at least 2"),
    ("1, nan, 3\n1, 2, 3", "finite"),
    ("", "empty"),
])
def test_shift_scale_bad_batch_shows_message_keeps_state(text, words):
    e = widgets.ShiftScaleExplorer()
    z, image, renders = e.z.copy(), _fresh_image(e), e.renders
    e.batch_text.value = text
    assert e.error is not None and words in e.error
    assert words in e.message.value
    np.testing.assert_array_equal(e.z, z)
    assert _fresh_image(e) == image and e.renders == renders
    # a valid batch afterwards clears the message
    e.batch_text.value = "0, 1\n2, 5\n4, 3"
    assert e.error is None and e.message.value == ""
    assert e.z.shape == (3, 2)
    np.testing.assert_allclose(e.gamma, 1.0)
    np.testing.assert_allclose(e.beta, 0.0)
    assert _fresh_image(e) != image


def test_shift_scale_constant_feature_is_handled():
    e = widgets.ShiftScaleExplorer()
    e.batch_text.value = "1, 2\n1, 4\n1, 0"
    assert e.error is None
    np.testing.assert_allclose(e.y[:, 0], e.beta[0])
    np.testing.assert_allclose(e.y_shifted[:, 0], e.beta[0])


def test_shift_scale_custom_gamma_beta():
    z = np.array([[0.0, 1.0], [2.0, -1.0], [4.0, 3.0]])
    e = widgets.ShiftScaleExplorer(z, gamma=[2.0, 3.0], beta=[-1.0, 0.5])
    np.testing.assert_allclose(e.gamma, [2.0, 3.0])
    y, _ = bnlab.batchnorm_forward(z, np.array([2.0, 3.0]), np.array([-1.0, 0.5]), eps=SEED_EPS)
    np.testing.assert_allclose(e.y, y)


def test_plot_shift_scale_returns_artists_with_titles():
    z, gamma, beta = (x.astype(np.float64) for x in bnlab.seed_batch())
    y, _ = bnlab.batchnorm_forward(z, gamma, beta)
    drawn = plots.plot_shift_scale(z, 2 * z + 10, y, y, scale=2, shift=10)
    assert len(drawn["axes"]) == 3
    for ax in drawn["axes"]:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert drawn["z"].get_offsets().shape == (12, 2)
    assert drawn["shift_title"].get_text() == "z' = 2·z + 10"
    changed = plots.update_shift_scale(drawn, z, 1000 * z, y, y, scale=1000, shift=0)
    assert changed  # the middle panel's data left its limits
    assert drawn["axes"][1].get_ylim()[1] >= 1000 * z.max()
    assert not plots.update_shift_scale(drawn, z, 1000 * z, y, y, scale=1000, shift=0)


def test_plot_invariance_gap_skips_zero_and_marks_eps():
    drawn = plots.plot_invariance_gap([0.1, 1.0, 10.0], [1e-3, 0.0, 1e-5], eps=1e-5, var=0.5)
    ydata = drawn["line"].get_ydata()
    assert np.isnan(ydata[1]) and ydata[0] == 1e-3
    assert drawn["marker"].get_xdata()[0] == pytest.approx(np.sqrt(1e-5 / 0.5))
    assert drawn["ax"].get_xscale() == "log"
    assert drawn["ax"].get_title() and drawn["ax"].get_xlabel() and drawn["ax"].get_ylabel()


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
    before = _fresh_image(e)
    e.momentum_slider.value = 0.5
    assert e.keras_momentum == e.pytorch_momentum == 0.5
    np.testing.assert_allclose(e.keras["mean"], e.pytorch["mean"])  # 0.5 means the same in both
    assert _fresh_image(e) != before
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
    image = _fresh_image(e)
    e.batch_size_slider.value = 64
    assert e.batches.shape == (100, 64, 3) and e.keras["n"] == 64
    assert _fresh_image(e) != image
    e.steps_slider.value = 250
    assert e.batches.shape == (250, 64, 3) and e.keras["mean"].shape == (251, 3)
    assert e.drawn["axes"][0].get_xlim() == (0, 300)
    first = e.batches.copy()
    e.new_stream.click()
    assert e.seed_slider.value == 1
    assert not np.allclose(e.batches, first)
    image = _fresh_image(e)
    e.feature_choice.value = 2
    assert e.feature == 2
    assert e.drawn["axes"][0].get_title() == "running mean (feature 2)"
    np.testing.assert_allclose(e.drawn["true_mean"].get_ydata(), [e.true_mean[2]] * 2)
    assert _fresh_image(e) != image


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
    keras, image, renders = e.keras, _fresh_image(e), e.renders
    monkeypatch.setattr(e, "_true_var", np.array([np.nan, 1.0, 1.0]))
    e.momentum_slider.value = 0.7
    assert e.error is not None and "NaN" in e.error
    assert "NaN" in e.message.value
    assert e.keras is keras and _fresh_image(e) == image and e.renders == renders


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
    image = _fresh_image(e)
    e.test_size_slider.value = 1
    assert e.error is None
    np.testing.assert_allclose(e.sample_output, sample)
    assert _fresh_image(e) != image


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
    y, image, renders = e.y.copy(), _fresh_image(e), e.renders
    e.test_size_slider.value = 1
    assert e.error is not None and "one value per feature" in e.error
    assert "evaluation mode" in e.message.value
    np.testing.assert_array_equal(e.y, y)
    assert _fresh_image(e) == image and e.renders == renders
    e.mode.value = "eval"  # the fix the message suggests
    assert e.error is None and e.message.value == "" and e.y.shape == (1, 3)


def test_train_eval_warm_up_and_momentum(train_eval):
    e = train_eval
    e.trained_steps_slider.value = 0
    np.testing.assert_allclose(e.running_mean, 0.0)
    np.testing.assert_allclose(e.running_var, 1.0)
    heights = [bar.get_height() for bar in e.drawn["mean_bars"]]
    np.testing.assert_allclose(heights, 0.0)
    image = _fresh_image(e)
    e.trained_steps_slider.value = 300
    np.testing.assert_allclose(e.running_mean, e.true_mean, atol=0.3)
    assert _fresh_image(e) != image
    e.momentum_slider.value = 0.999
    assert np.all(np.abs(e.running_mean) < 0.35 * np.abs(e.true_mean))  # 1 - 0.999**300 = 26%
