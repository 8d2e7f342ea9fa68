"""Notebook 08 (BN in convolutional networks): the explorer (bnlab.widgets.conv) and its figures
(bnlab.plots.conv), driven from Python."""

from __future__ import annotations

import ipywidgets
import numpy as np
import pytest
from _support import image_bytes

import bnlab
from bnlab import plots, widgets
from bnlab.datasets import load_digits_images
from bnlab.train import run_cnn


@pytest.fixture(scope="module")
def images():
    return load_digits_images(0)


@pytest.fixture
def explorer(images):
    return widgets.ConvBatchNormExplorer(data=images)


# ---------------------------------------------------------------- the explorer

def test_defaults_are_bn_per_channel(explorer, images):
    e = explorer
    assert e.maps.shape == (64, 8, 8, 8)
    np.testing.assert_allclose(e.maps, e.conv.forward(images.x_train[:64], training=False))
    assert (e.channel, e.batch_size, e.axis) == (1, 32, (0, 2, 3))
    assert e.values_per_statistic == 32 * 8 * 8 and e.statistics_count == 1
    mean, var = bnlab.batch_stats(e.maps[:32], axis=(0, 2, 3))
    assert e.mean == pytest.approx(mean[1]) and e.var == pytest.approx(var[1])
    np.testing.assert_allclose(e.before, e.maps[:32, 1])
    np.testing.assert_allclose(e.after, (e.before - mean[1]) / np.sqrt(var[1] + 1e-5))
    assert abs(e.after_mean) < 1e-12 and e.after_var == pytest.approx(1.0, abs=1e-4)
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "2048" in e.drawn["note"].get_text() and "2048" in e.table.value
    assert "axis=(0, 2, 3)" in e.table.value
    # the drawn histogram is the batch's
    counts, _ = np.histogram(e.before, bins=e.drawn["before_edges"], density=True)
    np.testing.assert_allclose(e.drawn["hist_before"].get_data().values, counts)
    assert e.drawn["hist_titles"]["after"].get_text() == "after BN: mean 0.00, var 1.00"
    assert not e.drawn["missing"].get_visible()


def test_every_control_is_named_and_on_its_grid(explorer):
    for control in (explorer.channel_slider, explorer.batch_size_slider, explorer.statistics):
        assert control.description
    for slider in (explorer.channel_slider, explorer.batch_size_slider):
        assert (slider.value - slider.min) % slider.step == 0
    found, todo = [], [explorer.widget]
    while todo:
        w = todo.pop()
        found.append(w)
        todo.extend(getattr(w, "children", ()))
    assert explorer.channel_slider in found and explorer.table in found
    assert any(isinstance(w, ipywidgets.Image) for w in found)


def test_batch_of_one_image_trains_per_channel(explorer):
    e = explorer
    before = image_bytes(e)
    e.batch_size_slider.value = 1
    assert e.error is None
    assert e.values_per_statistic == 64  # H·W positions of one image
    assert e.after_var == pytest.approx(1.0, abs=1e-3)
    assert e.drawn["missing"].get_visible() and "N = 1" in e.drawn["missing"].get_text()
    assert np.isnan(np.ma.filled(e.drawn["before_image"].get_array()[:, 9:], np.nan)).all()  # images 1-3 blank
    assert image_bytes(e) != before


def test_per_position_statistics_and_their_refusal(explorer):
    e = explorer
    e.statistics.value = "position"
    assert e.axis == 0 and e.values_per_statistic == 32 and e.statistics_count == 64
    assert np.shape(e.mean) == (8, 8)
    np.testing.assert_allclose(e.mean, e.maps[:32, 1].mean(axis=0))
    assert "64 statistics" in e.drawn["note"].get_text()
    picture, state = image_bytes(e), e.values_per_statistic
    e.batch_size_slider.value = 1  # one value per statistic: refused, the last state stays
    assert e.error is not None and "only one value" in e.error and "only one value" in e.message.value
    assert e.values_per_statistic == state and e.batch_size == 32
    assert image_bytes(e) == picture
    e.batch_size_slider.value = 2
    assert e.error is None and e.message.value == "" and e.values_per_statistic == 2
    e.statistics.value = "channel"
    e.batch_size_slider.value = 1
    assert e.error is None and e.values_per_statistic == 64


def test_channel_slider_moves_the_scale(explorer):
    e = explorer
    first_range = e.drawn["value_range"]
    picture = image_bytes(e)
    e.channel_slider.value = 5
    assert e.channel == 5
    np.testing.assert_allclose(e.before, e.maps[:32, 5])
    assert e.drawn["value_range"] != first_range
    low, high = e.drawn["value_range"]
    assert low == pytest.approx(e.maps[:, 5].min()) and high == pytest.approx(e.maps[:, 5].max())
    limit = max(abs(low), abs(high))
    assert e.drawn["before_image"].get_clim() == pytest.approx((-limit, limit))
    assert "channel 5" in e.drawn["note"].get_text()
    assert image_bytes(e) != picture


def test_slider_moves_redraw_only_the_data(explorer):
    e = explorer
    full = e.renderer.full_redraws
    for size in (30, 31, 29, 32, 28):
        e.batch_size_slider.value = size
    assert e.renderer.full_redraws == full  # the fast path: the static figure is reused


