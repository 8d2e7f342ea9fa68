"""Explorers of notebooks 01-03 (the forward pass): batch statistics, normalization, scale and shift."""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from ..core import affine, batch_stats, normalize
from ..data import SEED_EPS, random_batch, seed_batch
from ..plots import (
    FEATURE_COLORS,
    MAX_FEATURES,
    histogram_counts,
    new_figure,
    plot_batch_stats,
    plot_eps_curve,
    plot_feature_histograms,
    update_batch_stats,
    update_eps_curve,
    update_feature_histograms,
)
from .base import WIDE, Explorer, format_batch, numbers, parse_batch, tidy

__all__ = ["BatchStatsExplorer", "NormalizationExplorer", "ScaleShiftExplorer"]


def _stats_table_html(rows, header):
    """A small HTML table: ``rows`` is a list of (label, values) with one value per feature."""
    head = "".join(f"<th style='padding:2px 10px'>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr><td style='padding:2px 10px'><b>" + html.escape(label) + "</b></td>"
        + "".join(f"<td style='padding:2px 10px;text-align:right'>{tidy(v):.4g}</td>" for v in values)
        + "</tr>"
        for label, values in rows
    )
    return (f"<table style='border-collapse:collapse;font-size:1.05em'><tr><th></th>{head}</tr>"
            f"{body}</table>")


