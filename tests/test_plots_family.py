"""Figures of notebook 09 (bnlab.plots.family): the family's cubes, the tensor panel, batch size."""

from __future__ import annotations

import numpy as np
import pytest

import bnlab
from bnlab import plots
from bnlab.train import BatchSizeResult

SHAPE = (4, 6, 5)


def _png(fig):
    return plots.render_png(fig, freeze_layout=False)


# ---------------------------------------------------------------- which values share statistics

@pytest.mark.parametrize("method, groups, size", [
    ("batch", 6, 4 * 5), ("layer", 4, 6 * 5), ("instance", 24, 5), ("group", 8, 3 * 5)])
def test_statistics_groups_count_and_size(method, groups, size):
    labels = plots.statistics_groups(method, SHAPE, num_groups=2)
    assert labels.shape == SHAPE
    counts = np.unique(labels, return_counts=True)[1]
    assert len(counts) == groups and set(counts) == {size}


def test_group_norm_extremes_are_layer_and_instance_groups():
    def same_partition(a, b):
        return np.array_equal(np.unique(a.ravel(), return_inverse=True)[1],
                              np.unique(b.ravel(), return_inverse=True)[1])

    groups = plots.statistics_groups
    assert same_partition(groups("group", SHAPE, 1), groups("layer", SHAPE))
    assert same_partition(groups("group", SHAPE, 6), groups("instance", SHAPE))
    assert not same_partition(groups("group", SHAPE, 2), groups("layer", SHAPE))


@pytest.mark.parametrize("method", plots.FAMILY_METHODS)
def test_the_groups_are_the_ones_bnlab_normalizes_with(method):
    """Normalizing with per-label statistics reproduces bnlab's own functions."""
    x = np.random.default_rng(3).normal(2.0, 3.0, size=SHAPE)
    labels = plots.statistics_groups(method, SHAPE, num_groups=3).ravel()
    counts = np.bincount(labels)
    mean = np.bincount(labels, x.ravel()) / counts
    var = np.bincount(labels, (x.ravel() - mean[labels]) ** 2) / counts
    by_label = ((x.ravel() - mean[labels]) / np.sqrt(var[labels] + 1e-5)).reshape(SHAPE)
    expected = {"batch": lambda: bnlab.normalize_forward(x, axis=(0, 2))[0],
                "layer": lambda: bnlab.layer_norm(x, (6, 5)),
                "instance": lambda: bnlab.instance_norm(x),
                "group": lambda: bnlab.group_norm(x, 3)}[method]()
    np.testing.assert_allclose(by_label, expected, rtol=1e-10, atol=1e-12)


def test_sharing_mask_of_one_value():
    mask = plots.sharing_mask("group", SHAPE, (1, 2, 0), num_groups=3)
    assert mask.dtype == bool and mask.sum() == 10
    assert mask[1, 2:4].all() and not mask[1, [0, 1, 4, 5]].any() and not mask[[0, 2, 3]].any()
    assert plots.sharing_mask("batch", SHAPE, (3, 4, 2))[:, 4].all()


@pytest.mark.parametrize("call, words", [
    (lambda: plots.statistics_groups("batchnorm", SHAPE), "method must be one of"),
    (lambda: plots.statistics_groups("group", SHAPE, num_groups=4), "num_groups=4 must divide"),
    (lambda: plots.statistics_groups("group", SHAPE, num_groups=0), "positive int"),
    (lambda: plots.statistics_groups("layer", (4, 6)), "three positive ints"),
    (lambda: plots.sharing_mask("layer", SHAPE, (4, 0, 0)), "voxel n=4 is outside 0..3"),
    (lambda: plots.sharing_mask("layer", SHAPE, (0, 0)), "three ints"),
])
def test_bad_input_is_refused_with_a_message(call, words):
    with pytest.raises(ValueError, match=words):
        call()


# ---------------------------------------------------------------- the cubes

