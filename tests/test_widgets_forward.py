"""Explorers of notebooks 01-03 (bnlab.widgets.forward), driven from Python (no browser, no kernel)."""

from __future__ import annotations

import ipywidgets
import numpy as np
import pytest

import bnlab
from bnlab import widgets

SEED_MEAN = np.array([1.0, 0.5, 3.5])
SEED_VAR = np.array([0.5, 1.25, 1.25])


# ---------------------------------------------------------------- notebook 01

@pytest.fixture
def stats():
    return widgets.BatchStatsExplorer()


def test_batch_stats_explorer_starts_on_the_seed_batch(stats):
    np.testing.assert_array_equal(stats.z, bnlab.seed_batch().z)
    np.testing.assert_allclose(stats.mean, SEED_MEAN)
    np.testing.assert_allclose(stats.var, SEED_VAR)
    np.testing.assert_allclose(stats.sample_var, SEED_VAR * 4 / 3)
    assert (stats.n_samples, stats.n_features) == (4, 3)
    assert stats.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert stats.value_slider.value == 1.0 and stats.value_slider.description == "z[0, 0]"
    assert "0.5" in stats.stats_table.value and "1.25" in stats.stats_table.value
    assert isinstance(stats.widget, ipywidgets.VBox)


def test_moving_the_value_slider_moves_the_statistics_and_the_picture(stats):
    before = stats.image.value
    stats.feature_picker.value = 2
    stats.sample_picker.value = 3
    assert stats.value_slider.value == 5.0 and stats.value_slider.description == "z[3, 2]"
    assert stats.image.value == before  # picking a value changes nothing yet
    stats.value_slider.value = 9.0
    assert stats.z[3, 2] == 9.0
    expected = bnlab.seed_batch().z.astype(np.float64)
    expected[3, 2] = 9.0
    mean, var = bnlab.batch_stats(expected)
    np.testing.assert_allclose(stats.mean, mean)
    np.testing.assert_allclose(stats.var, var)
    assert stats.mean[2] == pytest.approx(4.5)
    assert stats.image.value != before
    assert "9" in stats.batch_text.value.splitlines()[3]
    assert stats.error is None and stats.message.value == ""


def test_slider_moves_many_times_without_errors(stats):
    for value in np.round(np.linspace(-10, 10, 21), 1):
        stats.value_slider.value = value
        assert stats.z[0, 0] == value
        assert stats.mean[0] == pytest.approx((value + 2.0 + 0.0 + 1.0) / 4)
    assert stats.error is None


def test_a_typed_batch_of_another_shape_updates_pickers(stats):
    stats.batch_text.value = "1, 2\n3, 4\n5, 7\n0, 0\n1 1"
    assert stats.error is None
    assert stats.z.shape == (5, 2)
    np.testing.assert_allclose(stats.mean, [2.0, 2.8])
    assert [v for _, v in stats.sample_picker.options] == [0, 1, 2, 3, 4]
    assert [v for _, v in stats.feature_picker.options] == [0, 1]
    stats.sample_picker.value = 4
    stats.feature_picker.value = 1
    stats.value_slider.value = 3.0
    np.testing.assert_allclose(stats.z[4], [1.0, 3.0])


def test_a_typed_value_outside_the_slider_range_widens_it(stats):
    stats.batch_text.value = "50, 1\n-40, 2"
    assert stats.error is None
    assert stats.value_slider.value == 50.0
    assert stats.value_slider.max >= 50.0
    stats.sample_picker.value = 1
    assert stats.value_slider.value == -40.0 and stats.value_slider.min <= -40.0


@pytest.mark.parametrize("text, words", [
    ("1, 2, 3\n4, five, 6", "not a number"),
    ("1, 2, 3\n4, 5", "different numbers"),
    ("1, 2, 3", "at least 2"),
    ("1, nan, 3\n4, 5, 6", "finite"),
    ("", "empty"),
    ("1 2 3 4 5 6 7\n1 2 3 4 5 6 7", "at most 6"),
    ("__import__('os')\n1", "not a number"),
])
def test_bad_typed_batches_show_a_message_and_keep_the_state(stats, text, words):
    z, mean, image, renders = stats.z.copy(), stats.mean.copy(), stats.image.value, stats.renders
    stats.batch_text.value = text
    assert stats.error is not None and words in stats.error
    assert words in stats.message.value
    np.testing.assert_array_equal(stats.z, z)
    np.testing.assert_array_equal(stats.mean, mean)
    assert stats.image.value == image and stats.renders == renders
    # a valid batch afterwards clears the message
    stats.batch_text.value = "1, 2, 3\n3, 2, 1"
    assert stats.error is None and stats.message.value == ""
    np.testing.assert_allclose(stats.mean, [2.0, 2.0, 2.0])


