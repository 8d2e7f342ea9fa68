"""bnlab.plots.render and theme: FastRenderer's partial redraws and cell cache, CompactFormatter."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.axes import Axes
from PIL import Image

from bnlab import plots, widgets


def _pixels(png):
    return np.asarray(Image.open(io.BytesIO(png))).astype(int)


def _figure(ncols=3):
    fig, axes = plots.new_figure(ncols)
    lines = []
    for ax in np.atleast_1d(axes):
        (line,) = ax.plot([0, 1, 2], [0, 1, 0])
        plots.finish_axes(ax, "panel", "x", "y")
        lines.append(line)
    return fig, list(np.atleast_1d(axes)), lines


def test_a_rescaled_panel_is_redrawn_alone_and_looks_as_a_full_redraw():
    fig, axes, lines = _figure()
    renderer = plots.FastRenderer(fig, lines)
    renderer.png()
    for high in (5.0, 42.0, 0.5, 8.0):  # labels no wider than the first ones (the layout is frozen)
        lines[1].set_ydata([0, high, 0])
        axes[1].set_ylim(0, high * 1.1)
        partial = renderer.png()
        assert renderer.full_redraws == 1, "only the rescaled panel is redrawn"
        assert np.array_equal(_pixels(partial), _pixels(renderer.png(full=True)))
        renderer.full_redraws = 1  # the comparison above forced one
    assert renderer.partial_redraws == 4


def test_limits_seen_before_come_from_the_cache(monkeypatch):
    fig, axes, lines = _figure(2)
    renderer = plots.FastRenderer(fig, lines)
    renderer.png()
    initial = axes[0].get_ylim()
    drawn = []
    original = Axes.draw
    monkeypatch.setattr(Axes, "draw", lambda self, r: (drawn.append(self), original(self, r))[1])
    axes[0].set_ylim(-5, 5)
    first = renderer.png()
    assert drawn == [axes[0]]
    axes[0].set_ylim(*initial)  # the first render's limits
    renderer.png()
    axes[0].set_ylim(-5, 5)
    again = renderer.png()
    assert drawn == [axes[0]], "both returns were copies of cached cells"
    assert first == again


def test_overlapping_axes_fall_back_to_a_full_redraw():
    fig, axes, lines = _figure(2)
    twin = axes[0].twinx()  # shares the first panel's place: no cell of its own
    (twin_line,) = twin.plot([0, 1], [0, 1])
    renderer = plots.FastRenderer(fig, [*lines, twin_line])
    renderer.png()
    assert renderer._cells[0] is None and renderer._cells[-1] is None
    axes[0].set_ylim(-3, 3)
    renderer.png()
    assert renderer.full_redraws == 2 and renderer.partial_redraws == 0


@pytest.mark.parametrize("value", [2.0 ** -14, 2.0 ** 10, -(2.0 ** 6)])
def test_shift_scale_explorer_partial_redraws_match_full_ones(value):
    e = widgets.ShiftScaleExplorer()
    if value < 0:
        e.sign.value = -1
    e.scale_slider.value = abs(value)
    assert e.renderer.partial_redraws >= 1 and e.renderer.full_redraws == 1
    partial = _pixels(e.image.value)
    e.render(full=True)
    assert np.array_equal(partial, _pixels(e.image.value)), "a label was clipped or a panel left stale"


@pytest.mark.parametrize("locs, labels", [
    ([-5, 0, 5, 10], ["−5", "0", "5", "10"]),
    ([9.996, 9.998, 10.0, 10.002], ["9.996", "9.998", "10.000", "10.002"]),
    ([-4000, 0, 4000, 8000], ["−4k", "0", "4k", "8k"]),
    ([-2500, 0, 2500], ["−2.5k", "0", "2.5k"]),
    ([0, 2e6, 4e6], ["0", "2M", "4M"]),
    ([-0.5, 0, 0.5], ["−0.5", "0", "0.5"]),
    ([1e-6, 2e-6, 3e-6], ["1e−6", "2e−6", "3e−6"]),
])
def test_compact_formatter_writes_short_distinct_labels(locs, labels):
    formatter = plots.CompactFormatter()
    formatter.set_locs(locs)
    assert [formatter(x) for x in locs] == labels


def test_png_encoder_writes_the_canvas_pixels_exactly():
    fig, axes, lines = _figure(2)
    png = plots.FastRenderer(fig, lines).png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = _pixels(png)
    canvas = np.asarray(fig.canvas.buffer_rgba())[:, :, :3]
    assert decoded.shape == canvas.shape and np.array_equal(decoded, canvas)
