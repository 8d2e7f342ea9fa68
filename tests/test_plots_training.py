"""Figure builders of notebook 07 (bnlab.plots.training)."""

from __future__ import annotations

import numpy as np
import pytest

from bnlab import plots
from bnlab.train import compare, run_experiment


def _image(explorer):
    return bytes(explorer.image.value)


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
