"""Explorers of notebook 11: translate BN settings between PyTorch and Keras; the classic bugs, live."""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from ..conventions import translate
from ..data import random_batch
from ..pitfalls import PITFALLS, pitfall_experiment
from ..plots import (
    FastRenderer,
    plot_pitfall,
    plot_translation_check,
    update_pitfall,
    update_translation_check,
)
from ..running import track_running_stats
from .base import SENTENCE_BUTTONS, WIDE, Explorer

__all__ = ["TranslatorExplorer", "PitfallExplorer"]


_CODE_STYLE = ("margin:2px 0;padding:6px 8px;background:#F5F5F5;border-left:4px solid {color};"
               "font-size:0.95em;line-height:1.3;white-space:pre")


def _translation_html(translation, verdict):
    """The three snippets of :meth:`Translation.code` side by side, the verdict and the notes."""
    colors = {"PyTorch": "#D55E00", "Keras 3": "#E69F00", "bnlab": "#0072B2"}
    columns = "".join(
        f"<div><b>{html.escape(name)}</b><pre style='{_CODE_STYLE.format(color=colors[name])}'>"
        f"{html.escape(code)}</pre></div>"
        for name, code in translation.code().items())
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in translation.notes)
    return (f"<div style='display:flex;flex-wrap:wrap;gap:14px'>{columns}</div>"
            f"<p style='margin:6px 0'>{html.escape(verdict)}</p>"
            f"<details><summary>what differs, and what to watch</summary><ul>{notes}</ul></details>")


