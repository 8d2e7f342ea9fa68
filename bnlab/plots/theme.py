"""The look shared by every figure: one palette, one projector-friendly style, figure making.

One palette (Okabe-Ito, colour-blind safe) and one style live here. Builders
take arrays and an optional ``ax``, get their figure from :func:`figure_for`
(never pyplot's global state), draw, finish each Axes with a title and labels
(:func:`finish_axes`) and return what they drew (a dict of artists) so an
explorer can update them in place.
"""

from __future__ import annotations

from contextlib import contextmanager

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter

__all__ = ["PALETTE", "FEATURE_COLORS", "STYLE", "DPI", "style", "new_figure", "figure_for", "finish_axes",
           "PROJECTOR_COLORS", "PROJECTOR_STYLE", "PROJECTOR_DPI", "PROJECTOR_ENV",
           "set_projector", "projector", "projector_from_env", "current_style", "figure_dpi", "emphasize",
           "fit_titles",
           "padded_limits", "fit_limits", "CompactFormatter",
           "feature_scatter_offsets", "feature_axis", "few_ticks"]


#: Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
    "grey": "#7F7F7F",
}
#: Colours for features 0, 1, 2, ... (distinguishable with any colour-vision deficiency).
FEATURE_COLORS = [PALETTE[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky")]

#: Large fonts and thick lines: readable on a projector from the back of a room.
STYLE = {
    "font.size": 13,
    "axes.titlesize": 14,
    "axes.titleweight": "bold",
    "axes.labelsize": 13,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "lines.linewidth": 2.2,
    "lines.markersize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=FEATURE_COLORS),
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}

#: Default resolution of figures rendered for widgets (pixels = inches * DPI).
DPI = 90


# ---------------------------------------------------------------- projector mode

#: The environment variable that switches projector mode on for a whole class setup
#: (``BNLAB_PROJECTOR=1 jupyter lab``), without editing the notebooks.
PROJECTOR_ENV = "BNLAB_PROJECTOR"

#: Projector mode's colours: the same Okabe-Ito hues, the light ones darkened until each stands
#: out from white by at least 3:1 (WCAG's contrast for graphics), as a washed-out projector needs.
#: Still colour-blind safe: simulated deuteranopia, protanopia and tritanopia keep every pair of
#: feature colours at least 12 CIELAB units apart (the normal palette: 16; tested).
PROJECTOR_COLORS = {
    "orange": "#C68900",
    "vermillion": "#C05500",
    "sky": "#1D97DC",
    "yellow": "#9F950D",
}

#: Projector mode's style on top of :data:`STYLE`: about 30% larger text, thicker lines and axes.
PROJECTOR_STYLE = {
    "font.size": 17,
    "axes.titlesize": 18,
    "axes.labelsize": 17,
    "xtick.labelsize": 15,
    "ytick.labelsize": 15,
    "legend.fontsize": 15,
    "lines.linewidth": 3.4,
    "lines.markersize": 10,
    "axes.linewidth": 1.6,
    "xtick.major.width": 1.6,
    "ytick.major.width": 1.6,
    "xtick.major.size": 6,
    "ytick.major.size": 6,
    "grid.alpha": 0.45,
    "grid.linewidth": 1.0,
}

#: Projector mode's resolution: explorer images about 22% larger (the browser still shrinks an
#: image to the width it has, so it never runs off a slide).
PROJECTOR_DPI = 110

#: How much projector mode thickens lines, enlarges markers and scatter dots drawn with explicit sizes.
_EMPHASIS = {"linewidth": 1.5, "markersize": 1.35, "area": 1.8, "text": 1.2}

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def projector_from_env(environ=None):
    """Projector mode as :data:`PROJECTOR_ENV` asks for it: True, False, or a ValueError naming the value."""
    import os

    value = (os.environ if environ is None else environ).get(PROJECTOR_ENV, "")
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{PROJECTOR_ENV}={value!r} is not understood: use 1 (projector mode) or 0 (normal)")


def _initial_mode():
    try:
        return projector_from_env()
    except ValueError:
        return False  # setup_notebook() reports the bad value


_MODE = {"projector": _initial_mode()}


def set_projector(on=True):
    """Switch projector mode on or off for the figures and explorers made from now on.

    :func:`bnlab.setup_notebook` calls it; figures already made keep their look.
    """
    if not isinstance(on, (bool, np.bool_)):
        raise TypeError(f"projector mode is True or False, got {on!r}")
    _MODE["projector"] = bool(on)


def projector():
    """True when projector mode is on."""
    return _MODE["projector"]


def current_style():
    """The rcParams bnlab's figures use now: :data:`STYLE`, plus :data:`PROJECTOR_STYLE` in projector mode."""
    return {**STYLE, **PROJECTOR_STYLE} if projector() else dict(STYLE)


def figure_dpi():
    """Resolution of new figures: :data:`DPI`, or :data:`PROJECTOR_DPI` in projector mode."""
    return PROJECTOR_DPI if projector() else DPI


def _contrast_map():
    from matplotlib.colors import to_rgb

    return {to_rgb(PALETTE[name]): to_rgb(colour) for name, colour in PROJECTOR_COLORS.items()}


def _strong(colour, table):
    """``colour`` with a light palette hue swapped for its projector shade (alpha kept)."""
    from matplotlib.colors import to_rgba

    if colour is None or (isinstance(colour, str) and colour.lower() == "none"):
        return colour
    rgba = to_rgba(colour)
    key = tuple(round(c, 4) for c in rgba[:3])
    for source, target in table.items():
        if all(abs(a - b) < 2e-3 for a, b in zip(key, source)):
            return (*target, rgba[3])
    return colour


def _strong_array(colours, table):
    colours = np.asarray(colours, dtype=float)
    if colours.ndim != 2 or not len(colours):
        return colours, False
    out = np.array([_strong(tuple(row), table) for row in colours], dtype=float)
    return out, not np.array_equal(out, colours)


def _once(artist, key, current, factor):
    """``current * factor``, unless ``current`` is already the value emphasis set (idempotent)."""
    marks = artist.__dict__.setdefault("_bnlab_emphasis", {})
    current = np.asarray(current, dtype=float)
    if key in marks and marks[key].shape == current.shape and np.allclose(marks[key], current):
        return None
    new = current * factor
    marks[key] = new
    return new


def _emphasize_artist(artist, table):
    from matplotlib.collections import Collection, PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.text import Text

    if isinstance(artist, Line2D):
        width = _once(artist, "lw", artist.get_linewidth(), _EMPHASIS["linewidth"])
        if width is not None:
            artist.set_linewidth(float(width))
        size = _once(artist, "ms", artist.get_markersize(), _EMPHASIS["markersize"])
        if size is not None:
            artist.set_markersize(float(size))
        artist.set_color(_strong(artist.get_color(), table))
        artist.set_markerfacecolor(_strong(artist.get_markerfacecolor(), table))
        artist.set_markeredgecolor(_strong(artist.get_markeredgecolor(), table))
    elif isinstance(artist, Collection):
        widths = _once(artist, "lw", artist.get_linewidths(), _EMPHASIS["linewidth"])
        if widths is not None:
            artist.set_linewidths(widths)
        if isinstance(artist, PathCollection):
            sizes = _once(artist, "area", artist.get_sizes(), _EMPHASIS["area"])
            if sizes is not None:
                artist.set_sizes(sizes)
        faces, changed = _strong_array(artist.get_facecolors(), table)
        if changed:
            artist.set_facecolors(faces)
        edges, changed = _strong_array(artist.get_edgecolors(), table)
        if changed:
            artist.set_edgecolors(edges)
    elif isinstance(artist, Patch):
        artist.set_facecolor(_strong(artist.get_facecolor(), table))
        artist.set_edgecolor(_strong(artist.get_edgecolor(), table))
    elif isinstance(artist, Text):
        artist.set_color(_strong(artist.get_color(), table))
        marked = "size" in artist.__dict__.get("_bnlab_emphasis", {})
        if marked or abs(artist.get_fontsize() - float(current_style()["font.size"])) > 0.01:
            size = _once(artist, "size", artist.get_fontsize(), _EMPHASIS["text"])  # an explicit size
            if size is not None:
                artist.set_fontsize(float(size))


def _emphasize_ticks(ax):
    """Tick labels given an explicit size (``tick_params(labelsize=...)``) grow like the rest."""
    for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        size = getattr(axis, "_major_tick_kw", {}).get("labelsize")
        if isinstance(size, (int, float)):
            new = _once(axis, "labelsize", size, _EMPHASIS["text"])
            if new is not None:
                ax.tick_params(axis=which, labelsize=float(new))
    styled = current_style()
    for key, labels in (("xtick.labelsize", ax.get_xticklabels()), ("ytick.labelsize", ax.get_yticklabels())):
        for label in labels:  # labels given a size of their own (set_xticklabels(..., fontsize=10))
            marked = "size" in label.__dict__.get("_bnlab_emphasis", {})
            if marked or abs(label.get_fontsize() - float(styled[key])) > 0.01:
                size = _once(label, "size", label.get_fontsize(), _EMPHASIS["text"])
                if size is not None:
                    label.set_fontsize(float(size))


def emphasize(target):
    """Projector mode's finishing pass (does nothing in normal mode).

    Thickens lines, enlarges markers, scatter dots, and text drawn at an
    explicit size (once per artist: a
    second pass, or a pass after a builder reset a width, scales from the
    builder's value) and swaps light palette hues for their
    :data:`PROJECTOR_COLORS` shades. ``target`` is a Figure (its axes'
    data artists and legends, not ticks or spines) or a sequence of artists.
    The renderers call it before drawing.
    """
    if not projector():
        return target
    table = _contrast_map()
    if hasattr(target, "axes") and hasattr(target, "savefig"):
        artists = []
        for ax in target.axes:
            _emphasize_ticks(ax)
            artists.extend([*ax.lines, *ax.collections, *ax.patches, *ax.texts])
            legend = ax.get_legend()
            if legend is not None:
                artists.extend(_legend_artists(legend))
        for legend in target.legends:
            artists.extend(_legend_artists(legend))
    else:
        artists = list(target)
    for artist in artists:
        _emphasize_artist(artist, table)
    return target


def fit_titles(fig, gap=24.0, smallest=0.6, only=None):
    """Shrink any axes title wider than the room it has, or reaching above the figure (projector
    mode's larger text; returns True when one changed).

    A title's room runs from halfway to the nearest axes on its left to
    halfway to the nearest axes on its right (less ``gap`` pixels), within
    the figure. An overflowing title's font shrinks to fit, to
    no less than ``smallest`` of its size. Call after a draw (it measures
    the text); draw again when it returns True. With ``only`` (a collection
    of artists), just those titles are checked.
    """
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_position().transformed(fig.transFigure) for ax in fig.axes]
    changed = False
    for ax, box in zip(fig.axes, boxes):
        titles = [t for t in (ax.title, ax._left_title, ax._right_title)
                  if only is None or any(t is artist for artist in only)]
        if not titles:
            continue
        low, high = gap / 4, float(fig.bbox.width) - gap / 4
        for other in boxes:
            if other is box or other.y1 < box.y0 or other.y0 > box.y1:
                continue  # not in the same row
            if other.x1 <= box.x0:
                low = max(low, 0.5 * (other.x1 + box.x0) + gap / 2)
            elif other.x0 >= box.x1:
                high = min(high, 0.5 * (box.x1 + other.x0) - gap / 2)
        for title in titles:
            if not title.get_text() or not title.get_visible():
                continue
            extent = title.get_window_extent(renderer)
            room = high - low
            top = float(fig.bbox.height) - 2.0
            if extent.y1 > top and extent.height > 0:  # above the figure: shrink from its baseline up
                size = title.get_fontsize()
                original = title.__dict__.setdefault("_bnlab_fontsize", size)
                title.set_fontsize(max(size * (top - extent.y0) / extent.height, original * smallest))
                extent = title.get_window_extent(renderer)
                changed = True
            if extent.x0 >= low - 0.5 and extent.x1 <= high + 0.5:
                continue
            if extent.width <= room:  # fits once moved: keep its size, centre it in the room
                title.set_x((0.5 * (low + high) - box.x0) / box.width)
                changed = True
                continue
            size = title.get_fontsize()
            original = title.__dict__.setdefault("_bnlab_fontsize", size)
            title.set_fontsize(max(size * room / extent.width * 0.98, original * smallest))
            title.set_x((0.5 * (low + high) - box.x0) / box.width)
            changed = True
    return changed


def _legend_artists(legend):
    handles = getattr(legend, "legend_handles", None) or getattr(legend, "legendHandles", [])
    return [h for h in handles if h is not None]


@contextmanager
def style():
    """Context in which bnlab's style applies (used by every builder; nothing global changes).

    In projector mode the style is :data:`STYLE` with :data:`PROJECTOR_STYLE` on top.
    """
    with mpl.rc_context(current_style()):
        yield


def new_figure(ncols=1, nrows=1, width=None, height=3.6, **subplot_kw):
    """A styled ``Figure`` with a grid of axes, and no pyplot involved.

    Parameters
    ----------
    ncols, nrows : int
    width, height : float, inches (width defaults to 4.4 per column)

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of Axes, shape (nrows, ncols), squeezed (a single Axes for 1x1)
    """
    width = 4.4 * ncols if width is None else width
    with style():
        fig = Figure(figsize=(width, height * nrows), dpi=figure_dpi(), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False, subplot_kw=subplot_kw or None)
    return fig, (axes[0, 0] if axes.size == 1 else np.squeeze(axes))


def figure_for(axes, ncols, **size):
    """``(fig, axes)``: the given Axes (one, or a sequence) and their figure, or a new figure
    with ``ncols`` axes made by :func:`new_figure` with ``size``."""
    if axes is None:
        return new_figure(ncols, **size)
    if hasattr(axes, "figure"):
        return axes.figure, axes
    return axes[0].figure, axes


def finish_axes(ax, title, xlabel, ylabel, legend=False):
    """Title and axis labels (every figure has them), and optionally a legend."""
    with style():
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if legend:
            ax.legend(loc="best", framealpha=0.85)
    return ax


class CompactFormatter(Formatter):
    """Short tick labels: ``4k`` for 4000, ``1.5M``, ``0.25``, ``−3`` (a true minus), no offset text.

    The number of decimals follows the tick spacing, so neighbouring labels
    always differ; thousands and up get a k/M/G/T suffix. Labels stay a few
    characters wide over any range, so a figure whose layout was frozen after
    its first draw keeps room for them.
    """

    SUFFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))

    def set_locs(self, locs):
        super().set_locs(locs)
        locs = np.asarray(locs, dtype=np.float64)
        locs = locs[np.isfinite(locs)]
        biggest = float(np.max(np.abs(locs))) if locs.size else 1.0
        self._scale, self._suffix = next(((s, x) for s, x in self.SUFFIXES if biggest >= s), (1.0, ""))
        scaled = locs / self._scale
        # the fewest decimals that write every tick exactly (nice ticks need few)
        self._decimals = next((d for d in range(13) if np.allclose(np.round(scaled, d), scaled,
                                                                   rtol=1e-9, atol=1e-12)), 12)
        if self._decimals > 4:  # 0.000002 -> 2e−6
            self._scale, self._suffix = 10.0 ** -self._decimals, f"e\u2212{self._decimals}"
            self._decimals = 0

    def __call__(self, x, pos=None):
        if not hasattr(self, "_decimals"):
            self.set_locs([x])
        text = f"{x / self._scale:.{self._decimals}f}"
        if float(text) == 0:
            return "0"  # never -0, never 0.000
        return text.replace("-", "\u2212") + self._suffix


