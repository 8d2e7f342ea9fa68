"""Figures behind notebook 09: the family as cubes, a small tensor's shared statistics, batch size.

The Group Norm paper's Figure 2 (Wu & He 2018) draws a feature map as a cube
with the axes N (samples), C (channels) and H, W (positions, one axis) and
shades the values that share one mean and variance: BN over (N, H, W), LN
over (C, H, W), IN over (H, W), GN over (C/G, H, W). :func:`plot_norm_family`
draws the four cubes (an oblique projection on a plain 2-D Axes: one polygon
collection per cube, so an explorer updates it in microseconds);
:func:`plot_tensor_values` lays a small tensor out sample by sample with the
shared values shaded; :func:`plot_batch_size_figure` is the paper's Figure 1
(error against batch size) next to the digits-scale version measured by
:func:`bnlab.train.batch_size_experiment`.
"""

from __future__ import annotations

import numbers

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle

from ..train import NORM_LABELS
from .theme import PALETTE, figure_for, finish_axes, new_figure, style

__all__ = [
    "FAMILY_METHODS", "FAMILY_NAMES", "FAMILY_AXES", "GN_PAPER_ERROR", "BATCH_SIZE_STYLES",
    "statistics_groups", "sharing_mask",
    "plot_norm_cube", "update_norm_cube", "plot_norm_family",
    "plot_tensor_values", "update_tensor_values",
    "plot_batch_size_accuracy", "update_batch_size_run", "plot_gn_paper", "plot_batch_size_figure",
]

#: The four methods of the Group Norm paper's Figure 2, in its order.
FAMILY_METHODS = ("batch", "layer", "instance", "group")
#: Their names.
FAMILY_NAMES = {"batch": "Batch Norm", "layer": "Layer Norm", "instance": "Instance Norm",
                "group": "Group Norm"}
#: The axes of an (N, C, H, W) map whose values share one mean and variance.
FAMILY_AXES = {"batch": "(N, H, W)", "layer": "(C, H, W)", "instance": "(H, W)", "group": "(C/G, H, W)"}

#: Wu & He (2018), Fig. 1 / Table 2: ResNet-50 ImageNet top-1 error (%) by images per GPU.
GN_PAPER_ERROR = {
    "BN": {32: 23.6, 16: 23.7, 8: 24.8, 4: 27.3, 2: 34.7},
    "GN": {32: 24.1, 16: 24.2, 8: 24.0, 4: 24.2, 2: 24.1},
}

#: Colour, line style and marker of each normalization in the batch-size figures (keys: NORM_LABELS).
BATCH_SIZE_STYLES = {
    "BN": (PALETTE["blue"], "-", "o"),
    "LN": (PALETTE["orange"], "--", "s"),
    "GN": (PALETTE["green"], "-.", "^"),
    "RMSNorm": (PALETTE["purple"], ":", "D"),
    "IN": (PALETTE["sky"], ":", "v"),
    "no norm": (PALETTE["grey"], ":", "x"),
}

# face shades: (front, top, side) of the shared block, and of the chosen voxel (Okabe-Ito blues, oranges)
_SHARED_SHADES = ("#0072B2", "#56B4E9", "#00588A")
_CHOSEN_SHADES = ("#D55E00", "#E69F00", "#A34800")
# the oblique projection: depth (C) recedes up and to the right
_DEPTH = 0.5 * np.array([np.cos(np.radians(35)), np.sin(np.radians(35))])


# ---------------------------------------------------------------------------------------------
# which values share statistics

def _check_shape(shape):
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be three sizes (N, C, positions), got {shape!r}") from None
    if len(dims) != 3 or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in dims):
        raise ValueError(f"shape must be three positive ints (N, C, positions), got {shape!r}")
    return tuple(int(d) for d in dims)


def _check_method(method):
    if method not in FAMILY_METHODS or isinstance(method, bool):
        raise ValueError(f"method must be one of {list(FAMILY_METHODS)}, got {method!r}")
    return method


