"""Figures behind notebook 11: the PyTorch/Keras translator checked, and the classic BN bugs.

:func:`plot_curves` draws labelled series on one Axes and returns the lines,
so an explorer can move them (:func:`update_curves`). The rest build on it:
:func:`plot_translation_check` (running mean and variance of bnlab set up as
PyTorch and as Keras, with the translated settings), :func:`plot_pitfall`
(one classic bug, as written, fixed, or both, from the result of a
:mod:`bnlab.pitfalls` experiment) and :func:`plot_bn_position` (BN before or
after the activation, from :func:`bnlab.train.bn_position_experiment`).
"""

from __future__ import annotations

import numpy as np

from .theme import PALETTE, few_ticks, figure_for, finish_axes, fit_limits, style

__all__ = ["BUG_COLOR", "FIX_COLOR", "plot_curves", "update_curves", "plot_translation_check",
           "update_translation_check", "pitfall_panels", "plot_pitfall", "update_pitfall", "plot_bn_position"]

#: The bug as written, and the fix (Okabe-Ito vermillion and blue).
BUG_COLOR = PALETTE["vermillion"]
FIX_COLOR = PALETTE["blue"]
_TRUTH = {"color": PALETTE["black"], "linestyle": "--", "linewidth": 1.6}
_BATCHES = {"color": "#A0A0A0", "linestyle": "none", "marker": ".", "markersize": 5}


def _legend_below(ax, ncols=2):
    """A legend under the axes (it never covers the data), in the bnlab style."""
    with style():
        legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=ncols, frameon=False,
                           fontsize=11)
    for line in legend.get_lines():  # bars drawn as thick lines get an ordinary handle
        line.set_linewidth(min(line.get_linewidth(), 6.0))


def plot_curves(series, *, ax=None, title, xlabel, ylabel, styles=None, legend=True, ncols=2):
    """Labelled series on one Axes: lines, markers or both.

    Parameters
    ----------
    series : dict of str -> (x, y)
        ``x`` and ``y`` array-like of the same length, by label (the legend's
        order is the dict's).
    ax : Axes, optional
        Default: a new one-panel figure.
    title, xlabel, ylabel : str
    styles : dict of str -> dict, optional
        Keyword arguments of ``Axes.plot`` per label (``color``,
        ``linestyle``, ``marker``, ...).
    legend : bool, default True
        A legend below the axes.
    ncols : int, default 2
        Legend columns.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"lines"`` (dict label -> Line2D).

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    fig, ax = figure_for(ax, 1, width=8.6, height=4.4)
    styles = styles or {}
    drawn = {"fig": fig, "ax": ax, "lines": {}}
    with style():
        for label, (x, y) in series.items():
            (drawn["lines"][label],) = ax.plot(np.asarray(x, dtype=float), np.asarray(y, dtype=float),
                                               label=label, **styles.get(label, {}))
        few_ticks(ax)
        finish_axes(ax, title, xlabel, ylabel)
    if legend and series:
        _legend_below(ax, ncols if max(len(label) for label in series) <= 44 else 1)
    return drawn


def update_curves(drawn, series, fit="xy"):
    """Move the lines of a :func:`plot_curves` figure to new data (same labels).

    ``fit`` names the axes (``"xy"``, ``"x"``, ``"y"`` or ``""``) whose limits
    follow the data: they change only when the data leave them or shrink to
    a small part of them (:func:`bnlab.plots.fit_limits`), so most updates
    redraw only the lines. Returns True when limits changed.

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    xs, ys = [], []
    for label, (x, y) in series.items():
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        drawn["lines"][label].set_data(x, y)
        xs.append(x[np.isfinite(x)])
        ys.append(y[np.isfinite(y)])
    if not any(y.size for y in ys):
        return False
    ax = drawn["ax"]
    changed = False
    if "y" in fit:
        changed = _fit_y(ax, np.concatenate(ys))
    if "x" in fit:
        changed = fit_limits(ax, np.concatenate(xs), "x", pad=0.03, shrink=0.5) or changed
    return changed


def _fit_y(ax, values, pad=0.3, too_wide=4.0):
    """Y limits around ``values`` with room to spare, changed only when needed (returns True then).

    The data's span counts as at least half their magnitude, so a flat line (a statistic that
    does not move) gets a window of its own and small moves of it keep the limits: a slider then
    redraws only the lines. The limits change when the data leave them, or fill less than
    1 / ``too_wide`` of them.
    """
    vmin, vmax = float(values.min()), float(values.max())
    span = max(vmax - vmin, 0.5 * max(abs(vmin), abs(vmax)), 1e-9)
    low, high = ax.get_ylim()
    if low <= vmin and vmax <= high and high - low <= too_wide * span * (1 + 2 * pad):
        return False
    centre = 0.5 * (vmin + vmax)
    ax.set_ylim(centre - span * (0.5 + pad), centre + span * (0.5 + pad))
    return True