class BatchStatsExplorer(Explorer):
    """Edit a batch and watch its per-feature mean and variance move.

    Left panel: the samples as dots and each feature's batch mean as a bar;
    right panel: each feature's variance (population, ``ddof=0``, what BN
    uses) as a bar, with the sample variance (``ddof=1``) as an open diamond.
    Statistics are taken over the samples (``axis=0``), one per feature.

    Parameters
    ----------
    z : array_like, shape (N, D), optional
        The starting batch (N >= 2, D <= 6). Default: the seed batch.

    Controls
    --------
    batch_text : Textarea
        The whole batch, one sample per line (numbers only; applied when the
        text area loses focus). Bad input shows in ``message`` and keeps the
        last valid batch.
    sample_picker, feature_picker : Dropdown
        Which value ``z[i, j]`` the slider moves.
    value_slider : FloatSlider
        The value of ``z[i, j]``; moving it rewrites the batch.

    Attributes (after each update)
    ------------------------------
    z : ndarray, shape (N, D), float64
    mean, var : ndarray, shape (D,)
        From :func:`bnlab.batch_stats` (population variance).
    sample_var : ndarray, shape (D,)
        The unbiased variance ``var * N / (N - 1)`` (what PyTorch stores as running variance).
    n_samples, n_features : int
    stats_table : ipywidgets.HTML
        The numbers, per feature.

    Introduced in ``notebooks/01_batch_statistics.ipynb``.
    """

    title = "Batch statistics: one mean and one variance per feature (axis=0)"

    def __init__(self, z=None):
        super().__init__()

        z = seed_batch().z if z is None else z
        z = np.array(z, dtype=np.float64)
        if z.ndim != 2:
            raise ValueError(f"z must be a 2-D batch (samples x features), got shape {z.shape}")
        self._syncing = False
        self._from_slider = False
        self.batch_text = widgets.Textarea(
            value=format_batch(z), description="batch z (one sample per line)", continuous_update=False,
            rows=6, style=WIDE, layout=widgets.Layout(width="330px"))
        self.sample_picker = widgets.Dropdown(description="sample i", style=WIDE,
                                              layout=widgets.Layout(width="220px"))
        self.feature_picker = widgets.Dropdown(description="feature j", style=WIDE,
                                               layout=widgets.Layout(width="220px"))
        self.value_slider = widgets.FloatSlider(
            min=-10.0, max=10.0, step=0.1, description="z[0, 0]", readout_format=".2f",
            continuous_update=True, style=WIDE, layout=widgets.Layout(width="420px"))
        self.stats_table = widgets.HTML()
        for key, value in self.compute().items():  # a bad starting batch raises here
            setattr(self, key, value)
        self.drawn = plot_batch_stats(self.z, self.mean, self.var)
        self.set_renderer(self.drawn["fig"], self.drawn["dynamic"])
        self._shape = None
        self._after_update()
        self.render()
        self.observe(self.batch_text)
        self.sample_picker.observe(self._on_pick, names="value")
        self.feature_picker.observe(self._on_pick, names="value")
        self.value_slider.observe(self._on_slider, names="value")
        controls = widgets.HBox([
            widgets.VBox([widgets.HBox([self.sample_picker, self.feature_picker]), self.value_slider,
                          self.stats_table]),
            self.batch_text,
        ])
        self.widget = self.layout(controls)

    def describe(self):
        return (f"Left: the {self.n_samples} samples of each of {self.n_features} features as dots, with each "
                f"feature's batch mean as a bar: means {numbers(self.mean)}. Right: each feature's variance "
                f"(ddof=0) as a bar: {numbers(self.var)}; the sample variances (ddof=1, diamonds) are "
                f"{numbers(self.sample_var)}.")

    def compute(self):
        z = parse_batch(self.batch_text.value)
        n, d = z.shape
        if d > MAX_FEATURES:
            raise ValueError(f"this explorer draws at most {MAX_FEATURES} features, got {d}")
        mean, var = batch_stats(z)
        return {"z": z, "mean": mean, "var": var, "sample_var": var * n / (n - 1),
                "n_samples": n, "n_features": d}

    def draw(self):
        update_batch_stats(self.drawn, self.z, self.mean, self.var)
        self._after_update()

    def _after_update(self):
        """Keep the pickers, the slider and the table in step with the batch."""
        if self._shape != self.z.shape:
            self._shape = self.z.shape
            self._syncing = True
            try:
                i, j = self.sample_picker.value, self.feature_picker.value
                self.sample_picker.options = [(f"{k}", k) for k in range(self.n_samples)]
                self.feature_picker.options = [(f"{k}", k) for k in range(self.n_features)]
                self.sample_picker.value = i if i is not None and i < self.n_samples else 0
                self.feature_picker.value = j if j is not None and j < self.n_features else 0
            finally:
                self._syncing = False
        if not self._from_slider:  # never send a moving slider an older value back
            self._sync_slider()
        header = [f"feature {j}" for j in range(self.n_features)]
        self.stats_table.value = _stats_table_html(
            [("mean μ_B", self.mean), ("variance σ²_B (ddof=0)", self.var),
             ("sample variance (ddof=1)", self.sample_var)], header)

    def _sync_slider(self):
        i, j = self.sample_picker.value, self.feature_picker.value
        value = float(self.z[i, j])
        self._syncing = True
        try:
            slider = self.value_slider
            if value < slider.min or value > slider.max:
                low, high = min(slider.min, np.floor(value) - 5), max(slider.max, np.ceil(value) + 5)
                slider.max = max(high, slider.min)
                slider.min = low
                slider.max = high
            slider.value = value
            slider.description = f"z[{i}, {j}]"
        finally:
            self._syncing = False

    def _on_pick(self, _change):
        if not self._syncing:
            self._sync_slider()

    def _on_slider(self, change):
        if self._syncing:
            return
        i, j = self.sample_picker.value, self.feature_picker.value
        z = self.z.copy()
        z[i, j] = round(float(change["new"]), 6)
        self._from_slider = True
        try:
            self.batch_text.value = format_batch(z, decimals=6)  # its observer calls update()
        finally:
            self._from_slider = False


