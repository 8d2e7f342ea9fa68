"""Figures and explorer of notebook 10 (bnlab.plots.inference, bnlab.widgets.inference), driven from Python."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from _support import image_bytes, warnings_as_errors

import bnlab
from bnlab import plots, widgets
from bnlab.train import train_bn_mlp

# ---------------------------------------------------------------- figures


def _titled(ax):
    return bool(ax.get_title() and ax.get_xlabel() and ax.get_ylabel())


def test_plot_precise_bn_draws_each_seed_in_percent():
    results = {"setting A": {"ema_accuracy": np.array([0.8, 0.9]), "precise_accuracy": np.array([0.95, 0.92])},
               "setting B": {"ema_accuracy": np.array([0.97]), "precise_accuracy": np.array([0.96])}}
    drawn = plots.plot_precise_bn(results)
    ax = drawn["ax"]
    assert _titled(ax)
    np.testing.assert_allclose(drawn["ema"]["setting A"].get_offsets()[:, 1], [80.0, 90.0])
    np.testing.assert_allclose(drawn["precise"]["setting A"].get_offsets()[:, 1], [95.0, 92.0])
    assert len(drawn["links"]["setting A"]) == 2 and len(drawn["links"]["setting B"]) == 1
    assert [t.get_text() for t in ax.get_xticklabels()] == ["setting A", "setting B"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"running average (EMA)",
                                                                   "precise BN (re-estimated)"}
    assert plots.render_png(drawn["fig"])[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="empty"):
        plots.plot_precise_bn({})
    with pytest.raises(ValueError, match="same shape"):
        plots.plot_precise_bn({"x": {"ema_accuracy": [0.5, 0.6], "precise_accuracy": [0.7]}})


def test_plot_adabn_bars_are_means_and_dots_are_seeds():
    accuracy = {"clean": {"trained": np.array([0.9, 1.0]), "AdaBN": np.array([0.8, 1.0])},
                "inverted": {"trained": np.array([0.1, 0.0]), "AdaBN": np.array([0.0, 0.0])}}
    drawn = plots.plot_adabn(accuracy)
    assert _titled(drawn["ax"])
    np.testing.assert_allclose([bar.get_height() for bar in drawn["bars"]["trained"]], [95.0, 5.0])
    np.testing.assert_allclose([bar.get_height() for bar in drawn["bars"]["AdaBN"]], [90.0, 0.0])
    np.testing.assert_allclose(np.sort(drawn["seeds"]["AdaBN"].get_offsets()[:, 1]), [0, 0, 80, 100])
    with pytest.raises(ValueError, match="empty"):
        plots.plot_adabn({})


def test_plot_digit_rows_and_update(digits):
    x = digits.x_test[:5]
    drawn = plots.plot_digit_rows({"clean": x, "inverted": 1 - x}, title="digits")
    assert drawn["axes"].shape == (2, 5)
    assert [drawn["axes"][r, 0].get_ylabel() for r in range(2)] == ["clean", "inverted"]
    np.testing.assert_allclose(drawn["images"]["inverted"][2].get_array(), 1 - x[2].reshape(8, 8))
    plots.update_digit_row(drawn["images"]["clean"], x[::-1])
    np.testing.assert_allclose(drawn["images"]["clean"][0].get_array(), x[4].reshape(8, 8))
    with pytest.raises(ValueError, match="same number of images"):
        plots.plot_digit_rows({"a": x, "b": x[:3]})
    with pytest.raises(ValueError, match="shape"):
        plots.plot_digit_rows({"a": np.zeros((2, 10))})
    with pytest.raises(ValueError, match="5 images are drawn, got 2"):
        plots.update_digit_row(drawn["images"]["clean"], x[:2])


def test_digit_mosaic_puts_digits_side_by_side():
    x = np.arange(2 * 64, dtype=np.float64).reshape(2, 64)
    mosaic = plots.digit_mosaic(x, gap=2)
    assert mosaic.shape == (8, 18)
    np.testing.assert_array_equal(mosaic[:, :8], x[0].reshape(8, 8))
    np.testing.assert_array_equal(mosaic[:, 10:], x[1].reshape(8, 8))
    assert np.isnan(mosaic[:, 8:10]).all()


# ---------------------------------------------------------------- the explorer


@pytest.fixture(scope="module")
def explorer():
    with warnings_as_errors():  # nothing a learner sees may be a warning
        return widgets.ShiftExplorer()


@pytest.fixture
def shift(explorer):
    """The module's explorer, put back to its defaults after each test."""
    yield explorer
    explorer.shift_choice.value = "contrast_brightness"
    explorer.contrast_slider.value, explorer.brightness_slider.value = 0.5, 0.3
    explorer.noise_slider.value, explorer.invert_slider.value = 0.3, 1.0
    explorer.adapt.value = False
    explorer.layer_choice.value = 1


