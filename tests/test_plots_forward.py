"""Figure builders of notebooks 01-03 (bnlab.plots.forward)."""

from __future__ import annotations

import numpy as np
import pytest

import bnlab
from bnlab import plots

SEED_MEAN = np.array([1.0, 0.5, 3.5])
SEED_VAR = np.array([0.5, 1.25, 1.25])


# ---------------------------------------------------------------- plot builders

def _assert_labelled(ax):
    assert ax.get_title(), "every panel has a title"
    assert ax.get_xlabel(), "every panel has an x label"


def test_plot_before_after_draws_every_sample():
    seed = bnlab.seed_batch()
    y, cache = bnlab.batchnorm_forward(seed.z, seed.gamma, seed.beta)
    drawn = plots.plot_before_after(seed.z, cache["z_hat"], y)
    assert len(drawn["axes"]) == 3
    for ax in drawn["axes"]:
        _assert_labelled(ax)
    for panel in drawn["dots"]:
        assert len(panel) == 3 and all(len(c.get_offsets()) == 4 for c in panel)
    np.testing.assert_allclose(drawn["dots"][0][2].get_offsets()[:, 0], seed.z[:, 2])
    assert drawn["means"][0][2].get_xdata()[0] == pytest.approx(3.5)
    assert plots.render_png(drawn["fig"])[:4] == b"\x89PNG"
    two = plots.plot_before_after(seed.z, cache["z_hat"])
    assert len(two["axes"]) == 2


def test_plot_batch_stats_and_update():
    seed = bnlab.seed_batch()
    mean, var = bnlab.batch_stats(seed.z)
    drawn = plots.plot_batch_stats(seed.z, mean, var)
    for ax in drawn["axes"]:
        _assert_labelled(ax)
    heights = [bar.get_height() for bar in drawn["mean_bars"][:3]]
    np.testing.assert_allclose(heights, SEED_MEAN)
    assert not drawn["mean_bars"][3].get_visible()
    np.testing.assert_allclose(drawn["sample_var"].get_ydata(), SEED_VAR * 4 / 3)
    z = np.array([[0.0, 1.0, 2.0, 3.0, 40.0], [2.0, 3.0, 4.0, 5.0, 60.0]])
    m, v = bnlab.batch_stats(z)
    assert plots.update_batch_stats(drawn, z, m, v)  # more features and larger values: new limits
    assert drawn["mean_bars"][4].get_visible() and drawn["mean_bars"][4].get_height() == 50.0
    assert drawn["axes"][0].get_ylim()[1] >= 60.0
    assert not plots.update_batch_stats(drawn, z + 0.5, m + 0.5, v)  # still inside: limits kept


def test_plot_variance_error_and_histograms():
    drawn = plots.plot_variance_error([1, 1e2, 1e4], {"a": [0.0, 1e-3, 2.0], "b": [1e-7, 1e-7, 1e-6]})
    _assert_labelled(drawn["ax"])
    assert set(drawn["lines"]) == {"a", "b"}
    assert drawn["lines"]["a"].get_ydata()[0] == 1e-9  # exact results sit on the floor
    values = np.random.default_rng(0).normal(size=(500, 2))
    edges = np.linspace(-3, 3, 13)
    counts = plots.histogram_counts(values, edges)
    for j in range(2):
        np.testing.assert_array_equal(counts[j], np.histogram(values[:, j], edges)[0])
    hist = plots.plot_feature_histograms(values, edges, title="t", xlabel="x")
    _assert_labelled(hist["ax"])
    plots.update_feature_histograms(hist, values * 0.5, highlight=1)
    np.testing.assert_array_equal(hist["stairs"][0].get_data().values,
                                  np.histogram(values[:, 0] * 0.5, edges)[0])
    assert hist["stairs"][1].get_alpha() > hist["stairs"][0].get_alpha()


def test_plot_eps_curve():
    drawn = plots.plot_eps_curve(1e-5, var=0.5)
    _assert_labelled(drawn["ax"])
    assert drawn["point"].get_ydata()[0] == pytest.approx(0.5 / (0.5 + 1e-5))
    plots.update_eps_curve(drawn, 1e-2, var=1e-2)
    assert drawn["point"].get_ydata()[0] == pytest.approx(0.5)
    assert drawn["eps_line"].get_xdata()[0] == 1e-2


def test_plot_builders_refuse_too_many_features():
    z = np.zeros((3, plots.MAX_FEATURES + 1))
    with pytest.raises(ValueError, match="at most"):
        plots.plot_before_after(z, z)