# --------------------------------------------------------------------------- the translator, checked

#: Styles of the translator's curves: bnlab as PyTorch, as Keras (translated), the number copied.
TRANSLATION_STYLES = (
    {"color": FIX_COLOR, "linewidth": 3.2},
    {"color": PALETTE["orange"], "linestyle": "--", "linewidth": 2.2},
    {"color": BUG_COLOR, "linestyle": ":", "linewidth": 2.0},
)


def plot_translation_check(mean_curves, var_curves, true_mean=None, true_var=None, axes=None):
    """Running mean and variance of layers set up by :func:`bnlab.translate`, side by side.

    Parameters
    ----------
    mean_curves, var_curves : dict of str -> ndarray, shape (S + 1,)
        By label, in this order: bnlab with PyTorch's settings, with Keras'
        (translated), and optionally the number copied unchanged (the
        mix-up). Index 0 is the initial value.
    true_mean, true_var : float, optional
        Dashed lines: the statistics the stream was drawn with.
    axes : sequence of 2 Axes, optional

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"mean"`` and ``"var"`` (:func:`plot_curves`
        results, lines by label; ``"true value"`` included when given).

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    fig, axes = figure_for(axes, 2, width=13.0, height=4.6)
    drawn = {"fig": fig, "axes": list(axes)}
    for key, ax, curves, truth, what in (("mean", axes[0], mean_curves, true_mean, "mean"),
                                         ("var", axes[1], var_curves, true_var, "variance")):
        steps = len(next(iter(curves.values())))
        series = {label: (np.arange(len(curve)), curve) for label, curve in curves.items()}
        styles = {label: TRANSLATION_STYLES[i % len(TRANSLATION_STYLES)] for i, label in enumerate(curves)}
        if truth is not None:
            series["true value"] = ([0, steps - 1], [truth, truth])
            styles["true value"] = _TRUTH
        drawn[key] = plot_curves(series, ax=ax, title=f"running {what} (channel 0)",
                                 xlabel="training step (batches seen)", ylabel=f"running {what}", styles=styles,
                                 legend=False)
    handles, labels = axes[0].get_legend_handles_labels()
    with style():
        fig.legend(handles, labels, loc="outside upper center", ncols=min(4, len(labels)), frameon=False)
    return drawn


def update_translation_check(drawn, mean_curves, var_curves):
    """Move the curves of a :func:`plot_translation_check` figure (same labels); a label whose
    curve is None is hidden. Returns True when limits changed.

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    changed = False
    for key, curves in (("mean", mean_curves), ("var", var_curves)):
        series = {}
        for label, curve in curves.items():
            line = drawn[key]["lines"][label]
            line.set_visible(curve is not None)
            if curve is not None:
                series[label] = (np.arange(len(curve)), curve)
        changed = update_curves(drawn[key], series) or changed
    return changed


# --------------------------------------------------------------------------- the classic bugs

def _views(fixed):
    if fixed is None:
        return (False, True)
    if not isinstance(fixed, (bool, np.bool_)):
        raise TypeError(f"fixed must be True, False or None (both), got {fixed!r}")
    return (bool(fixed),)


def _eval_panels(result, views):
    passes = len(result["train_outputs"])
    x, steps = np.arange(1, passes + 1), np.arange(passes + 1)
    outputs, running = {}, {}
    styles = {}
    if False in views:
        outputs["training mode (the bug)"] = (x, result["train_outputs"])
        running["training mode: validation batches move it"] = (steps, result["train_running_mean"])
        styles["training mode (the bug)"] = {"color": BUG_COLOR, "marker": "o", "linewidth": 1.0}
        styles["training mode: validation batches move it"] = {"color": BUG_COLOR}
    if True in views:
        outputs["evaluation mode (the fix)"] = (x, result["eval_outputs"])
        running["evaluation mode: untouched"] = (steps, result["eval_running_mean"])
        styles["evaluation mode (the fix)"] = {"color": FIX_COLOR, "marker": "s", "markersize": 5}
        styles["evaluation mode: untouched"] = {"color": FIX_COLOR}
    running["true mean"] = ([0, passes], [result["true_mean"]] * 2)
    styles["true mean"] = _TRUTH
    return [dict(title="sample 0's output, batch after batch", xlabel="validation batch",
                 ylabel="BN output of sample 0", series=outputs, styles=styles),
            dict(title="running mean during validation", xlabel="validation batches seen",
                 ylabel="running mean", series=running, styles=styles)]