def test_defaults_are_the_adabn_experiment_of_seed_0(shift, digits):
    e = shift
    assert (e.kind, e.strength, e.adapted, e.layer) == ("contrast_brightness", (0.5, 0.3), False, 1)
    # the network of adabn_experiment's seed 0 (its docstring: clean 0.958, contrast 0.485 -> 0.953)
    assert e.accuracy_clean == pytest.approx(0.958, abs=5e-4)
    assert e.accuracy_trained == pytest.approx(0.485, abs=5e-4)
    assert e.accuracy_adabn == pytest.approx(0.953, abs=5e-4)
    assert e.accuracy == e.accuracy_trained
    np.testing.assert_array_equal(e.x_shifted, bnlab.shift_digits(digits.x_test, "contrast_brightness", (0.5, 0.3)))
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "48.5%" in e.summary.value and "0.5·x + 0.3" in e.summary.value
    assert [t.get_text() for t in e.drawn["bar_labels"]] == ["95.8%", "48.5% ◀", "95.3%"]
    assert e.contrast_slider.description and e.adapt.description and e.layer_choice.description


def test_the_drawn_statistics_are_the_layers_and_adabns(shift, digits):
    e = shift
    model = copy.deepcopy(train_bn_mlp(seed=0, data=digits).model)
    running_mean, running_var = model[1].running_mean.copy(), model[1].running_var.copy()
    np.testing.assert_array_equal(e.running_mean, running_mean)
    bnlab.recalibrate_batchnorm(model, [e.x_shifted])
    np.testing.assert_allclose(e.shifted_mean, model[1].running_mean, rtol=1e-12)
    np.testing.assert_allclose(e.shifted_var, model[1].running_var, rtol=1e-12)
    points = e.drawn["points"]["std"].get_offsets()
    np.testing.assert_allclose(points[:, 0], np.sqrt(running_var))
    np.testing.assert_allclose(points[:, 1], np.sqrt(e.shifted_var))


def test_contrast_scales_the_first_layers_statistics(shift):
    """Dense without bias, then a·x + b: every feature's std is multiplied by a, its mean moves affinely."""
    e = shift
    e.contrast_slider.value, e.brightness_slider.value = 1.0, 0.0
    clean_mean, clean_var = e.shifted_mean.copy(), e.shifted_var.copy()
    e.contrast_slider.value = 0.5
    np.testing.assert_allclose(e.shifted_var, 0.25 * clean_var, rtol=1e-9)
    np.testing.assert_allclose(e.shifted_mean, 0.5 * clean_mean, rtol=1e-9, atol=1e-12)
    e.adapt.value = True
    assert e.accuracy == e.accuracy_adabn


def test_adabn_toggle_repairs_contrast(shift):
    e = shift
    before = image_bytes(e)
    e.adapt.value = True
    assert e.adapted and e.accuracy == e.accuracy_adabn
    assert e.accuracy_adabn > e.accuracy_clean - 0.02 and e.accuracy_trained < e.accuracy_clean - 0.2
    assert image_bytes(e) != before
    assert [t.get_text() for t in e.drawn["bar_labels"]] == ["95.8%", "48.5%", "95.3% ◀"]
    assert "re-estimated on the shifted test inputs" in e.summary.value


def test_inversion_fails_either_way_and_noise_gains_little(shift):
    e = shift
    e.shift_choice.value = "invert"
    assert e.contrast_slider.disabled and e.brightness_slider.disabled and e.noise_slider.disabled
    assert not e.invert_slider.disabled
    assert e.accuracy_trained < 0.1 and e.accuracy_adabn < 0.1
    assert "1 − x" in e.summary.value
    e.shift_choice.value = "noise"
    assert not e.noise_slider.disabled and e.invert_slider.disabled
    assert 0.6 < e.accuracy_trained < 0.8 and 0 <= e.accuracy_adabn - e.accuracy_trained < 0.1
    e.noise_slider.value = 0.0
    assert e.accuracy_trained == e.accuracy_clean
    e.shift_choice.value = "invert"
    e.invert_slider.value = 0.0  # no inversion at all
    assert e.accuracy_trained == e.accuracy_clean


def test_the_digits_show_which_are_classified_wrongly(shift):
    e = shift
    frames = e.drawn["frames"]
    wrong = [f.get_linewidth() > 2 for f in frames]
    labels = e._data.y_test[:len(frames)]
    assert wrong == list(e.predictions != labels)
    assert [t.get_text() for t in e.drawn["digit_ax"].get_xticklabels()] == [str(y) for y in labels]
    mosaic = e.drawn["mosaic"].get_array()
    np.testing.assert_allclose(mosaic[:, :8], e.x_shifted[0].reshape(8, 8))


