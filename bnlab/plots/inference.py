"""Figures behind notebook 10: BN at inference time (precise BN, AdaBN on shifted digits).

Two colours carry one meaning throughout: vermillion for the statistics
training left behind (the exponential running average), blue for statistics
re-estimated afterwards with the final weights (precise BN, AdaBN).
"""

from __future__ import annotations

import numpy as np
from matplotlib.gridspec import GridSpec, GridSpecFromSubplotSpec

from .theme import (
    PALETTE,
    CompactFormatter,
    few_ticks,
    figure_for,
    finish_axes,
    new_figure,
    style,
)

__all__ = [
    "STATS_COLORS", "plot_precise_bn", "plot_adabn", "plot_digit_rows", "update_digit_row",
    "digit_mosaic", "plot_shift_panels", "update_shift_panels",
]

#: Colours of the two kinds of statistics: what training left, and what was re-estimated afterwards.
STATS_COLORS = {"training": PALETTE["vermillion"], "re-estimated": PALETTE["blue"]}

#: Pixel range the digits are drawn with (the data's [0, 1]; shifted pixels beyond it saturate).
_PIXEL_RANGE = (0.0, 1.0)


def _as_images(x):
    """``x`` of shape (k, 64) or (k, 8, 8) as (k, 8, 8) float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 64:
        return x.reshape(-1, 8, 8)
    if x.ndim == 3 and x.shape[1:] == (8, 8):
        return x
    raise ValueError(f"digit images must have shape (k, 64) or (k, 8, 8), got {x.shape}")


def plot_precise_bn(results, ax=None):
    """Test accuracy with the running average (EMA) and with precise BN, per setting and seed.

    Parameters
    ----------
    results : dict of str to dict
        One entry per setting (the label is written under its group), each a
        :func:`bnlab.train.precise_bn_experiment` result or any dict with
        ``"ema_accuracy"`` and ``"precise_accuracy"``, arrays of shape (S,)
        with accuracies in [0, 1] (one per seed).
    ax : Axes, optional

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"ema"`` and ``"precise"`` (label -> PathCollection,
        accuracy in percent), ``"links"`` (label -> list of Line2D, one per
        seed, from its EMA to its precise value).

    Notes
    -----
    A slope chart: within each group the left dot of a seed is its EMA
    accuracy, the right dot its precise-BN accuracy, joined by a line. Lines
    going up are seeds that precise BN helped.

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    if not results:
        raise ValueError("results is empty: give at least one setting")
    fig, ax = figure_for(ax, 1, width=4.0 + 2.6 * len(results), height=4.4)
    drawn = {"fig": fig, "ax": ax, "ema": {}, "precise": {}, "links": {}}
    lowest = 100.0
    with style():
        for i, (label, result) in enumerate(results.items()):
            ema = 100.0 * np.asarray(result["ema_accuracy"], dtype=np.float64)
            precise = 100.0 * np.asarray(result["precise_accuracy"], dtype=np.float64)
            if ema.shape != precise.shape or ema.ndim != 1:
                raise ValueError(f"results[{label!r}]: ema_accuracy and precise_accuracy must be arrays of "
                                 f"the same shape (S,), got {ema.shape} and {precise.shape}")
            left, right = i - 0.2, i + 0.2
            drawn["links"][label] = [ax.plot([left, right], [e, p], color=PALETTE["grey"], linewidth=1.4,
                                             zorder=2)[0] for e, p in zip(ema, precise)]
            drawn["ema"][label] = ax.scatter(np.full(ema.shape, left), ema, s=70, zorder=3,
                                             color=STATS_COLORS["training"],
                                             label="running average (EMA)" if i == 0 else None)
            drawn["precise"][label] = ax.scatter(np.full(precise.shape, right), precise, s=70, zorder=3,
                                                 marker="D", color=STATS_COLORS["re-estimated"],
                                                 label="precise BN (re-estimated)" if i == 0 else None)
            lowest = min(lowest, float(ema.min()), float(precise.min()))
        ax.set_xticks(range(len(results)))
        ax.set_xticklabels(list(results))
        ax.set_xlim(-0.6, len(results) - 0.4)
        ax.set_ylim(max(0.0, np.floor(lowest / 5.0) * 5.0 - 2.0), 100.5)
        ax.grid(False, axis="x")
        ax.yaxis.set_major_formatter(CompactFormatter())
        finish_axes(ax, "test accuracy: running average or precise BN", "setting (one line per seed)",
                    "test accuracy (%)")
        ax.legend(loc="lower right", framealpha=0.9)
    return drawn


