"""Interactive explorers: ipywidgets controls wired to bnlab's core and plots.

Every explorer is a class constructible with no arguments (defaults: the seed
batch), exposing ``.widget`` (what a notebook displays) and ``.update()`` (a
plain method a test calls without a browser or a kernel). All state is
readable as attributes. Bad input never raises out of a widget: the message is
shown in ``.message`` (and kept in ``.error``) and the last valid state stays.

Rendering: each figure is built once on a ``matplotlib.figure.Figure``;
updates change artists in place and :class:`bnlab.plots.FastRenderer` turns
the figure into PNG bytes for an ``ipywidgets.Image``.
"""

from __future__ import annotations

import html
import re

import ipywidgets as widgets
import numpy as np

from .plots import FastRenderer

__all__ = ["Explorer", "parse_batch", "format_batch",
           "ShiftScaleExplorer", "RunningStatsExplorer", "TrainEvalExplorer"]  # notebooks 04, 05


# ---------------------------------------------------------------- typed input

_SEPARATORS = re.compile(r"[,\s]+")


def parse_batch(text, min_rows=2, max_values=10_000, dtype=np.float64):
    """Parse a batch typed by a learner: one sample per line, numbers separated by commas or spaces.

    Only numbers are accepted (``float()`` on each token; nothing is ever
    evaluated as code). Brackets, as in a pasted NumPy array, are ignored.

    Parameters
    ----------
    text : str
    min_rows : int, default 2
        Fewest samples accepted (training-mode BN needs two).
    max_values : int
        Refuse absurdly large pastes.
    dtype : numpy dtype

    Returns
    -------
    z : ndarray, shape (N, D)

    Raises
    ------
    ValueError
        Naming what is wrong: an empty batch, a word instead of a number (and
        where), ragged rows, too few rows, NaN or infinity.
    """
    if not isinstance(text, str):
        raise TypeError(f"the batch must be text, got {type(text).__name__}")
    rows = []
    for line_no, line in enumerate(text.replace(";", "\n").splitlines(), start=1):
        line = line.strip().strip("[](),").strip()
        if not line:
            continue
        tokens = [t for t in _SEPARATORS.split(line.replace("[", " ").replace("]", " ")) if t]
        values = []
        for token in tokens:
            try:
                value = float(token)
            except ValueError:
                raise ValueError(
                    f"row {len(rows) + 1} (line {line_no}): {token[:20]!r} is not a number"
                ) from None
            if not np.isfinite(value):
                raise ValueError(
                    f"row {len(rows) + 1} (line {line_no}): {token!r} is not a finite number; "
                    "batch normalization needs real values"
                )
            values.append(value)
        rows.append(values)
        if sum(len(r) for r in rows) > max_values:
            raise ValueError(f"the batch is too large for this explorer (more than {max_values} values)")
    if not rows:
        raise ValueError("the batch is empty: type one sample per line, e.g. '1, 2, 3'")
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        counts = ", ".join(str(len(r)) for r in rows)
        raise ValueError(
            f"rows have different numbers of values ({counts}): every sample needs the same features"
        )
    if len(rows) < min_rows:
        raise ValueError(
            f"the batch has {len(rows)} row(s); at least {min_rows} samples are needed "
            "(with one sample there is no variance to estimate)"
        )
    return np.array(rows, dtype=dtype)


def format_batch(z, decimals=4):
    """The inverse of :func:`parse_batch`: one sample per line, comma-separated."""
    z = np.atleast_2d(np.asarray(z))
    return "\n".join(", ".join(f"{v:g}" if v == round(v, decimals) else f"{v:.{decimals}f}" for v in row)
                     for row in z)


# ---------------------------------------------------------------- base class

def _message_html(text, kind):
    colour = {"error": "#D55E00", "info": "#0072B2"}[kind]
    icon = {"error": "⚠", "info": "ℹ"}[kind]
    return (f'<div role="alert" style="color:{colour};font-size:1.05em;'
            f'border-left:4px solid {colour};padding:2px 8px">{icon} {html.escape(text)}</div>')