class NormalizationExplorer(Explorer):
    """Normalize one feature and see what eps does: ``ẑ = (z − μ) / √(var + eps)``.

    Panels: the feature's values ``z`` (histogram), the normalized ``ẑ``
    (histogram, fixed axis from -4 to 4) and the curve
    ``Var(ẑ) = var / (var + eps)`` against the feature's variance, with this
    feature marked. When the variance is far above eps, ``ẑ`` has variance
    about 1; when it comes near eps or below, ``ẑ`` shrinks towards 0.

    Parameters
    ----------
    n : int, default 256
        Samples in the batch (one feature), drawn once from
        ``np.random.default_rng(seed)`` and standardized, so that
        ``z = offset + spread * base`` has variance ``spread**2``.
    offset : float, default 3.0
        The feature's mean.
    seed : int, default 0

    Controls
    --------
    eps_slider : FloatLogSlider
        eps, from 1e-8 to 1 (log scale); starts at the seed's 1e-5.
    spread_slider : FloatLogSlider
        The feature's standard deviation, from 1e-5 to 10 (log scale).

    Attributes (after each update)
    ------------------------------
    eps, spread : float
    z, z_hat : ndarray, shape (n, 1)
    mean, var : float
        The batch mean and (population) variance of ``z``.
    var_z_hat : float
        The variance of ``ẑ`` as measured by :func:`bnlab.batch_stats`.
    predicted_var_z_hat : float
        ``var / (var + eps)`` (equal to ``var_z_hat`` up to rounding).
    readout : ipywidgets.HTML

    Introduced in ``notebooks/02_normalization.ipynb``.
    """

    title = "Normalization and eps: ẑ = (z − μ) / √(var + eps)"

    #: Bins of the ẑ histogram (fixed); the z histogram uses the same bins in units of its scale.
    Z_HAT_EDGES = np.linspace(-4.0, 4.0, 41)
    #: Where the z panel's tick labels sit, in units of its scale.
    Z_TICKS = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])

    def __init__(self, n=256, offset=3.0, seed=0):
        super().__init__()

        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"n must be an int >= 2 (samples in the batch), got {n!r}")
        base = random_batch(np.random.default_rng(seed), (int(n), 1))
        base_mean, base_var = batch_stats(base)
        self.base = normalize(base, base_mean, base_var, eps=1e-300)  # mean 0, variance 1
        self.offset = float(offset)
        self.eps_slider = widgets.FloatLogSlider(
            value=SEED_EPS, base=10, min=-8, max=0, step=0.1, description="eps",
            readout_format=".1e", style=WIDE, continuous_update=False, layout=widgets.Layout(width="420px"))
        self.spread_slider = widgets.FloatLogSlider(
            value=1.0, base=10, min=-5, max=1, step=0.1, description="spread of z (std)",
            readout_format=".1e", style=WIDE, continuous_update=False, layout=widgets.Layout(width="420px"))
        self.readout = widgets.HTML()
        for key, value in self.compute().items():
            setattr(self, key, value)
        fig, (ax_z, ax_h, ax_c) = new_figure(3, width=14.0, height=4.3)
        # The z panel keeps fixed axes (fast redraws): it shows (z - offset) / scale, with the
        # scale a power of sqrt(10) just above the spread, and writes the real z values as its
        # own tick labels (texts that change with the scale).
        edges = self.Z_HAT_EDGES
        self.z_drawn = plot_feature_histograms(self._z_units(), edges, ax=ax_z, xlabel="z", title="z")
        tallest = np.max(histogram_counts(self.base * 10 ** -0.5, edges))
        ax_z.set_ylim(0.0, 1.15 * tallest)
        ax_z.set_xticks(self.Z_TICKS)
        ax_z.set_xticklabels([])
        ax_z.xaxis.labelpad = 20  # below the tick texts
        self.z_tick_texts = [ax_z.text(u, -0.025, "", transform=ax_z.get_xaxis_transform(), ha="center",
                                       va="top", fontsize=12) for u in self.Z_TICKS]
        self.z_hat_drawn = plot_feature_histograms(self.z_hat, edges, ax=ax_h, xlabel="ẑ", title="ẑ")
        ax_h.set_ylim(0.0, 1.6 * np.max(histogram_counts(self.base, edges)))  # taller bars are clipped
        self.curve_drawn = plot_eps_curve(self.eps, self.var, ax=ax_c)
        self.draw()
        self.set_renderer(fig, [*self.z_drawn["stairs"], *self.z_hat_drawn["stairs"], ax_z.title,
                                ax_h.title, *self.z_tick_texts, self.curve_drawn["curve"],
                                self.curve_drawn["point"], self.curve_drawn["eps_line"]])
        self.render()
        self.observe(self.eps_slider, self.spread_slider)
        self.widget = self.layout(widgets.HBox([
            widgets.VBox([self.eps_slider, self.spread_slider]), self.readout]))

    def describe(self):
        return (f"Histograms of one feature z (mean {self.mean:.3g}, variance {self.var:.3g}) and of its "
                f"normalized values ẑ (variance {self.var_z_hat:.5f}), and the curve Var(ẑ) = var / (var + eps) "
                f"against the variance of z, for eps = {self.eps:.1e}: this feature sits at "
                f"{self.predicted_var_z_hat:.5f}.")

    @property
    def z_scale(self):
        """The z panel's unit: the power of sqrt(10) at or just above the spread."""
        return float(10 ** (np.ceil(2 * np.log10(self.spread) - 1e-9) / 2))

    def _z_units(self):
        return (self.z - self.offset) / self.z_scale

    def compute(self):
        eps = float(self.eps_slider.value)
        spread = float(self.spread_slider.value)
        z = self.offset + spread * self.base
        mean, var = batch_stats(z)
        z_hat = normalize(z, mean, var, eps=eps)
        _, var_z_hat = batch_stats(z_hat)
        var = float(var[0])
        return {"eps": eps, "spread": spread, "z": z, "z_hat": z_hat, "mean": float(mean[0]),
                "var": var, "var_z_hat": float(var_z_hat[0]), "predicted_var_z_hat": var / (var + eps)}

    def draw(self):
        ax_z, ax_h = self.z_drawn["ax"], self.z_hat_drawn["ax"]
        update_feature_histograms(self.z_drawn, self._z_units())
        for text, u in zip(self.z_tick_texts, self.Z_TICKS):
            text.set_text(f"{self.offset + self.z_scale * u:.6g}")
        update_feature_histograms(self.z_hat_drawn, self.z_hat)
        update_eps_curve(self.curve_drawn, self.eps, self.var)
        ax_z.title.set_text(f"z: var(z) = {self.var:.2e}")  # keeps the title's style
        ax_h.title.set_text(f"ẑ: Var(ẑ) = {self.var_z_hat:.5f}")
        self.readout.value = (
            f"<div style='font-size:1.1em;padding:4px 12px'>var(z) = {self.var:.3e}, "
            f"eps = {self.eps:.1e}<br>Var(ẑ) = var / (var + eps) = "
            f"<b>{self.predicted_var_z_hat:.6f}</b><br>measured Var(ẑ) = {self.var_z_hat:.6f}</div>")


