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
    # notebooks 00-03
    "MAX_FEATURES",
    "METHOD_COLORS",
    "plot_before_after",
    "plot_batch_stats",
    "update_batch_stats",
    "plot_variance_error",
    "histogram_counts",
    "plot_feature_histograms",
    "update_feature_histograms",
    "plot_eps_curve",
    "update_eps_curve",
    # notebooks 04 and 05
    "feature_scatter_offsets",
    "padded_limits",
    "fit_limits",
    "plot_shift_scale",
    "update_shift_scale",
    "plot_invariance_gap",
    "plot_running_stats",
    "plot_train_eval",
    "update_train_eval",
    "CURVE_COLORS",
    # notebooks 06 and 07
    "BN_GRAPH_NODES",
    "BN_GRAPH_EDGES",
    "plot_bn_graph",
    "COUPLING_TITLES",
    "plot_batch_coupling",
    "update_batch_coupling",
    "VARIANT_COLORS",
    "VARIANT_STYLES",
    "VARIANT_ORDER",
    "plot_test_accuracy",
    "update_test_accuracy",
    "plot_percentiles",
    "update_percentiles",
    "percentile_limits",
    "plot_training_figure",
    "update_training_figure",
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


# ---- notebooks 00-03: batch statistics, normalization, scale and shift -----

#: Most features the notebooks 01-03 figures and explorers draw (one colour each).
MAX_FEATURES = len(FEATURE_COLORS)


def _check_features(d):
    if d > MAX_FEATURES:
        raise ValueError(f"at most {MAX_FEATURES} features can be drawn (one colour each), got {d}")


def _strip_offsets(n, width):
    """Small deterministic offsets so that equal values of a feature do not hide each other."""
    return np.zeros(1) if n == 1 else np.linspace(-width / 2, width / 2, n)


def _stable_limits(ax, low, high, which="y", pad=0.12, fill=0.3):
    """Set ``ax``'s limits around ``[low, high]`` only when the data leave them or shrink a lot.

    Fixed limits let :class:`FastRenderer` redraw only the data while a
    slider moves. Returns True when the limits changed.
    """
    get, set_ = (ax.get_ylim, ax.set_ylim) if which == "y" else (ax.get_xlim, ax.set_xlim)
    cur_low, cur_high = get()
    span = max(high - low, 1e-9, 1e-6 * max(abs(low), abs(high)))
    if cur_low <= low and high <= cur_high and span >= fill * (cur_high - cur_low):
        return False
    set_(low - pad * span, high + pad * span)
    return True


def plot_before_after(z, z_hat, y=None, axes=None, feature_names=None):
    """The batch before BN, normalized, and (optionally) after scale and shift: one row per feature.

    Parameters
    ----------
    z : ndarray, shape (N, D)
        The batch before BN (D <= 6).
    z_hat : ndarray, shape (N, D)
        Normalized batch.
    y : ndarray, shape (N, D), optional
        BN's output ``gamma * z_hat + beta``; adds a third panel.
    axes : sequence of 2 (or 3 with ``y``) Axes, optional
        Default: a new figure.
    feature_names : list of str, optional
        Default ``"feature 0"``, ``"feature 1"``, ...

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"dots"`` (list per panel of a list of
        PathCollections, one per feature) and ``"means"`` (list per panel of
        the Line2D marking each feature's mean).

    Notes
    -----
    Each dot is one sample's value of one feature; the vertical bar is the
    feature's batch mean. Before BN the features sit at different places
    with different spreads; after normalization all are centred on 0 with
    spread 1.

    Introduced in ``notebooks/00_index.ipynb``.
    """
    panels = [(z, "before BN: z", "value of z")]
    panels.append((z_hat, "normalized: ẑ = (z − μ) / √(σ² + ε)", "value of ẑ"))
    if y is not None:
        panels.append((y, "after BN: y = γ·ẑ + β", "value of y"))
    if axes is None:
        fig, axes = new_figure(len(panels), width=5.0 * len(panels), height=3.4)
        axes = np.atleast_1d(axes)
    else:
        fig = axes[0].figure
    n, d = np.shape(z)
    _check_features(d)
    names = feature_names or [f"feature {j}" for j in range(d)]
    rows = np.arange(d)[::-1]  # feature 0 on top
    drawn = {"fig": fig, "axes": list(axes), "dots": [], "means": []}
    with style():
        for ax, (values, title, xlabel) in zip(axes, panels):
            values = np.asarray(values, dtype=np.float64)
            dots, means = [], []
            for j in range(d):
                colour = FEATURE_COLORS[j]
                jitter = _strip_offsets(n, 0.36)
                dots.append(ax.scatter(values[:, j], rows[j] + jitter, s=80, color=colour,
                                       edgecolors="white", linewidths=0.8, zorder=3))
                mean = float(values[:, j].mean())
                (line,) = ax.plot([mean, mean], [rows[j] - 0.32, rows[j] + 0.32], color=colour,
                                  linewidth=3.2, zorder=2)
                means.append(line)
            ax.axvline(0.0, color=PALETTE["grey"], linewidth=1.2, linestyle=":", zorder=1)
            ax.set_yticks(rows)
            ax.set_yticklabels(names)
            ax.set_ylim(-0.6, d - 0.4)
            ax.grid(False, axis="y")
            low, high = float(values.min()), float(values.max())
            _stable_limits(ax, min(low, -1.0), max(high, 1.0), which="x", pad=0.1)
            finish_axes(ax, title, xlabel, "")
            drawn["dots"].append(dots)
            drawn["means"].append(means)
    return drawn


@mpl.ticker.FuncFormatter
def _short_number(x, _pos=None):
    return f"{x:.4g}".replace("-", "−")


