"""Explorers of notebook 09 (bnlab.widgets.family), driven from Python, and the stored full grid."""

from __future__ import annotations

import ipywidgets
import numpy as np
import pytest
from _support import image_bytes

import bnlab
from bnlab import widgets
from bnlab.datasets import DigitsSplit
from bnlab.train import BatchSizeResult, batch_size_experiment

# ---------------------------------------------------------------- which values share statistics


@pytest.fixture(scope="module")
def shared_family():
    return widgets.NormalizationFamilyExplorer()


@pytest.fixture
def family(shared_family):
    """The module's explorer, back at its default controls (building one takes a full first render)."""
    e = shared_family
    e.method_buttons.value, e.groups_slider.value = "batch", 2
    e.sample_slider.value = e.channel_slider.value = e.position_slider.value = 0
    return e


def test_family_default_state(family):
    e = family
    assert e.x.shape == (4, 6, 5) and np.array_equal(e.x, np.round(e.x)) and 0 <= e.x.min() and e.x.max() <= 9
    assert e.method == "batch" and e.voxel == (0, 0, 0) and e.group_size == 20
    assert e.mean == pytest.approx(e.x[:, 0].mean()) and e.var == pytest.approx(e.x[:, 0].var())
    assert e.x_hat == pytest.approx((e.x[0, 0, 0] - e.mean) / np.sqrt(e.var + 1e-5))
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "their mean" in e.table.value and f"{e.mean:.4f}" in e.table.value
    assert isinstance(e.widget, ipywidgets.VBox) and e.error is None


@pytest.mark.parametrize("method, groups, size", [("layer", 2, 30), ("instance", 2, 5), ("group", 3, 10),
                                                  ("group", 1, 30), ("group", 6, 5)])
def test_family_statistics_are_bnlabs(family, method, groups, size):
    e = family
    e.method_buttons.value = method
    e.groups_slider.value = groups
    e.sample_slider.value, e.channel_slider.value, e.position_slider.value = 2, 3, 4
    assert e.voxel == (2, 3, 4) and e.group_size == size and int(e.mask.sum()) == size
    assert e.mean == pytest.approx(e.x[e.mask].mean()) and e.var == pytest.approx(e.x[e.mask].var())
    normalized = {"layer": lambda: bnlab.layer_norm(e.x, (6, 5)), "instance": lambda: bnlab.instance_norm(e.x),
                  "group": lambda: bnlab.group_norm(e.x, groups)}[method]()
    assert e.x_hat == pytest.approx(normalized[2, 3, 4], rel=1e-12)


def test_family_moves_change_the_picture_and_are_precomputed(family, monkeypatch):
    e = family
    before = image_bytes(e)
    renders = e.renders
    from bnlab.widgets import family as module

    monkeypatch.setattr(module, "normalize_forward", None)  # a move must not compute statistics again
    full = e.renderer.full_redraws
    e.channel_slider.value = 4
    assert e.renders == renders + 1 and image_bytes(e) != before and e.error is None
    assert e.mask[:, 4].all() and e.mask.sum() == 20
    e.method_buttons.value = "group"
    assert "Group Norm (G = 2)" in e.cube["title"].get_text()
    assert e.renderer.full_redraws == full  # only the cube, its title and the shading are redrawn


def test_family_controls_are_named_and_on_their_grids(family):
    e = family
    for control in (e.method_buttons, e.groups_slider, e.sample_slider, e.channel_slider, e.position_slider):
        assert control.description
    assert list(e.groups_slider.options) == [1, 2, 3, 6] and e.groups_slider.value == 2


def test_family_other_shapes_and_seeds():
    e = widgets.NormalizationFamilyExplorer(shape=(2, 5, 3), seed=4)
    assert e.x.shape == (2, 5, 3) and list(e.groups_slider.options) == [1, 5] and e.groups_slider.value == 1
    other = widgets.NormalizationFamilyExplorer(shape=(2, 5, 3), seed=5)
    assert not np.array_equal(e.x, other.x)


# ---------------------------------------------------------------- batch size


@pytest.fixture(scope="module")
def small_grid(digits):
    return batch_size_experiment(methods=("batch", "layer"), batch_sizes=(8, 32), seeds=(0,), epochs=1,
                                 lr_at_32=0.1, data=digits)


@pytest.fixture
def explorer(small_grid, digits):
    return widgets.BatchSizeExplorer(grid=small_grid, data=digits)


def test_batch_size_default_run(explorer, small_grid):
    e = explorer
    assert e.settings["norm"] == "batch" and e.settings["batch_size"] == 32 and e.settings["epochs"] == 1
    assert e.settings["lr_at_32"] == 0.1  # the grid's recipe
    assert 0.5 < e.accuracy <= 1 and 0 < e.train_mode_accuracy <= 1 and e.train_loss > 0
    assert e.accuracy == e.grid_accuracy == small_grid.accuracy[0, 1, 0]  # the grid's own cell
    e.seed_slider.value = 1
    assert e.update() and e.grid_accuracy == small_grid.accuracy[0, 1, 0]  # the grid's mean (one seed)
    e.batch_size_slider.value = 12
    assert e.update() and e.grid_accuracy is None and "not in the grid" in e.summary.value
    assert e.progress.value == e.progress.max == 1 and e.progress.bar_style == "success"
    assert len(e.runs) == 3 and not e.pending and e.image.value[:4] == b"\x89PNG"
    assert list(e.drawn["grid"]["run"].get_xdata()) == [12]
    assert len(e.drawn["past_runs"].get_offsets()) == 2