def _check_groups(num_groups, channels):
    if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral) or num_groups < 1:
        raise ValueError(f"num_groups must be a positive int, got {num_groups!r}")
    if channels % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide the number of channels C={channels}")
    return int(num_groups)


def statistics_groups(method, shape, num_groups=2):
    """Which mean and variance each value of an (N, C, positions) tensor is normalized with.

    Parameters
    ----------
    method : {"batch", "layer", "instance", "group"}
    shape : (int, int, int)
        ``(N, C, P)``: samples, channels and positions (H * W flattened).
    num_groups : int, default 2
        ``G`` of group norm (must divide C); ignored by the others.

    Returns
    -------
    groups : ndarray of int, shape (N, C, P)
        Values with the same number share one mean and variance: BN one
        group per channel, LN one per sample, IN one per (sample, channel),
        GN one per (sample, group of C/G channels).

    Introduced in notebook 09 (the normalization family).
    """
    n, c, p = _check_shape(shape)
    method = _check_method(method)
    sample = np.arange(n)[:, None, None]
    channel = np.arange(c)[None, :, None]
    if method == "batch":
        groups = channel + 0 * sample
    elif method == "layer":
        groups = sample + 0 * channel
    elif method == "instance":
        groups = sample * c + channel
    else:
        g = _check_groups(num_groups, c)
        groups = sample * g + channel // (c // g)
    return np.broadcast_to(groups, (n, c, p)).copy()


def sharing_mask(method, shape, voxel, num_groups=2):
    """The values that share their mean and variance with ``voxel``.

    Parameters
    ----------
    method : {"batch", "layer", "instance", "group"}
    shape : (int, int, int)
        ``(N, C, P)``.
    voxel : (int, int, int)
        ``(n, c, p)``: sample, channel and position of one value.
    num_groups : int, default 2
        ``G`` of group norm.

    Returns
    -------
    mask : ndarray of bool, shape (N, C, P)

    Introduced in notebook 09 (the normalization family).
    """
    groups = statistics_groups(method, shape, num_groups)
    return groups == groups[_check_voxel(voxel, groups.shape)]


def _check_voxel(voxel, shape):
    try:
        index = tuple(voxel)
    except TypeError:
        raise TypeError(f"voxel must be (n, c, p), got {voxel!r}") from None
    if len(index) != 3 or any(isinstance(i, bool) or not isinstance(i, numbers.Integral) for i in index):
        raise ValueError(f"voxel must be three ints (n, c, p), got {voxel!r}")
    for i, size, name in zip(index, shape, ("n", "c", "p")):
        if not 0 <= i < size:
            raise ValueError(f"voxel {name}={i} is outside 0..{size - 1} (shape {shape})")
    return tuple(int(i) for i in index)


# ---------------------------------------------------------------------------------------------
# the cube

def _point(x, height, depth):
    return (x + depth * _DEPTH[0], height + depth * _DEPTH[1])


def _face(kind, n, height, c):
    """Corners of one visible face of the voxel at (n, height, c) (height counted from the bottom)."""
    if kind == "front":
        corners = [(n, height, c), (n + 1, height, c), (n + 1, height + 1, c), (n, height + 1, c)]
    elif kind == "top":
        corners = [(n, height + 1, c), (n + 1, height + 1, c), (n + 1, height + 1, c + 1),
                   (n, height + 1, c + 1)]
    else:  # the right side
        corners = [(n + 1, height, c), (n + 1, height, c + 1), (n + 1, height + 1, c + 1),
                   (n + 1, height + 1, c)]
    return [_point(*corner) for corner in corners]