def plot_adabn(accuracy, ax=None):
    """Test accuracy per test set, with the training statistics and with re-estimated ones (AdaBN).

    Parameters
    ----------
    accuracy : dict of str to dict
        ``{test set name: {"trained": (S,), "AdaBN": (S,)}}`` in [0, 1], as
        ``bnlab.train.adabn_experiment(...)["accuracy"]``.
    ax : Axes, optional

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"bars"`` (``{"trained": BarContainer, "AdaBN":
        BarContainer}``, heights: the mean over seeds in percent),
        ``"seeds"`` (the same keys, PathCollection of the per-seed values).

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    if not accuracy:
        raise ValueError("accuracy is empty: give at least one test set")
    names = list(accuracy)
    fig, ax = figure_for(ax, 1, width=3.0 + 2.4 * len(names), height=4.4)
    x = np.arange(len(names), dtype=np.float64)
    drawn = {"fig": fig, "ax": ax, "bars": {}, "seeds": {}}
    legend = {"trained": "training statistics", "AdaBN": "re-estimated on the test inputs (AdaBN)"}
    with style():
        for offset, key, colour in ((-0.2, "trained", STATS_COLORS["training"]),
                                    (0.2, "AdaBN", STATS_COLORS["re-estimated"])):
            values = [100.0 * np.asarray(accuracy[name][key], dtype=np.float64) for name in names]
            drawn["bars"][key] = ax.bar(x + offset, [v.mean() for v in values], width=0.38, color=colour,
                                        alpha=0.85, label=legend[key], zorder=2)
            xs = np.concatenate([np.full(v.shape, x[i] + offset) for i, v in enumerate(values)])
            drawn["seeds"][key] = ax.scatter(xs, np.concatenate(values), s=22, color=PALETTE["black"],
                                             zorder=3, label="one seed" if key == "AdaBN" else None)
        ax.axhline(10.0, color=PALETTE["grey"], linewidth=1.0, linestyle=":", zorder=1)
        ax.text(len(names) - 0.45, 11.0, "chance", ha="right", va="bottom", fontsize=10, color=PALETTE["grey"])
        ax.set_xticks(x)
        ax.set_xticklabels([name.replace(" ", "\n", 1) if len(name) > 14 else name for name in names])
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylim(0, 118)
        ax.set_yticks([0, 20, 40, 60, 80, 100])
        ax.grid(False, axis="x")
        finish_axes(ax, "the same trained network on shifted test sets", "test set",
                    "test accuracy (%)")
        ax.legend(loc="upper right", ncols=3, fontsize=10, framealpha=0.9)
    return drawn


def plot_digit_rows(rows, axes=None, title=None):
    """Rows of 8x8 digit images: one row per label (for example one per shift), the same digits in each.

    Parameters
    ----------
    rows : dict of str to ndarray, shape (k, 64) or (k, 8, 8)
        The same ``k`` images, one variant per row. Pixels are drawn on
        [0, 1] (white to black); values beyond saturate, so a brighter or
        fainter image looks it.
    axes : 2-D array of Axes, shape (len(rows), k), optional
    title : str, optional
        Figure title (default: none).

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"`` (2-D array), ``"images"`` (label -> list of AxesImage).

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    if not rows:
        raise ValueError("rows is empty: give at least one row of images")
    images = {label: _as_images(x) for label, x in rows.items()}
    k = {len(x) for x in images.values()}
    if len(k) != 1:
        raise ValueError(f"every row needs the same number of images, got {sorted(k)}")
    k = k.pop()
    if axes is None:
        fig, axes = new_figure(k, len(rows), width=1.15 * k + 2.2, height=1.3)
        axes = np.asarray(axes).reshape(len(rows), k)
    else:
        axes = np.asarray(axes).reshape(len(rows), k)
        fig = axes[0, 0].figure
    drawn = {"fig": fig, "axes": axes, "images": {}}
    with style():
        for r, (label, x) in enumerate(images.items()):
            drawn["images"][label] = []
            for j in range(k):
                ax = axes[r, j]
                drawn["images"][label].append(ax.imshow(x[j], cmap="gray_r", vmin=_PIXEL_RANGE[0],
                                                        vmax=_PIXEL_RANGE[1], interpolation="nearest"))
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_color(PALETTE["grey"])
            axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=12)
        if title:
            fig.suptitle(title, fontweight="bold")
    return drawn


