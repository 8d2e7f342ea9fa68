"""Figures to PNG bytes, fast: :func:`render_png` once, :class:`FastRenderer` on every slider move."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg

from .theme import style

__all__ = ["render_png", "FastRenderer"]


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
    if freeze_layout and _has_active_layout(fig):
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
                if _has_active_layout(self.fig):
                    # the draw above applied the layout; keep it fixed from now on
                    self.fig.set_layout_engine("none")
                self._background = canvas.copy_from_bbox(self.fig.bbox)
                self._limits = self._axes_limits()
            else:
                canvas.restore_region(self._background)
            renderer = canvas.get_renderer()
            for artist in self.dynamic:
                if artist.get_visible():
                    artist.draw(renderer)
        return _encode_png(canvas)


def _has_active_layout(fig):
    """True while a real layout engine (not the placeholder left by freezing) is set."""
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    engine = fig.get_layout_engine()
    return engine is not None and not isinstance(engine, PlaceHolderLayoutEngine)


def _encode_png(canvas):
    from PIL import Image  # pillow ships with matplotlib

    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="png", compress_level=1)
    return buf.getvalue()


