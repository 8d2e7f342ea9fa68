"""Figures and explorers of notebook 11 (bnlab.plots.frameworks, bnlab.widgets.frameworks), driven from Python."""

from __future__ import annotations

import ipywidgets
import numpy as np
import pytest
from _support import image_bytes

from bnlab import pitfalls, plots, widgets
from bnlab.layers import BatchNorm

# ---------------------------------------------------------------- figures


def _texts(ax):
    return ax.get_title(), ax.get_xlabel(), ax.get_ylabel()


@pytest.mark.parametrize("name", list(pitfalls.PITFALLS))
@pytest.mark.parametrize("fixed", [None, False, True])
def test_plot_pitfall_every_view_is_titled_and_labelled(name, fixed):
    result = pitfalls.pitfall_experiment(name)
    drawn = plots.plot_pitfall(name, result, fixed)
    panels = plots.pitfall_panels(name, result, fixed)
    assert len(drawn["axes"]) == len(panels) == (2 if name in ("eval_in_train_mode", "per_device") else 1)
    colors = set()
    for ax, panel, curves in zip(drawn["axes"], panels, drawn["panels"]):
        assert all(_texts(ax))
        assert set(curves["lines"]) == set(panel["series"])
        assert ax.get_legend() is not None
        colors |= {line.get_color() for line in curves["lines"].values()}
    # the bug in vermillion unless only the fix is shown; the fix in blue unless only the bug is
    assert (plots.BUG_COLOR in colors) == (fixed is not True)
    if name != "batch_of_one":  # its trained batches are blue in every view
        assert (plots.FIX_COLOR in colors) == (fixed is not False)
    if fixed is None:  # one render per pitfall is enough to know it renders
        assert plots.render_png(drawn["fig"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_pitfall_labels_do_not_depend_on_the_numbers():
    for name in pitfalls.PITFALLS:
        for fixed in (None, False, True):
            a = plots.pitfall_panels(name, pitfalls.pitfall_experiment(name, seed=0), fixed)
            b = plots.pitfall_panels(name, pitfalls.pitfall_experiment(name, batch_size=5, seed=1), fixed)
            assert [list(p["series"]) for p in a] == [list(p["series"]) for p in b]
            assert [p["title"] for p in a] == [p["title"] for p in b]


def test_update_pitfall_moves_the_lines():
    drawn = plots.plot_pitfall("eval_in_train_mode", pitfalls.eval_mode_experiment(), fixed=False)
    other = pitfalls.eval_mode_experiment(batch_size=32, seed=2)
    plots.update_pitfall(drawn, other)
    line = drawn["panels"][0]["lines"]["training mode (the bug)"]
    np.testing.assert_array_equal(line.get_ydata(), other["train_outputs"])
    assert drawn["axes"][0].get_title() == "sample 0's output, batch after batch"
    # limits follow the data when it leaves them
    low, high = drawn["axes"][0].get_ylim()
    assert low <= other["train_outputs"].min() and other["train_outputs"].max() <= high


def test_update_pitfall_batch_of_one_keeps_zero_and_bar_widths():
    drawn = plots.plot_pitfall("batch_of_one", pitfalls.batch_of_one_experiment(), fixed=False)
    wide = drawn["panels"][0]["lines"]["trained"].get_linewidth()
    plots.update_pitfall(drawn, pitfalls.batch_of_one_experiment(batch_size=2))
    assert drawn["axes"][0].get_ylim()[0] == 0
    assert drawn["axes"][0].get_ylim()[1] == pytest.approx(2.3)
    assert drawn["panels"][0]["lines"]["trained"].get_linewidth() < wide


def test_plot_pitfall_bad_arguments():
    result = pitfalls.momentum_mixup_experiment()
    with pytest.raises(ValueError, match="name must be one of"):
        plots.plot_pitfall("nope", result)
    with pytest.raises(TypeError, match="fixed must be"):
        plots.plot_pitfall("momentum_mixup", result, fixed="yes")
    _fig, axes = plots.new_figure(2)
    with pytest.raises(ValueError, match="1 panel"):
        plots.plot_pitfall("momentum_mixup", result, axes=axes)


def test_plot_curves_and_update():
    drawn = plots.plot_curves({"a": ([0, 1, 2], [1.0, 2.0, 3.0]), "b": ([0, 2], [0.0, 0.0])}, title="t",
                              xlabel="x", ylabel="y", styles={"b": {"linestyle": "--"}})
    assert _texts(drawn["ax"]) == ("t", "x", "y") and drawn["lines"]["b"].get_linestyle() == "--"
    assert plots.update_curves(drawn, {"a": ([0, 1, 2], [10.0, 20.0, 30.0]), "b": ([0, 2], [0.0, 0.0])})
    assert drawn["ax"].get_ylim()[1] >= 30.0
    assert not plots.update_curves(drawn, {"a": ([0, 1, 2], [10.0, 20.0, 29.0]), "b": ([0, 2], [0.0, 0.0])})


def test_plot_bn_position_from_a_result():
    result = {"before": {"test_accuracy": np.array([0.97, 0.96, 0.98]),
                         "final_train_loss": np.array([0.04, 0.05, 0.03])},
              "after": {"test_accuracy": np.array([0.96, 0.97, 0.95]),
                        "final_train_loss": np.array([0.03, 0.04, 0.05])},
              "config": {"seeds": (0, 1, 2)}}
    drawn = plots.plot_bn_position(result)
    np.testing.assert_allclose(drawn["points"]["test_accuracy", "after"].get_ydata(), [96.0, 97.0, 95.0])
    np.testing.assert_allclose(drawn["means"]["final_train_loss", "before"].get_ydata(), [0.04, 0.04])
    for ax in drawn["axes"]:
        assert all(_texts(ax))
    assert [t.get_text() for t in drawn["axes"][0].get_xticklabels()] == ["Dense → BN → ReLU", "Dense → ReLU → BN"]


def test_plot_translation_check():
    curves = {"x": np.linspace(0, 1, 11), "y": np.linspace(0, 1, 11), "z": np.zeros(11)}
    drawn = plots.plot_translation_check(curves, curves, true_mean=1.0, true_var=2.0)
    assert set(drawn["mean"]["lines"]) == {"x", "y", "z", "true value"}
    assert all(all(_texts(ax)) for ax in drawn["axes"])
    plots.update_translation_check(drawn, {"x": np.ones(11), "y": np.ones(11), "z": None},
                                   {"x": np.ones(11), "y": np.ones(11), "z": None})
    assert not drawn["mean"]["lines"]["z"].get_visible() and drawn["mean"]["lines"]["x"].get_visible()


# ---------------------------------------------------------------- the translator


@pytest.fixture
def translator():
    return widgets.TranslatorExplorer()


def test_translator_defaults(translator):
    e = translator
    t = e.translation
    assert (t.source, t.pytorch["momentum"], t.keras["momentum"], t.pytorch["layer"]) == ("pytorch", 0.1, 0.9,
                                                                                        "BatchNorm2d")
    assert e.values_per_channel == 4 * 4 and e.batches.shape == (60, 4, 3, 2, 2)
    assert "momentum=0.9" in e.code_html.value and "BatchNorm2d" in e.code_html.value
    assert "<pre" in e.code_html.value and "Keras 3" in e.code_html.value
    first, second, copied = (e.mean_curves[label] for label in e.LABELS)
    np.testing.assert_allclose(first, second, atol=1e-12)
    assert e.mean_gap < 1e-12
    assert not np.allclose(first, copied)
    n = e.values_per_channel
    assert e.var_ratio == pytest.approx(n / (n - 1), rel=0.01)
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n" and e.error is None
    assert isinstance(e.widget, ipywidgets.VBox)


def test_translator_fast_path_is_batchnorm_with_the_translated_settings(translator):
    """The curves come from track_running_stats; the layers the printed code builds give the same numbers."""
    e = translator
    e.keras_axis.value = 1  # only used with Keras' settings
    for framework, axis in (("pytorch", -1), ("keras", -1), ("keras", 1)):
        e.framework.value = framework
        if framework == "keras":
            e.keras_axis.value = axis
        t = e.translation
        layers = {name: BatchNorm(3, **t.bnlab[name]) for name in ("pytorch", "keras")}
        keras_feature = next(a for a in range(4) if a not in np.atleast_1d(t.bnlab["keras"]["axis"]))
        for batch in e.batches:
            layers["pytorch"].forward(batch, training=True)
            layers["keras"].forward(np.moveaxis(batch, 1, keras_feature), training=True)
        for label, name in zip(e.LABELS[:2], ("pytorch", "keras")):
            np.testing.assert_allclose(e.mean_curves[label][-1], layers[name].running_mean[0], atol=1e-12)
            np.testing.assert_allclose(e.var_curves[label][-1], layers[name].running_var[0], atol=1e-12)


def test_translator_momentum_slider_changes_code_and_curves(translator):
    e = translator
    image, html = image_bytes(e), e.code_html.value
    e.momentum_slider.value = 0.11
    assert e.translation.keras["momentum"] == 0.89
    assert image_bytes(e) != image and e.code_html.value != html
    e.momentum_slider.value = 0.5  # the one number that means the same in both
    np.testing.assert_allclose(e.mean_curves[e.LABELS[2]], e.mean_curves[e.LABELS[0]], atol=1e-12)
    assert "means the same in both" in e.code_html.value


def test_translator_framework_switch_and_axis(translator):
    e = translator
    assert e.keras_axis.disabled
    e.framework.value = "keras"
    assert e.momentum_slider.value == 0.99 and not e.keras_axis.disabled
    assert e.translation.source == "keras" and e.translation.pytorch["momentum"] == 0.01
    assert e.translation.pytorch["eps"] == 1e-3  # Keras' default eps, written out for PyTorch
    e.keras_axis.value = 1
    assert e.translation.keras["axis"] == 1 and "channels first" in " ".join(e.translation.notes)
    e.framework.value = "pytorch"
    assert e.momentum_slider.value == 0.1 and e.keras_axis.disabled and e.translation.keras["axis"] == -1


def test_translator_eps_layout_and_batch_size(translator):
    e = translator
    image = image_bytes(e)
    e.eps_choice.value = 1e-2
    assert "eps=0.01" in e.code_html.value and "epsilon=0.01" in e.code_html.value
    assert image_bytes(e) == image  # eps does not change the running statistics
    e.layout_choice.value = 2
    assert "BatchNorm1d" in e.code_html.value and e.values_per_channel == 4
    e.batch_size_slider.value = 32
    assert e.values_per_channel == 32 and e.var_ratio == pytest.approx(32 / 31, rel=0.01)


def test_translator_cumulative(translator):
    e = translator
    e.cumulative.value = True
    assert e.error is None and e.translation.keras is None and e.momentum_slider.disabled
    assert e.mean_curves[e.LABELS[2]] is None
    assert not e.drawn["mean"]["lines"][e.LABELS[2]].get_visible()
    assert "no equivalent" in e.code_html.value and "cumulative" in e.code_html.value
    np.testing.assert_allclose(e.mean_curves[e.LABELS[0]][-1], e.batches[:, :, 0].mean(), atol=1e-12)
    # Keras has no cumulative average: a message, the last state kept
    translation, image = e.translation, image_bytes(e)
    e.framework.value = "keras"
    assert e.error is not None and "Keras has no cumulative average" in e.message.value
    assert e.translation is translation and image_bytes(e) == image
    e.cumulative.value = False
    assert e.error is None and e.translation.source == "keras"


# ---------------------------------------------------------------- the pitfalls


@pytest.fixture
def pitfall():
    return widgets.PitfallExplorer()


def test_pitfall_defaults(pitfall):
    e = pitfall
    assert (e.name, e.fixed, e.batch_size_slider.value) == ("eval_in_train_mode", False, 8)
    assert e.result["config"]["batch_size"] == 8 and "Training mode" in e.summary
    assert e.summary in e.status.value.replace("&#x27;", "'") and e.error is None
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n" and isinstance(e.widget, ipywidgets.VBox)


def test_pitfall_every_bug_and_its_fix(pitfall):
    e = pitfall
    for name in pitfalls.PITFALLS:
        e.pitfall.value = name
        description, default = e.BATCH_SIZE[name]
        assert e.name == name and e.batch_size_slider.value == default
        assert e.batch_size_slider.description == description and e.error is None
        bug_image, bug_summary = image_bytes(e), e.summary
        e.fix.value = True
        assert e.fixed and image_bytes(e) != bug_image and e.summary != bug_summary
        e.fix.value = False
        assert image_bytes(e) == bug_image  # the figure of each view is kept


def test_pitfall_sliders_change_the_result(pitfall):
    e = pitfall
    image, result = image_bytes(e), e.result
    e.batch_size_slider.value = 9
    assert e.result["config"]["batch_size"] == 9 and image_bytes(e) != image
    image = image_bytes(e)
    e.seed_slider.value = 3
    assert e.result["config"]["seed"] == 3 and image_bytes(e) != image
    assert e.result is not result


def test_pitfall_batch_of_one_summary_follows_the_batch_size(pitfall):
    e = pitfall
    e.pitfall.value = "batch_of_one"
    assert "Expected more than 1 value per channel" in e.summary and "one value per feature" in e.summary
    e.batch_size_slider.value = 33
    assert "nothing is refused" in e.summary
    e.fix.value = True
    assert "drop_last=True" in e.summary


def test_pitfall_failed_update_keeps_state(pitfall, monkeypatch):
    e = pitfall
    image, result = image_bytes(e), e.result

    def broken(*_args, **_kwargs):
        raise ValueError("something was refused")

    monkeypatch.setattr(widgets.frameworks, "pitfall_experiment", broken)
    e.seed_slider.value = 5
    assert e.error == "something was refused" and "something was refused" in e.message.value
    assert e.result is result and image_bytes(e) == image


def test_pitfall_bad_constructor_argument():
    with pytest.raises(ValueError, match="pitfall must be one of"):
        widgets.PitfallExplorer(pitfall="nope")
    e = widgets.PitfallExplorer(pitfall="per_device")
    assert e.batch_size_slider.value == 4 and "devices" in e.batch_size_slider.description


# ---------------------------------------------------------------- the figures in words

def test_translator_describes_its_figure_with_its_numbers():
    e = widgets.TranslatorExplorer()
    e.batch_size_slider.value = 2
    text = e.describe()
    assert "batches of 2" in text and f"{e.var_ratio:.3f} times" in text and "copied unchanged" in text
    e.cumulative.value = True
    assert "copied unchanged (dotted)" not in e.describe()


def test_pitfall_describes_its_figure_with_its_numbers():
    e = widgets.PitfallExplorer()
    e.fix.value = True
    text = e.describe()
    assert "with the fix" in text and e.summary in text and e.image.tooltip == " ".join(text.split())
