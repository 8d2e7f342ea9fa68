"""Explorers and plot builders of notebooks 06 (backward pass) and 07 (training with BN).

The explorers are driven from Python, as a learner's clicks would: set a
control's value (its observer reacts), then assert the computed state and
whether the rendered image changed.
"""

from __future__ import annotations

import numpy as np
import pytest

import bnlab
from bnlab import plots, widgets
from bnlab.train import compare, run_experiment


def _image(explorer):
    return bytes(explorer.image.value)


# ---------------------------------------------------------------- notebook 06: batch coupling

@pytest.fixture
def coupling():
    return widgets.BatchCouplingExplorer()


def test_coupling_defaults_are_the_seed_batch(coupling):
    e = coupling
    z, gamma, beta = (x.astype(np.float64) for x in bnlab.seed_batch())
    np.testing.assert_allclose(e.z, z)
    np.testing.assert_allclose(e.gamma, gamma)
    np.testing.assert_allclose(e.beta, beta)
    y, _ = bnlab.batchnorm_forward(z, gamma, beta, eps=1e-5)
    np.testing.assert_allclose(e.y_ref, y)
    assert (e.sample, e.feature, e.nudge, e.shift) == (1, 0, 1.0, 0.0)
    expected = z.copy()
    expected[1, 0] += 1.0
    np.testing.assert_allclose(e.z_now, expected)
    assert e.dy.shape == (4, 3) and np.std(e.dy) > 0.3  # random, not all ones
    np.testing.assert_allclose(e.sum_dz, 0, atol=1e-12)
    assert np.abs(e.sum_dz_z_hat).max() < 1e-3 * np.abs(e.dz).max()
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert e.error is None and e.message.value == ""
    assert isinstance(e.widget, widgets.widgets.VBox)
    assert "<table" in e.table.value


def test_coupling_gradient_is_the_numerical_gradient_of_the_loss(coupling):
    e = coupling

    def output(z):
        return bnlab.batchnorm_forward(z, e.gamma, e.beta, eps=e.eps)[0]

    numeric = bnlab.numerical_gradient(output, e.z_now.copy(), e.dy)
    assert bnlab.rel_error(e.dz, numeric) < 1e-7
    assert e.loss == pytest.approx(float(np.sum(e.dy * output(e.z_now))))


def test_nudge_moves_every_sample(coupling):
    e = coupling
    e.nudge_slider.value = 0.0
    np.testing.assert_allclose(e.y, e.y_ref)
    assert e.max_other_change == 0.0
    before = _image(e)
    e.nudge_slider.value = -2.0
    assert e.nudge == -2.0
    changed = np.abs(e.z_now - e.z) > 0
    assert changed.sum() == 1 and changed[e.sample, e.feature]
    # every sample's output and gradient in that feature moved, the other features did not
    assert np.all(np.abs(e.y[:, 0] - e.y_ref[:, 0]) > 1e-3)
    assert np.all(np.abs(e.dz[:, 0] - e.dz_ref[:, 0]) > 1e-6)
    np.testing.assert_allclose(e.y[:, 1:], e.y_ref[:, 1:])
    assert e.max_other_change > 0.1
    np.testing.assert_allclose(e.sum_dz, 0, atol=1e-12)
    assert _image(e) != before
    assert "-2.00" in e.drawn["titles"][0].get_text()


def test_small_nudge_changes_the_loss_as_the_gradient_predicts(coupling):
    e = coupling
    e.nudge_slider.value = 0.05
    assert e.loss - e.loss_ref == pytest.approx(e.predicted_change, rel=0.1)
    assert e.predicted_change == pytest.approx(e.dz_ref[e.sample, e.feature] * 0.05)


def test_shift_of_every_sample_moves_nothing_after_bn(coupling):
    e = coupling
    e.nudge_slider.value = 0.0
    before = _image(e)
    e.shift_slider.value = 4.0
    np.testing.assert_allclose(e.z_now[:, 0], e.z[:, 0] + 4.0)
    np.testing.assert_allclose(e.y, e.y_ref, atol=1e-9)
    np.testing.assert_allclose(e.dz, e.dz_ref, atol=1e-9)
    assert e.loss == pytest.approx(e.loss_ref, abs=1e-10)
    assert _image(e) != before  # the input panel moved
    assert "+4.0" in e.drawn["titles"][0].get_text()


