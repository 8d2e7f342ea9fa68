"""Explorer of notebook 07: train the BN paper's MLP on the digits with your settings, with and without BN."""

from __future__ import annotations

import time

import ipywidgets as widgets
import numpy as np

from ..datasets import load_digits_split
from ..plots import VARIANT_ORDER, plot_training_figure, update_training_figure
from ..train import LABEL_NOISY_BN, LABEL_WITH_BN, LABEL_WITHOUT_BN, run_experiment
from .base import RunExplorer

__all__ = ["TrainingExplorer"]


class TrainingExplorer(RunExplorer):
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
        run_row = self.run_controls()
        self.summary = widgets.HTML()
        self.histories, self.final_accuracy, self.settings = {}, {}, self.read_settings()
        self.last_run_seconds, self.runs = 0.0, 0
        self._last_choice = self._choice()
        self.drawn = plot_training_figure({}, labels=VARIANT_ORDER)
        self.set_renderer(self.drawn["fig"], [])  # every run redraws everything (and re-lays out)
        self.observe(self.learning_rate_slider, self.init_scale_slider, self.batch_size_slider,
                     self.steps_slider, self.seed_slider, self.activation, self.bn_mode, self.noisy_bn)
        if not (run and self.update()):
            self.draw()
            self.render()
        controls = widgets.VBox([
            widgets.HBox([widgets.VBox([self.learning_rate_slider, self.init_scale_slider,
                                        self.batch_size_slider]),
                          widgets.VBox([self.steps_slider, self.seed_slider, self.activation])]),
            widgets.HBox([self.bn_mode, self.noisy_bn]),
            run_row,
        ])
        self.widget = self.layout(controls, extra=(self.summary,))

    def describe(self):
        if not self.histories:
            return ("Test accuracy against training step, and the 15th, 50th and 85th percentiles of one "
                    "sigmoid's input, per run: empty until Run is pressed.")
        runs = "; ".join(
            f"{label}: " + ("diverged" if history.diverged else f"{100 * history.final_test_accuracy:.1f} %")
            for label, history in self.histories.items())
        return (f"Test accuracy against training step over {self.settings['steps']} steps (learning rate "
                f"{self.settings['learning_rate']:.3g}, {self.settings['activation']}), and the 15th, 50th and "
                f"85th percentiles of one hidden unit's input, one panel per run. Final test accuracy: {runs}.")

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

    def settings_changed(self):
        settings, mode, noisy = self._choice()
        last, last_mode, last_noisy = self._last_choice
        same = (mode, noisy) == (last_mode, last_noisy) and settings.keys() == last.keys() and all(
            np.isclose(settings[k], last[k], rtol=1e-6) if isinstance(last[k], float) else settings[k] == last[k]
            for k in settings)  # a browser snapping 0.5 to 0.50000001 is not a change
        return not same

    def compute(self):
        settings = self.read_settings()
        runs = self.variants()
        steps = settings["steps"]
        self.start_progress(len(runs) * steps)
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
        update_training_figure(self.drawn, self.histories)
        self.summary.value = self._summary_html()

    def render(self, full=True):
        # a run changes ticks and legends: lay the figure out again, then draw it whole
        self.fig.set_layout_engine("constrained")
        super().render(full=True)

    def _summary_html(self):
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