def _bars(x, heights):
    """Bars from 0 to ``heights`` at ``x`` as one polyline (NaN between bars): one Line2D to update."""
    x, heights = np.asarray(x, dtype=float), np.asarray(heights, dtype=float)
    nan = np.full(len(x), np.nan)
    return np.column_stack([x, x, nan]).ravel(), np.column_stack([np.zeros(len(x)), heights, nan]).ravel()


def _batch_of_one_panels(result, views):
    sizes = result["batch_sizes"]
    index = np.arange(1, len(sizes) + 1)
    refused = np.zeros(len(sizes), bool)
    refused[result["refused"]] = True
    kept = np.asarray(result["kept"], bool)
    series, styles = {}, {}
    trained = ~refused if views == (False,) else kept
    series["trained"] = _bars(index[trained], sizes[trained])
    width = float(np.clip(300.0 / max(len(sizes), 1), 3.0, 40.0))  # points: thinner bars for more batches
    styles["trained"] = {"color": FIX_COLOR, "linewidth": width, "solid_capstyle": "butt"}
    if False in views:
        series["refused in training mode (the bug)"] = (index[refused], sizes[refused])
        styles["refused in training mode (the bug)"] = {"color": BUG_COLOR, "linestyle": "none", "marker": "X",
                                                        "markersize": 13}
    if True in views:
        series["dropped: drop_last=True (the fix)"] = (index[~kept], sizes[~kept])
        styles["dropped: drop_last=True (the fix)"] = {"color": PALETTE["grey"], "linestyle": "none",
                                                       "marker": "o", "markersize": 17, "markerfacecolor": "none",
                                                       "markeredgewidth": 2.2}
    series["training needs 2 values per channel"] = ([0.5, len(sizes) + 0.5], [2, 2])
    styles["training needs 2 values per channel"] = _TRUTH
    return [dict(title="the batches of one epoch", xlabel="batch", ylabel="samples in the batch",
                 series=series, styles=styles)]


def _frozen_panels(result, views):
    means = result["running_mean"]
    steps = np.arange(len(means["pytorch_frozen"]))
    series, styles = {}, {}
    if False in views:
        series["PyTorch requires_grad_(False) (the bug)"] = (steps, means["pytorch_frozen"])
        styles["PyTorch requires_grad_(False) (the bug)"] = {"color": BUG_COLOR, "linewidth": 3.0}
        series["Keras 2 trainable=False (the same)"] = (steps, means["keras2_frozen"])
        styles["Keras 2 trainable=False (the same)"] = {"color": PALETTE["sky"], "linestyle": ":", "linewidth": 2.4}
    if True in views:
        series["PyTorch, also bn.eval() (the fix)"] = (steps, means["pytorch_eval"])
        styles["PyTorch, also bn.eval() (the fix)"] = {"color": FIX_COLOR, "linewidth": 3.0}
    series["Keras 3 trainable=False"] = (steps, means["keras_frozen"])
    styles["Keras 3 trainable=False"] = {"color": PALETTE["green"], "linestyle": "--"}
    series["mean of the fine-tuning data"] = ([0, steps[-1]], [result["new_mean"]] * 2)
    styles["mean of the fine-tuning data"] = _TRUTH
    return [dict(title="running mean of a \"frozen\" BN while fine-tuning", xlabel="fine-tuning step",
                 ylabel="running mean", series=series, styles=styles)]


def _mixup_panels(result, views):
    steps = np.arange(len(result["truth"]))
    weight = result["batch_weight"]
    series = {"each batch's mean": (steps[1:], result["batch_mean"]), "true mean": (steps, result["truth"])}
    styles = {"each batch's mean": _BATCHES, "true mean": {**_TRUTH, "drawstyle": "steps-post"}}
    labels = {"right": f"PyTorch 0.1 = Keras 0.9: weight {weight['right']:g}",
              "copied": f"Keras 0.9 copied into PyTorch: weight {weight['copied']:g}",
              "default_kept": f"Keras' default 0.99 kept: weight {weight['default_kept']:g}"}
    colors = {"right": FIX_COLOR, "copied": BUG_COLOR, "default_kept": PALETTE["orange"]}
    for name in (["right"] if True in views else []) + (["copied", "default_kept"] if False in views else []):
        series[labels[name]] = (steps, result["curves"][name])
        styles[labels[name]] = {"color": colors[name], "linewidth": 2.6 if name == "right" else 2.0}
    return [dict(title="running mean after a jump of the true mean", xlabel="training step",
                 ylabel="running mean", series=series, styles=styles)]


