"""Explorer of notebook 07 (bnlab.widgets.training), driven from Python."""

from __future__ import annotations

import ipywidgets
import numpy as np
import pytest

from bnlab import widgets


def _image(explorer):
    return bytes(explorer.image.value)


# ---------------------------------------------------------------- notebook 07: training explorer

@pytest.fixture
def training(digits):
    return widgets.TrainingExplorer(steps=100, data=digits)


def test_training_default_run(training):
    e = training
    assert set(e.histories) == {"with BN", "without BN"}
    assert e.settings["steps"] == 100 and e.settings["learning_rate"] == 0.5
    assert e.settings["batch_size"] == 60 and e.settings["activation"] == "sigmoid"
    assert e.progress.value == e.progress.max == 200
    assert e.runs == 1 and not e.pending
    assert e.final_accuracy["with BN"] > e.final_accuracy["without BN"] + 0.3
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "with BN" in e.summary.value and "<table" in e.summary.value
    assert isinstance(e.widget, ipywidgets.VBox)
    assert e.error is None


def test_training_sliders_change_settings_only_run_trains(training):
    e = training
    histories, before = e.histories, _image(e)
    e.learning_rate_slider.value = 2.0
    e.steps_slider.value = 200
    assert e.pending and "press Run" in e.message.value
    assert e.histories is histories and _image(e) == before  # nothing trained yet
    assert e.read_settings()["learning_rate"] == pytest.approx(2.0)
    assert e.update()
    assert not e.pending and e.message.value == "" and e.runs == 2
    assert e.settings["learning_rate"] == pytest.approx(2.0) and e.settings["steps"] == 200
    assert e.histories["with BN"].config["learning_rate"] == pytest.approx(2.0)
    assert e.histories["with BN"].steps[-1] == 200
    assert _image(e) != before


def test_training_pending_only_for_real_changes(training):
    e = training
    e.learning_rate_slider.value = 0.5 * (1 + 1e-9)  # what a browser snapping to the grid may send
    assert not e.pending and e.message.value == ""
    e.batch_size_slider.value = 30
    assert e.pending and "press Run" in e.message.value
    e.batch_size_slider.value = 60  # back to the settings of the last run
    assert not e.pending and e.message.value == ""
    e.noisy_bn.value = True
    assert e.pending
    e.noisy_bn.value = False
    assert not e.pending


def test_training_default_values_are_on_the_slider_grids(training):
    for slider in (training.learning_rate_slider, training.init_scale_slider):
        exponent = np.log(slider.value) / np.log(slider.base)
        position = (exponent - slider.min) / slider.step
        assert position == pytest.approx(round(position), abs=1e-9)


def test_training_run_button_trains(training):
    e = training
    e.seed_slider.value = 1
    e.run_button.click()
    assert e.runs == 2 and e.settings["seed"] == 1
    assert e.histories["without BN"].config["seed"] == 1


def test_training_noisy_bn_and_bn_modes(training):
    e = training
    e.noisy_bn.value = True
    assert e.update()
    assert set(e.histories) == {"without BN", "with BN", "noisy BN"}
    assert e.histories["noisy BN"].config["noisy_bn"] is True
    assert e.progress.max == 300
    e.noisy_bn.value = False
    e.bn_mode.value = "on"
    assert e.update() and set(e.histories) == {"with BN"}
    assert "not run" in e.drawn["percentiles"]["without BN"]["title"].get_text()
    e.bn_mode.value = "off"
    e.activation.value = "relu"
    assert e.update() and set(e.histories) == {"without BN"}
    assert e.histories["without BN"].config["activation"] == "relu"
    assert "relu" in e.drawn["percentiles"]["without BN"]["title"].get_text()


def test_training_bad_settings_show_message_keep_last_result(training):
    e = training
    histories, before, runs = e.histories, _image(e), e.runs
    e.batch_size_slider.value = 1
    assert not e.update()
    assert "batch_size=1" in e.error and "batch_size=1" in e.message.value
    assert e.histories is histories and _image(e) == before and e.runs == runs
    assert e.progress.bar_style == "danger"
    # without BN a batch of one is fine
    e.bn_mode.value = "off"
    assert e.update() and e.error is None and e.settings["batch_size"] == 1
    # noisy BN needs BN
    histories = e.histories
    e.noisy_bn.value = True
    assert not e.update()
    assert "needs BN" in e.error and e.histories is histories


def test_training_diverged_run_is_a_note_not_an_error(digits):
    e = widgets.TrainingExplorer(steps=100, run=False, data=digits)
    assert e.histories == {} and "No run yet" in e.summary.value
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    e.activation.value = "relu"
    e.learning_rate_slider.value = 10.0
    e.init_scale_slider.value = 1.0
    e.bn_mode.value = "off"
    assert e.update() and e.error is None
    assert e.histories["without BN"].diverged
    assert "diverged" in e.summary.value
    assert e.drawn["accuracy"]["diverged"]["without BN"].get_visible()


def test_training_is_deterministic(digits):
    a = widgets.TrainingExplorer(steps=100, data=digits)
    b = widgets.TrainingExplorer(steps=100, data=digits)
    assert a.final_accuracy == b.final_accuracy
    np.testing.assert_array_equal(a.histories["with BN"].percentiles, b.histories["with BN"].percentiles)


def test_training_describes_its_figure_with_its_numbers(training):
    text = training.describe()
    assert "over 100 steps" in text
    for label, accuracy in training.final_accuracy.items():
        assert f"{label}: {100 * accuracy:.1f} %" in text
    assert training.image.tooltip == text
