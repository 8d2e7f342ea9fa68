"""Explorers of notebook 05: running statistics over a stream of batches, and train versus eval."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..core import batch_stats
from ..data import SEED_MOMENTUM, random_batch, seed_batch
from ..layers import BatchNorm
from ..plots import plot_running_stats, plot_train_eval, update_train_eval
from ..plots import style as plot_style
from ..running import convert_momentum, track_running_stats
from .base import SENTENCE_BUTTONS, Explorer, numbers

__all__ = ["RunningStatsExplorer", "TrainEvalExplorer"]


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
            value="same", description="momentum", style=SENTENCE_BUTTONS)
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
        # one legend for both panels (same colours), above them: it never covers a curve, and a
        # slider that rescales the panels redraws only the panels (the legend is costly to draw)
        handles, labels = dr["axes"][0].get_legend_handles_labels()
        for ax in dr["axes"]:
            ax.get_legend().remove()
        with plot_style():
            dr["fig"].legend(handles, labels, loc="outside upper center", ncols=2, frameon=False)
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

    def describe(self):
        f, final = self.feature, self.final
        return (f"Running mean (left) and running variance (right) of feature {f} over {self.steps} batches "
                f"of {self.batch_size}, Keras given momentum {self.keras_momentum:.3g} and PyTorch "
                f"{self.pytorch_momentum:.3g}, with each batch's own statistics as dots and the true values "
                f"(mean {self.true_mean[f]:.3g}, variance {self.true_var[f]:.3g}) as lines. After the last "
                f"batch: Keras mean {final['keras_mean'][f]:.3g}, variance {final['keras_var'][f]:.3g}; "
                f"PyTorch mean {final['pytorch_mean'][f]:.3g}, variance {final['pytorch_var'][f]:.3g}.")

    _STEP_RANGES = (40, 150, 300, 500)

    _LABELS = (("keras", "keras: m·running + (1−m)·batch"), ("pytorch", "pytorch: (1−m)·running + m·batch"))

    def _next_seed(self, _button=None):
        self.seed_slider.value = (self.seed_slider.value + 1) % (self.seed_slider.max + 1)

    def _curves(self):
        f = self.feature
        return {label: (getattr(self, name)["mean"][:, f], getattr(self, name)["var"][:, f])
                for name, label in self._LABELS}

    def compute(self):
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
            value="eval", description="test in", style=SENTENCE_BUTTONS)
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

    def describe(self):
        mode = "training mode (its own statistics)" if self.training else "evaluation mode (the running statistics)"
        return (f"Bars: the layer's running means {numbers(self.running_mean)} and variances "
                f"{numbers(self.running_var)} after {self.trained_steps} training batches (momentum "
                f"{self.momentum:.3g}), against the true values. Right: a test batch of {self.y.shape[0]} "
                f"through BN in {mode}; sample 0 comes out as {numbers(self.sample_output)}.")

    def _trace(self, momentum):
        if momentum not in self._traces:
            self._traces = {momentum: track_running_stats(self._stream, "keras", momentum)}  # keep one
        return self._traces[momentum]

    def compute(self):
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