def test_sample_and_feature_sliders(coupling):
    e = coupling
    e.feature_slider.value = 2
    assert e.feature == 2
    assert "feature 2" in e.drawn["titles"][0].get_text()
    assert e.z_now[e.sample, 2] == e.z[e.sample, 2] + e.nudge
    before = _image(e)
    e.sample_slider.value = 3
    assert e.sample == 3
    assert e.z_now[3, 2] == e.z[3, 2] + e.nudge
    assert _image(e) != before


@pytest.mark.parametrize("text, words", [
    ("1, 2\n3, 4\n5, 6, 7", "different numbers of values"),
    ("1, 2\nthree, 4", "not a number"),
    ("1, 2, 3", "at least 2 samples"),
    ("1, nan\n2, 3", "finite"),
    ("\n".join(["1, 2"] * 17), "at most 16"),
])
def test_coupling_bad_batch_shows_message_keeps_state(coupling, text, words):
    e = coupling
    z, before = e.z.copy(), _image(e)
    e.batch_text.value = text
    assert e.error is not None and words in e.error
    assert words in e.message.value
    np.testing.assert_allclose(e.z, z)
    assert _image(e) == before
    e.batch_text.value = widgets.format_batch(z)  # a valid batch clears the message
    assert e.error is None and e.message.value == ""


def test_coupling_typed_batch_resizes_the_sliders(coupling):
    e = coupling
    e.sample_slider.value = 3
    e.feature_slider.value = 2
    e.batch_text.value = "0, 1\n2, 5\n4, 2"
    assert e.error is None
    assert e.z.shape == (3, 2) and e.dy.shape == (3, 2)
    assert e.sample_slider.max == 2 and e.feature_slider.max == 1
    assert (e.sample, e.feature) == (2, 1)  # clamped
    np.testing.assert_allclose(e.gamma, 1.0)
    np.testing.assert_allclose(e.beta, 0.0)
    np.testing.assert_allclose(e.sum_dz, 0, atol=1e-12)
    e.batch_text.value = "\n".join(f"{i}, {i * i}" for i in range(10))
    assert e.sample_slider.max == 9 and e.z.shape == (10, 2)
    assert len(e.drawn["dots"][0].get_offsets()) == 10


def test_coupling_custom_batch():
    rng = np.random.default_rng(3)
    e = widgets.BatchCouplingExplorer(z=rng.normal(size=(8, 4)), gamma=np.full(4, 2.0), beta=np.ones(4))
    assert e.z.shape == (8, 4) and e.feature_slider.max == 3 and e.sample_slider.max == 7
    np.testing.assert_allclose(e.gamma, 2.0)
    np.testing.assert_allclose(e.y_ref.mean(axis=0), 1.0, atol=1e-9)


# ---------------------------------------------------------------- notebook 06: plots

def test_plot_bn_graph_has_every_node_and_edge():
    drawn = plots.plot_bn_graph(highlight=("mu", "var"))
    assert set(drawn["boxes"]) == set(plots.BN_GRAPH_NODES)
    assert len(drawn["arrows"]) == len(plots.BN_GRAPH_EDGES)
    assert "computational graph" in drawn["ax"].get_title()
    assert "dmu" in drawn["backward"]["xmu"].get_text()
    assert drawn["boxes"]["mu"].get_linewidth() > drawn["boxes"]["sq"].get_linewidth()
    assert plots.render_png(drawn["fig"])[:4] == b"\x89PNG"
    forward_only = plots.plot_bn_graph(backward=False)
    assert forward_only["backward"] == {}


