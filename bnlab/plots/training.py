"""Figures behind notebook 07: the BN paper's Figure 1 on the digits (test accuracy, sigmoid-input percentiles)."""

from __future__ import annotations

import numpy as np

from .theme import (
    FEATURE_COLORS,
    PALETTE,
    figure_for,
    finish_axes,
    new_figure,
    padded_limits,
    style,
)

__all__ = [
    "VARIANT_COLORS", "VARIANT_STYLES", "VARIANT_ORDER", "plot_test_accuracy",
    "update_test_accuracy", "plot_percentiles", "update_percentiles", "percentile_limits",
    "plot_training_figure", "update_training_figure",
]


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