def plot_batch_stats(z, mean, var, axes=None):
    """Samples, per-feature mean (left) and per-feature variance (right) of a batch.

    Parameters
    ----------
    z : ndarray, shape (N, D)
        The batch (D <= 6), N >= 2.
    mean, var : ndarray, shape (D,)
        Its per-feature mean and population variance (from :func:`bnlab.batch_stats`).
    axes : sequence of 2 Axes, optional
        Default: a new two-panel figure.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"mean_bars"`` and ``"var_bars"`` (lists of
        :data:`MAX_FEATURES` Rectangles; those past D are hidden), ``"dots"``
        (PathCollection of the samples), ``"sample_var"`` (Line2D: the
        unbiased ``ddof=1`` variance as open diamonds), ``"mean_texts"`` and
        ``"var_texts"`` (value labels), ``"dynamic"`` (every artist
        :func:`update_batch_stats` changes, for :class:`FastRenderer`).

    Introduced in ``notebooks/01_batch_statistics.ipynb``.
    """
    fig, axes = figure_for(axes, 2, width=11.0, height=4.2)
    ax_m, ax_v = axes
    ax_m.set_ylim(0.0, 1.0)
    ax_v.set_ylim(0.0, 1.0)
    drawn = {"fig": fig, "axes": [ax_m, ax_v]}
    x = np.arange(MAX_FEATURES)
    with style():
        drawn["mean_bars"] = list(ax_m.bar(x, np.zeros(MAX_FEATURES), width=0.7, color=FEATURE_COLORS,
                                           alpha=0.35, edgecolor=FEATURE_COLORS, linewidth=2.0))
        drawn["dots"] = ax_m.scatter([], [], s=70, edgecolors="white", linewidths=0.8, zorder=3)
        ax_m.axhline(0.0, color=PALETTE["grey"], linewidth=1.0)
        drawn["var_bars"] = list(ax_v.bar(x, np.zeros(MAX_FEATURES), width=0.7, color=FEATURE_COLORS,
                                          alpha=0.75))
        (drawn["sample_var"],) = ax_v.plot([], [], linestyle="none", marker="D", markersize=11,
                                           markerfacecolor="none", markeredgewidth=2.2,
                                           color=PALETTE["black"], zorder=4)
        # the values, in a row at the top of each panel (x in data, y in axes coordinates)
        text_style = {"ha": "center", "va": "top", "fontsize": 12, "zorder": 5,
                      "bbox": {"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85,
                               "edgecolor": "none"}}
        drawn["mean_texts"] = [ax_m.text(j, 0.97, "", transform=ax_m.get_xaxis_transform(), **text_style)
                               for j in x]
        drawn["var_texts"] = [ax_v.text(j, 0.97, "", transform=ax_v.get_xaxis_transform(), **text_style)
                              for j in x]
        finish_axes(ax_m, "samples (dots), batch mean (bars)", "feature j", "value z[i, j]")
        finish_axes(ax_v, "variance: bars ddof=0 (BN), ◇ ddof=1", "feature j", "variance")
        for ax in (ax_m, ax_v):
            ax.grid(False, axis="x")
            # a fixed place for the y label, clear of wider tick labels after the limits change
            # (the layout is computed once)
            ax.yaxis.set_label_coords(-0.16, 0.5)
            ax.yaxis.set_major_formatter(_short_number)  # no "1e7" offset text above the axes
    drawn["dynamic"] = [*drawn["mean_bars"], drawn["dots"], *drawn["mean_texts"], *drawn["var_bars"],
                        drawn["sample_var"], *drawn["var_texts"]]
    update_batch_stats(drawn, z, mean, var)
    return drawn