def _recalibration_panels(result, views):
    train_steps = result["config"]["train_steps"]
    total = len(result["truth"]) - 1
    series = {"true mean": (np.arange(total + 1), result["truth"])}
    styles = {"true mean": _TRUTH}
    if False in views:
        for name, label, color in (("keras_default", "exponential, 0.99 (Keras' default)", BUG_COLOR),
                                   ("pytorch_default", "exponential, 0.1 (PyTorch's default)",
                                    PALETTE["orange"])):
            curve = result["ema"][name]
            # after training the value stays as it is: that is what evaluation uses
            series[label] = (np.append(np.arange(train_steps + 1), total), np.append(curve, curve[-1]))
            styles[label] = {"color": color}
    if True in views:
        label = "reset, then cumulative (the fix)"
        series[label] = (np.arange(train_steps + 1, total + 1), result["cumulative"])
        styles[label] = {"color": FIX_COLOR, "linewidth": 3.0}
    series["training ends"] = ([train_steps, train_steps], [0.0, result["final_truth"]])
    styles["training ends"] = {"color": PALETTE["grey"], "linestyle": "-.", "linewidth": 1.4}
    return [dict(title="running mean: training drifts, then the weights are fixed",
                 xlabel="step (training, then recalibration batches)", ylabel="running mean", series=series,
                 styles=styles)]


def _device_panels(result, views):
    devices = np.arange(1, len(result["device_mean"]) + 1)
    panels = []
    for key, what in (("mean", "mean"), ("var", "variance")):
        series, styles = {}, {}
        if False in views:
            series[f"each device's own batch {what}"] = (devices, result[f"device_{key}"])
            styles[f"each device's own batch {what}"] = {"color": BUG_COLOR, "linestyle": "none", "marker": "o",
                                                        "markersize": 9}
        if True in views:
            series[f"SyncBN: the whole batch's {what}"] = (devices, np.full(len(devices), result[f"global_{key}"]))
            styles[f"SyncBN: the whole batch's {what}"] = {"color": FIX_COLOR, "marker": "s", "markersize": 6}
        series[f"true {what}"] = ([0.6, len(devices) + 0.4], [result[f"true_{key}"]] * 2)
        styles[f"true {what}"] = _TRUTH
        panels.append(dict(title=f"batch {what} per device, one step", xlabel="device",
                           ylabel=f"batch {what}", series=series, styles=styles))
    return panels


_PANELS = {
    "eval_in_train_mode": _eval_panels,
    "batch_of_one": _batch_of_one_panels,
    "frozen_bn": _frozen_panels,
    "momentum_mixup": _mixup_panels,
    "recalibration": _recalibration_panels,
    "per_device": _device_panels,
}


def pitfall_panels(name, result, fixed=None):
    """What :func:`plot_pitfall` draws, as data: a list of panels.

    Parameters
    ----------
    name : str
        A key of :data:`bnlab.pitfalls.PITFALLS`.
    result : dict
        That experiment's result (:func:`bnlab.pitfalls.pitfall_experiment`).
    fixed : bool or None, default None
        False: the bug as written; True: with the fix; None: both.

    Returns
    -------
    list of dict
        Each with ``"title"``, ``"xlabel"``, ``"ylabel"``, ``"series"`` (dict
        label -> (x, y)) and ``"styles"``. The titles and labels depend on
        ``name`` and ``fixed`` only, never on the numbers, so a figure drawn
        once can be updated with another result (only the lines move).

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    if not isinstance(name, str) or name not in _PANELS:
        raise ValueError(f"name must be one of {sorted(_PANELS)}, got {name!r}")
    return _PANELS[name](result, _views(fixed))


def plot_pitfall(name, result, fixed=None, axes=None):
    """One classic bug's symptom: as written, with the fix, or both.

    Parameters
    ----------
    name : str
        A key of :data:`bnlab.pitfalls.PITFALLS`.
    result : dict
        From :func:`bnlab.pitfalls.pitfall_experiment` (or the named experiment).
    fixed : bool or None, default None
        False: the bug as written (vermillion); True: with the fix (blue);
        None: both in the same axes.
    axes : sequence of Axes, optional
        As many as the pitfall has panels (two for ``"eval_in_train_mode"``
        and ``"per_device"``, one otherwise).

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"panels"`` (one :func:`plot_curves` result per
        panel), ``"name"``, ``"fixed"``.

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    panels = pitfall_panels(name, result, fixed)
    width = 8.6 if len(panels) == 1 else 13.4
    fig, axes = figure_for(axes, len(panels), width=width, height=4.9)
    axes = [axes] if len(panels) == 1 and hasattr(axes, "plot") else list(axes)
    if len(axes) != len(panels):
        raise ValueError(f"the {name!r} figure has {len(panels)} panel(s), got {len(axes)} axes")
    drawn = {"fig": fig, "axes": axes, "panels": [], "name": name, "fixed": fixed}
    for ax, panel in zip(axes, panels):
        drawn["panels"].append(plot_curves(panel["series"], ax=ax, title=panel["title"], xlabel=panel["xlabel"],
                                           ylabel=panel["ylabel"], styles=panel["styles"]))
        if name == "batch_of_one":
            ax.set_ylim(0, max(float(np.max(result["batch_sizes"])), 2.0) * 1.15)
    return drawn