def test_the_slider_recovers_from_a_bad_typed_batch(stats):
    stats.batch_text.value = "oops"
    assert stats.error
    stats.value_slider.value = 4.0  # edits the last valid batch
    assert stats.error is None
    assert stats.z[0, 0] == 4.0 and stats.z.shape == (4, 3)


def test_batch_stats_explorer_accepts_a_starting_batch():
    explorer = widgets.BatchStatsExplorer([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_allclose(explorer.var, [1.0, 1.0])
    with pytest.raises(ValueError):
        widgets.BatchStatsExplorer([1.0, 2.0])


# ---------------------------------------------------------------- notebook 02

@pytest.fixture
def norm():
    return widgets.NormalizationExplorer()


def test_normalization_explorer_defaults(norm):
    assert norm.eps == pytest.approx(1e-5)
    assert norm.spread == pytest.approx(1.0)
    assert norm.var == pytest.approx(1.0)
    assert norm.mean == pytest.approx(3.0)
    assert norm.var_z_hat == pytest.approx(1 / (1 + 1e-5), rel=1e-9)
    assert norm.z.shape == norm.z_hat.shape == (256, 1)
    assert abs(norm.z_hat.mean()) < 1e-9


def test_eps_slider_changes_the_variance_of_z_hat_and_the_picture(norm):
    before = norm.image.value
    norm.eps_slider.value = 1.0
    assert norm.eps == pytest.approx(1.0)
    assert norm.var_z_hat == pytest.approx(0.5, rel=1e-9)
    assert norm.predicted_var_z_hat == pytest.approx(norm.var_z_hat, rel=1e-9)
    assert norm.image.value != before
    assert "0.5" in norm.readout.value


def test_a_tiny_spread_collapses_z_hat_towards_zero(norm):
    before = norm.image.value
    norm.spread_slider.value = 1e-5  # variance 1e-10, far below eps 1e-5
    assert norm.var == pytest.approx(1e-10, rel=1e-6)
    assert norm.var_z_hat == pytest.approx(1e-10 / (1e-10 + 1e-5), rel=1e-6)
    assert np.abs(norm.z_hat).max() < 0.02
    assert norm.image.value != before
    # z is still offset + spread * base: its tick texts follow the scale
    assert norm.z_scale == pytest.approx(1e-5)
    assert norm.z_tick_texts[2].get_text() == "3"
    assert norm.z_tick_texts[4].get_text() == "3.00004"


def test_var_z_hat_follows_var_over_var_plus_eps_everywhere(norm):
    for eps in (1e-8, 1e-5, 1e-2):
        norm.eps_slider.value = eps
        for spread in (1e-4, 1e-2, 1.0, 10.0):
            norm.spread_slider.value = spread
            var = spread**2
            assert norm.var == pytest.approx(var, rel=1e-6)
            assert norm.var_z_hat == pytest.approx(var / (var + norm.eps), rel=1e-6)


def test_normalization_explorer_rejects_bad_arguments():
    with pytest.raises(ValueError):
        widgets.NormalizationExplorer(n=1)
    with pytest.raises(ValueError):
        widgets.NormalizationExplorer(n=2.5)


# ---------------------------------------------------------------- notebook 03

@pytest.fixture
def scale_shift():
    return widgets.ScaleShiftExplorer()


def test_scale_shift_explorer_starts_with_the_seed_output(scale_shift):
    seed = bnlab.seed_batch()
    y, _ = bnlab.batchnorm_forward(seed.z.astype(np.float64), seed.gamma, seed.beta, eps=1e-5)
    np.testing.assert_allclose(scale_shift.y, y, rtol=1e-6)
    np.testing.assert_allclose(scale_shift.gamma, seed.gamma)
    np.testing.assert_allclose(scale_shift.beta, seed.beta)
    np.testing.assert_allclose(scale_shift.y_mean, seed.beta, atol=1e-9)
    assert scale_shift.feature == 0


def test_gamma_and_beta_sliders_move_the_chosen_feature_only(scale_shift):
    before = scale_shift.image.value
    y_before = scale_shift.y.copy()
    scale_shift.feature_picker.value = 1
    assert scale_shift.gamma_slider.value == 0.5 and scale_shift.beta_slider.value == 1.0
    scale_shift.gamma_slider.value = 2.0
    scale_shift.beta_slider.value = -3.0
    np.testing.assert_allclose(scale_shift.y[:, 1], 2.0 * scale_shift.z_hat[:, 1] - 3.0)
    np.testing.assert_allclose(scale_shift.y[:, [0, 2]], y_before[:, [0, 2]])
    assert scale_shift.y_mean[1] == pytest.approx(-3.0)
    assert np.sqrt(scale_shift.y_var[1]) == pytest.approx(2.0 * np.sqrt(1.25 / (1.25 + 1e-5)))
    assert scale_shift.image.value != before
    # switching feature keeps feature 1's new values and loads feature 2's
    scale_shift.feature_picker.value = 2
    assert scale_shift.gamma_slider.value == 2.0 and scale_shift.beta_slider.value == -1.0
    np.testing.assert_allclose(scale_shift.gamma, [1.0, 2.0, 2.0])
    np.testing.assert_allclose(scale_shift.beta, [0.0, -3.0, -1.0])
    scale_shift.feature_picker.value = 1
    assert scale_shift.gamma_slider.value == 2.0 and scale_shift.beta_slider.value == -3.0


def test_undo_gives_back_z(scale_shift):
    for j in range(3):
        scale_shift.feature_picker.value = j
        assert scale_shift.undo()
        np.testing.assert_allclose(scale_shift.y[:, j], scale_shift.z[:, j], atol=1e-12)
    np.testing.assert_allclose(scale_shift.gamma, np.sqrt(SEED_VAR + 1e-5))
    np.testing.assert_allclose(scale_shift.beta, SEED_MEAN)


def test_undo_button_click(scale_shift):
    scale_shift.undo_button.click()
    np.testing.assert_allclose(scale_shift.y[:, 0], scale_shift.z[:, 0], atol=1e-12)


def test_gamma_zero_piles_every_sample_on_beta(scale_shift):
    scale_shift.gamma_slider.value = 0.0
    scale_shift.beta_slider.value = 2.5
    np.testing.assert_allclose(scale_shift.y[:, 0], 2.5)
    assert scale_shift.y_var[0] == pytest.approx(0.0, abs=1e-12)


def test_scale_shift_explorer_with_a_larger_batch():
    z = bnlab.random_batch(np.random.default_rng(0), (300, 2), loc=[1.0, -2.0], scale=[0.5, 2.0])
    explorer = widgets.ScaleShiftExplorer(z)
    np.testing.assert_allclose(explorer.gamma, [1.0, 1.0])
    np.testing.assert_allclose(explorer.beta, [0.0, 0.0])
    np.testing.assert_allclose(explorer.y, explorer.z_hat)
    with pytest.raises(ValueError):
        widgets.ScaleShiftExplorer(z, gamma=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        widgets.ScaleShiftExplorer(np.ones((1, 3)))


# ---------------------------------------------------------------- the figures in words

def test_batch_stats_describes_its_figure_with_its_numbers():
    e = widgets.BatchStatsExplorer()
    text = e.describe()
    assert "means 1, 0.5 and 3.5" in text and "0.5, 1.25 and 1.25" in text and "0.667, 1.67 and 1.67" in text
    e.batch_text.value = "1, 2\n3, 6"
    assert "2 samples of each of 2 features" in e.describe() and "means 2 and 4" in e.describe()
    assert "variance (ddof=0) as a bar: 1 and 4" in e.describe()
    assert e.image.tooltip == e.describe()


def test_normalization_describes_its_figure_with_its_numbers():
    e = widgets.NormalizationExplorer()
    assert "eps = 1.0e-05" in e.describe() and "variance 1)" in e.describe()
    e.spread_slider.value = 10 ** -2.5
    text = e.describe()
    assert f"variance {e.var:.3g}" in text and f"{e.var_z_hat:.5f}" in text and e.var_z_hat < 0.6
    assert e.image.tooltip == text


def test_scale_shift_describes_its_figure_with_its_numbers():
    e = widgets.ScaleShiftExplorer()
    e.feature_picker.value = 1
    e.gamma_slider.value = 2.0
    e.beta_slider.value = -1.5
    text = e.describe()
    assert "feature 1 highlighted: γ = 2, β = -1.5" in text
    assert f"mean {e.y_mean[1]:.3g}" in text and f"standard deviation {np.sqrt(e.y_var[1]):.3g}" in text
