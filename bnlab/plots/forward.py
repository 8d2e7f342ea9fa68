"""Figures behind notebooks 01-03 (the forward pass): batch statistics, normalization, scale and shift."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np

from .theme import FEATURE_COLORS, PALETTE, figure_for, finish_axes, new_figure, style

__all__ = [
    "MAX_FEATURES", "METHOD_COLORS", "plot_before_after", "plot_batch_stats",
    "update_batch_stats", "plot_variance_error", "histogram_counts", "plot_feature_histograms",
    "update_feature_histograms", "plot_eps_curve", "update_eps_curve",
]


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