class TranslatorExplorer(Explorer):
    """One framework's BN settings in the other's, as code, with the running statistics checked.

    Pick whose settings you have (PyTorch or Keras), their momentum, eps and
    input layout: :func:`bnlab.translate` gives the other framework's
    settings and bnlab's, shown as code side by side (the text of
    :func:`bnlab.render_translation`). Below, a stream of batches goes
    through bnlab set up as PyTorch and as Keras with those settings: the
    running means coincide, the running variances differ by the factor
    n / (n − 1) (PyTorch stores the unbiased variance). The dotted curve is
    the mix-up: the source's momentum copied unchanged into the other
    framework.

    Parameters
    ----------
    seed : int, default 0
        The stream of batches.

    Controls
    --------
    framework : ToggleButtons, ``"pytorch"`` or ``"keras"``
        Whose settings these are; switching puts the momentum slider on that
        framework's default (0.1 or 0.99).
    momentum_slider : FloatSlider, 0 to 1, step 0.01
        In the chosen framework's meaning.
    cumulative : Checkbox
        PyTorch's ``momentum=None`` (with Keras' settings: a message, Keras has
        no cumulative average).
    eps_choice : Dropdown
        ``"default"`` (the framework's) or a number.
    layout_choice : Dropdown, input rank 2, 3 or 4
    keras_axis : Dropdown, -1 or 1
        Keras' feature axis (only with Keras' settings).
    batch_size_slider : IntSlider, 2 to 32
        Samples per batch (the values per channel are N times the positions).

    Attributes (after each update)
    ------------------------------
    translation : Translation
    code : dict
        ``translation.code()``.
    mean_curves, var_curves : dict of label -> ndarray, shape (steps + 1,)
        Channel 0's running statistics for ``"bnlab as PyTorch"``, ``"bnlab
        as Keras (translated)"`` and ``"number copied unchanged (mix-up)"``
        (None for the cumulative average, which has no number to copy).
    batches : ndarray, shape (steps, N, C, *spatial)
        The stream, in PyTorch's layout (channels first).
    values_per_channel : int
    mean_gap : float
        Largest difference between the two running means (all channels, all steps).
    var_ratio : float
        PyTorch's running variance over Keras' after the last batch (channel 0).

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """

    title = "Translate BN settings between PyTorch and Keras"
    LABELS = ("bnlab as PyTorch", "bnlab as Keras (translated)", "number copied unchanged (mix-up)")
    CHANNELS = 3
    STEPS = 60
    _SPATIAL = {2: (), 3: (4,), 4: (2, 2)}
    _TRUE_MEAN = np.array([1.5, -0.5, 0.8])
    _TRUE_STD = np.array([1.0, 0.7, 1.3])

    def __init__(self, seed=0):
        super().__init__()
        self._seed = seed
        self._streams = {}
        self._hold = False
        wide = widgets.Layout(width="420px")
        self.momentum_slider = widgets.FloatSlider(
            value=0.1, min=0.0, max=1.0, step=0.01, readout_format=".2f",
            description="momentum (in that framework's meaning)", style=WIDE, layout=wide)
        self.framework = widgets.ToggleButtons(
            options=[("PyTorch settings", "pytorch"), ("Keras settings", "keras")], value="pytorch",
            description="translate from", style=SENTENCE_BUTTONS)
        self.cumulative = widgets.Checkbox(value=False, description="momentum=None (PyTorch's cumulative average)",
                                           style=WIDE, indent=False)
        self.eps_choice = widgets.Dropdown(
            options=[("the framework's default", "default"), ("1e-5", 1e-5), ("1e-4", 1e-4), ("1e-3", 1e-3),
                     ("1e-2", 1e-2)], value="default", description="eps", style=WIDE)
        self.layout_choice = widgets.Dropdown(
            options=[("(N, C): after a dense layer", 2), ("(N, C, L): sequences", 3),
                     ("(N, C, H, W): images", 4)], value=4, description="input (PyTorch's layout)", style=WIDE)
        self.keras_axis = widgets.Dropdown(
            options=[("-1: channels last", -1), ("1: channels first", 1)], value=-1,
            description="Keras' axis", style=WIDE, disabled=True)
        self.batch_size_slider = widgets.IntSlider(value=4, min=2, max=32, description="batch size N",
                                                   style=WIDE, layout=wide)
        self.code_html = widgets.HTML()
        state = self.compute()
        for key, value in state.items():
            setattr(self, key, value)
        self.drawn = plot_translation_check(self.mean_curves, self.var_curves, true_mean=self._TRUE_MEAN[0],
                                            true_var=self._TRUE_STD[0] ** 2)
        dynamic = [line for key in ("mean", "var") for label, line in self.drawn[key]["lines"].items()
                   if label in self.LABELS]
        self.set_renderer(self.drawn["fig"], dynamic)
        self.draw()
        self.render()
        self.observe(self.momentum_slider, self.cumulative, self.eps_choice, self.layout_choice, self.keras_axis,
                     self.batch_size_slider)
        self.framework.observe(self._on_framework, names="value")
        controls = widgets.VBox([
            self.framework,
            widgets.HBox([widgets.VBox([self.momentum_slider, self.cumulative, self.batch_size_slider]),
                          widgets.VBox([self.eps_choice, self.layout_choice, self.keras_axis])]),
        ])
        self.widget = self.layout(controls, extra=[self.code_html])

    def describe(self):
        copied = "" if self.mean_curves[self.LABELS[2]] is None else ", and the number copied unchanged (dotted)"
        return (f"Running mean (left) and running variance (right) of channel 0 over {self.STEPS} batches of "
                f"{self.batch_size}: bnlab set up as PyTorch and as Keras (translated){copied}. "
                f"{self._verdict()}")

    # -- wiring
    def _on_change(self, _change=None):
        if not self._hold:
            self.update()

    def _on_framework(self, change):
        """Another framework's settings: its default momentum, its axis control; then one update."""
        self._hold = True
        try:
            self.momentum_slider.value = 0.1 if change["new"] == "pytorch" else 0.99
            self.keras_axis.disabled = change["new"] == "pytorch"
        finally:
            self._hold = False
        self.update()

    # -- the cycle
    def _stream(self, ndim, batch_size):
        """``(batches, values)``: batches (steps, N, C, *spatial) in PyTorch's layout, and the same
        values per channel as (steps, values, C), what :func:`track_running_stats` takes."""
        key = (ndim, batch_size)
        if key not in self._streams:
            shape = (self.STEPS, batch_size, self.CHANNELS, *self._SPATIAL[ndim])
            where = (1, 1, self.CHANNELS) + (1,) * (ndim - 2)
            batches = random_batch(np.random.default_rng(self._seed), shape,
                                   loc=self._TRUE_MEAN.reshape(where), scale=self._TRUE_STD.reshape(where))
            # the statistics of each channel run over the batch and every position: channels last, flattened
            values = np.moveaxis(batches, 2, -1).reshape(self.STEPS, -1, self.CHANNELS)
            self._streams = {key: (batches, values)}  # keep one
        return self._streams[key]

    def compute(self):
        framework = self.framework.value
        cumulative = bool(self.cumulative.value)
        self.momentum_slider.disabled = cumulative
        momentum = "cumulative" if cumulative else float(self.momentum_slider.value)
        eps = None if self.eps_choice.value == "default" else float(self.eps_choice.value)
        ndim = int(self.layout_choice.value)
        axis = None if framework == "pytorch" else int(self.keras_axis.value)
        translation = translate(framework, momentum, eps, ndim=ndim, axis=axis, num_features=self.CHANNELS)
        batch_size = int(self.batch_size_slider.value)
        batches, stream = self._stream(ndim, batch_size)
        traces = {self.LABELS[0]: track_running_stats(stream, "pytorch", translation.bnlab["pytorch"]["momentum"]),
                  self.LABELS[1]: track_running_stats(stream, "keras", translation.bnlab["keras"]["momentum"])}
        if not cumulative:
            other = "keras" if framework == "pytorch" else "pytorch"
            traces[self.LABELS[2]] = track_running_stats(stream, other, momentum)
        n = stream.shape[1]
        torch_trace, keras_trace = traces[self.LABELS[0]], traces[self.LABELS[1]]
        return {
            "translation": translation, "code": translation.code(), "batch_size": batch_size, "batches": batches,
            "values_per_channel": n,
            "mean_curves": {label: (traces[label]["mean"][:, 0] if label in traces else None)
                            for label in self.LABELS},
            "var_curves": {label: (traces[label]["var"][:, 0] if label in traces else None)
                           for label in self.LABELS},
            "mean_gap": float(np.abs(torch_trace["mean"] - keras_trace["mean"]).max()),
            "var_ratio": float(torch_trace["var"][-1, 0] / keras_trace["var"][-1, 0]),
        }

    def _verdict(self):
        t, n = self.translation, self.values_per_channel
        head = (f"After {self.STEPS} batches of {self.batch_size} ({n} values per channel): the running means "
                f"of bnlab as PyTorch and as Keras differ by at most {self.mean_gap:.0e}; PyTorch's running "
                f"variance is {self.var_ratio:.3f} times Keras' (n / (n − 1) = {n / (n - 1):.3f}: it stores the "
                "unbiased variance).")
        if t.keras is None:
            return head + (" Keras has no cumulative average: the orange curve is bnlab's keras convention "
                           "with momentum=\"cumulative\", which no Keras setting reproduces.")
        source = t.pytorch["momentum"] if t.source == "pytorch" else t.keras["momentum"]
        other = "Keras" if t.source == "pytorch" else "PyTorch"
        if abs(t.pytorch["momentum"] - t.keras["momentum"]) < 1e-12:
            return head + f" Momentum {source:g} means the same in both: copying it happens to be right."
        return head + (f" Copying {source:g} into {other} unchanged (dotted) gives a new batch the weight "
                       f"{1 - t.batch_weight:g} instead of {t.batch_weight:g}.")

    def draw(self):
        update_translation_check(self.drawn, self.mean_curves, self.var_curves)
        self.code_html.value = _translation_html(self.translation, self._verdict())


