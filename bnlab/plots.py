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
    # notebooks 04 and 05
    "feature_scatter_offsets",
    "padded_limits",
    "fit_limits",
    "plot_shift_scale",
    "update_shift_scale",
    "plot_invariance_gap",
    "plot_running_stats",
    "CURVE_COLORS",
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


# ---- notebooks 04 and 05: shift/scale invariance, running statistics --------

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


def _feature_axis(ax, d):
    ax.set_xticks(range(d))
    ax.set_xticklabels([str(j) for j in range(d)])
    ax.set_xlim(-0.6, d - 0.4)
    ax.grid(False, axis="x")


def plot_shift_scale(z, z_shifted, y, y_shifted, axes=None, scale=None, shift=None):
    """Three panels: ``z``, ``z' = a z + b`` and the BN outputs ``y`` (of z) and ``y'`` (of z').

    Parameters
    ----------
    z, z_shifted : ndarray, shape (N, D)
        The batch and its shifted/scaled copy.
    y, y_shifted : ndarray, shape (N, D)
        BN of ``z`` (drawn as open circles) and of ``z_shifted`` (dots): when
        the dots sit inside the circles, the output did not move.
    axes : sequence of 3 Axes, optional
        Default: a new figure (:func:`new_figure` with three columns).
    scale, shift : float, optional
        ``a`` and ``b``, written in the middle panel's title.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, the scatter collections ``"z"``,
        ``"z_shifted"``, ``"y"``, ``"y_shifted"``, the middle title
        ``"shift_title"`` and the text ``"gap_text"`` (max |y' - y|).

    Introduced in ``notebooks/04_shift_scale_invariance.ipynb``.
    """
    if axes is None:
        fig, axes = new_figure(3, width=13.5, height=4.2)
    else:
        fig = axes[0].figure
    ax_z, ax_s, ax_y = axes
    drawn = {"fig": fig, "axes": list(axes)}
    with style():
        for key, ax, values in (("z", ax_z, z), ("z_shifted", ax_s, z_shifted)):
            offsets, colors = feature_scatter_offsets(values)
            drawn[key] = ax.scatter(offsets[:, 0], offsets[:, 1], c=colors, s=70, zorder=3)
        offsets, colors = feature_scatter_offsets(y)
        drawn["y"] = ax_y.scatter(offsets[:, 0], offsets[:, 1], s=260, facecolors="none",
                                  edgecolors=colors, linewidths=2.0, zorder=2, label="y = BN(z)")
        offsets, colors = feature_scatter_offsets(y_shifted)
        drawn["y_shifted"] = ax_y.scatter(offsets[:, 0], offsets[:, 1], c=colors, s=60, zorder=3,
                                          label="y' = BN(z')")
        d = np.shape(z)[1]
        for ax in axes:
            _feature_axis(ax, d)
        finish_axes(ax_z, "input z", "feature", "value")
        finish_axes(ax_s, _shift_title(scale, shift), "feature", "value")
        finish_axes(ax_y, "BN output: y (○) and y' (●)", "feature", "value")
        drawn["shift_title"] = ax_s.title
        ax_z.set_ylim(*padded_limits(z))
        ax_s.set_ylim(*padded_limits(z_shifted))
        flipped = 2 * np.mean(y, axis=0) - np.asarray(y)  # where y' lands for a negative a
        ax_y.set_ylim(*padded_limits(np.concatenate([np.ravel(y), np.ravel(flipped)]), pad=0.3))
        drawn["gap_text"] = ax_y.text(
            0.02, 0.02, _gap_text(y, y_shifted), transform=ax_y.transAxes, va="bottom", ha="left",
            fontsize=12, bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85,
                               "edgecolor": PALETTE["grey"]}, zorder=5)
    return drawn


def _shift_title(scale, shift):
    if scale is None or shift is None:
        return "shifted and scaled z' = a·z + b"
    return f"z' = {scale:.4g}·z {'+' if shift >= 0 else '−'} {abs(shift):.4g}"


def _gap_text(y, y_shifted, extra=""):
    gap = float(np.max(np.abs(np.asarray(y_shifted, np.float64) - np.asarray(y, np.float64))))
    return f"max |y' − y| = {gap:.2g}" + (f"\n{extra}" if extra else "")


def update_shift_scale(drawn, z, z_shifted, y, y_shifted, scale=None, shift=None, extra=""):
    """Update a :func:`plot_shift_scale` figure in place (limits change only when data leave them).

    Returns True when some axes' limits changed (then the whole figure needs a redraw).

    Introduced in ``notebooks/04_shift_scale_invariance.ipynb``.
    """
    for key, values in (("z", z), ("z_shifted", z_shifted), ("y", y), ("y_shifted", y_shifted)):
        offsets, colors = feature_scatter_offsets(values)
        collection = drawn[key]
        collection.set_offsets(offsets)
        if key == "y":
            collection.set_edgecolors(colors)
        else:
            collection.set_facecolors(colors)
    ax_z, ax_s, ax_y = drawn["axes"]
    changed = False
    d = np.shape(z)[1]
    if ax_z.get_xlim() != (-0.6, d - 0.4):
        for ax in drawn["axes"]:
            _feature_axis(ax, d)
        changed = True
    changed |= fit_limits(ax_z, z)
    changed |= fit_limits(ax_s, z_shifted, pad=0.4, shrink=0.1)  # generous: |a| spans decades
    flipped = 2 * np.mean(y, axis=0) - np.asarray(y)
    changed |= fit_limits(ax_y, np.concatenate([np.ravel(y), np.ravel(flipped), np.ravel(y_shifted)]),
                          pad=0.3, shrink=0.3)
    drawn["shift_title"].set_text(_shift_title(scale, shift))
    drawn["gap_text"].set_text(_gap_text(y, y_shifted, extra))
    return changed


