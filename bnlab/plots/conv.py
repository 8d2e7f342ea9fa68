"""Figures behind notebook 08: feature maps of the digits, BN of one channel, a small CNN's accuracy."""

from __future__ import annotations

import numpy as np

from .theme import (
    figure_dpi,
    FEATURE_COLORS,
    PALETTE,
    few_ticks,
    figure_for,
    finish_axes,
    fit_limits,
    new_figure,
    style,
)

__all__ = [
    "MAP_CMAP", "NORM_COLORS", "plot_feature_maps", "plot_channel_bn", "update_channel_bn",
    "plot_position_stats", "plot_cnn_accuracy",
]


#: Colour map of feature maps: diverging (white at 0, purple below, orange above), colour-blind safe.
MAP_CMAP = "PuOr_r"
#: Line colours of the normalizations, by :data:`bnlab.train.NORM_LABELS` label (BN blue, none vermillion).
NORM_COLORS = {"BN": PALETTE["blue"], "no norm": PALETTE["vermillion"], "GN": PALETTE["green"],
               "LN": PALETTE["purple"], "IN": PALETTE["orange"], "RMSNorm": PALETTE["sky"]}
#: Bin width of the after-BN histogram: fixed edges, so the bars of different batches compare.
AFTER_BIN_WIDTH = 0.25


def _symmetric_limit(values):
    """A colour limit L for values drawn from -L to L (white at 0); never 0."""
    biggest = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return biggest if biggest > 0 else 1.0


def _blank_map_axes(ax):
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color(PALETTE["grey"])