class PitfallExplorer(Explorer):
    """The classic BN bugs: pick one, see its symptom, switch the fix on.

    Each choice runs one :mod:`bnlab.pitfalls` experiment (milliseconds, no
    training, deterministic) and draws it with :func:`bnlab.plots.plot_pitfall`:
    the bug as written in vermillion, with the fix in blue. A line of text
    below the figure says what the symptom is, with the numbers.

    Controls
    --------
    pitfall : Dropdown
        A key of :data:`bnlab.pitfalls.PITFALLS`.
    fix : ToggleButtons, False (as written) or True (with the fix)
    batch_size_slider : IntSlider, 2 to 64
        The experiment's batch size (its meaning, in the description,
        follows the pitfall; choosing a pitfall puts it on that pitfall's
        default).
    seed_slider : IntSlider, 0 to 20
        Another draw of the data.

    Attributes (after each update)
    ------------------------------
    name : str
    fixed : bool
    result : dict
        The experiment's result.
    summary : str
        The text below the figure.

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """

    title = "The classic BN bugs, reproduced: the symptom, and the fix"
    #: Per pitfall: the batch size slider's description and default.
    BATCH_SIZE = {
        "eval_in_train_mode": ("validation batch size", 8),
        "batch_of_one": ("loader batch size (97 samples)", 32),
        "frozen_bn": ("fine-tuning batch size", 16),
        "momentum_mixup": ("batch size", 16),
        "recalibration": ("batch size", 16),
        "per_device": ("batch per device (8 devices)", 4),
    }

    def __init__(self, pitfall="eval_in_train_mode"):
        super().__init__()
        if pitfall not in PITFALLS:
            raise ValueError(f"pitfall must be one of {sorted(PITFALLS)}, got {pitfall!r}")
        self._hold = False
        self._figures = {}
        self._results = {}
        wide = widgets.Layout(width="400px")
        self.pitfall = widgets.Dropdown(
            options=[(f"{i} · {title}", name) for i, (name, title) in enumerate(PITFALLS.items(), start=1)],
            value=pitfall, description="bug", style=WIDE, layout=widgets.Layout(width="480px"))
        self.fix = widgets.ToggleButtons(options=[("as written (the bug)", False), ("with the fix", True)],
                                         value=False, description="show", style=SENTENCE_BUTTONS)
        description, default = self.BATCH_SIZE[pitfall]
        self.batch_size_slider = widgets.IntSlider(value=default, min=2, max=64, description=description,
                                                   style=WIDE, layout=wide)
        self.seed_slider = widgets.IntSlider(value=0, min=0, max=20, description="data seed", style=WIDE,
                                             layout=wide)
        self.status = widgets.HTML()
        self.update()
        self.observe(self.fix, self.batch_size_slider, self.seed_slider)
        self.pitfall.observe(self._on_pitfall, names="value")
        controls = widgets.VBox([
            widgets.HBox([self.pitfall, self.fix]),
            widgets.HBox([self.batch_size_slider, self.seed_slider]),
        ])
        self.widget = self.layout(controls, extra=[self.status])

    def describe(self):
        view = "with the fix" if self.fixed else "as written"
        return f"The bug \"{PITFALLS[self.name]}\", {view}: {self.summary}"

    # -- wiring
    def _on_change(self, _change=None):
        if not self._hold:
            self.update()

    def _on_pitfall(self, change):
        """Another bug: its batch size (description and default), then one update."""
        description, default = self.BATCH_SIZE[change["new"]]
        self._hold = True
        try:
            self.batch_size_slider.description = description
            self.batch_size_slider.value = default
        finally:
            self._hold = False
        self.update()

    # -- the cycle
    def compute(self):
        name, fixed = self.pitfall.value, bool(self.fix.value)
        key = (name, int(self.batch_size_slider.value), int(self.seed_slider.value))
        if key not in self._results:
            result = pitfall_experiment(name, batch_size=key[1], seed=key[2])
            self._results = {key: result}  # keep one: a toggle of the fix needs no new run
        return {"name": name, "fixed": fixed, "result": self._results[key]}

    def _figure(self):
        """The figure of the current pitfall and view, made on first use and kept with its renderer."""
        key = (self.name, self.fixed)
        if key not in self._figures:
            drawn = plot_pitfall(self.name, self.result, fixed=self.fixed)
            dynamic = [line for panel in drawn["panels"] for line in panel["lines"].values()]
            self._figures[key] = (drawn, FastRenderer(drawn["fig"], dynamic))
        return self._figures[key]

    def draw(self):
        self.drawn, self.renderer = self._figure()
        self.fig = self.drawn["fig"]
        update_pitfall(self.drawn, self.result)
        self.summary = _SUMMARIES[self.name](self.result, self.fixed)
        colour = "#0072B2" if self.fixed else "#D55E00"
        self.status.value = (f"<p style='border-left:4px solid {colour};padding:2px 8px;font-size:1.05em;"
                             f"margin:4px 0'>{html.escape(self.summary)}</p>")


