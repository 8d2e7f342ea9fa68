"""Figures to PNG bytes, fast: :func:`render_png` once, :class:`FastRenderer` on every slider move."""

from __future__ import annotations

import io
import struct
import zlib
from collections import OrderedDict

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from .theme import emphasize, fit_titles, projector, style

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
    emphasize(fig)
    with style():
        if projector():
            fig.canvas.draw()  # lay out, then shrink the titles the larger text made too wide
            fit_titles(fig)
        fig.savefig(buf, format="png", dpi=fig.dpi, pil_kwargs={"compress_level": 1})
    if freeze_layout and _has_active_layout(fig):
        fig.set_layout_engine("none")
    return buf.getvalue()


class FastRenderer:
    """Re-render a figure quickly after some of its artists changed (blitting).

    The static part (axes, ticks, labels, anything not registered) is drawn
    once and kept as a bitmap; each :meth:`png` call restores that bitmap,
    draws only the registered ``dynamic`` artists on top, and encodes the PNG.
    When some axes' limits changed since the background was drawn, only those
    axes are redrawn into the bitmap (their area, ticks and labels included,
    is cleared first); everything is redrawn when ``full=True``, on the first
    render, or when a changed axes' area would touch another axes or a
    figure-level artist. This is what lets a slider answer in a few tens of
    milliseconds: a full matplotlib redraw of a three-panel figure takes about
    50 ms, most of it ticks and labels, and a jump of a slider usually rescales
    one panel, not all of them.

    Parameters
    ----------
    fig : Figure (from :func:`new_figure`)
    dynamic : iterable of Artist
        Artists whose data change between renders (bars, lines, texts, titles
        with changing text). They are set ``animated`` so the background
        excludes them.

    Attributes
    ----------
    full_redraws, partial_redraws : int
        How many renders redrew the whole figure, and how many only the axes
        whose limits changed.
    """

    #: Cell bitmaps kept for limits seen before (a slider swept back and forth redraws nothing).
    CACHED_CELLS = 12

    def __init__(self, fig, dynamic=()):
        self.fig = fig
        if not isinstance(fig.canvas, FigureCanvasAgg):
            FigureCanvasAgg(fig)
        self.dynamic = []
        self._background = None
        self._limits = None
        self._cells = None
        self._cell_cache = OrderedDict()
        self.full_redraws = 0
        self.partial_redraws = 0
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
            if full or self._background is None or len(limits) != len(self._limits):
                self._redraw_all()
            elif limits != self._limits:
                changed = [i for i, (old, new) in enumerate(zip(self._limits, limits)) if old != new]
                if not self._redraw_axes(changed):
                    self._redraw_all()
            else:
                canvas.restore_region(self._background)
            renderer = canvas.get_renderer()
            if projector():
                emphasize(self.dynamic)
                fit_titles(self.fig, only=self.dynamic)  # a title whose text changed
            for artist in self.dynamic:
                if artist.get_visible():
                    artist.draw(renderer)
        return _encode_png(canvas)

    def _redraw_all(self):
        canvas = self.fig.canvas
        emphasize(self.fig)
        canvas.draw()  # lays out (first time) and draws all but the animated artists
        if projector() and fit_titles(self.fig):
            canvas.draw()
        if _has_active_layout(self.fig):
            # the draw above applied the layout; keep it fixed from now on
            self.fig.set_layout_engine("none")
        self._background = canvas.copy_from_bbox(self.fig.bbox)
        self._limits = self._axes_limits()
        renderer = canvas.get_renderer()
        fig = self.fig
        figure_artists = [*fig.texts, *fig.legends, *fig.patches, *fig.lines, *fig.images]
        if getattr(fig, "_suptitle", None) is not None:
            figure_artists.append(fig._suptitle)
        fixed = [a.get_window_extent(renderer) for a in figure_artists
                 if a.get_visible() and not a.get_animated()]
        self._cells = _axes_cells([ax.get_tightbbox(renderer) for ax in fig.axes], fixed, fig.bbox)
        self._cell_cache.clear()  # drawn with other static content
        for i, cell in enumerate(self._cells):
            if cell is not None:
                self._remember(i, self._limits[i], canvas.copy_from_bbox(cell))
        self.full_redraws += 1

    def _remember(self, index, limits, region):
        self._cell_cache[index, limits] = region
        self._cell_cache.move_to_end((index, limits))
        while len(self._cell_cache) > self.CACHED_CELLS:
            self._cell_cache.popitem(last=False)

    def _redraw_axes(self, changed):
        """Redraw only the axes ``changed`` (indices), each inside its cell; False if one has none.

        A cell is the part of the figure that belongs to one axes alone (its
        ticks, labels and title included, the gaps to its neighbours split
        half and half). The cell is cleared, the axes drawn, and whatever it
        drew outside its cell (a wider tick label) is clipped, so neighbours
        are never touched.
        """
        from matplotlib.patches import Rectangle
        from matplotlib.transforms import IdentityTransform

        cells = [self._cells[i] for i in changed]
        if any(cell is None for cell in cells):
            return False
        canvas = self.fig.canvas
        renderer = canvas.get_renderer()
        limits = self._axes_limits()
        canvas.restore_region(self._background)
        regions, fresh = [], []
        for i, cell in zip(changed, cells):
            cached = self._cell_cache.get((i, limits[i]))
            if cached is not None:  # drawn before with these limits: a copy, no drawing
                self._cell_cache.move_to_end((i, limits[i]))
                regions.append(cached)
                continue
            eraser = Rectangle((cell.x0, cell.y0), cell.width, cell.height, transform=IdentityTransform(),
                               facecolor=self.fig.get_facecolor(), edgecolor="none", antialiased=False)
            eraser.set_figure(self.fig)
            eraser.draw(renderer)
            self.fig.axes[i].draw(renderer)  # skips the animated (dynamic) artists, as a full draw does
            fresh.append((i, cell))
        for i, cell in fresh:
            region = canvas.copy_from_bbox(cell)
            self._remember(i, limits[i], region)
            regions.append(region)
        canvas.restore_region(self._background)  # clip: nothing outside the cells changes
        for region in regions:
            canvas.restore_region(region)
        self._background = canvas.copy_from_bbox(self.fig.bbox)
        self._limits = self._axes_limits()
        self.partial_redraws += 1
        return True