def update_batch_stats(drawn, z, mean, var):
    """Update a :func:`plot_batch_stats` figure in place.

    Limits change only when the data leave them (then the whole figure is
    redrawn by :class:`FastRenderer`). Returns True when some limits changed.

    Introduced in ``notebooks/01_batch_statistics.ipynb``.
    """
    z = np.asarray(z, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    n, d = z.shape
    _check_features(d)
    sample_var = var * n / (n - 1) if n > 1 else np.full(d, np.nan)
    ax_m, ax_v = drawn["axes"]
    jitter = _strip_offsets(n, 0.45)
    xs = (np.arange(d)[None, :] + jitter[:, None]).ravel()
    drawn["dots"].set_offsets(np.column_stack([xs, z.ravel()]))
    drawn["dots"].set_facecolors([FEATURE_COLORS[j] for _ in range(n) for j in range(d)])
    drawn["sample_var"].set_data(np.arange(d), sample_var)
    changed = False
    if ax_m.get_xlim() != (-0.6, d - 0.4):
        for ax in (ax_m, ax_v):
            ax.set_xticks(range(d))
            ax.set_xlim(-0.6, d - 0.4)
        changed = True
    low, high = min(float(z.min()), 0.0), max(float(z.max()), 0.0)
    changed |= _stable_limits(ax_m, low, high + 0.25 * (high - low), pad=0.3, fill=0.25)
    top = float(np.nanmax(np.append(sample_var, var.max())))
    if _stable_limits(ax_v, 0.0, 1.3 * max(top, 1e-6), pad=0.1):
        ax_v.set_ylim(0.0, ax_v.get_ylim()[1])  # variance bars start at 0
        changed = True
    for j in range(MAX_FEATURES):
        visible = j < d
        for key in ("mean_bars", "var_bars", "mean_texts", "var_texts"):
            drawn[key][j].set_visible(visible)
        if not visible:
            continue
        drawn["mean_bars"][j].set_height(mean[j])
        drawn["var_bars"][j].set_height(var[j])
        drawn["mean_texts"][j].set_text(f"μ = {mean[j] + 0.0:.4g}")
        drawn["var_texts"][j].set_text(f"σ² = {var[j] + 0.0:.4g}\n◇ {sample_var[j] + 0.0:.4g}")
    return changed


#: Colours of the variance methods compared in notebook 01.
METHOD_COLORS = [PALETTE["vermillion"], PALETTE["orange"], PALETTE["blue"], PALETTE["green"]]


def plot_variance_error(offsets, errors, ax=None, floor=1e-9):
    """Relative error of variance formulas in float32 against the offset of the data.

    Parameters
    ----------
    offsets : ndarray, shape (K,)
        How far from zero the batch was moved (log axis).
    errors : dict of str -> ndarray, shape (K,)
        ``|var - reference| / reference`` for each method, by label.
    ax : Axes, optional
    floor : float
        Errors below it (exact results) are drawn at ``floor``.

    Returns
    -------
    drawn : dict with ``"fig"``, ``"ax"`` and ``"lines"`` (label -> Line2D)

    Introduced in ``notebooks/01_batch_statistics.ipynb``.
    """
    fig, ax = figure_for(ax, 1, width=8.0, height=4.6)
    offsets = np.asarray(offsets, dtype=np.float64)
    drawn = {"fig": fig, "ax": ax, "lines": {}}
    markers = ["o", "s", "^", "D"]
    with style():
        for i, (label, err) in enumerate(errors.items()):
            err = np.maximum(np.asarray(err, dtype=np.float64), floor)
            (drawn["lines"][label],) = ax.loglog(offsets, err, marker=markers[i % len(markers)],
                                                 color=METHOD_COLORS[i % len(METHOD_COLORS)],
                                                 label=label, markersize=9)
        ax.axhline(1.0, color=PALETTE["black"], linestyle="--", linewidth=1.4)
        ax.text(offsets[-1], 0.6, "100 % wrong", fontsize=12, va="top", ha="right")
        finish_axes(ax, "float32 variance far from zero", "offset added to every value",
                    "relative error of the variance", legend=True)
        ax.legend(loc="upper left", framealpha=0.9)
    return drawn


def histogram_counts(values, edges):
    """Counts of ``values`` (N, D) per feature in the fixed bins ``edges`` (B + 1,): shape (D, B).

    Values outside the edges are not counted. Used by the explorers so that
    moving a slider only changes the heights of precomputed bins.

    Introduced in ``notebooks/02_normalization.ipynb``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    edges = np.asarray(edges, dtype=np.float64)
    bins = len(edges) - 1
    index = np.searchsorted(edges, values, side="right") - 1
    index[values == edges[-1]] = bins - 1
    counts = np.zeros((values.shape[1], bins))
    for j in range(values.shape[1]):
        inside = index[:, j][(index[:, j] >= 0) & (index[:, j] < bins)]
        counts[j] = np.bincount(inside, minlength=bins)
    return counts


def plot_feature_histograms(values, edges, ax=None, title="", xlabel="value", highlight=None,
                            labels=None, ymax=None, legend=None):
    """One outlined histogram per feature in the fixed bins ``edges``.

    Parameters
    ----------
    values : ndarray, shape (N, D) or (N,)
    edges : ndarray, shape (B + 1,)
        Bin edges, kept fixed so an explorer only changes bar heights.
    ax : Axes, optional
    title, xlabel : str
    highlight : int, optional
        Feature drawn strongly (the others faintly).
    labels : list of str, optional
        Legend labels (default ``"feature j"``).
    ymax : float, optional
        Upper y limit (default: 1.15 times the highest bin).
    legend : bool, optional
        Draw a legend (default: when there is more than one feature).

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"edges"``, ``"stairs"`` (list of StepPatch, one per
        feature; update with :func:`update_feature_histograms`).

    Introduced in ``notebooks/02_normalization.ipynb``.
    """
    fig, ax = figure_for(ax, 1, width=6.0, height=4.0)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    d = values.shape[1]
    _check_features(d)
    edges = np.asarray(edges, dtype=np.float64)
    counts = histogram_counts(values, edges)
    labels = labels or [f"feature {j}" for j in range(d)]
    drawn = {"fig": fig, "ax": ax, "edges": edges, "stairs": []}
    with style():
        for j in range(d):
            stairs = ax.stairs(counts[j], edges, fill=True, color=FEATURE_COLORS[j], alpha=0.3,
                               label=labels[j])
            drawn["stairs"].append(stairs)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(0, ymax if ymax is not None else max(1.0, 1.15 * counts.max()))
        finish_axes(ax, title, xlabel, "count", legend=d > 1 if legend is None else legend)
    _highlight(drawn["stairs"], highlight)
    return drawn


def _highlight(stairs, highlight):
    for j, step in enumerate(stairs):
        strong = highlight is None or j == highlight
        step.set_alpha(0.45 if strong else 0.12)
        step.set_linewidth(2.5 if strong else 1.0)


def update_feature_histograms(drawn, values, highlight=None):
    """Set new counts (same bins) on a :func:`plot_feature_histograms` figure.

    Introduced in ``notebooks/02_normalization.ipynb``.
    """
    counts = histogram_counts(values, drawn["edges"])
    for step, c in zip(drawn["stairs"], counts):
        step.set_data(c)
    _highlight(drawn["stairs"], highlight)
    return counts


def _normalized_variance(var, eps):
    """What normalization leaves of a variance: ``var / (var + eps)`` (the variance of ẑ).

    Parameters
    ----------
    var : float or ndarray
        Population variance of a feature in the batch.
    eps : float

    Returns
    -------
    float or ndarray, same shape as ``var``

    Introduced in ``notebooks/02_normalization.ipynb``.
    """
    var = np.asarray(var, dtype=np.float64)
    return var / (var + eps)


def plot_eps_curve(eps, var=None, ax=None, var_range=(1e-10, 1e2)):
    """``Var(ẑ) = var / (var + eps)`` against the feature's variance, for one eps.

    Parameters
    ----------
    eps : float
    var : float, optional
        A feature's variance, marked with a dot on the curve.
    ax : Axes, optional
    var_range : (float, float)
        The log x axis.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"curve"`` (Line2D), ``"point"`` (Line2D),
        ``"eps_line"`` (vertical line at var = eps), ``"grid"`` (the x values).

    Introduced in ``notebooks/02_normalization.ipynb``.
    """
    fig, ax = figure_for(ax, 1, width=6.0, height=4.0)
    grid = np.logspace(np.log10(var_range[0]), np.log10(var_range[1]), 200)
    drawn = {"fig": fig, "ax": ax, "grid": grid}
    with style():
        (drawn["curve"],) = ax.semilogx(grid, _normalized_variance(grid, eps), color=PALETTE["blue"],
                                        label="var / (var + eps)")
        drawn["eps_line"] = ax.axvline(eps, color=PALETTE["vermillion"], linestyle="--",
                                       label="var = eps")
        ax.axhline(1.0, color=PALETTE["grey"], linestyle=":", linewidth=1.2)
        (drawn["point"],) = ax.plot([], [], marker="o", markersize=12, color=PALETTE["orange"],
                                    markeredgecolor=PALETTE["black"], linestyle="none",
                                    label="this feature", zorder=4)
        ax.set_xlim(*var_range)
        ax.set_ylim(-0.03, 1.12)
        finish_axes(ax, "what eps leaves of the variance", "variance of the feature, var(z)",
                    "Var(ẑ)", legend=True)
        ax.legend(loc="center right", framealpha=0.9, fontsize=11)
    update_eps_curve(drawn, eps, var)
    return drawn


def update_eps_curve(drawn, eps, var=None):
    """Move a :func:`plot_eps_curve` figure to a new ``eps`` (and feature variance ``var``).

    Introduced in ``notebooks/02_normalization.ipynb``.
    """
    drawn["curve"].set_ydata(_normalized_variance(drawn["grid"], eps))
    drawn["eps_line"].set_xdata([eps, eps])
    if var is None:
        drawn["point"].set_data([], [])
    else:
        drawn["point"].set_data([var], [float(_normalized_variance(var, eps))])


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
    from matplotlib.ticker import MaxNLocator

    # few, round labels: readable from the back of a room, and a faster full redraw
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
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
    fig, axes = figure_for(axes, 3, width=13.5, height=4.2)
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
        ax_s.ticklabel_format(axis="y", useOffset=False)  # plain values, no "+1e1" offset for a tiny a
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
    fig, ax = figure_for(ax, 1, width=7.5, height=4.4)
    scales = np.asarray(scales, dtype=np.float64)
    gaps = np.asarray(gaps, dtype=np.float64)
    drawn = {"fig": fig, "ax": ax}
    with style():
        # a gap of exactly 0 (a = 1) cannot be drawn on a log axis: leave it out
        (drawn["line"],) = ax.loglog(scales, np.where(gaps > 0, gaps, np.nan), marker="o",
                                     color=PALETTE["blue"],
                                     label="max |y' − y|")
        ax.axvline(1.0, color=PALETTE["grey"], linestyle=":", linewidth=1.5, label="a = 1 (only a shift)")
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
        Curves to compare, by label (colours follow the order of each dict), e.g.
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
    fig, axes = figure_for(axes, 2, width=12.5, height=4.4)
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


def plot_train_eval(running_mean, running_var, true_mean, true_var, y, highlight=0, axes=None,
                    output_limits=(-4.0, 8.0)):
    """What a BN layer remembers, and what it outputs for a test batch.

    Parameters
    ----------
    running_mean, running_var : ndarray, shape (D,)
        Drawn as bars, one per feature.
    true_mean, true_var : ndarray, shape (D,)
        Drawn as black ticks over the bars.
    y : ndarray, shape (N, D)
        BN's output for the test batch (dots per feature); sample ``highlight`` is ringed.
    highlight : int
    axes : sequence of 3 Axes, optional
    output_limits : (float, float)
        Fixed y limits of the output panel.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"mean_bars"``, ``"var_bars"`` (lists of Rectangle),
        ``"true_mean"``, ``"true_var"`` (LineCollection; register them after the bars as
        dynamic artists so they stay on top),
        ``"outputs"`` (scatter), ``"sample"`` (the ringed sample, scatter), ``"status"`` (Text),
        ``"output_title"`` (Text).

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """
    fig, axes = figure_for(axes, 3, width=14.0, height=4.3)
    ax_m, ax_v, ax_y = axes
    d = len(running_mean)
    x = np.arange(d)
    drawn = {"fig": fig, "axes": list(axes)}
    with style():
        for key, ax, values, truth, label in (("mean", ax_m, running_mean, true_mean, "true mean"),
                                              ("var", ax_v, running_var, true_var, "true variance")):
            bars = ax.bar(x, values, width=0.6, color=[FEATURE_COLORS[j % len(FEATURE_COLORS)] for j in range(d)],
                          alpha=0.85, label="running (what the layer remembers)")
            drawn[f"{key}_bars"] = list(bars)
            drawn[f"true_{key}"] = ax.hlines(truth, x - 0.36, x + 0.36, colors=PALETTE["black"], linewidths=3.5,
                                             zorder=4, label=label)
            ax.axhline(0, color=PALETTE["grey"], linewidth=1)
            _feature_axis(ax, d)
        finish_axes(ax_m, "running mean", "feature", "value", legend=False)
        finish_axes(ax_v, "running variance", "feature", "value", legend=False)
        ax_m.legend(loc="upper left", framealpha=0.85, fontsize=10)
        ax_m.set_ylim(min(0.0, float(np.min(true_mean))) - 0.5, max(0.0, float(np.max(true_mean))) * 1.35 + 0.5)
        ax_v.set_ylim(0, max(1.0, float(np.max(true_var))) * 1.5)
        ax_y.axhspan(-1, 1, color=PALETTE["sky"], alpha=0.18, zorder=0)
        offsets, colors = feature_scatter_offsets(y)
        drawn["outputs"] = ax_y.scatter(offsets[:, 0], offsets[:, 1], c=colors, s=40, zorder=3)
        drawn["sample"] = ax_y.scatter(*_sample_points(y, highlight).T, s=220, facecolors="none",
                                       edgecolors=PALETTE["black"], linewidths=2.2, zorder=4)
        _feature_axis(ax_y, d)
        ax_y.set_ylim(*output_limits)
        finish_axes(ax_y, "BN output, test batch", "feature", "y (shaded: −1 to 1)")
        drawn["output_title"] = ax_y.title
        drawn["status"] = ax_y.text(0.02, 0.98, "", transform=ax_y.transAxes, va="top", ha="left", fontsize=11,
                                    bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9,
                                          "edgecolor": PALETTE["grey"]}, zorder=5)
    return drawn


def _sample_points(y, index):
    """Scatter positions of one sample's values (as placed by :func:`feature_scatter_offsets`)."""
    offsets, _ = feature_scatter_offsets(y)
    n, d = np.shape(y)
    return offsets[[j * n + index for j in range(d)]]


def update_train_eval(drawn, running_mean, running_var, y, highlight=0, status="", title=None):
    """Update a :func:`plot_train_eval` figure in place (bars, dots, texts).

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """
    for bar, value in zip(drawn["mean_bars"], running_mean):
        bar.set_height(value)
    for bar, value in zip(drawn["var_bars"], running_var):
        bar.set_height(value)
    offsets, colors = feature_scatter_offsets(y)
    drawn["outputs"].set_offsets(offsets)
    drawn["outputs"].set_facecolors(colors)
    drawn["sample"].set_offsets(_sample_points(y, highlight))
    drawn["status"].set_text(status)
    if title is not None:
        drawn["output_title"].set_text(title)


# ---- notebooks 06 and 07: the backward pass, training with BN --------------

#: BN's computational graph, node by node: name -> (x, y, label, forward formula, backward rule).
#: The backward rule says what the node sends back to its inputs (Σ sums over the batch).
BN_GRAPH_NODES = {
    "z": (0.0, 1.0, "z", "input, (N, D)", "dz = dxmu + dmu / N"),
    "mu": (2.75, 2.7, "mu", "mean(z)", "dz += dmu / N"),
    "xmu": (5.5, 1.0, "xmu", "z − mu", "dz = dxmu\ndmu = −Σ dxmu"),
    "sq": (5.5, -0.75, "sq", "xmu²", "dxmu += 2·xmu·dsq"),
    "var": (8.25, -0.75, "var", "mean(sq)", "dsq = dvar / N"),
    "std": (11.0, -0.75, "std", "√(var + ε)", "dvar = dstd / (2·std)"),
    "inv_std": (13.75, -0.75, "inv_std", "1 / std", "dstd = −dinv_std / std²"),
    "z_hat": (13.75, 1.0, "z_hat", "xmu · inv_std", "dxmu = dz_hat·inv_std\ndinv_std = Σ dz_hat·xmu"),
    "gamma": (16.5, 2.7, "gamma", "scale, (D,)", "dgamma = Σ dy·z_hat"),
    "beta": (19.25, 2.7, "beta", "shift, (D,)", "dbeta = Σ dy"),
    "y": (17.9, 1.0, "y", "gamma·z_hat + beta", "dz_hat = dy·gamma"),
}
#: Edges of :data:`BN_GRAPH_NODES` (from, to), in forward order.
BN_GRAPH_EDGES = [("z", "mu"), ("z", "xmu"), ("mu", "xmu"), ("xmu", "sq"), ("sq", "var"), ("var", "std"),
                  ("std", "inv_std"), ("inv_std", "z_hat"), ("xmu", "z_hat"), ("z_hat", "y"),
                  ("gamma", "y"), ("beta", "y")]


def plot_bn_graph(ax=None, backward=True, highlight=()):
    """BN's computational graph: one box per node, forward formula in black, backward rule in colour.

    Parameters
    ----------
    ax : Axes, optional
        Default: a new wide figure.
    backward : bool, default True
        Write each node's backward rule (what it sends back to its inputs)
        under its forward formula.
    highlight : iterable of str
        Nodes drawn with a thicker, coloured border (e.g. ``("mu", "var")``,
        the two nodes that couple the samples of a batch).

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"boxes"`` (node name -> FancyBboxPatch),
        ``"forward"`` and ``"backward"`` (node name -> Text) and ``"arrows"``
        (list of FancyArrowPatch, in :data:`BN_GRAPH_EDGES` order).

    Notes
    -----
    Forward, node by node: ``mu = mean(z)``, ``xmu = z - mu``, ``sq = xmu**2``,
    ``var = mean(sq)``, ``std = sqrt(var + eps)``, ``inv_std = 1 / std``,
    ``z_hat = xmu * inv_std``, ``y = gamma * z_hat + beta``. A node with two
    outgoing edges (``z``, ``xmu``) adds up the gradients coming back along
    both. :func:`bnlab.batchnorm_backward_graph` runs exactly these steps.

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = figure_for(ax, 1, width=14.5, height=5.6)
    highlight = set(highlight)
    width, height = 2.5, 1.35
    drawn = {"fig": fig, "ax": ax, "boxes": {}, "forward": {}, "backward": {}, "arrows": []}
    with style():
        for name, (x, y, label, formula, rule) in BN_GRAPH_NODES.items():
            is_input = name in ("z", "gamma", "beta")
            edge = PALETTE["vermillion"] if name in highlight else PALETTE["black"]
            box = FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                 boxstyle="round,pad=0.02,rounding_size=0.15",
                                 facecolor="#EAF3FA" if is_input else "white", edgecolor=edge,
                                 linewidth=3.0 if name in highlight else 1.4, zorder=2)
            ax.add_patch(box)
            drawn["boxes"][name] = box
            top = y + (0.38 if backward else 0.15)
            ax.text(x, top, label, ha="center", va="center", fontsize=12, fontweight="bold", zorder=3)
            drawn["forward"][name] = ax.text(x, top - 0.32, formula, ha="center", va="center",
                                             fontsize=10.5, zorder=3)
            if backward:
                drawn["backward"][name] = ax.text(x, y - 0.36, rule, ha="center", va="center",
                                                  fontsize=9, color=PALETTE["vermillion"], zorder=3,
                                                  linespacing=1.15)
        for start, end in BN_GRAPH_EDGES:
            arrow = FancyArrowPatch(posA=BN_GRAPH_NODES[start][:2], posB=BN_GRAPH_NODES[end][:2],
                                    patchA=drawn["boxes"][start], patchB=drawn["boxes"][end],
                                    arrowstyle="-|>", mutation_scale=16, linewidth=1.6,
                                    color=PALETTE["blue"], zorder=1, shrinkA=2, shrinkB=2)
            ax.add_patch(arrow)
            drawn["arrows"].append(arrow)
        ax.set_xlim(-1.4, 20.65)
        ax.set_ylim(-1.55, 3.5)
        ax.set_aspect("auto")
        finish_axes(ax, "BN's computational graph: forward (blue arrows, black formulas) and "
                        "backward (vermillion)" if backward else "BN's computational graph", "", "")
        ax.set_axis_off()
        ax.text(-1.2, -0.1, "Σ: sum over the N samples\nof the batch (per feature)", fontsize=10,
                color=PALETTE["grey"], va="top")
    return drawn


def _lollipop_segments(values):
    values = np.asarray(values, dtype=np.float64)
    x = np.arange(values.shape[0], dtype=np.float64)
    return np.stack([np.column_stack([x, np.zeros_like(values)]), np.column_stack([x, values])], axis=1)


def _coupling_colors(n, sample):
    return [PALETTE["vermillion"] if i == sample else PALETTE["blue"] for i in range(n)]


#: Titles of the three panels of :func:`plot_batch_coupling` (``{feature}`` is filled in).
COUPLING_TITLES = ("input z, feature {feature}", "output y = BN(z)", "gradient dL/dz")


def _coupling_title(i, feature, subtitle):
    title = COUPLING_TITLES[i].format(feature=feature)
    return f"{title}\n{subtitle}" if subtitle else title


def plot_batch_coupling(z, y, dz, z_ref, y_ref, dz_ref, sample=0, feature=0, axes=None,
                        subtitles=("", "", "")):
    """One feature of a batch before and after nudging one sample: its input, BN output and gradient.

    Each panel is a lollipop chart with one stem per sample: the nudged
    sample in vermillion, the others in blue, and the values before the
    nudge as open black circles. A nudge of one sample's ``z`` moves the
    batch mean and variance, so every sample's ``y`` and ``dL/dz`` move.

    Parameters
    ----------
    z, y, dz : ndarray, shape (N,)
        The feature's input, BN output and input gradient now.
    z_ref, y_ref, dz_ref : ndarray, shape (N,)
        The same before the nudge.
    sample : int
        The nudged sample (highlighted).
    feature : int
        Written in the first panel's title.
    axes : sequence of 3 Axes, optional
        Default: a new figure with three columns.
    subtitles : tuple of 3 str
        Second lines of the panels' titles (e.g. ``"Σ dz = 0"``).

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, and per panel (lists of 3): ``"stems"``
        (LineCollection), ``"dots"`` and ``"refs"`` (PathCollection) and
        ``"titles"`` (Text).

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    from matplotlib.collections import LineCollection

    fig, axes = figure_for(axes, 3, width=13.5, height=4.3)
    n = np.shape(z)[0]
    colors = _coupling_colors(n, sample)
    drawn = {"fig": fig, "axes": list(axes), "stems": [], "dots": [], "refs": [], "titles": []}
    ylabels = ("z", "y", "dL/dz")
    with style():
        for i, (ax, now, ref, ylabel) in enumerate(zip(axes, (z, y, dz), (z_ref, y_ref, dz_ref), ylabels)):
            stems = LineCollection(_lollipop_segments(now), colors=colors, linewidths=3.0, zorder=2)
            ax.add_collection(stems)
            x = np.arange(n)
            dots = ax.scatter(x, now, c=colors, s=70, zorder=3)
            refs = ax.scatter(x, ref, s=150, facecolors="none", edgecolors=PALETTE["black"],
                              linewidths=1.5, zorder=4)
            ax.axhline(0.0, color=PALETTE["grey"], linewidth=1.0, zorder=1)
            ax.set_xlim(-0.6, n - 0.4)
            ax.set_xticks(range(n))
            ax.grid(False, axis="x")
            ax.set_ylim(*padded_limits(np.concatenate([np.ravel(now), np.ravel(ref), [0.0]]), pad=0.35))
            finish_axes(ax, _coupling_title(i, feature, subtitles[i] or " "), "sample", ylabel)
            ax.yaxis.set_label_coords(-0.15, 0.5)  # room for wider tick labels when the limits change
            drawn["stems"].append(stems)
            drawn["dots"].append(dots)
            drawn["refs"].append(refs)
            drawn["titles"].append(ax.title)
    return drawn


def update_batch_coupling(drawn, z, y, dz, z_ref, y_ref, dz_ref, sample=0, feature=0, subtitles=("", "", ""),
                          fit=None):
    """Update a :func:`plot_batch_coupling` figure in place.

    Limits change only when the data leave them (or the batch size changed).
    ``fit``, a tuple of three arrays of any shape, gives more values each
    panel's limits must hold (e.g. every feature's, so that switching the
    feature keeps the limits and the redraw fast). Returns True when some
    axes' limits changed.

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    n = np.shape(z)[0]
    colors = _coupling_colors(n, sample)
    changed = False
    x = np.arange(n, dtype=np.float64)
    for i, (now, ref) in enumerate(((z, z_ref), (y, y_ref), (dz, dz_ref))):
        ax = drawn["axes"][i]
        drawn["stems"][i].set_segments(_lollipop_segments(now))
        drawn["stems"][i].set_colors(colors)
        drawn["dots"][i].set_offsets(np.column_stack([x, now]))
        drawn["dots"][i].set_facecolors(colors)
        drawn["refs"][i].set_offsets(np.column_stack([x, ref]))
        if ax.get_xlim() != (-0.6, n - 0.4):
            ax.set_xlim(-0.6, n - 0.4)
            ax.set_xticks(range(n))
            changed = True
        extra = np.ravel(fit[i]) if fit is not None else np.empty(0)
        changed |= fit_limits(ax, np.concatenate([np.ravel(now), np.ravel(ref), extra, [0.0]]), pad=0.35,
                              shrink=0.2)
        drawn["titles"][i].set_text(_coupling_title(i, feature, subtitles[i] or " "))
    return changed


#: Colours and line styles of the training variants (keys are :mod:`bnlab.train`'s labels).
VARIANT_COLORS = {"without BN": PALETTE["vermillion"], "with BN": PALETTE["blue"], "noisy BN": PALETTE["green"]}
VARIANT_STYLES = {"without BN": "--", "with BN": "-", "noisy BN": "-."}
#: Panel order of :func:`plot_training_figure`.
VARIANT_ORDER = ("without BN", "with BN", "noisy BN")


def _history_label(label, history):
    return getattr(history, "label", label)


def plot_test_accuracy(histories, ax=None, title="(a) test accuracy"):
    """Figure 1(a) of the BN paper: test accuracy against training steps, one line per run.

    Parameters
    ----------
    histories : dict of str to History
        From :func:`bnlab.train.compare` (keys ``"without BN"``, ``"with BN"``,
        ``"noisy BN"``); each needs ``steps`` (E,), ``test_accuracy`` (E,)
        in [0, 1], ``diverged`` and ``diverged_at``.
    ax : Axes, optional
    title : str

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"lines"`` (label -> Line2D, accuracy in
        percent), ``"diverged"`` (label -> Line2D marker ``x`` at the step a
        diverged run stopped, hidden otherwise), ``"legend"``.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    fig, ax = figure_for(ax, 1, width=6.0, height=4.0)
    drawn = {"fig": fig, "ax": ax, "lines": {}, "diverged": {}}
    labels = [label for label in VARIANT_ORDER if label in histories] + \
             [label for label in histories if label not in VARIANT_ORDER]
    with style():
        for i, label in enumerate(labels):
            colour = VARIANT_COLORS.get(label, FEATURE_COLORS[i % len(FEATURE_COLORS)])
            (line,) = ax.plot([], [], color=colour, linestyle=VARIANT_STYLES.get(label, "-"), label=label)
            (cross,) = ax.plot([], [], linestyle="none", marker="x", markersize=12, markeredgewidth=3,
                               color=colour)
            drawn["lines"][label], drawn["diverged"][label] = line, cross
        ax.axhline(10.0, color=PALETTE["grey"], linewidth=1.0, linestyle=":", zorder=1)
        ax.text(0.99, 11.0, "chance", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
                fontsize=10, color=PALETTE["grey"])
        ax.set_ylim(0, 101)
        finish_axes(ax, title, "training step", "test accuracy (%)")
        drawn["legend"] = None
    update_test_accuracy(drawn, histories)
    return drawn


def update_test_accuracy(drawn, histories):
    """Set the lines of a :func:`plot_test_accuracy` panel from ``histories`` (missing runs are hidden).

    Returns True when the x limits or the legend changed (the legend lists the runs shown).

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    ax = drawn["ax"]
    last = 0
    for label, line in drawn["lines"].items():
        cross = drawn["diverged"][label]
        history = histories.get(label)
        if history is None:
            line.set_data([], [])
            line.set_visible(False)
            cross.set_visible(False)
            continue
        steps = np.asarray(history.steps, dtype=np.float64)
        accuracy = 100.0 * np.asarray(history.test_accuracy, dtype=np.float64)
        line.set_data(steps, accuracy)
        line.set_visible(True)
        if history.diverged:
            y = accuracy[-1] if accuracy.size else 10.0
            cross.set_data([history.diverged_at], [y])
            cross.set_visible(True)
            last = max(last, history.diverged_at)
        else:
            cross.set_visible(False)
        last = max(last, int(history.config["steps"]) if hasattr(history, "config") else
                   (int(steps[-1]) if steps.size else 0))
    changed = False
    shown = [label for label, line in drawn["lines"].items() if line.get_visible()]
    if shown != drawn.get("shown"):
        drawn["shown"] = shown
        if shown:
            with style():
                handles = [drawn["lines"][label] for label in shown]
                drawn["legend"] = ax.legend(handles=handles, loc="center right", framealpha=0.85)
        changed = True
    limits = (0.0, float(max(last, 1)))
    if ax.get_xlim() != limits:
        ax.set_xlim(*limits)
        changed = True
    return changed


def plot_percentiles(history, ax=None, title=None, ylim=None, legend=True):
    """Figure 1(b, c) of the BN paper: the 15th, 50th and 85th percentiles of one sigmoid's input over training.

    Parameters
    ----------
    history : History or None
        From :func:`bnlab.train.run_experiment`: ``steps`` (E,) and
        ``percentiles`` (E, 3). None draws an empty panel saying "not run".
    ax : Axes, optional
    title : str, optional
        Default: the run's label, e.g. ``"without BN: input to one sigmoid"``.
    ylim : (float, float), optional
        Default: around the data (pass the same limits to panels that are compared).
    legend : bool, default True

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"lines"`` (three Line2D: 15th, 50th, 85th),
        ``"title"`` (Text), ``"note"`` (Text, "not run" or a divergence note).

    Notes
    -----
    Without BN the percentiles drift as the earlier layers learn (the
    "internal covariate shift" of the paper); with BN they settle quickly.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    fig, ax = figure_for(ax, 1, width=6.0, height=4.0)
    label = history.label if history is not None else "not run"
    colour = VARIANT_COLORS.get(label, PALETTE["black"])
    drawn = {"fig": fig, "ax": ax, "lines": []}
    with style():
        for level, width, dash in zip((15, 50, 85), (1.6, 2.8, 1.6), ("--", "-", "--")):
            (line,) = ax.plot([], [], color=colour, linewidth=width, linestyle=dash, label=f"{level}th")
            drawn["lines"].append(line)
        finish_axes(ax, title or _percentile_title(history), "training step",
                    "value (15th, 50th, 85th pct)", legend=legend)
        drawn["title"] = ax.title
        drawn["note"] = ax.text(0.5, 0.5, "", transform=ax.transAxes, ha="center", va="center", fontsize=12,
                                color=PALETTE["vermillion"], zorder=5)
    update_percentiles(drawn, history, title=title, ylim=ylim)
    return drawn


def _percentile_title(history, prefix=""):
    if history is None:
        return f"{prefix}not run"
    activation = history.config.get("activation", "sigmoid")
    return f"{prefix}{history.label}: input to one {activation}"


def percentile_limits(histories, pad=0.1):
    """Common y limits for the percentile panels of ``histories`` (so they can be compared).

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    values = [np.ravel(h.percentiles) for h in histories.values() if h is not None and len(h.percentiles)]
    values = [v[np.isfinite(v)] for v in values]
    values = [v for v in values if v.size]
    if not values:
        return (-1.0, 1.0)
    return padded_limits(np.concatenate(values), pad=pad)


def update_percentiles(drawn, history, title=None, ylim=None, prefix=""):
    """Set a :func:`plot_percentiles` panel from ``history`` (None: empty, "not run").

    Returns True when the axes' limits changed.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    ax = drawn["ax"]
    before = (ax.get_xlim(), ax.get_ylim())
    if history is None:
        for line in drawn["lines"]:
            line.set_data([], [])
        drawn["note"].set_text("not run")
    else:
        steps = np.asarray(history.steps, dtype=np.float64)
        colour = VARIANT_COLORS.get(history.label, PALETTE["black"])
        for line, column in zip(drawn["lines"], np.asarray(history.percentiles, dtype=np.float64).T):
            line.set_data(steps, column)
            line.set_color(colour)
        drawn["note"].set_text(f"diverged at step {history.diverged_at}" if history.diverged else "")
        ax.set_xlim(0.0, float(max(history.config["steps"], 1)))
    drawn["title"].set_text(title or _percentile_title(history, prefix))
    if ylim is None:
        ylim = percentile_limits({"run": history})
    ax.set_ylim(*ylim)
    return before != (ax.get_xlim(), ax.get_ylim())


def plot_training_figure(histories, labels=None):
    """The BN paper's Figure 1 for ``histories``: (a) test accuracy, then one percentile panel per run.

    Parameters
    ----------
    histories : dict of str to History
        From :func:`bnlab.train.compare`.
    labels : sequence of str, optional
        The runs that get a percentile panel, in order (default: those in
        ``histories``); a label without a history gets an empty "not run"
        panel (an explorer fills it later with :func:`update_training_figure`).

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"accuracy"`` (from :func:`plot_test_accuracy`)
        and ``"percentiles"`` (label -> dict from :func:`plot_percentiles`).
        The percentile panels share their y limits.

    Notes
    -----
    One row for up to three panels, a 2 x 2 grid for four.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    labels = list(histories) if labels is None else list(labels)
    panels = 1 + len(labels)
    if panels == 4:
        fig, axes = new_figure(2, nrows=2, width=11.5, height=3.9)
    else:
        fig, axes = new_figure(panels, width=5.2 * panels, height=4.2)
    axes = list(np.ravel(axes))
    drawn = {"fig": fig, "axes": axes, "labels": labels}
    drawn["accuracy"] = plot_test_accuracy({label: histories.get(label) for label in labels}
                                           if labels else histories, ax=axes[0])
    drawn["percentiles"] = {}
    ylim = percentile_limits({label: histories.get(label) for label in labels})
    for i, (label, ax) in enumerate(zip(labels, axes[1:])):
        history = histories.get(label)
        prefix = f"({'bcd'[i]}) "
        drawn["percentiles"][label] = plot_percentiles(history, ax=ax, ylim=ylim,
                                                       title=_percentile_title(history, prefix)
                                                       if history is not None else f"{prefix}{label}: not run",
                                                       legend=i == 0)
    return drawn


def update_training_figure(drawn, histories):
    """Refresh a :func:`plot_training_figure` figure with new runs (a label without a run: "not run").

    Returns True when some axes' limits changed.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    changed = update_test_accuracy(drawn["accuracy"], histories)
    labels = drawn["labels"]
    ylim = percentile_limits({label: histories.get(label) for label in labels})
    for i, label in enumerate(labels):
        history = histories.get(label)
        prefix = f"({'bcd'[i]}) "
        changed |= update_percentiles(drawn["percentiles"][label], history, ylim=ylim,
                                      title=None if history is not None else f"{prefix}{label}: not run",
                                      prefix=prefix)
        if history is None:  # an empty panel spans the same steps as the others
            drawn["percentiles"][label]["ax"].set_xlim(drawn["accuracy"]["ax"].get_xlim())
    return changed