# --------------------------------------------------------------------------- the text under each figure

def _eval_summary(r, fixed):
    passes = len(r["train_outputs"])
    if fixed:
        return (f"Evaluation mode: sample 0's output is {r['eval_outputs'][0]:.3f} in all {passes} batches, "
                f"whatever its companions; the running mean stays {r['eval_running_mean'][-1]:.3f} and "
                f"num_batches_tracked stays {r['eval_batches_tracked']}.")
    outputs = r["train_outputs"]
    moved = r["train_running_mean"]
    return (f"Training mode: sample 0's output ranges from {outputs.min():.2f} to {outputs.max():.2f} across "
            f"the {passes} batches (it depends on its companions); the validation loop counted {passes} "
            f"batches as training (num_batches_tracked {r['trained_batches_tracked']} → "
            f"{r['train_batches_tracked']}) and moved the running mean from {moved[0]:.3f} to {moved[-1]:.3f}.")


def _batch_of_one_summary(r, fixed):
    sizes = r["batch_sizes"]
    if fixed:
        kept = int(np.sum(r["kept"]))
        return (f"drop_last=True: the {kept} complete batches train, {r['dropped_samples']} sample(s) sit out "
                "this epoch (others after the next shuffle). Or run the lone batch in evaluation mode: it "
                f"accepts shape {r['eval_output_shape']}.")
    if r["message"] is None:
        return (f"{len(sizes)} batches, the last one of {sizes[-1]}: nothing is refused. Try a batch size "
                "that leaves one sample over (97 = 3 · 32 + 1: 2, 3, 4, 6, 8, 12, 16, 24, 32, 48).")
    return (f"Batch {int(r['refused'][0]) + 1} holds 1 sample: training mode refuses it (PyTorch: \"Expected "
            f"more than 1 value per channel when training\"). bnlab: {r['message']}")


