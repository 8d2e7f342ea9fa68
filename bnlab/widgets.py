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
           "ShiftScaleExplorer", "RunningStatsExplorer"]  # notebooks 04, 05


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

    def update(self):
        """Recompute from the controls, redraw, re-render. Returns True on success."""
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
        self.draw()
        self.render()
        return True

    def render(self, full=False):
        if self.renderer is not None:
            self.image.value = self.renderer.png(full=full)
            self.renders += 1


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
            value=SEED_SCALE, base=10, min=-4, max=3, step=0.01, description="|a| (scale)",
            readout_format=".3g", style=style, continuous_update=True,
            layout=widgets.Layout(width="420px"))
        self.sign = widgets.ToggleButtons(options=[("a > 0", 1), ("a < 0", -1)], value=1,
                                          description="sign of a", style=style)
        self.shift_slider = widgets.FloatSlider(
            value=SEED_SHIFT, min=-50, max=50, step=0.5, description="b (shift)", style=style,
            layout=widgets.Layout(width="420px"))
        self.eps_choice = widgets.Dropdown(
            options=[("1e-5 (the seed's)", SEED_EPS), ("1e-3 (Keras default)", 1e-3), ("1e-8", 1e-8)],
            value=SEED_EPS, description="eps", style=style)
        self.batch_text = widgets.Textarea(
            value=format_batch(z), description="batch z (one sample per line)", continuous_update=False,
            rows=5, style=style, layout=widgets.Layout(width="420px"))
        if not self._compute_only():
            raise ValueError(f"the initial batch is not valid: {self.error}")
        self.drawn = plot_shift_scale(self.z, self.z_shifted, self.y, self.y_shifted,
                                      scale=self.a, shift=self.b)
        self.draw()
        d = self.drawn
        self.set_renderer(d["fig"], [d["z"], d["z_shifted"], d["y"], d["y_shifted"],
                                     d["shift_title"], d["gap_text"]])
        self.render()
        _drop_layout_engine(self.fig)
        self.observe(self.scale_slider, self.sign, self.shift_slider, self.eps_choice, self.batch_text)
        controls = widgets.HBox([
            widgets.VBox([self.scale_slider, self.sign, self.shift_slider, self.eps_choice]),
            self.batch_text,
        ])
        self.widget = self.layout(controls)

    def _compute_only(self):
        """Compute without drawing (used once before the figure exists)."""
        try:
            state = self.compute()
        except (ValueError, TypeError, ArithmeticError) as exc:
            self.error = str(exc)
            self.message.value = _message_html(self.error, "error")
            return False
        for key, value in state.items():
            setattr(self, key, value)
        return True

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
            value="same", description="momentum", style=style)
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
        dynamic = [*dr["mean_lines"].values(), *dr["var_lines"].values(), dr["batch_mean"], dr["batch_var"],
                   dr["true_mean"], dr["true_var"], dr["axes"][0].title, dr["axes"][1].title]
        self.set_renderer(dr["fig"], dynamic)
        self.draw()
        self.render()
        _drop_layout_engine(self.fig)
        self.observe(self.momentum_slider, self.pass_as, self.batch_size_slider, self.steps_slider,
                     self.seed_slider, self.feature_choice)
        controls = widgets.VBox([
            widgets.HBox([widgets.VBox([self.momentum_slider, self.batch_size_slider, self.steps_slider]),
                          widgets.VBox([self.seed_slider, widgets.HBox([self.new_stream, self.feature_choice])])]),
            self.pass_as,
        ])
        self.widget = self.layout(controls, extra=[self.table])

    _STEP_RANGES = (50, 100, 200, 300, 500)

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


def _drop_layout_engine(fig):
    """After the first render, keep the layout fixed without a layout engine.

    ``fig.set_layout_engine("none")`` (what FastRenderer does) leaves a
    placeholder engine, which FastRenderer takes for a live one and so draws
    every full redraw twice; with no engine at all a full redraw draws once.
    """
    fig.set_layout_engine(None)