def _axes_cells(boxes, fixed, figure_box):
    """One cell per axes (display coordinates, whole pixels), or None where none is safe.

    ``boxes`` are the axes' tight boxes, ``fixed`` the boxes of static
    figure-level artists (a suptitle). A cell starts as the whole figure and
    is cut back, halfway into the gap, at each neighbour left, right, above or
    below; at a fixed artist it stops at the artist's edge. A cell that would
    still overlap another cell or a fixed artist (axes in a diagonal, insets,
    twins) is None: that axes is only ever redrawn with the whole figure.
    """
    from matplotlib.transforms import Bbox

    def overlapping(a0, a1, b0, b1):
        return a0 < b1 and b0 < a1

    edges = [[figure_box.x0, figure_box.y0, figure_box.x1, figure_box.y1] for _ in boxes]
    for i, a in enumerate(boxes):
        for j, b in enumerate(boxes):
            if i == j:
                continue
            if b.x0 >= a.x1 and overlapping(a.y0, a.y1, b.y0, b.y1):  # b right of a
                edges[i][2] = min(edges[i][2], (a.x1 + b.x0) / 2)
            elif b.x1 <= a.x0 and overlapping(a.y0, a.y1, b.y0, b.y1):  # left
                edges[i][0] = max(edges[i][0], (a.x0 + b.x1) / 2)
            elif b.y0 >= a.y1 and overlapping(a.x0, a.x1, b.x0, b.x1):  # above
                edges[i][3] = min(edges[i][3], (a.y1 + b.y0) / 2)
            elif b.y1 <= a.y0 and overlapping(a.x0, a.x1, b.x0, b.x1):  # below
                edges[i][1] = max(edges[i][1], (a.y0 + b.y1) / 2)
        for f in fixed:
            if f.x0 >= a.x1:
                edges[i][2] = min(edges[i][2], f.x0)
            elif f.x1 <= a.x0:
                edges[i][0] = max(edges[i][0], f.x1)
            elif f.y0 >= a.y1:
                edges[i][3] = min(edges[i][3], f.y0)
            elif f.y1 <= a.y0:
                edges[i][1] = max(edges[i][1], f.y1)
    cells = [Bbox([[np.ceil(x0), np.ceil(y0)], [np.floor(x1), np.floor(y1)]]) for x0, y0, x1, y1 in edges]
    safe = []
    for i, cell in enumerate(cells):
        clash = (cell.width <= 0 or cell.height <= 0
                 or any(_overlap(cell, other) for j, other in enumerate(cells) if j != i)
                 or any(_overlap(cell, f) for f in fixed))
        safe.append(None if clash else cell)
    return safe


def _overlap(a, b):
    """True when boxes ``a`` and ``b`` share more than an edge."""
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _has_active_layout(fig):
    """True while a real layout engine (not the placeholder left by freezing) is set."""
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    engine = fig.get_layout_engine()
    return engine is not None and not isinstance(engine, PlaceHolderLayoutEngine)


def _encode_png(canvas):
    """The canvas as PNG bytes, fast: RGB rows, no filter, zlib level 1.

    Pillow's encoder spends most of its time choosing row filters; for these
    flat-coloured plots unfiltered rows compress to about the same size, two
    to three times faster (it is a large part of a slider move's cost).
    """
    width, height = canvas.get_width_height()
    rgb = np.asarray(canvas.buffer_rgba())[:, :, :3]
    rows = np.empty((height, 1 + 3 * width), dtype=np.uint8)
    rows[:, 0] = 0  # filter type "None" for every row
    rows[:, 1:] = rgb.reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, not interlaced
    return b"".join([b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)), _png_chunk(b"IEND", b"")])


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