def _cube_faces(mask, chosen):
    """Polygons and colours of the shaded voxels, back to front, without faces between two of them."""
    n_size, c_size, p_size = mask.shape
    verts, colours = [], []
    # painter's order: deeper channels first, then from the bottom up, then left to right
    cells = sorted(zip(*np.nonzero(mask)), key=lambda v: (-v[1], p_size - 1 - v[2], v[0]))
    for n, c, p in cells:
        height = p_size - 1 - p  # position 0 at the top, like an image's first row
        shades = _CHOSEN_SHADES if (n, c, p) == chosen else _SHARED_SHADES
        neighbours = {"front": (n, c - 1, p), "top": (n, c, p - 1), "side": (n + 1, c, p)}
        for kind, shade in zip(("front", "top", "side"), shades):
            m, k, q = neighbours[kind]
            inside = 0 <= m < n_size and 0 <= k < c_size and 0 <= q < p_size
            if inside and mask[m, k, q] and (m, k, q) != chosen and (n, c, p) != chosen:
                continue  # an inner face of the shaded block
            verts.append(_face(kind, n, height, c))
            colours.append(shade)
    return verts, colours


def _grid_lines(shape, faces):
    """Segments of the voxel grid on the named faces of the cube (front, top, side, back, left, bottom)."""
    n_size, c_size, p_size = shape
    segments = []
    for face in faces:
        if face in ("front", "back"):
            depth = 0 if face == "front" else c_size
            segments += [[_point(i, 0, depth), _point(i, p_size, depth)] for i in range(n_size + 1)]
            segments += [[_point(0, j, depth), _point(n_size, j, depth)] for j in range(p_size + 1)]
        elif face in ("top", "bottom"):
            height = p_size if face == "top" else 0
            segments += [[_point(i, height, 0), _point(i, height, c_size)] for i in range(n_size + 1)]
            segments += [[_point(0, height, k), _point(n_size, height, k)] for k in range(c_size + 1)]
        else:  # side (right) or left
            x = n_size if face == "side" else 0
            segments += [[_point(x, j, 0), _point(x, j, c_size)] for j in range(p_size + 1)]
            segments += [[_point(x, 0, k), _point(x, p_size, k)] for k in range(c_size + 1)]
    return segments


def _voxel_edges(n, c, p, p_size):
    """The 12 edges of one voxel (to ring the chosen one even where others hide it)."""
    height = p_size - 1 - p
    corners = {(i, j, k): _point(n + i, height + j, c + k) for i in (0, 1) for j in (0, 1) for k in (0, 1)}
    edges = []
    for (i, j, k), start in corners.items():
        for step in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
            other = (i + step[0], j + step[1], k + step[2])
            if other in corners:
                edges.append([start, corners[other]])
    return edges


def _cube_title(method, num_groups):
    name = FAMILY_NAMES[method] + (f" (G = {num_groups})" if method == "group" else "")
    return f"{name}\nshared over {FAMILY_AXES[method]}"


