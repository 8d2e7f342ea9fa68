"""Projector mode: ``setup_notebook(projector=True)`` or ``BNLAB_PROJECTOR=1``.

Larger text, markers and explorer images, thicker lines, colours that stand
out from white and stay colour-blind safe; titles never run off their room.
"""

from __future__ import annotations

import ast
import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

import bnlab
from bnlab import widgets
from bnlab.plots import theme

ROOT = Path(__file__).resolve().parents[1]
EXPLORERS = sorted(n for n in widgets.__all__ if n.endswith("Explorer") and n not in ("Explorer", "RunExplorer"))


# ---------------------------------------------------------------- switching it on


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), (" Yes ", True), ("on", True),
                                             ("0", False), ("", False), ("off", False), ("False", False)])
def test_environment_variable(value, expected):
    assert theme.projector_from_env({"BNLAB_PROJECTOR": value}) is expected


def test_environment_variable_unset_is_normal():
    assert theme.projector_from_env({}) is False


def test_bad_environment_value_is_named(monkeypatch):
    monkeypatch.setenv("BNLAB_PROJECTOR", "maybe")
    with pytest.raises(ValueError, match=r"BNLAB_PROJECTOR='maybe'.*use 1"):
        bnlab.setup_notebook()
    assert not theme.projector()


def test_setup_notebook_follows_the_environment(monkeypatch):
    monkeypatch.setenv("BNLAB_PROJECTOR", "1")
    bnlab.setup_notebook()
    assert theme.projector()
    monkeypatch.setenv("BNLAB_PROJECTOR", "0")
    bnlab.setup_notebook()
    assert not theme.projector()


def test_setup_notebook_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("BNLAB_PROJECTOR", "1")
    bnlab.setup_notebook(projector=False)
    assert not theme.projector()
    monkeypatch.delenv("BNLAB_PROJECTOR")
    bnlab.setup_notebook(projector=True)
    assert theme.projector()


def test_setup_notebook_refuses_a_non_boolean():
    with pytest.raises(TypeError, match="True or False"):
        bnlab.setup_notebook(projector="yes")


def test_style_and_resolution_follow_the_mode():
    assert theme.current_style()["font.size"] == theme.STYLE["font.size"]
    assert theme.figure_dpi() == theme.DPI
    theme.set_projector(True)
    big = theme.current_style()
    for key in ("font.size", "axes.titlesize", "xtick.labelsize", "legend.fontsize", "lines.linewidth",
                "lines.markersize"):
        assert big[key] > theme.STYLE[key], key
    assert theme.figure_dpi() > theme.DPI


# ---------------------------------------------------------------- colours

# Machado, Oliveira & Fernandes (2009), severity 1.0, on linear RGB.
CVD = {
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                     [-0.011820, 0.042940, 0.968881]],
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                   [0.004733, 0.691367, 0.303900]],
    "typical": np.eye(3).tolist(),
}


def _linear(colour):
    c = np.array(to_rgb(colour))
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _contrast_on_white(colour):
    r, g, b = _linear(colour)
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def _lab(linear):
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ np.clip(
        linear, 0, 1)
    xyz = xyz / np.array([0.9505, 1.0, 1.089])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _closest_pair(colours, matrix):
    labs = [_lab(np.array(matrix) @ _linear(c)) for c in colours]
    return min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(labs, 2))


def _projector_features():
    swap = {theme.PALETTE[name]: colour for name, colour in theme.PROJECTOR_COLORS.items()}
    return [swap.get(c, c) for c in theme.FEATURE_COLORS]


def test_projector_colours_stand_out_from_white():
    """WCAG's 3:1 for graphics, for every colour a projector-mode feature or swapped hue can take."""
    for colour in {*_projector_features(), *theme.PROJECTOR_COLORS.values()}:
        assert _contrast_on_white(colour) >= 3.0, colour
    # the normal palette's light hues are what projector mode fixes
    assert _contrast_on_white(theme.PALETTE["orange"]) < 3.0


@pytest.mark.parametrize("vision", sorted(CVD))
def test_projector_colours_stay_colour_blind_safe(vision):
    assert _closest_pair(_projector_features(), CVD[vision]) >= 12.0


def test_projector_colours_keep_their_hue():
    import colorsys

    for name, colour in theme.PROJECTOR_COLORS.items():
        h0 = colorsys.rgb_to_hls(*to_rgb(theme.PALETTE[name]))[0]
        h1 = colorsys.rgb_to_hls(*to_rgb(colour))[0]
        assert abs(h0 - h1) < 0.02, name


# ---------------------------------------------------------------- figures and explorers


def _explorer(name, projector):
    theme.set_projector(projector)
    return getattr(widgets, name)()


def _title_sizes(fig):
    return [ax.title.get_fontsize() for ax in fig.axes if ax.title.get_text()]


def _widths(fig):
    return [line.get_linewidth() for ax in fig.axes for line in ax.lines]