class Explorer:
    """Base class: controls, a figure rendered into an ``Image``, an error line.

    Subclasses implement

    - ``compute(self)``: read the controls, call bnlab's core and return a
      dict of new state (raise ``ValueError``/``TypeError`` on bad input);
    - ``draw(self)``: update the figure's artists from the state attributes
      (the renderer's dynamic artists).

    :meth:`update` calls ``compute``; on success it stores every key of the
    returned dict as an attribute, redraws and re-renders; on a
    ``ValueError``/``TypeError`` it shows the message and keeps the previous
    state (attributes, figure and image unchanged).

    Attributes
    ----------
    widget : ipywidgets.Widget
        What the notebook displays.
    image : ipywidgets.Image
    message : ipywidgets.HTML
        Empty when all is well, the error otherwise.
    error : str or None
        The last error message (None after a successful update).
    renders : int
        How many times the image was rendered.
    """

    #: Title shown above the controls.
    title = ""

    def __init__(self):
        self.error = None
        self.renders = 0
        self.message = widgets.HTML(value="")
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.renderer = None

    # -- wiring helpers for subclasses
    def observe(self, *controls, names="value"):
        """Call :meth:`update` whenever one of ``controls`` changes."""
        for control in controls:
            control.observe(self._on_change, names=names)

    def _on_change(self, _change=None):
        self.update()

    def set_renderer(self, fig, dynamic):
        """Use ``fig`` with these dynamic artists (see :class:`bnlab.plots.FastRenderer`)."""
        self.fig = fig
        self.renderer = FastRenderer(fig, dynamic)

    def layout(self, controls, extra=()):
        """The standard arrangement: title, controls, error line, figure, extra widgets."""
        parts = []
        if self.title:
            parts.append(widgets.HTML(f"<h3 style='margin:4px 0'>{html.escape(self.title)}</h3>"))
        parts.extend([controls, self.message, self.image, *extra])
        return widgets.VBox(parts)

    # -- the cycle
    def compute(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def draw(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def compute_state(self):
        """Run :meth:`compute` and store its state; on bad input show the message, keep the state.

        Returns True on success (without drawing: :meth:`update` draws).
        """
        try:
            state = self.compute()
        except (ValueError, TypeError, ArithmeticError) as exc:
            self.error = str(exc)
            self.message.value = _message_html(self.error, "error")
            return False
        for key, value in state.items():
            setattr(self, key, value)
        self.error = None
        self.message.value = ""
        return True

    def update(self):
        """Recompute from the controls, redraw, re-render. Returns True on success."""
        if not self.compute_state():
            return False
        self.draw()
        self.render()
        return True

    def render(self, full=False):
        if self.renderer is not None:
            self.image.value = self.renderer.png(full=full)
            self.renders += 1


# ---- notebooks 01-03: batch statistics, normalization, scale and shift -----

__all__ += ["BatchStatsExplorer", "NormalizationExplorer", "ScaleShiftExplorer"]  # notebooks 01-03

_WIDE = {"description_width": "initial"}


#: ToggleButtons whose labels are sentences: buttons as wide as their labels.
_BUTTONS = {"description_width": "initial", "button_width": "auto"}


def _tidy(value, scale=1.0):
    """``value`` for display: rounding residue below 1e-12 * scale shows as 0 (and never -0)."""
    value = float(value)
    return 0.0 if abs(value) < 1e-12 * max(abs(scale), 1e-300) else value + 0.0


def _stats_table_html(rows, header):
    """A small HTML table: ``rows`` is a list of (label, values) with one value per feature."""
    head = "".join(f"<th style='padding:2px 10px'>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr><td style='padding:2px 10px'><b>" + html.escape(label) + "</b></td>"
        + "".join(f"<td style='padding:2px 10px;text-align:right'>{_tidy(v):.4g}</td>" for v in values)
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
        from .data import seed_batch
        from .plots import plot_batch_stats

        z = seed_batch().z if z is None else z
        z = np.array(z, dtype=np.float64)
        if z.ndim != 2:
            raise ValueError(f"z must be a 2-D batch (samples x features), got shape {z.shape}")
        self._syncing = False
        self._from_slider = False
        self.batch_text = widgets.Textarea(
            value=format_batch(z), description="batch z (one sample per line)", continuous_update=False,
            rows=6, style=_WIDE, layout=widgets.Layout(width="330px"))
        self.sample_picker = widgets.Dropdown(description="sample i", style=_WIDE,
                                              layout=widgets.Layout(width="220px"))
        self.feature_picker = widgets.Dropdown(description="feature j", style=_WIDE,
                                               layout=widgets.Layout(width="220px"))
        self.value_slider = widgets.FloatSlider(
            min=-10.0, max=10.0, step=0.1, description="z[0, 0]", readout_format=".2f",
            continuous_update=True, style=_WIDE, layout=widgets.Layout(width="420px"))
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

    def compute(self):
        from .core import batch_stats
        from .plots import MAX_FEATURES

        z = parse_batch(self.batch_text.value)
        n, d = z.shape
        if d > MAX_FEATURES:
            raise ValueError(f"this explorer draws at most {MAX_FEATURES} features, got {d}")
        mean, var = batch_stats(z)
        return {"z": z, "mean": mean, "var": var, "sample_var": var * n / (n - 1),
                "n_samples": n, "n_features": d}

    def draw(self):
        from .plots import update_batch_stats

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
        from .core import batch_stats, normalize
        from .data import SEED_EPS, random_batch
        from .plots import histogram_counts, new_figure, plot_eps_curve, plot_feature_histograms

        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"n must be an int >= 2 (samples in the batch), got {n!r}")
        base = random_batch(np.random.default_rng(seed), (int(n), 1))
        base_mean, base_var = batch_stats(base)
        self.base = normalize(base, base_mean, base_var, eps=1e-300)  # mean 0, variance 1
        self.offset = float(offset)
        self.eps_slider = widgets.FloatLogSlider(
            value=SEED_EPS, base=10, min=-8, max=0, step=0.1, description="eps",
            readout_format=".1e", style=_WIDE, continuous_update=False, layout=widgets.Layout(width="420px"))
        self.spread_slider = widgets.FloatLogSlider(
            value=1.0, base=10, min=-5, max=1, step=0.1, description="spread of z (std)",
            readout_format=".1e", style=_WIDE, continuous_update=False, layout=widgets.Layout(width="420px"))
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

    @property
    def z_scale(self):
        """The z panel's unit: the power of sqrt(10) at or just above the spread."""
        return float(10 ** (np.ceil(2 * np.log10(self.spread) - 1e-9) / 2))

    def _z_units(self):
        return (self.z - self.offset) / self.z_scale

    def compute(self):
        from .core import batch_stats, normalize

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
        from .plots import update_eps_curve, update_feature_histograms

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
        from .core import batch_stats, normalize
        from .data import seed_batch
        from .plots import MAX_FEATURES, histogram_counts, new_figure, plot_feature_histograms

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
                                               description="feature j", style=_WIDE,
                                               layout=widgets.Layout(width="200px"))
        self.gamma_slider = widgets.FloatSlider(
            value=float(self.gamma[0]), min=-3.0, max=3.0, step=0.01, description="γ (scale)",
            readout_format=".2f", style=_WIDE, layout=widgets.Layout(width="420px"))
        self.beta_slider = widgets.FloatSlider(
            value=float(self.beta[0]), min=-6.0, max=6.0, step=0.05, description="β (shift)",
            readout_format=".2f", style=_WIDE, layout=widgets.Layout(width="420px"))
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

    def compute(self):
        from .core import affine, batch_stats

        j = int(self.feature_picker.value)
        gamma, beta = self.gamma.copy(), self.beta.copy()
        gamma[j] = float(self.gamma_slider.value)
        beta[j] = float(self.beta_slider.value)
        y = affine(self.z_hat, gamma, beta)
        y_mean, y_var = batch_stats(y)
        return {"feature": j, "gamma": gamma, "beta": beta, "y": y, "y_mean": y_mean, "y_var": y_var}

    def draw(self):
        from .plots import update_feature_histograms

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
    from .plots import FEATURE_COLORS

    return FEATURE_COLORS[j % len(FEATURE_COLORS)]


# ---- notebook 04: shift/scale invariance ------------------------------------

class ShiftScaleExplorer(Explorer):
    """Scale and shift BN's input, ``z' = a z + b``, and watch its output stay put.

    Three panels: the batch ``z``, the transformed ``z'`` and BN's outputs
    ``y = BN(z)`` (open circles) and ``y' = BN(z')`` (dots), with the largest
    difference ``max |y' - y|`` written in the last panel. A negative ``a``
    flips the output around ``beta``; a tiny ``|a|`` (``a**2 * var`` near
    ``eps``) shrinks it towards ``beta``.

    Parameters
    ----------
    z : ndarray, shape (N, D), optional
        Default: the seed batch (computed in float64).
    gamma, beta : ndarray, shape (D,), optional
        Default: the seed's when D == 3, else ones and zeros.

    Controls
    --------
    scale_slider : FloatLogSlider
        ``|a|``, from 1e-4 to 1e3 (log scale).
    sign : ToggleButtons
        ``+1`` or ``-1``: the sign of ``a``.
    shift_slider : FloatSlider
        ``b``, from -50 to 50.
    eps_choice : Dropdown
        eps: 1e-5 (the seed's), 1e-3 (Keras' default), 1e-8.
    batch_text : Textarea
        The batch, one sample per line (numbers only).

    Attributes (after each update)
    ------------------------------
    z, z_shifted, y, y_shifted, z_hat, z_hat_shifted : ndarray, shape (N, D)
    gamma, beta : ndarray, shape (D,)
    a, b, eps : float
    max_gap : float
        ``max |y' - y|``.
    effective_eps : float
        ``eps / a**2``: ``z'`` normalized with ``eps`` equals ``z`` normalized with this.

    Introduced in ``notebooks/04_shift_scale_invariance.ipynb``.
    """

    title = "Shift and scale BN's input: z' = a·z + b"

    def __init__(self, z=None, gamma=None, beta=None):
        super().__init__()
        from .data import SEED_EPS, SEED_SCALE, SEED_SHIFT, seed_batch
        from .plots import plot_shift_scale

        seed = seed_batch()
        z = seed.z if z is None else z
        self._gamma = None if gamma is None else np.asarray(gamma, dtype=np.float64)
        self._beta = None if beta is None else np.asarray(beta, dtype=np.float64)
        self._seed_gamma = seed.gamma.astype(np.float64)
        self._seed_beta = seed.beta.astype(np.float64)
        style = {"description_width": "initial"}
        self.scale_slider = widgets.FloatLogSlider(
            # base 2 with a step of 1/4 puts the seed's a = 2 exactly on the slider's grid
            value=SEED_SCALE, base=2, min=-14, max=10, step=0.25, description="|a| (scale)",
            readout_format=".3g", style=style, continuous_update=False,
            layout=widgets.Layout(width="420px"))
        self.sign = widgets.ToggleButtons(options=[("a > 0", 1), ("a < 0", -1)], value=1,
                                          description="sign of a", style=_BUTTONS)
        self.shift_slider = widgets.FloatSlider(
            value=SEED_SHIFT, min=-50, max=50, step=0.5, description="b (shift)", style=style,
            layout=widgets.Layout(width="420px"))
        self.eps_choice = widgets.Dropdown(
            options=[("1e-5 (the seed's)", SEED_EPS), ("1e-3 (Keras default)", 1e-3), ("1e-8", 1e-8)],
            value=SEED_EPS, description="eps", style=style)
        self.batch_text = widgets.Textarea(
            value=format_batch(z), description="batch z (one sample per line)", continuous_update=False,
            rows=5, style=style, layout=widgets.Layout(width="420px"))
        if not self.compute_state():
            raise ValueError(f"the initial batch is not valid: {self.error}")
        self.drawn = plot_shift_scale(self.z, self.z_shifted, self.y, self.y_shifted,
                                      scale=self.a, shift=self.b)
        self.draw()
        d = self.drawn
        self.set_renderer(d["fig"], [d["z"], d["z_shifted"], d["y"], d["y_shifted"],
                                     d["shift_title"], d["gap_text"]])
        self.render()
        self.observe(self.scale_slider, self.sign, self.shift_slider, self.eps_choice, self.batch_text)
        controls = widgets.HBox([
            widgets.VBox([self.scale_slider, self.sign, self.shift_slider, self.eps_choice]),
            self.batch_text,
        ])
        self.widget = self.layout(controls)

    def compute(self):
        from .core import batch_stats, batchnorm_forward, normalize

        z = parse_batch(self.batch_text.value)
        d = z.shape[1]
        gamma = self._gamma if self._gamma is not None and self._gamma.shape == (d,) else (
            self._seed_gamma if d == self._seed_gamma.shape[0] else np.ones(d))
        beta = self._beta if self._beta is not None and self._beta.shape == (d,) else (
            self._seed_beta if d == self._seed_beta.shape[0] else np.zeros(d))
        a = float(self.sign.value) * float(self.scale_slider.value)
        b = float(self.shift_slider.value)
        eps = float(self.eps_choice.value)
        z_shifted = a * z + b
        y, cache = batchnorm_forward(z, gamma, beta, eps=eps)
        y_shifted, cache_shifted = batchnorm_forward(z_shifted, gamma, beta, eps=eps)
        mean, var = batch_stats(z)
        effective_eps = eps / a**2
        return {
            "z": z, "gamma": gamma, "beta": beta, "a": a, "b": b, "eps": eps,
            "z_shifted": z_shifted, "y": y, "y_shifted": y_shifted,
            "z_hat": cache["z_hat"].copy(), "z_hat_shifted": cache_shifted["z_hat"].copy(),
            "max_gap": float(np.max(np.abs(y_shifted - y))),
            "effective_eps": effective_eps,
            "z_hat_effective": normalize(z, mean, var, eps=effective_eps),
        }

    def draw(self):
        from .plots import update_shift_scale

        extra = f"z' behaves like z with eps/a² = {self.effective_eps:.2g}"
        update_shift_scale(self.drawn, self.z, self.z_shifted, self.y, self.y_shifted,
                           scale=self.a, shift=self.b, extra=extra)


# ---- notebook 05: running statistics -----------------------------------------

class RunningStatsExplorer(Explorer):
    """Running mean and variance over a stream of batches, Keras and PyTorch side by side.

    The stream is drawn from a known distribution (default: per-feature mean
    and variance of the seed batch, ``[1, 0.5, 3.5]`` and ``[0.5, 1.25, 1.25]``);
    both conventions see the same batches. The momentum slider's number is
    passed to both conventions as is (and each reads it its own way), or,
    with ``pass_as`` set to ``"keras"``, converted for PyTorch so that both
    give a batch the same weight: then the running means agree and only the
    variances differ (biased versus unbiased).

    Parameters
    ----------
    true_mean, true_var : array-like, shape (D,), optional

    Controls
    --------
    momentum_slider : FloatSlider, 0 to 1
    pass_as : ToggleButtons
        ``"same"``: the same number to both; ``"keras"``: the number is a Keras
        momentum, PyTorch gets :func:`bnlab.running.convert_momentum` of it.
    batch_size_slider : IntSlider, 2 to 128
    steps_slider : IntSlider, 10 to 500
    seed_slider : IntSlider, 0 to 999
        The stream's random seed; ``new_stream`` (a Button) adds one.
    feature_choice : Dropdown
        Which feature is drawn.

    Attributes (after each update)
    ------------------------------
    batches : ndarray, shape (steps, batch_size, D)
    keras, pytorch : dict
        :func:`bnlab.running.track_running_stats` traces (``"mean"``, ``"var"``:
        shape (steps + 1, D); ``"batch_weight"``).
    keras_momentum, pytorch_momentum : float
        What each convention was given.
    true_mean, true_var : ndarray, shape (D,)
    final : dict
        Last running mean/var of each convention, shape (D,) each.

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """

    title = "Running statistics: Keras and PyTorch on the same stream"

    def __init__(self, true_mean=None, true_var=None):
        super().__init__()
        from .core import batch_stats
        from .data import SEED_MOMENTUM, seed_batch
        from .plots import plot_running_stats
        from .plots import style as plot_style

        if true_mean is None or true_var is None:
            seed_mean, seed_var = batch_stats(seed_batch().z.astype(np.float64))
        self._true_mean = np.asarray(seed_mean if true_mean is None else true_mean, dtype=np.float64)
        self._true_var = np.asarray(seed_var if true_var is None else true_var, dtype=np.float64)
        if self._true_mean.ndim != 1 or self._true_mean.shape != self._true_var.shape:
            raise ValueError("true_mean and true_var must be 1-D arrays of the same shape (D,)")
        if (self._true_var <= 0).any():
            raise ValueError("true_var must be positive")
        style = {"description_width": "initial"}
        wide = widgets.Layout(width="400px")
        self.momentum_slider = widgets.FloatSlider(
            value=SEED_MOMENTUM, min=0.0, max=1.0, step=0.01, description="momentum (the number passed)",
            style=style, layout=wide)
        self.pass_as = widgets.ToggleButtons(
            options=[("same number to both", "same"), ("Keras meaning (PyTorch gets it converted)", "keras")],
            value="same", description="momentum", style=_BUTTONS)
        self.batch_size_slider = widgets.IntSlider(value=16, min=2, max=128, description="batch size",
                                                   style=style, layout=wide)
        self.steps_slider = widgets.IntSlider(value=100, min=10, max=500, step=10, description="steps",
                                              style=style, layout=wide)
        self.seed_slider = widgets.IntSlider(value=0, min=0, max=999, description="stream seed",
                                             style=style, layout=wide)
        self.new_stream = widgets.Button(description="new stream", icon="refresh",
                                         tooltip="draw a new stream of batches (seed + 1)")
        self.new_stream.on_click(self._next_seed)
        d = self._true_mean.shape[0]
        self.feature_choice = widgets.Dropdown(options=[(f"feature {j}", j) for j in range(d)], value=0,
                                               description="show", style=style)
        self.table = widgets.HTML(value="")
        state = self.compute()
        for key, value in state.items():
            setattr(self, key, value)
        f = self.feature
        curves = self._curves()
        self.drawn = plot_running_stats(
            {label: mean for label, (mean, _) in curves.items()},
            {label: var for label, (_, var) in curves.items()},
            true_mean=self.true_mean[f], true_var=self.true_var[f],
            batch_mean=self.keras["batch_mean"][:, f], batch_var=self.keras["batch_var"][:, f], feature=f)
        self._set_limits()
        dr = self.drawn
        # one legend is enough (same colours in both panels) and halves the cost of a full redraw
        dr["axes"][1].get_legend().remove()
        with plot_style():  # a fixed place: "best" is recomputed on every full redraw
            dr["axes"][0].legend(loc="upper right", framealpha=0.85)
        dynamic = [*dr["mean_lines"].values(), *dr["var_lines"].values(), dr["batch_mean"], dr["batch_var"],
                   dr["true_mean"], dr["true_var"], dr["axes"][0].title, dr["axes"][1].title]
        self.set_renderer(dr["fig"], dynamic)
        self.draw()
        self.render()
        self.observe(self.momentum_slider, self.pass_as, self.batch_size_slider, self.steps_slider,
                     self.seed_slider, self.feature_choice)
        controls = widgets.VBox([
            widgets.HBox([widgets.VBox([self.momentum_slider, self.batch_size_slider, self.steps_slider]),
                          widgets.VBox([self.seed_slider, widgets.HBox([self.new_stream, self.feature_choice])])]),
            self.pass_as,
        ])
        self.widget = self.layout(controls, extra=[self.table])

    _STEP_RANGES = (40, 150, 300, 500)

    _LABELS = (("keras", "keras: m·running + (1−m)·batch"), ("pytorch", "pytorch: (1−m)·running + m·batch"))

    def _next_seed(self, _button=None):
        self.seed_slider.value = (self.seed_slider.value + 1) % (self.seed_slider.max + 1)

    def _curves(self):
        f = self.feature
        return {label: (getattr(self, name)["mean"][:, f], getattr(self, name)["var"][:, f])
                for name, label in self._LABELS}

    def compute(self):
        from .data import random_batch
        from .running import convert_momentum, track_running_stats

        momentum = float(self.momentum_slider.value)
        keras_momentum = momentum
        pytorch_momentum = momentum if self.pass_as.value == "same" else convert_momentum(
            momentum, "keras", "pytorch")
        steps, batch_size = int(self.steps_slider.value), int(self.batch_size_slider.value)
        rng = np.random.default_rng(int(self.seed_slider.value))
        batches = random_batch(rng, (steps, batch_size, self._true_mean.shape[0]),
                               loc=self._true_mean, scale=np.sqrt(self._true_var))
        keras = track_running_stats(batches, "keras", keras_momentum)
        pytorch = track_running_stats(batches, "pytorch", pytorch_momentum)
        return {
            "batches": batches, "keras": keras, "pytorch": pytorch,
            "keras_momentum": keras_momentum, "pytorch_momentum": pytorch_momentum,
            "true_mean": self._true_mean.copy(), "true_var": self._true_var.copy(),
            "feature": int(self.feature_choice.value), "steps": steps, "batch_size": batch_size,
            "final": {"keras_mean": keras["mean"][-1], "keras_var": keras["var"][-1],
                      "pytorch_mean": pytorch["mean"][-1], "pytorch_var": pytorch["var"][-1]},
        }

    def _set_limits(self):
        f = self.feature
        mean, std, var = self.true_mean[f], np.sqrt(self.true_var[f]), self.true_var[f]
        ax_m, ax_v = self.drawn["axes"]
        low, high = min(0.0, mean - 2.5 * std), max(0.0, mean + 2.5 * std)
        ax_m.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
        ax_v.set_ylim(0.0, max(1.0, var) * 2.2)
        # x limits in a few fixed sizes, so most moves of the steps slider keep them
        # (and FastRenderer redraws only the curves)
        right = next(size for size in self._STEP_RANGES if size >= self.steps)
        for ax in (ax_m, ax_v):
            ax.set_xlim(0, right)

    def draw(self):
        dr = self.drawn
        f = self.feature
        steps = np.arange(self.steps + 1)
        for label, (mean, var) in self._curves().items():
            dr["mean_lines"][label].set_data(steps, mean)
            dr["var_lines"][label].set_data(steps, var)
        dr["batch_mean"].set_data(steps[1:], self.keras["batch_mean"][:, f])
        dr["batch_var"].set_data(steps[1:], self.keras["batch_var"][:, f])
        dr["true_mean"].set_ydata([self.true_mean[f]] * 2)
        dr["true_var"].set_ydata([self.true_var[f]] * 2)
        dr["axes"][0].title.set_text(f"running mean (feature {f})")  # set_text keeps the title's style
        dr["axes"][1].title.set_text(f"running variance (feature {f})")
        self._set_limits()
        self.table.value = self._table_html()

    def _table_html(self):
        f = self.feature
        rows = []
        for name, momentum in (("keras", self.keras_momentum), ("pytorch", self.pytorch_momentum)):
            trace = getattr(self, name)
            rows.append(
                f"<tr><td>{name}</td><td>{momentum:.3g}</td><td>{trace['batch_weight']:.3g}</td>"
                f"<td>{trace['mean'][-1, f]:.4f}</td><td>{trace['var'][-1, f]:.4f}</td></tr>")
        rows.append(f"<tr><td><i>true</i></td><td></td><td></td><td>{self.true_mean[f]:.4f}</td>"
                    f"<td>{self.true_var[f]:.4f}</td></tr>")
        head = ("<tr><th>convention</th><th>momentum given</th><th>weight of a new batch</th>"
                f"<th>running mean after {self.steps} steps</th><th>running var</th></tr>")
        return ("<table style='border-collapse:collapse;font-size:1.05em' cellpadding='4'>"
                f"{head}{''.join(rows)}</table>")


class TrainEvalExplorer(Explorer):
    """Training mode or evaluation mode on a test batch, after some training.

    A Keras-convention BN layer has seen ``trained_steps`` batches of a
    stream (its running statistics are drawn as bars against the true values,
    black ticks). A test batch from the same distribution then goes through
    it in the chosen mode: evaluation uses the running statistics (so a
    sample's output does not depend on the test batch's size or companions,
    but depends on how far the warm-up got), training uses the test batch's
    own statistics (outputs always look normalized, but sample 0 moves when
    the batch changes, and a batch of one is refused: the message shows and
    the last valid state stays).

    Controls
    --------
    mode : ToggleButtons, ``"eval"`` or ``"train"``
    trained_steps_slider : IntSlider, 0 to 300
    momentum_slider : FloatSlider, 0.5 to 0.999 (Keras meaning)
    test_size_slider : IntSlider, 1 to 64

    Attributes (after each update)
    ------------------------------
    running_mean, running_var : ndarray, shape (D,)
        The layer's running statistics after ``trained_steps`` batches.
    test_batch : ndarray, shape (test_size, D)
    y : ndarray, shape (test_size, D)
        BN's output for the test batch in the chosen mode.
    sample_output : ndarray, shape (D,)
        ``y[0]``, the ringed sample.
    training : bool
    true_mean, true_var : ndarray, shape (D,)

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """

    title = "Training mode or evaluation mode at test time"
    _MAX_STEPS = 300
    _BATCH = 16

    def __init__(self, seed=0):
        super().__init__()
        from .core import batch_stats
        from .data import random_batch, seed_batch
        from .plots import plot_train_eval

        true_mean, true_var = batch_stats(seed_batch().z.astype(np.float64))
        self.true_mean, self.true_var = true_mean, true_var
        rng = np.random.default_rng(seed)
        self._stream = random_batch(rng, (self._MAX_STEPS, self._BATCH, true_mean.shape[0]),
                                    loc=true_mean, scale=np.sqrt(true_var))
        self._test_pool = random_batch(rng, (64, true_mean.shape[0]), loc=true_mean, scale=np.sqrt(true_var))
        self._traces = {}
        style = {"description_width": "initial"}
        wide = widgets.Layout(width="400px")
        self.mode = widgets.ToggleButtons(
            options=[("evaluation mode (running statistics)", "eval"),
                     ("training mode (batch statistics)", "train")],
            value="eval", description="test in", style=_BUTTONS)
        self.trained_steps_slider = widgets.IntSlider(value=20, min=0, max=self._MAX_STEPS, description=
                                                      "batches seen in training", style=style, layout=wide)
        self.momentum_slider = widgets.FloatSlider(value=0.9, min=0.5, max=0.999, step=0.001,
                                                   readout_format=".3f", description="momentum (Keras)",
                                                   style=style, layout=wide)
        self.test_size_slider = widgets.IntSlider(value=16, min=1, max=64, description="test batch size",
                                                  style=style, layout=wide)
        state = self.compute()
        for key, value in state.items():
            setattr(self, key, value)
        self.drawn = plot_train_eval(self.running_mean, self.running_var, self.true_mean, self.true_var, self.y)
        d = self.drawn
        self.set_renderer(d["fig"], [*d["mean_bars"], *d["var_bars"], d["true_mean"], d["true_var"],
                                     d["outputs"], d["sample"], d["status"], d["output_title"]])
        self.draw()
        self.render()
        self.observe(self.mode, self.trained_steps_slider, self.momentum_slider, self.test_size_slider)
        controls = widgets.VBox([
            self.mode,
            widgets.HBox([widgets.VBox([self.trained_steps_slider, self.momentum_slider]),
                          self.test_size_slider]),
        ])
        self.widget = self.layout(controls)

    def _trace(self, momentum):
        from .running import track_running_stats

        if momentum not in self._traces:
            self._traces = {momentum: track_running_stats(self._stream, "keras", momentum)}  # keep one
        return self._traces[momentum]

    def compute(self):
        from .layers import BatchNorm

        momentum = float(self.momentum_slider.value)
        steps = int(self.trained_steps_slider.value)
        trace = self._trace(momentum)
        training = self.mode.value == "train"
        bn = BatchNorm(self.true_mean.shape[0], convention="keras", momentum=momentum)
        bn.running_mean, bn.running_var = trace["mean"][steps].copy(), trace["var"][steps].copy()
        test_batch = self._test_pool[: int(self.test_size_slider.value)]
        y = bn.forward(test_batch, training=training)  # a batch of one in training mode raises ValueError
        return {"momentum": momentum, "trained_steps": steps, "training": training,
                "running_mean": trace["mean"][steps], "running_var": trace["var"][steps],
                "test_batch": test_batch, "y": y, "sample_output": y[0].copy(),
                "running_after_pass": (bn.running_mean, bn.running_var)}

    def draw(self):
        from .plots import update_train_eval

        sample = ", ".join(f"{v + 0.0:.2f}" for v in self.sample_output)
        if self.training:
            status = (f"sample 0 → [{sample}]\nnormalized with this batch's own statistics;\n"
                      "the pass also updated the running statistics")
        else:
            status = (f"sample 0 → [{sample}]\nnormalized with the running statistics;\n"
                      "nothing in the layer changed")
        mode = "training" if self.training else "evaluation"
        update_train_eval(self.drawn, self.running_mean, self.running_var, self.y, status=status,
                          title=f"output in {mode} mode, N = {self.y.shape[0]}")


# ---- notebooks 06 and 07: the backward pass, training with BN --------------

__all__ += ["BatchCouplingExplorer", "TrainingExplorer"]  # notebooks 06 and 07


def _n06_cell(value, digits=4):
    return f"{value + 0.0:.{digits}f}"


class BatchCouplingExplorer(Explorer):
    """Nudge one sample of a batch and watch every sample's BN output and gradient move.

    BN normalizes with the batch's own mean and variance, so each sample's
    output depends on all the others. The loss is ``L = sum(dy * y)`` with a
    fixed random upstream gradient ``dy`` (seeded), so ``dL/dz`` is BN's input
    gradient for that ``dy``. Three panels show one feature: the input ``z``,
    the output ``y`` and the gradient ``dL/dz`` of every sample, now (stems)
    and before the nudge (open circles). A second slider adds the same ``c``
    to every sample of the feature: nothing after BN moves, because the
    gradient has no component along that direction (``sum(dz) = 0``).

    Parameters
    ----------
    z : ndarray, shape (N, D), optional
        Default: the seed batch, in float64. At most 16 samples.
    gamma, beta : ndarray, shape (D,), optional
        Default: the seed's when D == 3, else ones and zeros.
    seed : int, default 0
        Seeds the upstream gradient ``dy`` (redrawn when the batch's shape changes).

    Controls
    --------
    sample_slider : IntSlider
        The nudged sample.
    feature_slider : IntSlider
        The feature shown (and nudged).
    nudge_slider : FloatSlider, -3 to 3
        ``delta``, added to ``z[sample, feature]``.
    shift_slider : FloatSlider, -5 to 5
        ``c``, added to every sample of the feature.
    batch_text : Textarea
        The batch, one sample per line (numbers only).

    Attributes (after each update)
    ------------------------------
    z : ndarray, shape (N, D)
        The batch before any change.
    z_now : ndarray, shape (N, D)
        After the shift and the nudge.
    dy : ndarray, shape (N, D)
        The fixed upstream gradient.
    y_ref, dz_ref, y, dz, z_hat : ndarray, shape (N, D)
        BN's output and input gradient before (``_ref``) and after the change;
        ``z_hat`` of ``z_now``.
    sample, feature : int
    nudge, shift : float
    loss_ref, loss : float
        ``sum(dy * y)`` before and after.
    predicted_change : float
        ``dz_ref[sample, feature] * nudge``: the gradient's first-order
        prediction of ``loss - loss_ref``.
    max_other_change : float
        Largest ``|y - y_ref|`` among the other samples of the feature.
    sum_dz, sum_dz_z_hat : ndarray, shape (D,)
        ``sum(dz)`` and ``sum(dz * z_hat)`` over the batch: both 0.
    eps : float
        1e-5 (the seed's).

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """

    title = "Batch coupling: nudge one sample, watch every sample move"
    MAX_SAMPLES = 16

    def __init__(self, z=None, gamma=None, beta=None, seed=0):
        super().__init__()
        from .data import SEED_EPS, seed_batch
        from .plots import plot_batch_coupling

        seed_b = seed_batch()
        z = seed_b.z.astype(np.float64) if z is None else np.asarray(z, dtype=np.float64)
        self._gamma = None if gamma is None else np.asarray(gamma, dtype=np.float64)
        self._beta = None if beta is None else np.asarray(beta, dtype=np.float64)
        self._seed_gamma = seed_b.gamma.astype(np.float64)
        self._seed_beta = seed_b.beta.astype(np.float64)
        self._dy_seed = seed
        self._dy = None
        self._syncing = False
        self.eps = SEED_EPS
        style = {"description_width": "initial"}
        wide = widgets.Layout(width="400px")
        self.sample_slider = widgets.IntSlider(value=1, min=0, max=max(z.shape[0] - 1, 1),
                                               description="nudged sample", style=style, layout=wide)
        self.feature_slider = widgets.IntSlider(value=0, min=0, max=max(np.atleast_2d(z).shape[1] - 1, 0),
                                                description="feature", style=style, layout=wide)
        self.nudge_slider = widgets.FloatSlider(value=1.0, min=-3.0, max=3.0, step=0.05,
                                                description="nudge δ (that sample only)", style=style,
                                                layout=wide)
        self.shift_slider = widgets.FloatSlider(value=0.0, min=-5.0, max=5.0, step=0.1,
                                                description="shift c (every sample)", style=style, layout=wide)
        self.batch_text = widgets.Textarea(value=format_batch(z), description="batch z (one sample per line)",
                                           continuous_update=False, rows=5, style=style,
                                           layout=widgets.Layout(width="380px"))
        self.table = widgets.HTML()
        state = self.compute()  # the initial batch must be valid
        for key, value in state.items():
            setattr(self, key, value)
        j = self.feature
        self.drawn = plot_batch_coupling(self.z_now[:, j], self.y[:, j], self.dz[:, j], self.z[:, j],
                                         self.y_ref[:, j], self.dz_ref[:, j], sample=self.sample, feature=j)
        d = self.drawn
        self.set_renderer(d["fig"], [*d["stems"], *d["dots"], *d["refs"], *d["titles"]])
        self.draw()
        self.render()
        self.observe(self.sample_slider, self.feature_slider, self.nudge_slider, self.shift_slider,
                     self.batch_text)
        controls = widgets.HBox([
            widgets.VBox([self.sample_slider, self.feature_slider, self.nudge_slider, self.shift_slider]),
            self.batch_text,
        ])
        self.widget = self.layout(controls, extra=(self.table,))

    def _on_change(self, _change=None):
        if not self._syncing:  # slider ranges adjusted by compute() must not re-enter it
            self.update()

    def _upstream(self, shape):
        if self._dy is None or self._dy.shape != shape:
            self._dy = np.random.default_rng(self._dy_seed).standard_normal(shape)
        return self._dy

    def _sync_sliders(self, n, d, sample, feature):
        self._syncing = True
        try:
            for slider, top, value in ((self.sample_slider, n - 1, sample), (self.feature_slider, d - 1, feature)):
                if slider.max != top:
                    if slider.value > top:
                        slider.value = value
                    slider.max = top
                if slider.value != value:
                    slider.value = value
        finally:
            self._syncing = False

    def compute(self):
        from .core import batchnorm_backward, batchnorm_forward

        z = parse_batch(self.batch_text.value)
        n, d = z.shape
        if n > self.MAX_SAMPLES:
            raise ValueError(f"the batch has {n} samples; this explorer draws at most {self.MAX_SAMPLES}")
        sample = min(int(self.sample_slider.value), n - 1)
        feature = min(int(self.feature_slider.value), d - 1)
        gamma = self._gamma if self._gamma is not None and self._gamma.shape == (d,) else (
            self._seed_gamma if d == self._seed_gamma.shape[0] else np.ones(d))
        beta = self._beta if self._beta is not None and self._beta.shape == (d,) else (
            self._seed_beta if d == self._seed_beta.shape[0] else np.zeros(d))
        nudge = float(self.nudge_slider.value)
        shift = float(self.shift_slider.value)
        dy = self._upstream((n, d))
        y_ref, cache_ref = batchnorm_forward(z, gamma, beta, eps=self.eps)
        dz_ref, _, _ = batchnorm_backward(dy, cache_ref)
        z_now = z.copy()
        z_now[:, feature] += shift
        z_now[sample, feature] += nudge
        y, cache = batchnorm_forward(z_now, gamma, beta, eps=self.eps)
        dz, _, _ = batchnorm_backward(dy, cache)
        others = np.arange(n) != sample
        self._sync_sliders(n, d, sample, feature)
        return {
            "z": z, "z_now": z_now, "gamma": gamma, "beta": beta, "dy": dy,
            "y_ref": y_ref, "dz_ref": dz_ref, "y": y, "dz": dz, "z_hat": cache["z_hat"].copy(),
            "sample": sample, "feature": feature, "nudge": nudge, "shift": shift,
            "loss_ref": float(np.sum(dy * y_ref)), "loss": float(np.sum(dy * y)),
            "predicted_change": float(dz_ref[sample, feature] * nudge),
            "max_other_change": float(np.max(np.abs(y[others, feature] - y_ref[others, feature]))),
            "sum_dz": dz.sum(axis=0), "sum_dz_z_hat": (dz * cache["z_hat"]).sum(axis=0),
        }

    def draw(self):
        from .plots import update_batch_coupling

        j, k = self.feature, self.sample
        subtitles = (
            f"δ = {self.nudge + 0.0:+.2f} on sample {k}, c = {self.shift + 0.0:+.1f}",
            f"others moved by ≤ {self.max_other_change:.3f}",
            f"Σ dz = {_tidy(self.sum_dz[j], np.abs(self.dz[:, j]).max()):.2g},  "
            f"Σ dz·ẑ = {_tidy(self.sum_dz_z_hat[j], np.abs(self.dz[:, j]).max()):.2g}",
        )
        update_batch_coupling(self.drawn, self.z_now[:, j], self.y[:, j], self.dz[:, j], self.z[:, j],
                              self.y_ref[:, j], self.dz_ref[:, j], sample=k, feature=j, subtitles=subtitles,
                              fit=(self.z, self.y_ref, self.dz_ref))  # every feature: limits stay on a switch
        self.table.value = self._table_html()

    def _table_html(self):
        j, k = self.feature, self.sample
        head = ("<tr><th>sample</th><th>z before</th><th>z now</th><th>y before</th><th>y now</th>"
                "<th>dL/dz before</th><th>dL/dz now</th></tr>")
        rows = []
        for i in range(self.z.shape[0]):
            mark = " style='color:#D55E00;font-weight:bold'" if i == k else ""
            cells = (self.z[i, j], self.z_now[i, j], self.y_ref[i, j], self.y[i, j], self.dz_ref[i, j],
                     self.dz[i, j])
            rows.append(f"<tr{mark}><td>{i}</td>" + "".join(f"<td>{_n06_cell(v)}</td>" for v in cells)
                        + "</tr>")
        change = self.loss - self.loss_ref
        foot = (f"<p>Loss L = Σ dy·y = {self.loss + 0.0:.4f} (before: {self.loss_ref + 0.0:.4f}, change "
                f"{change + 0.0:+.4f}); the gradient predicts dL/dz[{k}, {j}] · δ = "
                f"{self.predicted_change + 0.0:+.4f} for the nudge (first order) and 0 for the shift.</p>")
        return ("<table style='border-collapse:collapse;font-size:1.0em;text-align:right' cellpadding='3'>"
                f"{head}{''.join(rows)}</table>{foot}")


class TrainingExplorer(Explorer):
    """Train the BN paper's MLP on the digits with your settings, with and without BN.

    Sliders and switches only change the settings (a training run takes
    about a second); the Run button, or :meth:`update`, trains and redraws.
    While it trains, a progress bar moves. The figure is the paper's
    Figure 1: (a) test accuracy against steps, (b, c, d) the 15th, 50th and
    85th percentiles of one last-hidden-layer unit's input to its
    nonlinearity, without BN, with BN and with noisy BN (Santurkar et al.
    2018). Bad settings (a batch of one with BN, noisy BN without BN) show a
    message and keep the last result; a run that blows up is marked
    "diverged" (not an error).

    Parameters
    ----------
    steps : int, default 1000
        Initial value of the steps slider.
    run : bool, default True
        Train once with the default settings when constructed (about 1 s).
    data : DigitsSplit, optional
        Default ``bnlab.datasets.load_digits_split(0)``.

    Controls
    --------
    learning_rate_slider : FloatLogSlider, 2**-10 to 8 (default 0.5)
    init_scale_slider : FloatLogSlider, 0.001 to 10 (default 0.1): std of the initial weights
    batch_size_slider : IntSlider, 1 to 128 (default 60; the longest run, 3 x 3000 steps of 128, takes ~8 s)
    steps_slider : IntSlider, 100 to 3000 (default 1000)
    seed_slider : IntSlider, 0 to 9
    activation : ToggleButtons, ``"sigmoid"`` or ``"relu"``
    bn_mode : ToggleButtons, ``"compare"`` (without and with BN), ``"off"``, ``"on"``
    noisy_bn : Checkbox
        Also train with noisy BN (needs BN: not with ``"off"``).
    run_button : Button
    progress : IntProgress
        Steps done over all runs.

    Attributes (after each run)
    ---------------------------
    histories : dict of str to History
        ``"without BN"``, ``"with BN"``, ``"noisy BN"`` (those that ran).
    settings : dict
        The :func:`bnlab.train.run_experiment` arguments used.
    final_accuracy : dict of str to float
        Test accuracy at the last step (NaN for a diverged run).
    last_run_seconds : float
    runs : int
        How many runs (button presses) succeeded.
    pending : bool
        True when the controls changed since the last run.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """

    title = "Train the paper's network on the digits, with and without BN"

    def __init__(self, steps=1000, run=True, data=None):
        super().__init__()
        from .datasets import load_digits_split
        from .plots import VARIANT_ORDER, plot_training_figure

        self._data = load_digits_split(0) if data is None else data
        style = {"description_width": "initial"}
        wide = widgets.Layout(width="380px")
        # base 2 puts 0.5 on the slider's grid (the browser snaps a value to the grid on display)
        self.learning_rate_slider = widgets.FloatLogSlider(
            value=0.5, base=2, min=-10, max=3, step=0.25, readout_format=".3g", description="learning rate",
            style=style, layout=wide)
        self.init_scale_slider = widgets.FloatLogSlider(
            value=0.1, base=10, min=-3, max=1, step=0.05, readout_format=".3g",
            description="initial weight std", style=style, layout=wide)
        self.batch_size_slider = widgets.IntSlider(value=60, min=1, max=128, description="batch size",
                                                   style=style, layout=wide)
        self.steps_slider = widgets.IntSlider(value=steps, min=100, max=3000, step=100, description="steps",
                                              style=style, layout=wide)
        self.seed_slider = widgets.IntSlider(value=0, min=0, max=9, description="seed", style=style,
                                             layout=wide)
        for slider in (self.learning_rate_slider, self.init_scale_slider, self.batch_size_slider,
                       self.steps_slider, self.seed_slider):
            slider.continuous_update = False  # settings only: no messages while a slider is dragged
        self.activation = widgets.ToggleButtons(options=[("sigmoid", "sigmoid"), ("ReLU", "relu")],
                                                value="sigmoid", description="nonlinearity", style=style)
        self.bn_mode = widgets.ToggleButtons(
            options=[("compare both", "compare"), ("BN off", "off"), ("BN on", "on")],
            tooltips=["train without and with BN", "train without BN only", "train with BN only"],
            value="compare", description="batch norm", style=style)
        self.noisy_bn = widgets.Checkbox(value=False, description="also noisy BN (Santurkar et al. 2018)",
                                         style=style, indent=False)
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play",
                                         tooltip="train with these settings")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="training", style=style)
        self.summary = widgets.HTML()
        self.histories, self.final_accuracy, self.settings = {}, {}, self.read_settings()
        self.last_run_seconds, self.runs, self.pending = 0.0, 0, False
        self._last_choice = self._choice()
        self.drawn = plot_training_figure({}, labels=VARIANT_ORDER)
        self.set_renderer(self.drawn["fig"], [])  # every run redraws everything (and re-lays out)
        self.observe(self.learning_rate_slider, self.init_scale_slider, self.batch_size_slider,
                     self.steps_slider, self.seed_slider, self.activation, self.bn_mode, self.noisy_bn)
        self.run_button.on_click(lambda _button: self.update())
        if not (run and self.update()):
            self.draw()
            self.render()
        controls = widgets.VBox([
            widgets.HBox([widgets.VBox([self.learning_rate_slider, self.init_scale_slider,
                                        self.batch_size_slider]),
                          widgets.VBox([self.steps_slider, self.seed_slider, self.activation])]),
            widgets.HBox([self.bn_mode, self.noisy_bn]),
            widgets.HBox([self.run_button, self.progress]),
        ])
        self.widget = self.layout(controls, extra=(self.summary,))

    def read_settings(self):
        """The run_experiment arguments the controls describe (no BN choice)."""
        steps = int(self.steps_slider.value)
        return {"learning_rate": float(self.learning_rate_slider.value),
                "init_scale": float(self.init_scale_slider.value),
                "batch_size": int(self.batch_size_slider.value), "steps": steps,
                "eval_every": max(10, steps // 40), "seed": int(self.seed_slider.value),
                "activation": self.activation.value}

    def variants(self):
        """The runs the controls ask for: list of (label, batch_norm, noisy_bn), BN runs first."""
        from .train import LABEL_NOISY_BN, LABEL_WITH_BN, LABEL_WITHOUT_BN

        mode, noisy = self.bn_mode.value, bool(self.noisy_bn.value)
        if noisy and mode == "off":
            raise ValueError("noisy BN adds noise after the BN layers, so it needs BN: "
                             "choose 'BN on' or 'compare', or untick noisy BN")
        runs = []
        if mode in ("compare", "on"):
            runs.append((LABEL_WITH_BN, True, False))
        if noisy:
            runs.append((LABEL_NOISY_BN, True, True))
        if mode in ("compare", "off"):
            runs.append((LABEL_WITHOUT_BN, False, False))
        return runs

    def _choice(self):
        return self.read_settings(), self.bn_mode.value, bool(self.noisy_bn.value)

    def _on_change(self, _change=None):
        settings, mode, noisy = self._choice()
        last, last_mode, last_noisy = self._last_choice
        same = (mode, noisy) == (last_mode, last_noisy) and settings.keys() == last.keys() and all(
            np.isclose(settings[k], last[k], rtol=1e-6) if isinstance(last[k], float) else settings[k] == last[k]
            for k in settings)  # a browser snapping 0.5 to 0.50000001 is not a change
        self.pending = not same
        if not same:
            self.message.value = _message_html(
                "Settings changed: press Run to train with them (the figure still shows the last run).", "info")
        elif self.error is None:
            self.message.value = ""

    def update(self):
        """Train with the current settings and redraw (what the Run button does). Returns True on success."""
        self.run_button.disabled = True
        try:
            ok = super().update()
        finally:
            self.run_button.disabled = False
        self.progress.bar_style = "success" if ok else "danger"
        if not ok:
            self.progress.value = 0
        return ok

    def compute(self):
        import time

        from .train import run_experiment

        settings = self.read_settings()
        runs = self.variants()
        steps = settings["steps"]
        self.progress.bar_style = ""
        self.progress.max = len(runs) * steps
        self.progress.value = 0
        start = time.perf_counter()
        histories = {}
        for i, (label, batch_norm, noisy) in enumerate(runs):
            def progress(step, _total, offset=i * steps):
                self.progress.value = offset + step
            # a bad setting (batch size 1 with BN, ...) raises ValueError before any training
            histories[label] = run_experiment(batch_norm=batch_norm, noisy_bn=noisy, data=self._data,
                                              progress=progress, **settings)
        self._last_choice = (settings, self.bn_mode.value, bool(self.noisy_bn.value))
        return {"histories": histories, "settings": settings, "pending": False, "runs": self.runs + 1,
                "final_accuracy": {label: h.final_test_accuracy for label, h in histories.items()},
                "last_run_seconds": time.perf_counter() - start}

    def draw(self):
        from .plots import update_training_figure

        update_training_figure(self.drawn, self.histories)
        self.summary.value = self._summary_html()

    def render(self, full=True):
        # a run changes ticks and legends: lay the figure out again, then draw it whole
        self.fig.set_layout_engine("constrained")
        super().render(full=True)

    def _summary_html(self):
        from .plots import VARIANT_ORDER

        if not self.histories:
            return "<p>No run yet: press Run.</p>"
        steps = self.settings["steps"]
        head = ("<tr><th style='text-align:left'>run</th><th>test accuracy at step 500</th>"
                f"<th>at step {steps}</th><th style='text-align:left'>note</th></tr>")
        rows = []
        for label in VARIANT_ORDER:
            history = self.histories.get(label)
            if history is None:
                continue
            at_500 = history.accuracy_at(500) if steps >= 500 else float("nan")
            note = (f"diverged at step {history.diverged_at}" if history.diverged else
                    "stuck at chance" if history.final_test_accuracy < 0.15 else "")
            cells = [f"{100 * value:.1f} %" if np.isfinite(value) else "–"
                     for value in (at_500, history.final_test_accuracy)]
            rows.append(f"<tr><td style='text-align:left'>{label}</td><td>{cells[0]}</td><td>{cells[1]}</td>"
                        f"<td style='text-align:left'>{note}</td></tr>")
        return ("<table style='border-collapse:collapse;font-size:1.05em;text-align:right' cellpadding='4'>"
                f"{head}{''.join(rows)}</table>")