def plot_norm_cube(method, shape=(4, 6, 5), voxel=(0, 0, 0), num_groups=2, ax=None, title=None,
                   axis_labels=True):
    """One cube of the Group Norm paper's Figure 2: the values sharing ``voxel``'s mean and variance, shaded.

    Parameters
    ----------
    method : {"batch", "layer", "instance", "group"}
    shape : (int, int, int), default (4, 6, 5)
        ``(N, C, P)``: the cube is N voxels wide, C deep and P (= H * W) high.
    voxel : (int, int, int), default (0, 0, 0)
        ``(n, c, p)``; drawn in orange, the rest of its group in blue.
        Sample 0 is on the left, channel 0 at the front, position 0 at the top.
    num_groups : int, default 2
    ax : Axes, optional
    title : str, optional
        Default: the method's name and its axes.
    axis_labels : bool, default True
        Write N, C and "H, W" along the cube's edges.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"faces"`` (PolyCollection of the shaded
        voxels' faces), ``"front_grid"`` (LineCollection drawn over them),
        ``"title"`` (Text), ``"mask"`` (bool, shape (N, C, P)), ``"shape"``.

    Introduced in notebook 09 (the normalization family).
    """
    shape = _check_shape(shape)
    fig, ax = figure_for(ax, 1, width=3.6, height=3.8)
    n_size, c_size, p_size = shape
    drawn = {"fig": fig, "ax": ax, "shape": shape}
    with style():
        # the hidden faces' grid, seen through the glass; the shaded voxels; the visible faces' grid on top
        ax.add_collection(PolyCollection(
            [[_point(0, 0, c_size), _point(n_size, 0, c_size), _point(n_size, p_size, c_size),
              _point(0, p_size, c_size)]], facecolors=[to_rgba(PALETTE["grey"], 0.08)], edgecolors="none"))
        ax.add_collection(LineCollection(_grid_lines(shape, ("back", "left", "bottom")),
                                         colors=[to_rgba(PALETTE["grey"], 0.35)], linewidths=0.6))
        drawn["faces"] = PolyCollection([], edgecolors=[to_rgba("white", 0.7)], linewidths=0.5, zorder=3)
        ax.add_collection(drawn["faces"])
        drawn["front_grid"] = LineCollection(_grid_lines(shape, ("front", "top", "side")),
                                             colors=[to_rgba("#404040", 0.55)], linewidths=0.7, zorder=4)
        ax.add_collection(drawn["front_grid"])
        drawn["chosen"] = LineCollection([], colors=[PALETTE["vermillion"]], linewidths=2.2, zorder=5)
        ax.add_collection(drawn["chosen"])
        corners = np.array([_point(x, y, z) for x in (0, n_size) for y in (0, p_size) for z in (0, c_size)])
        low, high = corners.min(axis=0), corners.max(axis=0)
        ax.set_xlim(low[0] - 1.4, high[0] + 0.4)
        ax.set_ylim(low[1] - 1.2, high[1] + 0.3)
        ax.set_aspect("equal")
        if axis_labels:
            arrow = dict(arrowstyle="->", color=PALETTE["black"], lw=1.2)
            ax.annotate("", xy=(n_size, -0.45), xytext=(0, -0.45), arrowprops=arrow)
            ax.text(n_size / 2, -0.6, "N", ha="center", va="top", fontsize=13)
            ax.annotate("", xy=(-0.45, 0), xytext=(-0.45, p_size), arrowprops=arrow)
            ax.text(-0.6, p_size / 2, "H, W", ha="right", va="center", fontsize=13, rotation=90)
            start = np.array(_point(n_size, 0, 0)) + (0.35, -0.2)
            end = np.array(_point(n_size, 0, c_size)) + (0.35, -0.2)
            ax.annotate("", xy=tuple(end), xytext=tuple(start), arrowprops=arrow)
            ax.text(*(0.5 * (start + end) + (0.25, -0.15)), "C", ha="left", va="top", fontsize=13)
        finish_axes(ax, title or "", "", "")
        ax.set_axis_off()
        drawn["title"] = ax.title
    update_norm_cube(drawn, method, voxel, num_groups, title=title)
    return drawn


def update_norm_cube(drawn, method, voxel, num_groups=2, title=None):
    """Shade the values sharing ``voxel``'s statistics on a :func:`plot_norm_cube` cube.

    Returns the mask (bool, shape (N, C, P)).

    Introduced in notebook 09 (the normalization family).
    """
    mask = sharing_mask(method, drawn["shape"], voxel, num_groups)
    chosen = _check_voxel(voxel, drawn["shape"])
    verts, colours = _cube_faces(mask, chosen)
    drawn["faces"].set_verts(verts)
    drawn["faces"].set_facecolors(colours)
    drawn["chosen"].set_segments(_voxel_edges(*chosen, drawn["shape"][2]))
    drawn["title"].set_text(title or _cube_title(method, num_groups))
    drawn["mask"] = mask
    return mask