@pytest.mark.parametrize("name", EXPLORERS)
def test_every_explorer_is_larger_in_projector_mode(name):
    normal = _explorer(name, False)
    big = _explorer(name, True)
    small_png = Image.open(io.BytesIO(normal.image.value))
    big_png = Image.open(io.BytesIO(big.image.value))
    assert big_png.width > small_png.width * 1.15 and big_png.height > small_png.height * 1.15
    # text larger relative to the figure, not only more pixels
    ratio = theme.PROJECTOR_DPI / theme.DPI
    for tick_small, tick_big in zip(normal.fig.axes, big.fig.axes):
        size = tick_small.xaxis.get_majorticklabels()[0].get_fontsize() if tick_small.xaxis.get_majorticklabels() else None
        if size:
            assert tick_big.xaxis.get_majorticklabels()[0].get_fontsize() > size
    assert max(_title_sizes(big.fig), default=1) > max(_title_sizes(normal.fig), default=0)
    if _widths(normal.fig):
        assert max(_widths(big.fig)) > max(_widths(normal.fig))
    assert ratio > 1


def _title_boxes(fig):
    renderer = fig.canvas.get_renderer()
    return [(ax, t.get_window_extent(renderer)) for ax in fig.axes
            for t in (ax.title, ax._left_title, ax._right_title) if t.get_text() and t.get_visible()]


@pytest.mark.parametrize("projector", [False, True], ids=["normal", "projector"])
@pytest.mark.parametrize("name", EXPLORERS)
def test_titles_stay_inside_the_figure_and_apart(name, projector):
    explorer = _explorer(name, projector)
    fig = explorer.fig
    boxes = _title_boxes(fig)
    width = fig.bbox.width
    for ax, box in boxes:
        assert box.x0 >= -0.5 and box.x1 <= width + 0.5, f"{ax.get_title()!r} runs off the figure"
        assert box.y1 <= fig.bbox.height + 0.5, f"{ax.get_title()!r} runs off the top"
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        overlap_x = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_y = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert overlap_x <= 0 or overlap_y <= 0, f"{a.get_title()!r} overlaps {b.get_title()!r}"


def test_explorer_chrome_is_larger_in_projector_mode():
    normal = _explorer("ShiftScaleExplorer", False)
    big = _explorer("ShiftScaleExplorer", True)

    def title_html(explorer):
        return next(w.value for w in explorer.widget.children if "<h3" in getattr(w, "value", ""))

    assert "font-size" not in title_html(normal) and "font-size:1.6em" in title_html(big)
    big.error_line = big.show_error("a message")
    assert "1.35em" in big.message.value


def test_emphasis_is_applied_once():
    theme.set_projector(True)
    fig, ax = theme.new_figure()
    (line,) = ax.plot([0, 1], [0, 1], color=theme.PALETTE["orange"], linewidth=2.0)
    dots = ax.scatter([0, 1], [1, 0], s=30, color=theme.PALETTE["sky"])
    theme.emphasize(fig)
    theme.emphasize(fig)
    assert line.get_linewidth() == pytest.approx(3.0)
    assert to_rgb(line.get_color()) == pytest.approx(to_rgb(theme.PROJECTOR_COLORS["orange"]))
    assert dots.get_sizes()[0] == pytest.approx(54.0)
    assert tuple(dots.get_facecolors()[0][:3]) == pytest.approx(to_rgb(theme.PROJECTOR_COLORS["sky"]))
    line.set_linewidth(1.0)  # a builder resets a width: the next pass scales the new one
    theme.emphasize([line])
    assert line.get_linewidth() == pytest.approx(1.5)


def test_emphasis_does_nothing_in_normal_mode():
    fig, ax = theme.new_figure()
    (line,) = ax.plot([0, 1], [0, 1], color=theme.PALETTE["orange"], linewidth=2.0)
    theme.emphasize(fig)
    assert line.get_linewidth() == 2.0 and line.get_color() == theme.PALETTE["orange"]


def test_static_figures_follow_the_mode():
    from bnlab import plots

    seed = bnlab.seed_batch()
    sizes = {}
    for mode in (False, True):
        theme.set_projector(mode)
        z = seed.z.astype(np.float64)
        drawn = plots.plot_batch_stats(z, *bnlab.batch_stats(z))
        sizes[mode] = Image.open(io.BytesIO(plots.render_png(drawn["fig"]))).size
    assert sizes[True][0] > sizes[False][0] * 1.15


def test_every_figure_gets_the_mode_resolution():
    """No builder makes a Figure at a fixed resolution: each uses new_figure or figure_dpi()."""
    offenders = []
    for path in sorted((ROOT / "bnlab").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Figure":
                dpi = [k for k in node.keywords if k.arg == "dpi"]
                if not dpi or "figure_dpi" not in ast.unparse(dpi[0].value):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