class ScaleShiftExplorer(Explorer):
    """Move gamma and beta and watch BN's output ``y = γ·ẑ + β`` stretch and slide.

    Panels: the input ``z``, the normalized ``ẑ`` (every feature centred on
    0 with spread 1) and the output ``y``, as one histogram per feature (the
    chosen feature strong, the others faint). In ``y`` a dashed line marks
    the chosen feature's β: the output's mean is β and its spread is |γ|.
    The button sets γ = √(var + eps), β = μ_B for the chosen feature, which
    gives back ``z`` exactly: BN can undo itself.

    Parameters
    ----------
    z : array_like, shape (N, D), optional
        Default: the seed batch (N >= 2, D <= 6).
    gamma, beta : array_like, shape (D,), optional
        Starting scale and shift. Default: the seed's (D == 3), else ones and zeros.
    eps : float, default 1e-5

    Controls
    --------
    feature_picker : Dropdown
        Which feature's γ and β the sliders move.
    gamma_slider : FloatSlider
        γ of the chosen feature, from -3 to 3.
    beta_slider : FloatSlider
        β of the chosen feature, from -6 to 6.
    undo_button : Button
        Set the chosen feature's γ, β to the values that undo the normalization.

    Attributes (after each update)
    ------------------------------
    z, z_hat, y : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
        All features' current scale and shift.
    feature : int
    mean, var : ndarray, shape (D,)
        The batch statistics of ``z``.
    y_mean, y_var : ndarray, shape (D,)
        The output's per-feature mean (= β) and variance (= γ² var / (var + eps)).

    Introduced in ``notebooks/03_scale_and_shift.ipynb``.
    """

    title = "Scale and shift: y = γ·ẑ + β"

    def __init__(self, z=None, gamma=None, beta=None, eps=1e-5):
        super().__init__()

        seed = seed_batch()
        z = seed.z if z is None else z
        z = np.array(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[0] < 2 or not 1 <= z.shape[1] <= MAX_FEATURES:
            raise ValueError(f"z must have shape (N >= 2, 1 <= D <= {MAX_FEATURES}), got {z.shape}")
        d = z.shape[1]
        if gamma is None:
            gamma = seed.gamma if d == 3 else np.ones(d)
        if beta is None:
            beta = seed.beta if d == 3 else np.zeros(d)
        self.gamma = np.array(gamma, dtype=np.float64)
        self.beta = np.array(beta, dtype=np.float64)
        if self.gamma.shape != (d,) or self.beta.shape != (d,):
            raise ValueError(f"gamma and beta must have shape ({d},), got {self.gamma.shape} and "
                             f"{self.beta.shape}")
        self.eps = float(eps)
        self.z = z
        self.mean, self.var = batch_stats(z)
        self.z_hat = normalize(z, self.mean, self.var, eps=self.eps)
        self._syncing = False
        self.feature_picker = widgets.Dropdown(options=[(f"{j}", j) for j in range(d)], value=0,
                                               description="feature j", style=WIDE,
                                               layout=widgets.Layout(width="200px"))
        self.gamma_slider = widgets.FloatSlider(
            value=float(self.gamma[0]), min=-3.0, max=3.0, step=0.01, description="γ (scale)",
            readout_format=".2f", style=WIDE, layout=widgets.Layout(width="420px"))
        self.beta_slider = widgets.FloatSlider(
            value=float(self.beta[0]), min=-6.0, max=6.0, step=0.05, description="β (shift)",
            readout_format=".2f", style=WIDE, layout=widgets.Layout(width="420px"))
        self.undo_button = widgets.Button(description="undo BN: γ = √(var+eps), β = μ",
                                          layout=widgets.Layout(width="300px"))
        self.readout = widgets.HTML()
        for key, value in self.compute().items():
            setattr(self, key, value)

        fig, (ax_z, ax_h, ax_y) = new_figure(3, width=14.0, height=4.3)
        span = float(np.abs(self.z_hat).max())
        lim = 3.0 * float(np.percentile(np.abs(self.z_hat), 99)) + 6.0  # room for |γ| <= 3, |β| <= 6
        z_low, z_high = float(z.min()), float(z.max())
        pad = 0.1 * max(z_high - z_low, 1.0)
        bins = int(np.clip(2 * np.sqrt(z.shape[0]), 8, 40))  # coarse for a few samples
        self.z_drawn = plot_feature_histograms(z, np.linspace(z_low - pad, z_high + pad, bins + 1),
                                               ax=ax_z, title="input z", xlabel="z")
        self.z_hat_drawn = plot_feature_histograms(
            self.z_hat, np.linspace(-span - 0.5, span + 0.5, bins + 1), ax=ax_h,
            title="normalized ẑ", xlabel="ẑ", legend=False)
        low, high = min(-lim, z_low - pad), max(lim, z_high + pad)
        self.y_drawn = plot_feature_histograms(self.y, np.linspace(low, high, 2 * bins + 1), ax=ax_y,
                                               title="", xlabel="y = γ·ẑ + β", legend=False)
        # fixed limits (fast redraws): room for ẑ itself (γ = 1); a bin taller than that
        # (γ near 0 piles every sample into one bin) is clipped at the top
        tallest = float(histogram_counts(self.z_hat, self.y_drawn["edges"]).max())
        ax_y.set_ylim(0.0, max(1.6 * tallest, 2.2))
        self.beta_line = ax_y.axvline(0.0, color="#000000", linestyle="--", linewidth=1.8)
        self.draw()
        self.set_renderer(fig, [*self.z_drawn["stairs"], *self.z_hat_drawn["stairs"],
                                *self.y_drawn["stairs"], self.beta_line, ax_y.title])
        self.render()
        self.feature_picker.observe(self._on_pick, names="value")
        self.gamma_slider.observe(self._on_slider, names="value")
        self.beta_slider.observe(self._on_slider, names="value")
        self.undo_button.on_click(lambda _button: self.undo())
        self.widget = self.layout(widgets.HBox([
            widgets.VBox([self.feature_picker, self.gamma_slider, self.beta_slider, self.undo_button]),
            self.readout]))

    def describe(self):
        j = self.feature
        return (f"Histograms of the input z, the normalized ẑ and the output y = γ·ẑ + β of "
                f"{len(self.gamma)} features, feature {j} highlighted: γ = {tidy(self.gamma[j]):.3g}, "
                f"β = {tidy(self.beta[j]):.3g}, so its output has mean {tidy(self.y_mean[j]):.3g} "
                f"and standard deviation {np.sqrt(self.y_var[j]):.3g}.")

    def compute(self):
        j = int(self.feature_picker.value)
        gamma, beta = self.gamma.copy(), self.beta.copy()
        gamma[j] = float(self.gamma_slider.value)
        beta[j] = float(self.beta_slider.value)
        y = affine(self.z_hat, gamma, beta)
        y_mean, y_var = batch_stats(y)
        return {"feature": j, "gamma": gamma, "beta": beta, "y": y, "y_mean": y_mean, "y_var": y_var}

    def draw(self):
        j = self.feature
        for drawn, values in ((self.z_drawn, self.z), (self.z_hat_drawn, self.z_hat)):
            update_feature_histograms(drawn, values, highlight=j)
        update_feature_histograms(self.y_drawn, self.y, highlight=j)
        ax_y = self.y_drawn["ax"]
        self.beta_line.set_xdata([self.beta[j], self.beta[j]])
        self.beta_line.set_color(_feature_color(j))
        ax_y.title.set_text(f"y, feature {j}: mean {self.y_mean[j] + 0.0:.2f}, "
                            f"std {np.sqrt(self.y_var[j]):.2f}")  # keeps the title's style
        rows = [("γ", self.gamma), ("β", self.beta), ("mean of y (= β)", self.y_mean),
                ("std of y (≈ |γ|)", np.sqrt(self.y_var))]
        self.readout.value = _stats_table_html(rows, [f"feature {k}" for k in range(len(self.gamma))])

    def _on_slider(self, _change):
        if not self._syncing:
            self.update()

    def _on_pick(self, change):
        j = int(change["new"])
        self._set_sliders(self.gamma[j], self.beta[j])
        self.update()

    def _set_sliders(self, gamma, beta):
        self._syncing = True
        try:
            self.gamma_slider.value = float(np.clip(gamma, self.gamma_slider.min, self.gamma_slider.max))
            self.beta_slider.value = float(np.clip(beta, self.beta_slider.min, self.beta_slider.max))
        finally:
            self._syncing = False

    def undo(self):
        """Set the chosen feature's γ = √(var + eps) and β = μ_B: then ``y`` equals ``z``."""
        j = int(self.feature_picker.value)
        self._set_sliders(np.sqrt(self.var[j] + self.eps), self.mean[j])
        return self.update()


def _feature_color(j):
    return FEATURE_COLORS[j % len(FEATURE_COLORS)]