def update_pitfall(drawn, result):
    """Redraw a :func:`plot_pitfall` figure with another result of the same pitfall (the lines move).

    Returns True when some axis limits changed.

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    panels = pitfall_panels(drawn["name"], result, drawn["fixed"])
    changed = False
    for curves, panel in zip(drawn["panels"], panels):
        fit = "x" if drawn["name"] == "batch_of_one" else "xy"  # its y axis starts at 0 (below)
        changed = update_curves(curves, panel["series"], fit=fit) or changed
        for label, line in curves["lines"].items():  # bar widths follow the number of bars
            if "linewidth" in panel["styles"].get(label, {}):
                line.set_linewidth(panel["styles"][label]["linewidth"])
    if drawn["name"] == "batch_of_one":
        ax = drawn["axes"][0]
        top = max(float(np.max(result["batch_sizes"])), 2.0)
        if not 1.05 * top <= ax.get_ylim()[1] <= 2.5 * top:
            ax.set_ylim(0, 1.15 * top)
            changed = True
        elif ax.get_ylim()[0] != 0:
            ax.set_ylim(0, ax.get_ylim()[1])
            changed = True
    return changed


# --------------------------------------------------------------------------- BN before or after the activation

def plot_bn_position(result, axes=None):
    """Test accuracy and final training loss with BN before and after the ReLU, per seed.

    Parameters
    ----------
    result : dict
        From :func:`bnlab.train.bn_position_experiment`.
    axes : sequence of 2 Axes, optional

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"points"`` (dict (metric, placement) -> Line2D),
        ``"means"`` (dict (metric, placement) -> Line2D).

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    fig, axes = figure_for(axes, 2, width=11.0, height=4.4)
    placements = (("before", "Dense → BN → ReLU", FIX_COLOR), ("after", "Dense → ReLU → BN", PALETTE["orange"]))
    drawn = {"fig": fig, "axes": list(axes), "points": {}, "means": {}}
    seeds = result["config"]["seeds"]
    with style():
        for ax, metric, title, ylabel, scale in (
                (axes[0], "test_accuracy", "test accuracy", "test accuracy (%)", 100.0),
                (axes[1], "final_train_loss", "training loss, last epoch", "mean mini-batch loss", 1.0)):
            values = np.array([result[p][metric] for p, _, _ in placements]) * scale  # (2, seeds)
            for s in range(values.shape[1]):
                ax.plot([0, 1], values[:, s], color=PALETTE["grey"], linewidth=1.0, zorder=1)
            for i, (placement, _, color) in enumerate(placements):
                (drawn["points"][metric, placement],) = ax.plot(
                    np.full(values.shape[1], i), values[i], linestyle="none", marker="o", markersize=10,
                    color=color, zorder=3)
                (drawn["means"][metric, placement],) = ax.plot([i - 0.18, i + 0.18], [values[i].mean()] * 2,
                                                               color=PALETTE["black"], linewidth=3.0, zorder=2)
            ax.set_xticks([0, 1])
            ax.set_xticklabels([label for _, label, _ in placements])
            ax.set_xlim(-0.5, 1.5)
            ax.grid(False, axis="x")
            low, high = float(values.min()), float(values.max())
            span = max(high - low, 0.02 * max(abs(high), 1e-9))
            ax.set_ylim(low - 0.35 * span, high + 0.35 * span)
            finish_axes(ax, f"{title} ({len(seeds)} seeds)", "BN placement in each hidden block", ylabel)
    return drawn