def test_plot_batch_coupling_titles_labels_and_update():
    z = np.array([1.0, 2.0, 0.0, 1.0])
    drawn = plots.plot_batch_coupling(z, z, z, z, z, z, sample=2, feature=1, subtitles=("a", "b", "Σ dz = 0"))
    titles = [ax.get_title() for ax in drawn["axes"]]
    assert titles[0].startswith("input z, feature 1") and "Σ dz = 0" in titles[2]
    assert [ax.get_ylabel() for ax in drawn["axes"]] == ["z", "y", "dL/dz"]
    assert all(ax.get_xlabel() == "sample" for ax in drawn["axes"])
    changed = plots.update_batch_coupling(drawn, z * 10, z, z, z, z, z, sample=0, feature=3)
    assert changed  # the data left the first panel's limits
    assert drawn["axes"][0].get_ylim()[1] >= 20
    assert "feature 3" in drawn["titles"][0].get_text()
    np.testing.assert_allclose(drawn["dots"][0].get_offsets()[:, 1], z * 10)


# ---------------------------------------------------------------- notebook 07: training explorer

@pytest.fixture(scope="module")
def digits():
    from bnlab.datasets import load_digits_split

    return load_digits_split(0)


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
    assert isinstance(e.widget, widgets.widgets.VBox)
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


# ---------------------------------------------------------------- notebook 07: plots

@pytest.fixture(scope="module")
def small_runs(digits):
    return compare(steps=60, eval_every=20, include_noisy=True, data=digits)


def test_plot_training_figure_titles_labels(small_runs):
    drawn = plots.plot_training_figure(small_runs)
    assert len(drawn["axes"]) == 4
    acc = drawn["accuracy"]["ax"]
    assert acc.get_title() == "(a) test accuracy"
    assert acc.get_xlabel() == "training step" and acc.get_ylabel() == "test accuracy (%)"
    assert {t.get_text() for t in acc.get_legend().get_texts()} == set(small_runs)
    line = drawn["accuracy"]["lines"]["with BN"]
    np.testing.assert_allclose(line.get_ydata(), 100 * small_runs["with BN"].test_accuracy)
    titles = [drawn["percentiles"][label]["ax"].get_title() for label in small_runs]
    assert titles == ["(b) without BN: input to one sigmoid", "(c) with BN: input to one sigmoid",
                      "(d) noisy BN: input to one sigmoid"]
    limits = {drawn["percentiles"][label]["ax"].get_ylim() for label in small_runs}
    assert len(limits) == 1  # shared, so the panels compare
    lines = drawn["percentiles"]["without BN"]["lines"]
    np.testing.assert_allclose(lines[1].get_ydata(), small_runs["without BN"].percentiles[:, 1])
    assert plots.render_png(drawn["fig"])[:4] == b"\x89PNG"


def test_three_panel_figure_and_update_hides_missing_runs(small_runs):
    pair = {label: small_runs[label] for label in ("without BN", "with BN")}
    drawn = plots.plot_training_figure(pair)
    assert len(drawn["axes"]) == 3
    plots.update_training_figure(drawn, {"with BN": small_runs["with BN"]})
    assert not drawn["accuracy"]["lines"]["without BN"].get_visible()
    assert drawn["accuracy"]["lines"]["with BN"].get_visible()
    assert "not run" in drawn["percentiles"]["without BN"]["title"].get_text()
    assert drawn["percentiles"]["without BN"]["note"].get_text() == "not run"
    assert drawn["percentiles"]["without BN"]["ax"].get_xlim() == (0.0, 60.0)
    assert [t.get_text() for t in drawn["accuracy"]["legend"].get_texts()] == ["with BN"]


def test_single_panels_and_diverged_marker(digits):
    history = run_experiment(batch_norm=False, activation="relu", learning_rate=10.0, init_scale=1.0,
                             steps=50, eval_every=10, data=digits)
    assert history.diverged
    acc = plots.plot_test_accuracy({"without BN": history})
    assert acc["diverged"]["without BN"].get_visible()
    assert acc["ax"].get_xlim() == (0.0, 50.0)
    pct = plots.plot_percentiles(history)
    assert "diverged" in pct["note"].get_text()
    assert pct["ax"].get_xlabel() == "training step" and "pct" in pct["ax"].get_ylabel()
    empty = plots.plot_percentiles(None)
    assert empty["note"].get_text() == "not run"
    assert plots.percentile_limits({}) == (-1.0, 1.0)
