"""Figures behind notebook 05: running statistics over a stream of batches, train versus eval."""

from __future__ import annotations

import numpy as np

from .theme import (
    FEATURE_COLORS,
    PALETTE,
    feature_axis,
    feature_scatter_offsets,
    few_ticks,
    figure_for,
    finish_axes,
    style,
)

__all__ = ["plot_running_stats", "plot_train_eval", "update_train_eval", "CURVE_COLORS"]


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
        for ax in axes:
            few_ticks(ax)
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
            feature_axis(ax, d)
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
        feature_axis(ax_y, d)
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