def update_digit_row(images, x):
    """Show the images ``x`` (shape (k, 64) or (k, 8, 8)) in a row of :func:`plot_digit_rows`.

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    x = _as_images(x)
    if len(x) != len(images):
        raise ValueError(f"{len(images)} images are drawn, got {len(x)}")
    for image, pixels in zip(images, x):
        image.set_data(pixels)


def digit_mosaic(x, gap=2):
    """Digits side by side in one image: shape (8, k * (8 + gap) - gap), NaN in the gaps.

    Parameters
    ----------
    x : ndarray, shape (k, 64) or (k, 8, 8)
    gap : int
        Columns of NaN between two digits (drawn in the colormap's "bad" colour).

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    images = _as_images(x)
    k = len(images)
    mosaic = np.full((8, k * (8 + gap) - gap), np.nan)
    for j, image in enumerate(images):
        mosaic[:, j * (8 + gap):j * (8 + gap) + 8] = image
    return mosaic


def plot_shift_panels(digits, labels, stats, accuracy, predictions, adapted=False, layer=1):
    """The figure of :class:`bnlab.widgets.ShiftExplorer`: shifted digits, one BN layer's statistics, accuracy.

    Parameters
    ----------
    digits : ndarray, shape (k, 64)
        A few shifted test images (top row, drawn as one image: :func:`digit_mosaic`).
    labels : ndarray of int, shape (k,)
        Their true classes.
    stats : dict
        One BN layer's per-feature statistics: ``"running_mean"``,
        ``"running_std"`` (what training left) and ``"shifted_mean"``,
        ``"shifted_std"`` (re-estimated on the shifted test inputs), each of
        shape (D,).
    accuracy : dict
        ``"clean"``, ``"trained"``, ``"adabn"``: test accuracies in [0, 1].
    predictions : ndarray of int, shape (k,)
        The network's classes for ``digits`` with the statistics in use.
    adapted : bool
        Which statistics BN uses: False the training ones, True the re-estimated ones.
    layer : int
        Which BN layer ``stats`` belong to (1 = first), for the titles.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"digit_ax"``, ``"mosaic"`` (AxesImage), ``"frames"``
        (list of Rectangle, one per digit: thick vermillion when classified
        wrongly), ``"mean_ax"``, ``"std_ax"``,
        ``"accuracy_ax"``, ``"points"`` (``{"mean": PathCollection, "std":
        PathCollection}``), ``"diagonals"`` (the same keys, Line2D), ``"bars"``
        (list of 3 Rectangle: clean, trained, AdaBN), ``"bar_labels"`` (list
        of 3 Text); :func:`update_shift_panels` changes them in place.

    Notes
    -----
    Texts are what costs most when a figure is redrawn on every slider move,
    so only the three accuracies are dynamic texts; the true classes are tick
    labels, a wrong class shows as a red frame, and what changes rarely (the
    titles naming the BN layer) is static: the explorer redraws the whole
    figure then. The statistics panels take their limits from a short ladder
    (1, 1.5, 2.5, 4, 6 times a power of ten), and the panels keep clear gaps
    (titles no wider than their panel), so a slider that rescales one panel
    redraws that panel alone.

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    import matplotlib as mpl
    from matplotlib.patches import Rectangle

    digits = _as_images(digits)
    k = len(digits)
    fig, _ = new_figure(1, width=10.8, height=5.4)
    fig.clear()
    fig.get_layout_engine().set(w_pad=0.1)  # clear gaps between the panels (see Notes)
    outer = GridSpec(2, 1, figure=fig, height_ratios=[1.0, 3.2])
    bottom = GridSpecFromSubplotSpec(1, 3, subplot_spec=outer[1], width_ratios=[1.0, 1.0, 1.1])
    drawn = {"fig": fig, "frames": []}
    cmap = mpl.colormaps["gray_r"].with_extremes(bad="white")
    gap = 2
    with style():
        ax = fig.add_subplot(outer[0])
        drawn["digit_ax"] = ax
        drawn["mosaic"] = ax.imshow(digit_mosaic(digits, gap), cmap=cmap, vmin=_PIXEL_RANGE[0],
                                    vmax=_PIXEL_RANGE[1], interpolation="nearest")
        for j in range(k):
            drawn["frames"].append(ax.add_patch(Rectangle((j * (8 + gap) - 0.5, -0.5), 8, 8, fill=False,
                                                          edgecolor=PALETTE["grey"], linewidth=1.0)))
        ax.set_xticks([j * (8 + gap) + 3.5 for j in range(k)])
        ax.set_xticklabels([str(int(label)) for label in labels])
        ax.tick_params(axis="x", length=0)
        ax.set_yticks([])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel("true class", fontsize=11)
        ax.set_title("shifted test digits (a red frame: classified wrongly)")
        mean_ax, std_ax, acc_ax = (fig.add_subplot(bottom[0, j]) for j in range(3))
        drawn.update(mean_ax=mean_ax, std_ax=std_ax, accuracy_ax=acc_ax, points={}, diagonals={})
        for key, ax in (("mean", mean_ax), ("std", std_ax)):
            (drawn["diagonals"][key],) = ax.plot([-1e3, 1e3], [-1e3, 1e3], color=PALETTE["grey"], linewidth=1.2,
                                                 linestyle="--", zorder=1, label="no change")
            drawn["points"][key] = ax.scatter([0.0], [0.0], s=26, color=STATS_COLORS["re-estimated"],
                                              alpha=0.8, zorder=3, label="one feature")
            few_ticks(ax, nbins=4)
            ax.yaxis.labelpad = 12  # room for wider tick labels later (the layout is frozen after the first draw)
        finish_axes(mean_ax, f"BN layer {layer}: feature means", "running mean (training)",
                    "mean on the shifted test set")
        finish_axes(std_ax, f"BN layer {layer}: feature stds", "running std (training)",
                    "std on the shifted test set")
        for ax in (mean_ax, std_ax):
            # no wider than its panel: each panel then has a cell of its own, which the explorer's
            # renderer redraws alone when a slider changes its limits
            ax.title.set_fontsize(12.5)
        mean_ax.legend(loc="upper left", fontsize=11, framealpha=0.85)
        colours = [PALETTE["grey"], STATS_COLORS["training"], STATS_COLORS["re-estimated"]]
        y = np.arange(3)[::-1].astype(np.float64)
        drawn["bars"] = list(acc_ax.barh(y, [0.0, 0.0, 0.0], height=0.62, color=colours, zorder=2))
        drawn["bar_labels"] = [acc_ax.text(1.0, yi, "", va="center", ha="left", fontsize=12, zorder=3)
                               for yi in y]
        acc_ax.axvline(10.0, color=PALETTE["grey"], linewidth=1.0, linestyle=":", zorder=1)
        acc_ax.text(11.0, -0.62, "chance", fontsize=10, color=PALETTE["grey"], va="bottom")
        acc_ax.set_yticks(y)
        acc_ax.set_yticklabels(["clean", "shifted,\ntraining\nstatistics", "shifted,\nre-estimated\n(AdaBN)"])
        acc_ax.set_xlim(0, 120)
        acc_ax.set_xticks([0, 25, 50, 75, 100])
        acc_ax.set_ylim(-0.7, 2.6)
        acc_ax.grid(False, axis="y")
        finish_axes(acc_ax, "test accuracy (◀ in use)", "accuracy (%)", "")
    update_shift_panels(drawn, digits, labels, stats, accuracy, predictions, adapted=adapted)
    return drawn


#: Axis limits come from this ladder (times powers of ten): a slider that moves the points a little keeps
#: the limits, so only the points are redrawn, and limits seen before come from the renderer's cache.
_LIMIT_LADDER = (1.0, 1.5, 2.5, 4.0, 6.0)


def _ladder(value):
    """The smallest ladder step (1, 1.5, 2.5, 4, 6 times a power of ten) at least ``value`` (> 0)."""
    value = max(float(value), 1e-6)
    power = 10.0 ** np.floor(np.log10(value))
    return next((step * power for step in _LIMIT_LADDER if step * power >= value * (1 - 1e-12)), 10.0 * power)


def _square_limits(ax, x, y, symmetric):
    """Equal x and y limits from the ladder (so the diagonal is the diagonal); True if they changed.

    ``symmetric``: ``(-L, L)`` (means); otherwise ``(0, L)`` (standard deviations).
    """
    values = np.concatenate([np.ravel(x), np.ravel(y)])
    top = _ladder(1.08 * float(np.max(np.abs(values))))
    limits = (-top, top) if symmetric else (0.0, top)
    if tuple(ax.get_xlim()) == limits and tuple(ax.get_ylim()) == limits:
        return False
    ax.set_xlim(*limits)
    ax.set_ylim(*limits)
    return True


def update_shift_panels(drawn, digits, labels, stats, accuracy, predictions, adapted=False, layer=None):
    """Update a :func:`plot_shift_panels` figure in place (same arguments).

    ``layer`` (optional) retitles the two statistics panels; their titles
    are static artists, so render the whole figure again after changing it.

    Returns
    -------
    bool
        True when an axes' limits changed (the renderer then redraws it).

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    drawn["mosaic"].set_data(digit_mosaic(digits))
    changed = False
    right = np.asarray(labels).astype(int) == np.asarray(predictions).astype(int)
    for frame, ok in zip(drawn["frames"], right):
        frame.set_edgecolor(PALETTE["grey"] if ok else PALETTE["vermillion"])
        frame.set_linewidth(1.0 if ok else 3.0)
    for key, ax in (("mean", drawn["mean_ax"]), ("std", drawn["std_ax"])):
        x = np.asarray(stats[f"running_{key}"], dtype=np.float64)
        y = np.asarray(stats[f"shifted_{key}"], dtype=np.float64)
        drawn["points"][key].set_offsets(np.column_stack([x, y]))
        changed |= _square_limits(ax, x, y, symmetric=key == "mean")
        if layer is not None:
            ax.title.set_text(f"BN layer {layer}: feature {key}s")  # set_text keeps the title's style
    values = [accuracy["clean"], accuracy["trained"], accuracy["adabn"]]
    in_use = 2 if adapted else 1
    for i, (bar, text, value) in enumerate(zip(drawn["bars"], drawn["bar_labels"], values)):
        percent = 100.0 * float(value)
        bar.set_width(percent)
        bar.set_alpha(1.0 if i in (0, in_use) else 0.3)
        text.set_x(percent + 1.5)
        text.set_text(f"{percent:.1f}%" + (" ◀" if i == in_use else ""))
        text.set_fontweight("bold" if i == in_use else "normal")
    return changed