def plot_feature_maps(images, maps, labels=None, channels=None, axes=None):
    """A few input images and their feature maps, one image per row.

    Parameters
    ----------
    images : ndarray, shape (K, 1, H, W) or (K, H, W)
        The inputs (drawn in grey, dark = ink).
    maps : ndarray, shape (K, C, H', W')
        A convolution's output for those images; one column per channel.
        Each channel has its own colour scale, shared by all rows (white 0,
        orange positive, purple negative), so the rows compare.
    labels : sequence of int, optional
        The digits' classes, written beside each row.
    channels : sequence of int, optional
        Which channel numbers the columns show (default 0 .. C-1), for the titles.
    axes : ndarray of Axes, shape (K, C + 1), optional

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"`` (ndarray (K, C + 1)), ``"inputs"`` (list of AxesImage),
        ``"maps"`` (list of lists of AxesImage, [row][channel]), ``"limits"`` (ndarray (C,),
        each channel's colour limit).

    Introduced in notebook 08 (BN in convolutional networks).
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 4:
        images = images[:, 0]
    maps = np.asarray(maps, dtype=np.float64)
    if images.ndim != 3 or maps.ndim != 4 or len(images) != len(maps):
        raise ValueError(f"images must be (K, H, W) or (K, 1, H, W) and maps (K, C, H', W') with the same K, "
                         f"got {images.shape} and {maps.shape}")
    k, c = maps.shape[:2]
    channels = list(range(c)) if channels is None else list(channels)
    if axes is None:
        fig, axes = new_figure(c + 1, k, width=1.75 * (c + 1) + 0.6, height=1.75)
    else:
        fig = np.asarray(axes).flat[0].figure
    axes = np.asarray(axes).reshape(k, c + 1)
    limits = np.array([_symmetric_limit(maps[:, j]) for j in range(c)])
    drawn = {"fig": fig, "axes": axes, "inputs": [], "maps": [], "limits": limits}
    with style():
        for row in range(k):
            ax = axes[row, 0]
            drawn["inputs"].append(ax.imshow(images[row], cmap="gray_r", vmin=0.0, vmax=1.0))
            _blank_map_axes(ax)
            label = "" if labels is None else f"a {int(labels[row])}"
            ax.set_ylabel(f"image {row}" + (f"\n({label})" if label else ""))
            row_maps = []
            for j in range(c):
                ax = axes[row, j + 1]
                row_maps.append(ax.imshow(maps[row, j], cmap=MAP_CMAP, vmin=-limits[j], vmax=limits[j]))
                _blank_map_axes(ax)
            drawn["maps"].append(row_maps)
        axes[0, 0].set_title("input")
        for j in range(c):
            axes[0, j + 1].set_title(f"channel {channels[j]}")
        axes[-1, 0].set_xlabel(f"{images.shape[1]}×{images.shape[2]} pixels")
        for j in range(c):
            axes[-1, j + 1].set_xlabel(f"colours ±{limits[j]:.2g}", fontsize=11)
    return drawn


def _signed(value, digits=2):
    """``value`` rounded, with a true minus sign and never −0."""
    text = f"{float(value) + 0.0:.{digits}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "\u2212")


def _stats_title(when, mean, var):
    return f"{when}: mean {_signed(mean)}, var {_signed(var)}"


def _montage(maps, shown):
    """``shown`` maps of shape (H, W) side by side, one NaN column between them (blank where missing)."""
    n, height, width = maps.shape
    out = np.full((height, shown * (width + 1) - 1), np.nan)
    for i in range(min(n, shown)):
        out[:, i * (width + 1):i * (width + 1) + width] = maps[i]
    return out


def plot_channel_bn(before, after, channel=None, shown=4, value_range=None, bins=40, after_limit=8.0, note="",
                    axes=None):
    """One channel of a batch of feature maps before and after BN: a few maps, and the histograms.

    Top row: the first ``shown`` maps of the batch before BN (side by side in
    one panel) and the histogram of all the channel's values in the batch
    (N·H·W of them); bottom row: the same after BN. The title of each
    histogram gives the mean and variance of what it shows.

    Parameters
    ----------
    before, after : ndarray, shape (N, H, W)
        The channel's maps in the batch, before and after normalization.
    channel : int
        Written in the top row's title (an explorer names it in ``note`` instead).
    shown : int, default 4
        Maps drawn per row (with fewer images in the batch the rest stay blank
        and a note says so).
    value_range : (float, float), optional
        Range of the before-BN values: the histogram's bins and the maps'
        colour scale (white at 0). Default: from ``before``. An explorer
        passes the range of the whole pool, so the scale stays put while the
        batch changes.
    bins : int, default 40
        Bins of the before-BN histogram.
    after_limit : float, default 8
        After-BN histogram bins span ``(-after_limit, after_limit)`` in steps
        of 0.25 (a value normalized with n values lies within ``sqrt(n - 1)``
        of 0); the after-BN maps are drawn from -3 to 3.
    note : str
        Text in the after-BN histogram (e.g. how many values each statistic has).
    axes : dict of Axes, optional
        With keys ``"before"``, ``"after"``, ``"hist_before"``, ``"hist_after"``.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"`` (dict as above), ``"before_image"``, ``"after_image"`` (AxesImage
        of the maps side by side),
        ``"missing"`` (Text, visible when the batch has fewer than ``shown`` images),
        ``"hist_before"``, ``"hist_after"`` (StepPatch), ``"before_edges"``, ``"after_edges"``
        (ndarray), ``"hist_titles"`` (dict "before"/"after" -> Text), ``"note"`` (Text),
        ``"value_range"``, ``"shown"``.

    Introduced in notebook 08 (BN in convolutional networks).
    """
    before = np.asarray(before, dtype=np.float64)
    after = np.asarray(after, dtype=np.float64)
    if before.ndim != 3 or before.shape != after.shape:
        raise ValueError(f"before and after must be maps of one channel, shape (N, H, W), the same shape, "
                         f"got {before.shape} and {after.shape}")
    if value_range is None:
        value_range = (float(before.min()), float(before.max()))
    low, high = value_range
    if not high > low:
        low, high = low - 0.5, high + 0.5
    if axes is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        with style():
            fig = Figure(figsize=(1.7 * shown + 4.6, 4.7), dpi=figure_dpi(), layout="constrained")
            FigureCanvasAgg(fig)
            axes = fig.subplot_mosaic([["before", "hist_before"], ["after", "hist_after"]],
                                      width_ratios=[1.7 * shown, 4.2])
    else:
        fig = axes["hist_before"].figure
    height, width = before.shape[1:]
    drawn = {"fig": fig, "axes": axes,
             "before_edges": np.linspace(low, high, bins + 1),
             "after_edges": np.arange(-after_limit, after_limit + AFTER_BIN_WIDTH / 2, AFTER_BIN_WIDTH),
             "value_range": (low, high), "shown": shown}
    limit = max(abs(low), abs(high))
    blank = _montage(before[:0], shown)
    with style():
        drawn["before_image"] = axes["before"].imshow(blank, cmap=MAP_CMAP, vmin=-limit, vmax=limit,
                                                      interpolation="nearest")
        drawn["after_image"] = axes["after"].imshow(blank, cmap=MAP_CMAP, vmin=-3.0, vmax=3.0,
                                                    interpolation="nearest")
        centres = [i * (width + 1) + (width - 1) / 2 for i in range(shown)]
        for key, title in (("before", "before BN" if channel is None else f"channel {channel} before BN"),
                           ("after", "after BN (colours −3 to 3)")):
            ax = axes[key]
            ax.grid(False)
            ax.set_xticks(centres)
            ax.set_xticklabels([f"image {i}" for i in range(shown)])
            ax.set_yticks([])
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_title(title)
        axes["before"].set_ylabel(f"{height}×{width} maps")
        axes["after"].set_ylabel(f"{height}×{width} maps")
        drawn["missing"] = axes["before"].text(
            (shown * (width + 1) - 1) / 2, (height - 1) / 2, "", ha="center", va="center", fontsize=11,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9, "edgecolor": PALETTE["grey"]})
        ax_hb, ax_ha = axes["hist_before"], axes["hist_after"]
        drawn["hist_before"] = ax_hb.stairs(np.zeros(bins), drawn["before_edges"], fill=True,
                                            color=PALETTE["orange"], alpha=0.85)
        drawn["hist_after"] = ax_ha.stairs(np.zeros(len(drawn["after_edges"]) - 1), drawn["after_edges"],
                                           fill=True, color=PALETTE["blue"], alpha=0.85)
        ax_hb.set_xlim(low - 0.05 * (high - low), high + 0.05 * (high - low))
        ax_ha.set_xlim(-4.0, 4.0)
        for ax in (ax_hb, ax_ha):
            ax.axvline(0.0, color=PALETTE["grey"], linewidth=1.0, zorder=0)
            ax.set_ylim(0.0, 1.0)
            few_ticks(ax, nbins=4)
        finish_axes(ax_hb, "before BN", "value", "density")
        finish_axes(ax_ha, "after BN", "normalized value", "density")
        drawn["hist_titles"] = {"before": ax_hb.title, "after": ax_ha.title}
        drawn["note"] = ax_ha.text(0.02, 0.97, note, transform=ax_ha.transAxes, va="top", ha="left",
                                   fontsize=10.5, bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9,
                                                        "edgecolor": PALETTE["grey"]}, zorder=5)
    update_channel_bn(drawn, before, after, note=note)
    return drawn


def update_channel_bn(drawn, before, after, note=None, value_range=None):
    """Update a :func:`plot_channel_bn` figure in place (maps, histograms, titles, note).

    ``value_range`` (a new channel's range) moves the before-BN bins and colour scale.
    Axis limits change only when the bars leave them (or fill much less), so a
    slider move usually redraws the data alone.

    Introduced in notebook 08 (BN in convolutional networks).
    """
    before = np.asarray(before, dtype=np.float64)
    after = np.asarray(after, dtype=np.float64)
    axes = drawn["axes"]
    shown = drawn["shown"]
    if value_range is not None and tuple(value_range) != tuple(drawn["value_range"]):
        low, high = value_range
        if not high > low:
            low, high = low - 0.5, high + 0.5
        drawn["value_range"] = (low, high)
        drawn["before_edges"] = np.linspace(low, high, len(drawn["before_edges"]))
        limit = max(abs(low), abs(high))
        drawn["before_image"].set_clim(-limit, limit)
        axes["hist_before"].set_xlim(low - 0.05 * (high - low), high + 0.05 * (high - low))
    n = before.shape[0]
    drawn["before_image"].set_data(_montage(before, shown))
    drawn["after_image"].set_data(_montage(after, shown))
    drawn["missing"].set_text(f"N = {n}: images {n}–{shown - 1} are not in the batch" if n < shown - 1 else
                              f"N = {n}: image {n} is not in the batch")
    drawn["missing"].set_visible(n < shown)
    low, high = drawn["value_range"]
    counts_b, _ = np.histogram(np.clip(before, low, high), bins=drawn["before_edges"], density=True)
    edges_a = drawn["after_edges"]
    counts_a, _ = np.histogram(np.clip(after, edges_a[0], edges_a[-1]), bins=edges_a, density=True)
    drawn["hist_before"].set_data(counts_b, drawn["before_edges"])
    drawn["hist_after"].set_data(counts_a, edges_a)
    # room above the tallest bar (after BN: for the note too); the limits move only when needed
    for ax, counts, headroom in ((axes["hist_before"], counts_b, 1.2), (axes["hist_after"], counts_a, 1.5)):
        top = max(float(counts.max()), 1e-3)
        high_y = ax.get_ylim()[1]
        if top * headroom > 1.15 * high_y or top * headroom < 0.5 * high_y:
            ax.set_ylim(0.0, top * headroom)
    reach = float(np.max(np.abs(after))) if after.size else 0.0
    fit_limits(axes["hist_after"], [-max(3.5, reach), max(3.5, reach)], which="x", pad=0.08, shrink=0.5)
    drawn["hist_titles"]["before"].set_text(_stats_title("before BN", before.mean(), before.var()))
    drawn["hist_titles"]["after"].set_text(_stats_title("after BN", after.mean(), after.var()))
    if note is not None:
        drawn["note"].set_text(note)
        drawn["note"].set_visible(bool(note))
    return drawn


def plot_position_stats(position_mean, position_var, channel_mean, channel_var, channel=0, axes=None):
    """Per-position statistics of one channel (what ``axis=0`` computes) next to the single per-channel pair.

    Parameters
    ----------
    position_mean, position_var : ndarray, shape (H, W)
        The channel's mean and variance at each position, over the batch only
        (``batch_stats(z, axis=0)[c]``): N values each.
    channel_mean, channel_var : float
        The channel's mean and variance over the batch and all positions
        (``batch_stats(z, axis=(0, 2, 3))[c]``): N·H·W values.
    channel : int
    axes : sequence of 2 Axes, optional

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"mean_image"``, ``"var_image"`` (AxesImage), ``"colorbars"``.

    Introduced in notebook 08 (BN in convolutional networks).
    """
    position_mean = np.asarray(position_mean, dtype=np.float64)
    position_var = np.asarray(position_var, dtype=np.float64)
    if position_mean.ndim != 2 or position_mean.shape != position_var.shape:
        raise ValueError(f"position_mean and position_var must be (H, W) maps of the same shape, got "
                         f"{position_mean.shape} and {position_var.shape}")
    fig, axes = figure_for(axes, 2, width=9.6, height=4.2)
    ax_m, ax_v = axes
    drawn = {"fig": fig, "axes": list(axes), "colorbars": []}
    with style():
        limit = _symmetric_limit(np.append(position_mean, channel_mean))
        drawn["mean_image"] = ax_m.imshow(position_mean, cmap=MAP_CMAP, vmin=-limit, vmax=limit)
        drawn["var_image"] = ax_v.imshow(position_var, cmap="cividis", vmin=0.0,
                                         vmax=max(float(position_var.max()), float(channel_var), 1e-12))
        for ax, image, value in ((ax_m, drawn["mean_image"], channel_mean),
                                 (ax_v, drawn["var_image"], channel_var)):
            ax.grid(False)
            ax.set_xticks(range(position_mean.shape[1]))
            ax.set_yticks(range(position_mean.shape[0]))
            ax.tick_params(labelsize=9)
            bar = fig.colorbar(image, ax=ax, shrink=0.85)
            bar.ax.axhline(value, color=PALETTE["black"], linewidth=3)
            bar.ax.tick_params(labelsize=10)
            drawn["colorbars"].append(bar)
        finish_axes(ax_m, f"per-position mean (channel {channel})", "column", "row")
        finish_axes(ax_v, f"per-position variance (channel {channel})", "column", "row")
        drawn["colorbars"][0].set_label(f"black line: channel mean {_signed(channel_mean)}", fontsize=10)
        drawn["colorbars"][1].set_label(f"black line: channel variance {float(channel_var):.2f}", fontsize=10)
    return drawn


def plot_cnn_accuracy(histories, axes=None):
    """Test accuracy and training loss per epoch of :func:`bnlab.train.run_cnn` runs.

    Parameters
    ----------
    histories : dict of str -> EpochHistory
        Runs by label (legend text). Colours follow each run's normalization
        (:data:`NORM_COLORS`: BN blue, none vermillion).
    axes : sequence of 2 Axes, optional

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, ``"accuracy_lines"`` and ``"loss_lines"`` (dict label -> Line2D).

    Introduced in notebook 08 (BN in convolutional networks).
    """
    fig, axes = figure_for(axes, 2, width=11.5, height=4.2)
    ax_acc, ax_loss = axes
    drawn = {"fig": fig, "axes": list(axes), "accuracy_lines": {}, "loss_lines": {}}
    with style():
        epochs_max = 1
        for i, (label, history) in enumerate(histories.items()):
            colour = NORM_COLORS.get(history.label, FEATURE_COLORS[i % len(FEATURE_COLORS)])
            epochs = np.asarray(history.epochs)
            epochs_max = max(epochs_max, int(epochs.max()) if epochs.size else 1)
            (drawn["accuracy_lines"][label],) = ax_acc.plot(epochs, 100 * np.asarray(history.test_accuracy),
                                                            marker="o", color=colour, label=label)
            loss_epochs = epochs[1:]
            (drawn["loss_lines"][label],) = ax_loss.plot(loss_epochs, np.asarray(history.train_loss)[1:],
                                                         marker="o", color=colour, label=label)
        ax_acc.axhline(10.0, color=PALETTE["grey"], linewidth=1.0, linestyle=":", zorder=1)
        ax_acc.text(epochs_max, 11.5, "chance (10 %)", ha="right", va="bottom", fontsize=10, color=PALETTE["grey"])
        ax_acc.set_ylim(0, 100)
        ax_loss.set_ylim(bottom=0)
        for ax in axes:
            ax.set_xticks(range(epochs_max + 1))
        finish_axes(ax_acc, "test accuracy (evaluation mode)", "epoch", "test accuracy (%)", legend=True)
        finish_axes(ax_loss, "training loss", "epoch", "mean mini-batch loss", legend=True)
    return drawn