def padded_limits(values, pad=0.15, minimum_span=1e-9):
    """``(low, high)`` around ``values`` with ``pad`` of the span added on each side."""
    values = np.asarray(values, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    span = max(high - low, minimum_span, 1e-3 * max(abs(low), abs(high)))
    return low - pad * span, high + pad * span


def fit_limits(ax, values, which="y", pad=0.15, shrink=0.05):
    """Change an axis' limits only when the data leave them or fill less than ``shrink`` of them.

    Keeping limits fixed while a slider moves lets :class:`FastRenderer`
    redraw only the data; returns True when the limits changed.
    """
    values = np.asarray(values, dtype=np.float64)
    low, high = (ax.get_ylim if which == "y" else ax.get_xlim)()
    vmin, vmax = float(values.min()), float(values.max())
    inside = low <= vmin and vmax <= high
    if inside and (vmax - vmin) >= shrink * (high - low):
        return False
    (ax.set_ylim if which == "y" else ax.set_xlim)(*padded_limits(values, pad))
    return True


def _sample_offsets(n, width=0.5):
    """Horizontal offsets spreading ``n`` samples of a feature around its tick."""
    return np.zeros(1) if n == 1 else np.linspace(-width / 2, width / 2, n)


def feature_scatter_offsets(values):
    """Scatter positions for a batch drawn per feature.

    Parameters
    ----------
    values : ndarray, shape (N, D)

    Returns
    -------
    offsets : ndarray, shape (N * D, 2)
        ``(feature + small offset per sample, value)`` for every entry, feature by feature.
    colors : list of str, length N * D
        The feature's colour for every entry.

    Introduced in ``notebooks/04_shift_scale_invariance.ipynb``.
    """
    values = np.asarray(values, dtype=np.float64)
    n, d = values.shape
    x = (np.arange(d)[None, :] + _sample_offsets(n)[:, None]).T.ravel()
    y = values.T.ravel()
    colors = [FEATURE_COLORS[j % len(FEATURE_COLORS)] for j in range(d) for _ in range(n)]
    return np.column_stack([x, y]), colors


def few_ticks(ax, nbins=5):
    """At most ``nbins`` round ticks per axis with short labels: readable, and fast to redraw."""
    from matplotlib.ticker import MaxNLocator

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))
        axis.set_major_formatter(CompactFormatter())
    return ax


def feature_axis(ax, d):
    from matplotlib.ticker import MaxNLocator

    # few, round, short labels: readable from the back of a room, a faster redraw, and as
    # wide at z' = 1000 z as at z (the layout is frozen after the first draw)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
    ax.yaxis.set_major_formatter(CompactFormatter())
    ax.set_xticks(range(d))
    ax.set_xticklabels([str(j) for j in range(d)])
    ax.set_xlim(-0.6, d - 0.4)
    ax.grid(False, axis="x")
