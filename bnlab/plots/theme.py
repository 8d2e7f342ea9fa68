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


@contextmanager
def style():
    """Context in which bnlab's style applies (used by every builder; nothing global changes)."""
    with mpl.rc_context(STYLE):
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
        fig = Figure(figsize=(width, height * nrows), dpi=DPI, layout="constrained")
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