def test_constructor_arguments(images):
    e = widgets.ConvBatchNormExplorer(channels=3, pool=10, seed=1, data=images)
    assert e.maps.shape == (10, 3, 8, 8) and e.channel_slider.max == 2 and e.batch_size_slider.max == 10
    assert e.batch_size == 10
    with pytest.raises(ValueError, match="at least 2 images"):
        widgets.ConvBatchNormExplorer(pool=1, data=images)


# ---------------------------------------------------------------- the figures

def test_plot_feature_maps(images):
    x = images.x_train[:3]
    conv = bnlab.Conv2D(1, 4, 3, padding=1, bias=False, rng=0)
    maps = conv.forward(x, training=False)
    drawn = plots.plot_feature_maps(x, maps, labels=images.y_train[:3])
    assert drawn["axes"].shape == (3, 5)
    assert [ax.get_title() for ax in drawn["axes"][0]] == ["input", "channel 0", "channel 1", "channel 2",
                                                           "channel 3"]
    assert drawn["axes"][1, 0].get_ylabel() == f"image 1\n(a {images.y_train[1]})"
    np.testing.assert_allclose(drawn["maps"][2][3].get_array(), maps[2, 3])
    np.testing.assert_allclose(drawn["limits"], np.abs(maps).max(axis=(0, 2, 3)))
    assert drawn["maps"][0][1].get_clim() == pytest.approx((-drawn["limits"][1], drawn["limits"][1]))
    assert plots.render_png(drawn["fig"])[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="same K"):
        plots.plot_feature_maps(x, maps[:2])


def test_plot_channel_bn_and_update():
    rng = np.random.default_rng(0)
    before = rng.normal(2.0, 3.0, size=(6, 5, 5))
    after = (before - before.mean()) / before.std()
    drawn = plots.plot_channel_bn(before, after, channel=2, note="hello")
    assert drawn["axes"]["before"].get_title() == "channel 2 before BN"
    assert drawn["hist_titles"]["before"].get_text() == (
        f"before BN: mean {before.mean():.2f}, var {before.var():.2f}".replace("-", "\u2212"))
    for key in ("hist_before", "hist_after"):
        ax = drawn["axes"][key]
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel() == "density"
    montage = drawn["before_image"].get_array()
    assert montage.shape == (5, 4 * 6 - 1)
    np.testing.assert_allclose(montage[:, 6:11], before[1])
    assert np.isnan(np.ma.filled(montage[:, 5], np.nan)).all()  # the gap between two maps
    assert drawn["note"].get_text() == "hello"
    plots.update_channel_bn(drawn, before[:2], after[:2], note="", value_range=(-20.0, 20.0))
    assert drawn["value_range"] == (-20.0, 20.0) and drawn["before_edges"][0] == -20.0
    assert drawn["before_image"].get_clim() == (-20.0, 20.0)
    assert drawn["missing"].get_visible() and "images 2–3" in drawn["missing"].get_text()
    assert not drawn["note"].get_visible()
    with pytest.raises(ValueError, match="same shape"):
        plots.plot_channel_bn(before, after[:3])


def test_plot_position_stats():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(8, 2, 4, 5))
    mean_p, var_p = bnlab.batch_stats(z, axis=0)
    mean_c, var_c = bnlab.batch_stats(z, axis=(0, 2, 3))
    drawn = plots.plot_position_stats(mean_p[1], var_p[1], mean_c[1], var_c[1], channel=1)
    titles = [ax.get_title() for ax in drawn["axes"]]
    assert titles == ["per-position mean (channel 1)", "per-position variance (channel 1)"]
    np.testing.assert_allclose(drawn["var_image"].get_array(), var_p[1])
    assert f"{var_c[1]:.2f}" in drawn["colorbars"][1].ax.get_ylabel()
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        plots.plot_position_stats(mean_p[1], var_p[1][:2], mean_c[1], var_c[1])


def test_plot_cnn_accuracy(images):
    small = (images.x_train[:96], images.y_train[:96], images.x_test[:48], images.y_test[:48])
    runs = {"with BN": run_cnn(norm="batch", channels=(2, 2), epochs=2, data=small),
            "without BN": run_cnn(norm=None, channels=(2, 2), epochs=2, data=small)}
    drawn = plots.plot_cnn_accuracy(runs)
    acc, loss = drawn["axes"]
    assert acc.get_xlabel() == "epoch" and acc.get_ylabel() == "test accuracy (%)" and acc.get_title()
    assert loss.get_ylabel() == "mean mini-batch loss" and loss.get_title() == "training loss"
    np.testing.assert_allclose(drawn["accuracy_lines"]["with BN"].get_ydata(), 100 * runs["with BN"].test_accuracy)
    np.testing.assert_allclose(drawn["loss_lines"]["without BN"].get_ydata(), runs["without BN"].train_loss[1:])
    assert drawn["accuracy_lines"]["with BN"].get_color() == plots.NORM_COLORS["BN"]
    assert drawn["accuracy_lines"]["without BN"].get_color() == plots.NORM_COLORS["no norm"]
    assert {t.get_text() for t in acc.get_legend().get_texts()} == {"with BN", "without BN"}


def test_conv_describes_its_figure_with_its_numbers():
    e = widgets.ConvBatchNormExplorer()
    e.statistics.value = "position"
    e.batch_size_slider.value = 5
    text = e.describe()
    assert "batch of 5 digit images" in text and f"{e.statistics_count} means and variances" in text
    assert f"variance {e.after_var:.3g}" in text and e.image.tooltip == text