def _frozen_summary(r, fixed):
    if fixed:
        return ("With bn.eval() after model.train() the running statistics stay at the pretrained 0 and 1 "
                f"(largest change of an evaluation output on the original data: "
                f"{r['eval_change']['pytorch_eval']:.2f}), as Keras 3's trainable=False does by itself.")
    mean = r["running_mean"]["pytorch_frozen"][-1]
    return (f"requires_grad_(False) froze gamma and beta, yet training mode moved the running mean from 0 to "
            f"{mean:.2f} (the new data's mean is {r['new_mean']:g}): evaluation outputs on the original data "
            f"changed by up to {r['eval_change']['pytorch_frozen']:.2f}. Keras 3's trainable=False leaves the "
            "statistics alone; Keras 2's did not (dotted).")


def _mixup_summary(r, fixed):
    reach, wobble = r["reach_steps"], r["wobble"]
    if fixed:
        return (f"Momentum 0.1 in PyTorch, 0.9 in Keras (weight 0.1 in both): within 10% of the new mean "
                f"{reach['right']} batches after the jump, then a wobble of {wobble['right']:.3f} around it.")
    slow = (f"still not within 10% of the new mean {r['config']['steps'] - r['config']['jump_at']} batches "
            "after the jump" if reach["default_kept"] is None
            else f"within 10% of the new mean only after {reach['default_kept']} batches")
    return (f"Keras' 0.9 copied into PyTorch (weight 0.9): the running mean follows every batch, a wobble of "
            f"{wobble['copied']:.3f} instead of {wobble['right']:.3f}. Keras' default 0.99 kept (weight "
            f"0.01): {slow}.")


def _recalibration_summary(r, fixed):
    final = r["final"]
    if fixed:
        return (f"Reset after training, then the cumulative average (PyTorch's momentum=None) of "
                f"{len(r['cumulative'])} batches of the final network: {final['cumulative']:.3f}, the true "
                f"mean being {r['final_truth']:.2f}.")
    return (f"At the end of training the true mean is {r['final_truth']:.2f}, yet the exponential averages "
            f"hold {final['keras_default']:.2f} (momentum 0.99) and {final['pytorch_default']:.2f} "
            "(momentum 0.1): they trail the drift, and evaluation uses them.")


def _device_summary(r, fixed):
    n, devices = r["config"]["per_device"], r["config"]["devices"]
    sigma = np.sqrt(r["true_var"])
    if fixed:
        return (f"SyncBN: every device normalizes with the statistics of all {n * devices} samples: the mean "
                f"spreads {r['spread']['global_mean']:.2f} from step to step (σ/√{n * devices} = "
                f"{sigma / np.sqrt(n * devices):.2f}), the variance averages {r['average_var']['global']:.2f} "
                f"(true {r['true_var']:g}).")
    return (f"Each device normalizes with its own {n} samples: their means spread "
            f"{r['spread']['device_mean']:.2f} (σ/√{n} = {sigma / np.sqrt(n):.2f}) and their biased variances "
            f"average {r['average_var']['device']:.2f}, (n − 1)/n = {(n - 1) / n:.2f} of the true "
            f"{r['true_var']:g}.")


_SUMMARIES = {
    "eval_in_train_mode": _eval_summary,
    "batch_of_one": _batch_of_one_summary,
    "frozen_bn": _frozen_summary,
    "momentum_mixup": _mixup_summary,
    "recalibration": _recalibration_summary,
    "per_device": _device_summary,
}