def plot_invariance_gap(scales, gaps, ax=None, eps=None, var=None):
    """How far BN's output moves when its input is scaled by ``a``: max |y' - y| against ``|a|``.

    Parameters
    ----------
    scales : ndarray, shape (K,)
        Positive scales ``a`` (log axis).
    gaps : ndarray, shape (K,)
        ``max |BN(a z + b) - BN(z)|`` for each scale.
    ax : Axes, optional
    eps, var : float, optional
        When given, a vertical line marks the scale where ``a**2 * var == eps``
        (below it eps dominates and the output collapses towards beta).

    Returns
    -------
    drawn : dict with ``"fig"``, ``"ax"``, ``"line"`` (and ``"marker"`` when eps and var are given)

    Introduced in ``notebooks/04_shift_scale_invariance.ipynb``.
    """
    if ax is None:
        fig, ax = new_figure(1, width=7.5, height=4.4)
    else:
        fig = ax.figure
    scales = np.asarray(scales, dtype=np.float64)
    gaps = np.asarray(gaps, dtype=np.float64)
    drawn = {"fig": fig, "ax": ax}
    with style():
        # a gap of exactly 0 (a = 1) cannot be drawn on a log axis: leave it out
        (drawn["line"],) = ax.loglog(scales, np.where(gaps > 0, gaps, np.nan), marker="o",
                                     color=PALETTE["blue"],
                                     label="max |y' − y|")
        ax.axvline(1.0, color=PALETTE["grey"], linestyle=":", linewidth=1.5)
        if eps is not None and var is not None:
            critical = float(np.sqrt(eps / var))
            drawn["marker"] = ax.axvline(critical, color=PALETTE["vermillion"], linestyle="--",
                                         label=f"a² · var = eps (a ≈ {critical:.1g})")
        finish_axes(ax, "BN ignores a, until a² · var comes near eps",
                    "scale a (z' = a·z + b)", "max |y' − y|", legend=True)
    return drawn


#: Line colours for the compared running-statistics curves, in order.
CURVE_COLORS = [PALETTE["blue"], PALETTE["vermillion"], PALETTE["green"], PALETTE["purple"], PALETTE["orange"]]


def plot_running_stats(mean_curves, var_curves, true_mean=None, true_var=None, batch_mean=None,
                       batch_var=None, axes=None, feature=None):
    """Running mean (left) and running variance (right) of one feature, step by step.

    Parameters
    ----------
    mean_curves, var_curves : dict of str -> ndarray, shape (S + 1,)
        Curves to compare, by label (same labels in both), e.g.
        ``{"keras, m=0.9": trace["mean"][:, 0]}``; index 0 is the initial value.
    true_mean, true_var : float, optional
        Dashed horizontal lines: the values the stream was drawn with.
    batch_mean, batch_var : ndarray, shape (S,), optional
        Each batch's own statistic, drawn as faint dots at steps 1..S.
    axes : sequence of 2 Axes, optional
    feature : int, optional
        Written in the titles.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"mean_lines"`` and ``"var_lines"`` (dict label ->
        Line2D), ``"batch_mean"``, ``"batch_var"``, ``"true_mean"``, ``"true_var"``
        (Line2D or None).

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """
    if axes is None:
        fig, axes = new_figure(2, width=12.5, height=4.4)
    else:
        fig = axes[0].figure
    ax_m, ax_v = axes
    drawn = {"fig": fig, "axes": list(axes), "mean_lines": {}, "var_lines": {}}
    which = "" if feature is None else f" (feature {feature})"
    with style():
        for key, ax, batch, true, curves in (
            ("mean", ax_m, batch_mean, true_mean, mean_curves),
            ("var", ax_v, batch_var, true_var, var_curves),
        ):
            if batch is not None:
                (drawn[f"batch_{key}"],) = ax.plot(np.arange(1, len(batch) + 1), batch, linestyle="none",
                                                   marker=".", markersize=5, color="#B0B0B0",
                                                   label=f"each batch's {key}")
            else:
                drawn[f"batch_{key}"] = None
            if true is not None:
                drawn[f"true_{key}"] = ax.axhline(true, color=PALETTE["black"], linestyle="--",
                                                  linewidth=1.6, label=f"true {key}")
            else:
                drawn[f"true_{key}"] = None
            for i, (label, curve) in enumerate(curves.items()):
                (drawn[f"{key}_lines"][label],) = ax.plot(np.arange(len(curve)), curve, label=label,
                                                          color=CURVE_COLORS[i % len(CURVE_COLORS)])
        finish_axes(ax_m, f"running mean{which}", "training step (batches seen)", "running mean",
                    legend=True)
        finish_axes(ax_v, f"running variance{which}", "training step (batches seen)", "running variance",
                    legend=True)
    return drawn