def test_batch_size_sliders_record_run_trains(explorer, small_grid):
    e = explorer
    before, history = image_bytes(e), e.history
    e.batch_size_slider.value = 8
    assert e.pending and "press Run" in e.message.value and e.history is history and image_bytes(e) == before
    e.batch_size_slider.value = 32
    assert not e.pending and e.message.value == ""
    e.batch_size_slider.value = 8
    e.run_button.click()
    assert not e.pending and e.settings["batch_size"] == 8 and len(e.runs) == 2
    assert e.accuracy == small_grid.accuracy[0, 0, 0] == e.grid_accuracy  # the grid's own cell
    assert image_bytes(e) != before
    assert "BN, batch size 8, seed 0" in e.summary.value


def test_batch_size_layer_norm_is_the_same_in_both_modes(explorer):
    e = explorer
    e.method_buttons.value = "layer"
    e.batch_size_slider.value = 16
    assert e.update() and e.grid_accuracy is None
    assert e.train_mode_accuracy == pytest.approx(e.accuracy, abs=0.01)  # the last 7 test images left out
    assert e.runs[-1]["norm"] == "layer"
    e.method_buttons.value = "none"
    e.groups_slider.value = 4
    assert e.update() and e.settings["norm"] is None and e.history.label == "no norm"


def test_batch_size_bad_setting_keeps_the_last_run(small_grid, digits):
    tiny = DigitsSplit(digits.x_train[:40], digits.y_train[:40], digits.x_test, digits.y_test)
    e = widgets.BatchSizeExplorer(grid=small_grid, data=tiny, run=False)
    assert e.history is None and "No run yet" in e.summary.value and e.image.value[:4] == b"\x89PNG"
    e.batch_size_slider.value = 4
    assert e.update()
    history, before = e.history, image_bytes(e)
    e.batch_size_slider.value = 48
    assert not e.update()
    assert "larger than the training set" in e.error and "larger than the training set" in e.message.value
    assert e.history is history and image_bytes(e) == before and e.progress.bar_style == "danger"


def test_batch_size_explorer_refuses_a_grid_that_is_not_one():
    with pytest.raises(TypeError, match="BatchSizeResult"):
        widgets.BatchSizeExplorer(grid={"BN": {2: 0.5}}, run=False)


def test_batch_size_controls_are_named(explorer):
    e = explorer
    for control in (e.method_buttons, e.batch_size_slider, e.groups_slider, e.seed_slider, e.run_button,
                    e.progress):
        assert control.description
    assert 8 in e.groups_slider.options and e.groups_slider.value == 8


# ---------------------------------------------------------------- the stored full grid


def test_full_grid_is_a_fresh_batch_size_result():
    grid = widgets.full_batch_size_grid()
    assert isinstance(grid, BatchSizeResult)
    assert grid.accuracy.shape == (4, 5, 2) and grid.batch_sizes == (2, 4, 8, 16, 32)
    table = grid.table()
    assert table["BN"][2] < 0.55 and min(table["BN"][b] for b in (8, 16, 32)) > 0.94
    assert all(table["BN"][b] >= table["LN"][b] - 0.01 for b in (8, 16, 32))  # as good as LN from 8 on
    assert all(0.93 < table["LN"][b] < 0.96 for b in grid.batch_sizes)
    stored = grid.accuracy.copy()
    grid.accuracy[:] = 0  # a caller's change does not reach the stored grid
    np.testing.assert_array_equal(widgets.full_batch_size_grid().accuracy, stored)


def test_full_grid_cells_are_what_the_code_measures(digits):
    """Re-run the cheapest cells (batch size 32, every method and seed; benchmarks/bench_norms.py runs all)."""
    stored = widgets.full_batch_size_grid()
    cheap = batch_size_experiment(batch_sizes=(32,), data=digits)
    np.testing.assert_array_equal(cheap.accuracy[:, 0], stored.accuracy[:, 4])


# ---------------------------------------------------------------- the figures in words

def test_family_describes_its_figure_with_its_numbers(family):
    family.method_buttons.value = "group"
    family.groups_slider.value = 3
    text = family.describe()
    assert "Group Norm with G = 3" in text and f"mean {family.mean:.4g}" in text
    assert f"with {family.group_size - 1} other values" in text and family.image.tooltip == text


def test_batch_size_describes_its_figure_with_its_numbers(explorer):
    text = explorer.describe()
    assert "BN at batch size 32" in text and f"{100 * explorer.accuracy:.1f} %" in text
    assert "after each of 1 epochs" in text