def test_norm_family_figure_draws_four_titled_cubes():
    drawn = plots.plot_norm_family(SHAPE, voxel=(0, 0, 0), num_groups=2)
    assert list(drawn["cubes"]) == list(plots.FAMILY_METHODS)
    titles = [ax.get_title() for ax in drawn["axes"]]
    assert titles[0].startswith("Batch Norm") and "(N, H, W)" in titles[0]
    assert "Group Norm (G = 2)" in titles[3] and "(C/G, H, W)" in titles[3]
    assert "Wu & He 2018" in drawn["fig"].get_suptitle()
    for method, mask in drawn["masks"].items():
        np.testing.assert_array_equal(mask, plots.sharing_mask(method, SHAPE, (0, 0, 0), 2))
    assert _png(drawn["fig"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_cube_draws_the_outer_faces_of_the_shaded_block_only():
    drawn = plots.plot_norm_cube("layer", SHAPE, voxel=(0, 0, 0))
    # sample 0's slab: 5 front faces (channel 0), 6 top faces (position 0), 30 side faces; the two
    # faces hidden by the chosen voxel (behind it and below it) are drawn too: 43
    assert len(drawn["faces"].get_paths()) == 43
    assert len(drawn["chosen"].get_segments()) == 12
    drawn_single = plots.plot_norm_cube("instance", SHAPE, voxel=(3, 5, 4))
    assert len(drawn_single["faces"].get_paths()) == 5 + 1 + 5 + 1  # front, top, side, + chosen's neighbour


def test_update_norm_cube_moves_the_block():
    drawn = plots.plot_norm_cube("batch", SHAPE, voxel=(0, 0, 0))
    before = _png(drawn["fig"])
    mask = plots.update_norm_cube(drawn, "group", (2, 3, 1), num_groups=3)
    assert mask.sum() == 10 and drawn["mask"] is mask
    assert "Group Norm (G = 3)" in drawn["title"].get_text()
    assert _png(drawn["fig"]) != before
    with pytest.raises(ValueError, match="voxel c=6"):
        plots.update_norm_cube(drawn, "batch", (0, 6, 0))


# ---------------------------------------------------------------- the tensor panel

def test_tensor_values_panel_shades_the_mask_and_rings_the_voxel():
    x = np.arange(np.prod(SHAPE)).reshape(SHAPE) % 10
    mask = plots.sharing_mask("instance", SHAPE, (2, 1, 3))
    drawn = plots.plot_tensor_values(x, mask, (2, 1, 3), title="x")
    assert drawn["ax"].get_title() == "x" and drawn["ax"].get_xlabel() and drawn["ax"].get_ylabel()
    colours = drawn["cells"].get_facecolors()
    assert len(colours) == x.size
    np.testing.assert_array_equal(colours[:, 3] > 0, mask.ravel())
    assert drawn["ring"].get_visible() and drawn["ring"].get_xy() == (2 * (5 + 0.8) + 3, 1)
    texts = [t.get_text() for t in drawn["ax"].texts]
    assert texts.count("7") == np.sum(x == 7) and "sample 3" in texts
    plots.update_tensor_values(drawn, None, None, title="none")
    assert not drawn["cells"].get_facecolors()[:, 3].any() and not drawn["ring"].get_visible()
    assert drawn["title"].get_text() == "none"
    with pytest.raises(ValueError, match="mask must have shape"):
        plots.update_tensor_values(drawn, mask[:2])
    with pytest.raises(ValueError, match=r"shape \(N, C, P\)"):
        plots.plot_tensor_values(x[0])


# ---------------------------------------------------------------- batch size

def _result(accuracy):
    return BatchSizeResult(methods=("batch", "layer"), batch_sizes=(2, 8, 32), seeds=(0, 1),
                           learning_rates=(0.1, 0.2, 0.3), accuracy=np.asarray(accuracy, dtype=float),
                           config={"epochs": 4})


def test_batch_size_accuracy_lines_are_seed_means_in_percent():
    acc = [[[0.4, 0.6], [0.9, 0.9], [0.95, np.nan]], [[0.9, 0.92], [0.94, 0.94], [0.96, 0.96]]]
    drawn = plots.plot_batch_size_accuracy(_result(acc))
    np.testing.assert_allclose(drawn["lines"]["BN"].get_ydata(), [50, 90, 95])
    np.testing.assert_allclose(drawn["lines"]["LN"].get_ydata(), [91, 94, 96])
    ax = drawn["ax"]
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["2", "8", "32"]
    assert "4 epochs" in ax.get_title() and "2 seeds" in ax.get_title() and "eval mode" in ax.get_ylabel()
    assert ax.get_ylim() == (40.0, 100.0)  # 10 below the lowest line, in tens
    assert drawn["run"] is None
    with pytest.raises(ValueError, match="run_marker=True"):
        plots.update_batch_size_run(drawn, 4, 0.5)


def test_batch_size_lines_with_every_seed_diverged_warn_nothing():
    import warnings

    acc = np.full((2, 3, 2), 0.9)
    acc[0, 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drawn = plots.plot_batch_size_accuracy(_result(acc))
    assert np.isnan(drawn["lines"]["BN"].get_ydata()[0])


def test_batch_size_run_marker():
    drawn = plots.plot_batch_size_accuracy(_result(np.full((2, 3, 2), 0.9)), run_marker=True)
    assert len(drawn["run"].get_xdata()) == 0
    assert not plots.update_batch_size_run(drawn, 8, 0.93, label="BN, B = 8")
    assert list(drawn["run"].get_xdata()) == [8] and list(drawn["run"].get_ydata()) == [93.0]
    assert drawn["run_label"].get_text() == "BN, B = 8" and drawn["run_label"].get_visible()
    assert plots.update_batch_size_run(drawn, 64, 0.2)  # outside the limits: they grow
    high = drawn["ax"].get_xlim()[1]
    assert high > 64 and drawn["ax"].get_ylim()[0] <= 20
    plots.update_batch_size_run(drawn, None, None)
    assert len(drawn["run"].get_xdata()) == 0 and not drawn["run_label"].get_visible()


def test_gn_paper_panel_and_the_two_panel_figure():
    paper = plots.plot_gn_paper()
    np.testing.assert_allclose(paper["lines"]["BN"].get_ydata(), [34.7, 27.3, 24.8, 23.7, 23.6])
    np.testing.assert_allclose(paper["lines"]["GN"].get_ydata(), [24.1, 24.2, 24.0, 24.2, 24.1])
    assert "ImageNet" in paper["ax"].get_title()
    figure = plots.plot_batch_size_figure(_result(np.full((2, 3, 2), 0.9)))
    assert len(figure["axes"]) == 2 and all(ax.get_title() for ax in figure["axes"])
    assert _png(figure["fig"])[:4] == b"\x89PNG"