def plot_norm_family(shape=(4, 6, 5), voxel=(0, 0, 0), num_groups=2, axes=None):
    """The Group Norm paper's Figure 2: BN, LN, IN and GN as cubes, the values sharing statistics shaded.

    Parameters
    ----------
    shape : (int, int, int), default (4, 6, 5)
        ``(N, C, P)`` of each cube.
    voxel : (int, int, int), default (0, 0, 0)
        The value whose group is shaded (orange; the rest of the group blue).
    num_groups : int, default 2
        ``G`` of the group-norm cube.
    axes : sequence of 4 Axes, optional

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"cubes"`` (method -> dict from
        :func:`plot_norm_cube`), ``"masks"`` (method -> bool mask).

    Introduced in notebook 09 (the normalization family).
    """
    fig, axes = figure_for(axes, 4, width=13.0, height=4.3)
    axes = list(np.ravel(axes))
    cubes = {method: plot_norm_cube(method, shape, voxel, num_groups, ax=ax)
             for method, ax in zip(FAMILY_METHODS, axes)}
    with style():
        fig.suptitle("Which values share one mean and variance (after Wu & He 2018, Fig. 2)",
                     fontsize=14, fontweight="bold")
    return {"fig": fig, "axes": axes, "cubes": cubes,
            "masks": {method: cube["mask"] for method, cube in cubes.items()}}


# ---------------------------------------------------------------------------------------------
# the tensor, sample by sample

_BLOCK_GAP = 0.8


def _cell_origin(n, c, p, positions):
    return n * (positions + _BLOCK_GAP) + p, c