def test_layer_choice_retitles_and_redraws_everything(shift):
    e = shift
    full = e.renderer.full_redraws
    e.layer_choice.value = 3
    assert e.layer == 3
    assert e.drawn["mean_ax"].get_title() == "BN layer 3: feature means"
    assert e.drawn["std_ax"].get_title() == "BN layer 3: feature stds"
    assert e.renderer.full_redraws == full + 1
    np.testing.assert_array_equal(e.running_var, e._model[7].running_var)
    e.contrast_slider.value = 0.55  # a move that keeps the layer needs no full redraw
    assert e.renderer.full_redraws == full + 1


def test_moves_are_evaluations_only_and_cached(shift):
    e = shift
    model_before = copy.deepcopy(e._model)
    e.contrast_slider.value = 0.8
    first = e._cache[("contrast_brightness", (0.8, 0.3))]
    e.contrast_slider.value = 0.5
    e.contrast_slider.value = 0.8
    assert e._cache[("contrast_brightness", (0.8, 0.3))] is first  # not recomputed
    for layer, before in zip(e._model, model_before):  # the trained network is never changed
        for name in ("W", "running_mean", "running_var", "gamma"):
            if hasattr(before, name):
                np.testing.assert_array_equal(getattr(layer, name), getattr(before, name))


def test_a_failed_update_keeps_the_state(shift, monkeypatch):
    e = shift
    state, image, renders = e.accuracy_trained, image_bytes(e), e.renders
    monkeypatch.setattr(e, "read_shift", lambda: ("contrast_brightness", (0.0, 0.3)))
    with warnings_as_errors():  # nothing a learner sees may be a warning
        e.brightness_slider.value = 0.4
    assert e.error is not None and "contrast factor a must be positive" in e.error
    assert "contrast factor" in e.message.value
    assert e.accuracy_trained == state and image_bytes(e) == image and e.renders == renders


def test_bad_construction_arguments():
    with pytest.raises(ValueError, match="digits_shown"):
        widgets.ShiftExplorer(digits_shown=0)


def test_describe_shift():
    describe = widgets.ShiftExplorer.describe_shift
    assert describe("contrast_brightness", (0.5, -0.25)) == "0.5·x − 0.25"
    assert describe("noise", 0.3) == "x + noise (std 0.3)"
    assert describe("invert", 0.5) == "inverted, s = 0.5"


def test_inversion_below_one_half_is_a_contrast_change(shift):
    """(1 - s) x + s (1 - x) = (1 - 2s) x + s: AdaBN repairs it while a = 1 - 2s > 0."""
    e = shift
    e.adapt.value = True
    e.contrast_slider.value, e.brightness_slider.value = 1.0, 0.0
    unshifted = e.accuracy_adabn
    e.shift_choice.value = "invert"
    e.invert_slider.value = 0.45
    assert e.accuracy == e.accuracy_adabn == unshifted
    assert e.accuracy_trained < 0.2
    e.invert_slider.value = 0.55
    assert e.accuracy_adabn < 0.1


def test_statistics_panels_take_their_limits_from_a_ladder(shift):
    """Small moves keep the limits (only the points are redrawn); the diagonal stays the diagonal."""
    from bnlab.plots.inference import _ladder

    assert [_ladder(v) for v in (0.9, 1.0, 1.2, 2.0, 3.0, 5.0, 7.0, 0.013)] == [1.0, 1.0, 1.5, 2.5, 4.0, 6.0,
                                                                                10.0, 0.015]
    e = shift
    mean_ax, std_ax = e.drawn["mean_ax"], e.drawn["std_ax"]
    limits = (mean_ax.get_xlim(), std_ax.get_xlim())
    e.contrast_slider.value = 0.55
    assert (mean_ax.get_xlim(), std_ax.get_xlim()) == limits
    for ax in (mean_ax, std_ax):
        assert ax.get_xlim() == ax.get_ylim()
        points = e.drawn["points"]["mean" if ax is mean_ax else "std"].get_offsets()
        assert ax.get_xlim()[0] <= points.min() and points.max() <= ax.get_xlim()[1]
    assert mean_ax.get_xlim()[0] == -mean_ax.get_xlim()[1] and std_ax.get_xlim()[0] == 0


def test_shift_explorer_describes_its_figure_with_its_numbers():
    e = widgets.ShiftExplorer()
    e.adapt.value = True
    text = e.describe()
    assert "0.5·x + 0.3" in text and "AdaBN" in text
    assert f"re-estimated {100 * e.accuracy_adabn:.1f} %" in text and f"clean {100 * e.accuracy_clean:.1f} %" in text
    assert e.image.tooltip == text
