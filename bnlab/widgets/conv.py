"""Explorer of notebook 08: one channel of a convolution's output, before and after BN."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..core import batch_stats, batchnorm_forward
from ..datasets import load_digits_images
from ..layers import Conv2D
from ..plots import plot_channel_bn, update_channel_bn
from .base import SENTENCE_BUTTONS, Explorer, tidy

__all__ = ["ConvBatchNormExplorer"]


#: What the statistics toggle offers: label, bnlab's axis.
STATISTICS = {
    "channel": ("per channel: axis=(0, 2, 3), over N·H·W", (0, 2, 3)),
    "position": ("per position: axis=0, over N only (wrong)", 0),
}


class ConvBatchNormExplorer(Explorer):
    """One channel of a convolution's feature maps on the digits, before and after BN.

    A fresh ``Conv2D(1, channels, 3, padding=1)`` (He initialisation, no
    bias: BN follows) is applied once to a pool of digit images; a slider
    move only slices that output and normalizes one channel, so it answers
    in a few milliseconds. The batch is the first ``batch_size`` images of
    the pool. With per-channel statistics (BN for convolutions, PyTorch's
    ``BatchNorm2d``) each statistic has N·H·W values, and a batch of one
    image still has H·W; with per-position statistics (``axis=0``, the
    mistake) each has N values, and a batch of one is refused: the message
    shows and the last valid state stays.

    Parameters
    ----------
    channels : int, default 8
        Output channels of the convolution.
    pool : int, default 64
        Images convolved once (the largest batch).
    seed : int, default 0
        The convolution's initial weights.
    eps : float, default 1e-5
        BN's eps (PyTorch's default).
    data : DigitsSplit, optional
        Default :func:`bnlab.datasets.load_digits_images` ``(0)``; its first
        ``pool`` training images are used.

    Controls
    --------
    channel_slider : IntSlider, 0 to channels - 1
    batch_size_slider : IntSlider, 1 to pool (default 32)
    statistics : ToggleButtons, ``"channel"`` (axis=(0, 2, 3)) or ``"position"`` (axis=0)

    Attributes (after each update)
    ------------------------------
    channel, batch_size : int
    axis : int or tuple
        The axes BN reduced over.
    before, after : ndarray, shape (batch_size, H, W)
        The channel's maps before and after BN (gamma 1, beta 0).
    mean, var : float, or ndarray of shape (H, W) per position
        The statistics BN used for this channel.
    values_per_statistic : int
        N·H·W per channel, N per position.
    statistics_count : int
        How many (mean, variance) pairs this channel has: 1, or H·W.
    after_mean, after_var : float
        Mean and variance of all the channel's normalized values.
    maps : ndarray, shape (pool, channels, H, W)
        The convolution's output for the pool (computed once).
    labels : ndarray, shape (pool,)
        The pool's digit classes.
    conv : Conv2D

    Introduced in notebook 08 (BN in convolutional networks).
    """

    title = "BN of one channel: feature maps and histograms before and after"

    def __init__(self, channels=8, pool=64, seed=0, eps=1e-5, data=None):
        super().__init__()
        data = load_digits_images(0) if data is None else data
        images = np.asarray(data.x_train[:pool], dtype=np.float64)
        if images.ndim != 4 or images.shape[0] < 2:
            raise ValueError(f"the pool needs at least 2 images of shape (1, H, W), got {images.shape}")
        self.eps = float(eps)
        self.conv = Conv2D(images.shape[1], channels, 3, padding=1, bias=False, rng=seed)
        self.maps = self.conv.forward(images, training=False)
        self.labels = np.asarray(data.y_train[:pool])
        # per channel: the value range over the whole pool (the histogram bins and colours stay put)
        self._ranges = [(float(self.maps[:, c].min()), float(self.maps[:, c].max())) for c in range(channels)]
        style = {"description_width": "initial"}
        wide = widgets.Layout(width="360px")
        self.channel_slider = widgets.IntSlider(value=1, min=0, max=channels - 1, description="channel",
                                                style=style, layout=wide)
        self.batch_size_slider = widgets.IntSlider(value=min(32, len(images)), min=1, max=len(images),
                                                   description="batch size N", style=style, layout=wide)
        self.statistics = widgets.ToggleButtons(
            options=[(label, key) for key, (label, _) in STATISTICS.items()], value="channel",
            description="statistics", style=SENTENCE_BUTTONS)
        self.table = widgets.HTML(value="")
        state = self.compute()
        for key, value in state.items():
            setattr(self, key, value)
        self.drawn = plot_channel_bn(self.before, self.after, value_range=self._ranges[self.channel],
                                     note=self._note())
        d = self.drawn
        dynamic = [d["before_image"], d["after_image"], d["missing"], d["hist_before"], d["hist_after"],
                   d["hist_titles"]["before"], d["hist_titles"]["after"], d["note"]]
        self.set_renderer(d["fig"], dynamic)
        self.draw()
        self.render()
        self.observe(self.channel_slider, self.batch_size_slider, self.statistics)
        controls = widgets.VBox([widgets.HBox([self.channel_slider, self.batch_size_slider]), self.statistics])
        self.widget = self.layout(controls, extra=[self.table])

    def describe(self):
        before_mean, before_var = float(np.mean(self.before)), float(np.var(self.before))
        per = ("one mean and variance per channel, over N·H·W" if self.axis != 0
               else f"{self.statistics_count} means and variances, one per position, over N")
        return (f"Channel {self.channel}'s feature maps for a batch of {self.batch_size} digit images before "
                f"and after BN, and histograms of their values: before, mean {tidy(before_mean):.3g} and "
                f"variance {before_var:.3g}; after BN ({per}, {self.values_per_statistic} values each), mean "
                f"{tidy(self.after_mean):.3g} and variance {self.after_var:.3g}.")

    def compute(self):
        channel = int(self.channel_slider.value)
        batch_size = int(self.batch_size_slider.value)
        axis = STATISTICS[self.statistics.value][1]
        z = self.maps[:batch_size, channel:channel + 1]  # (N, 1, H, W): BN of one channel is BN of a slice
        features = z.shape[1:] if axis == 0 else (1,)
        # training mode; refuses a statistic with one value (a batch of one, per position)
        after, cache = batchnorm_forward(z, np.ones(features), np.zeros(features), eps=self.eps, axis=axis)
        mean, var = cache["mean"], cache["var"]
        if axis == 0:
            mean, var = mean.reshape(z.shape[2:]), var.reshape(z.shape[2:])
        else:
            mean, var = float(mean.ravel()[0]), float(var.ravel()[0])
        after_mean, after_var = batch_stats(after.reshape(-1))
        height, width = z.shape[2:]
        return {
            "channel": channel, "batch_size": batch_size, "axis": axis,
            "before": z[:, 0], "after": after[:, 0], "mean": mean, "var": var,
            "values_per_statistic": int(cache["n"]),
            "statistics_count": 1 if axis != 0 else height * width,
            "after_mean": float(after_mean), "after_var": float(after_var),
        }

    def _note(self):
        n, (height, width) = self.batch_size, self.before.shape[1:]
        if self.axis == 0:
            return f"channel {self.channel}: N = {n} values per statistic ({height * width} statistics)"
        return f"channel {self.channel}: N·H·W = {n}·{height}·{width} = {n * height * width} values per statistic"

    def draw(self):
        update_channel_bn(self.drawn, self.before, self.after, note=self._note(),
                          value_range=self._ranges[self.channel])
        self.table.value = self._table_html()

    def _table_html(self):
        if self.axis == 0:
            used = (f"{self.statistics_count} means (from {float(np.min(self.mean)) + 0.0:.3f} to "
                    f"{float(np.max(self.mean)) + 0.0:.3f}) and variances (from {float(np.min(self.var)):.2g} to "
                    f"{float(np.max(self.var)):.3g})")
        else:
            used = f"mean {self.mean + 0.0:.4f}, variance {self.var:.4f}"
        rows = [
            ("channel", f"{self.channel}"),
            ("batch", (f"N = {self.batch_size} image{'s' if self.batch_size != 1 else ''} of "
                       f"{self.before.shape[1]}×{self.before.shape[2]}")),
            ("BN reduces over", f"axis={self.axis!r}"),
            ("statistics used", used),
            ("values per statistic", f"{self.values_per_statistic}"),
            ("after BN (all the channel's values)",
             f"mean {self.after_mean + 0.0:.4f}, variance {self.after_var:.4f}"),
        ]
        body = "".join(f"<tr><th style='text-align:left'>{name}</th><td>{value}</td></tr>" for name, value in rows)
        return f"<table style='border-collapse:collapse;font-size:1.05em' cellpadding='3'>{body}</table>"