def plot_tensor_values(x, mask=None, voxel=None, ax=None, title="x, sample by sample", decimals=0):
    """A small (N, C, P) tensor as N blocks of C rows and P columns, every value written, a group shaded.

    Parameters
    ----------
    x : ndarray, shape (N, C, P)
    mask : ndarray of bool, shape (N, C, P), optional
        Values to shade (blue); default none.
    voxel : (int, int, int), optional
        The value to ring (orange).
    ax : Axes, optional
    title : str
    decimals : int, default 0
        Decimals of the written values.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"cells"`` (PolyCollection, one square per
        value in C order), ``"ring"`` (Rectangle), ``"title"`` (Text), ``"shape"``.

    Introduced in notebook 09 (the normalization family).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, C, P), got {x.shape}")
    n_size, c_size, p_size = x.shape
    fig, ax = figure_for(ax, 1, width=7.0, height=3.6)
    drawn = {"fig": fig, "ax": ax, "shape": x.shape}
    squares = []
    with style():
        for n in range(n_size):
            for c in range(c_size):
                for p in range(p_size):
                    x0, y0 = _cell_origin(n, c, p, p_size)
                    squares.append([(x0, y0), (x0 + 1, y0), (x0 + 1, y0 + 1), (x0, y0 + 1)])
                    value = x[n, c, p]
                    ax.text(x0 + 0.5, y0 + 0.5, f"{value:.{decimals}f}".replace("-", "\u2212"),
                            ha="center", va="center", fontsize=11)
        drawn["cells"] = PolyCollection(squares, facecolors=[(1, 1, 1, 0)], edgecolors="none", zorder=0.5)
        ax.add_collection(drawn["cells"])
        outlines = []
        for n in range(n_size):
            left = n * (p_size + _BLOCK_GAP)
            outlines += [[(left + p, 0), (left + p, c_size)] for p in range(p_size + 1)]
            outlines += [[(left, c), (left + p_size, c)] for c in range(c_size + 1)]
            ax.text(left + p_size / 2, -0.25, f"sample {n}", ha="center", va="bottom", fontsize=12)
        ax.add_collection(LineCollection(outlines, colors=[to_rgba(PALETTE["grey"], 0.6)], linewidths=0.6))
        drawn["ring"] = Rectangle((0, 0), 1, 1, fill=False, edgecolor=PALETTE["vermillion"], linewidth=3,
                                  zorder=5, visible=False)
        ax.add_patch(drawn["ring"])
        width = n_size * (p_size + _BLOCK_GAP) - _BLOCK_GAP
        ax.set_xlim(-0.1, width + 0.1)
        ax.set_ylim(c_size + 0.1, -1.0)
        ax.set_xticks([n * (p_size + _BLOCK_GAP) + p + 0.5 for n in range(n_size) for p in range(p_size)])
        ax.set_xticklabels([str(p) for _ in range(n_size) for p in range(p_size)], fontsize=10)
        ax.set_yticks([c + 0.5 for c in range(c_size)])
        ax.set_yticklabels([str(c) for c in range(c_size)])
        ax.tick_params(length=0)
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        finish_axes(ax, title, "position p (H, W flattened) within each sample", "channel c")
        drawn["title"] = ax.title
    update_tensor_values(drawn, mask, voxel, title=title)
    return drawn


def update_tensor_values(drawn, mask=None, voxel=None, title=None):
    """Shade ``mask`` and ring ``voxel`` on a :func:`plot_tensor_values` panel (None: none).

    Introduced in notebook 09 (the normalization family).
    """
    shape = drawn["shape"]
    colours = np.zeros((int(np.prod(shape)), 4))
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != shape:
            raise ValueError(f"mask must have shape {shape}, got {mask.shape}")
        colours[mask.ravel()] = to_rgba(PALETTE["sky"], 0.55)
    drawn["cells"].set_facecolors(colours)
    ring = drawn["ring"]
    if voxel is None:
        ring.set_visible(False)
    else:
        n, c, p = _check_voxel(voxel, shape)
        ring.set_xy(_cell_origin(n, c, p, shape[2]))
        ring.set_visible(True)
    if title is not None:
        drawn["title"].set_text(title)


# ---------------------------------------------------------------------------------------------
# batch size

def _log2_batch_axis(ax, batch_sizes):
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(batch_sizes))
    ax.set_xticklabels([str(b) for b in batch_sizes])
    ax.minorticks_off()
    ax.set_xlim(min(batch_sizes) / 1.25, max(batch_sizes) * 1.25)


def plot_batch_size_accuracy(result, ax=None, title=None, run_marker=False):
    """Test accuracy against batch size, one line per normalization (the GN paper's Figure 1 on the digits).

    Parameters
    ----------
    result : BatchSizeResult
        From :func:`bnlab.train.batch_size_experiment`; each line is the mean
        over its seeds (a diverged run, NaN, is left out of the mean).
    ax : Axes, optional
    title : str, optional
    run_marker : bool, default False
        Add a hidden marker (``"run"``) an explorer moves to its own run.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"lines"`` (label -> Line2D, accuracy in %),
        ``"run"`` (Line2D or None), ``"run_label"`` (Text or None).

    Introduced in notebook 09 (the normalization family).
    """
    fig, ax = figure_for(ax, 1, width=6.2, height=4.2)
    drawn = {"fig": fig, "ax": ax, "lines": {}, "run": None, "run_label": None}
    sizes = list(result.batch_sizes)
    lowest = 100.0
    with style():
        for method in result.methods:
            label = NORM_LABELS[method]
            colour, dash, marker = BATCH_SIZE_STYLES.get(label, (PALETTE["black"], "-", "o"))
            per_seed = np.asarray(result.accuracy[result.methods.index(method)], dtype=np.float64)
            finite = np.isfinite(per_seed)
            with np.errstate(all="ignore"):  # a batch size where every seed diverged: NaN, no warning
                accuracy = 100.0 * np.where(finite, per_seed, 0.0).sum(axis=-1) / finite.sum(axis=-1)
            (line,) = ax.plot(sizes, accuracy, color=colour, linestyle=dash, marker=marker, label=label,
                              markersize=8)
            drawn["lines"][label] = line
            if np.isfinite(accuracy).any():
                lowest = min(lowest, float(np.nanmin(accuracy)))
        if run_marker:
            (drawn["run"],) = ax.plot([], [], linestyle="none", marker="*", markersize=20,
                                      markeredgecolor=PALETTE["black"], color=PALETTE["vermillion"],
                                      zorder=6, label="your run")
            drawn["run_label"] = ax.text(0, 0, "", fontsize=11, ha="left", va="center", zorder=7,
                                         visible=False, bbox=dict(facecolor="white", edgecolor="none",
                                                                  alpha=0.85, pad=2))
        _log2_batch_axis(ax, sizes)
        ax.set_ylim(max(0.0, 10 * np.floor(lowest / 10) - 10), 100)
        epochs = result.config.get("epochs")
        seeds = len(result.seeds)
        finish_axes(ax, title or f"digits: {epochs} epochs, lr ∝ batch size, "
                                 f"{seeds} seed{'s' if seeds > 1 else ''}",
                    "batch size (samples per step)", "test accuracy (%, eval mode)")
        ax.legend(loc="lower right", framealpha=0.9)
    return drawn


def update_batch_size_run(drawn, batch_size, accuracy, label=None):
    """Put the ``"run"`` marker of a :func:`plot_batch_size_accuracy` panel at (batch_size, accuracy in [0, 1]).

    ``batch_size=None`` hides it. Returns True when the x limits changed.

    Introduced in notebook 09 (the normalization family).
    """
    run, text, ax = drawn["run"], drawn["run_label"], drawn["ax"]
    if run is None:
        raise ValueError("this panel was drawn without run_marker=True")
    if batch_size is None or accuracy is None or not np.isfinite(accuracy):
        run.set_data([], [])
        text.set_visible(False)
        return False
    run.set_data([batch_size], [100.0 * accuracy])
    if accuracy > 0.75:  # up among the curves: the label goes below the star, inside the axes
        low, high = np.log(ax.get_xlim())
        where = (np.log(batch_size) - low) / (high - low)
        text.set_position((batch_size, 100.0 * accuracy - 7))
        text.set_horizontalalignment("left" if where < 0.2 else "right" if where > 0.8 else "center")
        text.set_verticalalignment("top")
    else:
        text.set_position((batch_size * 1.15, 100.0 * accuracy))
        text.set_horizontalalignment("left")
        text.set_verticalalignment("center")
    text.set_text(label or f"{100 * accuracy:.1f} %")
    text.set_visible(True)
    low, high = ax.get_xlim()
    changed = False
    if not low < batch_size < high:
        ax.set_xlim(min(low, batch_size / 1.25), max(high, batch_size * 1.25))
        changed = True
    bottom = ax.get_ylim()[0]
    if 100.0 * accuracy < bottom + 2:
        ax.set_ylim(max(0.0, 10 * np.floor(100 * accuracy / 10) - 10), 100)
        changed = True
    return changed


def plot_gn_paper(ax=None):
    """The Group Norm paper's Figure 1: ResNet-50 ImageNet error (%) against images per GPU, BN and GN.

    Parameters
    ----------
    ax : Axes, optional

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"lines"`` (``"BN"``, ``"GN"`` -> Line2D).

    Notes
    -----
    The numbers are :data:`GN_PAPER_ERROR` (Wu & He 2018, Table 2).

    Introduced in notebook 09 (the normalization family).
    """
    fig, ax = figure_for(ax, 1, width=6.2, height=4.2)
    drawn = {"fig": fig, "ax": ax, "lines": {}}
    with style():
        for label, errors in GN_PAPER_ERROR.items():
            colour, dash, marker = BATCH_SIZE_STYLES[label]
            sizes = sorted(errors)
            (drawn["lines"][label],) = ax.plot(sizes, [errors[b] for b in sizes], color=colour,
                                               linestyle=dash, marker=marker, markersize=8, label=label)
        _log2_batch_axis(ax, sorted(GN_PAPER_ERROR["BN"]))
        ax.set_ylim(20, 37)
        finish_axes(ax, "Wu & He 2018: ResNet-50, ImageNet", "batch size (images per GPU)",
                    "top-1 error (%, lower is better)")
        ax.legend(loc="upper right", framealpha=0.9)
    return drawn


def plot_batch_size_figure(result):
    """The paper's Figure 1 (left) beside the digits-scale measurement ``result`` (right).

    Parameters
    ----------
    result : BatchSizeResult
        From :func:`bnlab.train.batch_size_experiment`.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"paper"`` (from :func:`plot_gn_paper`),
        ``"digits"`` (from :func:`plot_batch_size_accuracy`).

    Introduced in notebook 09 (the normalization family).
    """
    fig, axes = new_figure(2, width=12.4, height=4.3)
    return {"fig": fig, "axes": list(axes), "paper": plot_gn_paper(ax=axes[0]),
            "digits": plot_batch_size_accuracy(result, ax=axes[1])}
