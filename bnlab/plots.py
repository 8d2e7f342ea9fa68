"""Figure builders on ``matplotlib.figure.Figure`` (never pyplot's global state).

One palette (Okabe-Ito, colour-blind safe) and one projector-friendly style
live here. Builders take arrays and an optional ``ax``, draw, and return what
they drew (a dict of artists) so an explorer can update them in place;
:func:`render_png` turns a figure into PNG bytes for an ``ipywidgets.Image``.
"""

from __future__ import annotations

import io
from contextlib import contextmanager

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "PALETTE",
    "FEATURE_COLORS",
    "STYLE",
    "style",
    "new_figure",
    "render_png",
    "finish_axes",
    "FastRenderer",
]

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


def finish_axes(ax, title, xlabel, ylabel, legend=False):
    """Title and axis labels (every figure has them), and optionally a legend."""
    with style():
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if legend:
            ax.legend(loc="best", framealpha=0.85)
    return ax


def render_png(fig, freeze_layout=True):
    """PNG bytes of ``fig`` (fast settings, for ``ipywidgets.Image``).

    The first call lays the figure out with its layout engine; with
    ``freeze_layout`` the layout is then kept fixed, so later renders (after
    artists were updated in place) skip the layout computation and the axes
    do not jump around while a slider moves.
    """
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=fig.dpi, pil_kwargs={"compress_level": 1})
    if freeze_layout and fig.get_layout_engine() is not None:
        fig.set_layout_engine("none")
    return buf.getvalue()


class FastRenderer:
    """Re-render a figure quickly after some of its artists changed (blitting).

    The static part (axes, ticks, labels, anything not registered) is drawn
    once and kept as a bitmap; each :meth:`png` call restores that bitmap,
    draws only the registered ``dynamic`` artists on top, and encodes the PNG.
    When any axes' limits changed since the background was drawn (or
    ``full=True``), everything is redrawn first. This is what lets a slider
    answer in a few tens of milliseconds (a full matplotlib redraw of a
    three-panel figure takes about 50 ms, most of it ticks and labels).

    Parameters
    ----------
    fig : Figure (from :func:`new_figure`)
    dynamic : iterable of Artist
        Artists whose data change between renders (bars, lines, texts, titles
        with changing text). They are set ``animated`` so the background
        excludes them.
    """

    def __init__(self, fig, dynamic=()):
        self.fig = fig
        if not isinstance(fig.canvas, FigureCanvasAgg):
            FigureCanvasAgg(fig)
        self.dynamic = []
        self._background = None
        self._limits = None
        self.add(*dynamic)

    def add(self, *artists):
        """Register more dynamic artists (their next render redraws everything once)."""
        for artist in artists:
            artist.set_animated(True)
            self.dynamic.append(artist)
        self._background = None

    def _axes_limits(self):
        return tuple((tuple(ax.get_xlim()), tuple(ax.get_ylim())) for ax in self.fig.axes)

    def png(self, full=False):
        """PNG bytes of the figure as it is now."""
        canvas = self.fig.canvas
        with style():
            limits = self._axes_limits()
            if full or self._background is None or limits != self._limits:
                canvas.draw()  # lays out (first time) and draws all but the animated artists
                if self.fig.get_layout_engine() is not None:
                    self.fig.set_layout_engine("none")  # keep the layout fixed from now on
                    canvas.draw()
                self._background = canvas.copy_from_bbox(self.fig.bbox)
                self._limits = self._axes_limits()
            else:
                canvas.restore_region(self._background)
            renderer = canvas.get_renderer()
            for artist in self.dynamic:
                if artist.get_visible():
                    artist.draw(renderer)
        return _encode_png(canvas)


def _encode_png(canvas):
    from PIL import Image  # pillow ships with matplotlib

    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="png", compress_level=1)
    return buf.getvalue()
