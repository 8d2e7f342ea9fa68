"""Explorer and figures of notebook 04 (bnlab.widgets.invariance), driven from Python."""

from __future__ import annotations

import ipywidgets
import numpy as np
import pytest
from _support import image_bytes

import bnlab
import bnlab.walkthrough
from bnlab import plots, widgets
from bnlab.data import SEED_EPS, SEED_SCALE, SEED_SHIFT

# ---------------------------------------------------------------- notebook 04

@pytest.fixture
def shift_scale():
    return widgets.ShiftScaleExplorer()


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
    assert isinstance(e.widget, ipywidgets.VBox)


def test_shift_slider_moves_z_prime_not_y(shift_scale):
    e = shift_scale
    before, y_before = image_bytes(e), e.y_shifted.copy()
    e.shift_slider.value = -37.5
    assert e.b == -37.5
    np.testing.assert_allclose(e.z_shifted, e.a * e.z - 37.5)
    np.testing.assert_allclose(e.y_shifted, y_before, atol=1e-9)
    assert image_bytes(e) != before
    assert "37.5" in e.drawn["shift_title"].get_text()


def test_scale_slider_tiny_a_collapses_towards_beta(shift_scale):
    e = shift_scale
    e.sign.value = 1
    e.scale_slider.value = 1.0
    assert e.max_gap == pytest.approx(0.0, abs=1e-12)
    before = image_bytes(e)
    e.scale_slider.value = 1e-4
    assert e.a == pytest.approx(1e-4)
    assert e.effective_eps == pytest.approx(e.eps / 1e-8)
    assert e.max_gap > 1.0
    # z_hat' shrinks towards 0: y' towards beta
    assert np.abs(e.z_hat_shifted).max() < 0.1 * np.abs(e.z_hat).max()
    np.testing.assert_allclose(e.y_shifted, e.beta + e.gamma * e.z_hat_shifted)
    # the identity the notebook derives: z_hat' is z normalized with eps / a^2
    np.testing.assert_allclose(e.z_hat_shifted, e.z_hat_effective, atol=1e-10)
    assert image_bytes(e) != before
    assert "max |y' − y|" in e.drawn["gap_text"].get_text()


def test_negative_a_flips_z_hat(shift_scale):
    e = shift_scale
    e.scale_slider.value = 3.0
    before = image_bytes(e)
    e.sign.value = -1
    assert e.a == pytest.approx(-3.0)
    np.testing.assert_allclose(e.z_hat_shifted, -e.z_hat, atol=5e-5)  # eps/9 instead of eps
    np.testing.assert_allclose(e.y_shifted, 2 * e.beta - e.y, atol=1e-4)
    assert image_bytes(e) != before


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
    z, image, renders = e.z.copy(), image_bytes(e), e.renders
    e.batch_text.value = text
    assert e.error is not None and words in e.error
    assert words in e.message.value
    np.testing.assert_array_equal(e.z, z)
    assert image_bytes(e) == image and e.renders == renders
    # a valid batch afterwards clears the message
    e.batch_text.value = "0, 1\n2, 5\n4, 3"
    assert e.error is None and e.message.value == ""
    assert e.z.shape == (3, 2)
    np.testing.assert_allclose(e.gamma, 1.0)
    np.testing.assert_allclose(e.beta, 0.0)
    assert image_bytes(e) != image


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


def test_shift_scale_describes_its_figure_with_its_numbers():
    e = widgets.ShiftScaleExplorer()
    e.sign.value = -1
    e.shift_slider.value = -7.5
    text = e.describe()
    assert f"a = {e.a:.3g}" in text and "b = -7.5" in text and f"{e.max_gap:.2g}" in text and e.a < 0
    assert e.image.tooltip == text
