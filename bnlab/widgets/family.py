"""Explorers of notebook 09: which values share statistics (BN, LN, IN, GN), and BN against batch size."""

from __future__ import annotations

import html
import time

import ipywidgets as widgets
import numpy as np

from ..core import normalize_forward
from ..datasets import load_digits_split
from ..plots import (
    FAMILY_AXES,
    FAMILY_METHODS,
    FAMILY_NAMES,
    finish_axes,
    new_figure,
    plot_batch_size_accuracy,
    plot_norm_cube,
    plot_tensor_values,
    sharing_mask,
    update_batch_size_run,
    update_norm_cube,
    update_tensor_values,
)
from ..plots import style as plot_style
from ..plots.family import BATCH_SIZE_STYLES
from ..train import NORM_LABELS, BatchSizeResult, evaluate_in_training_mode, run_batch_size
from .base import SENTENCE_BUTTONS, WIDE, Explorer, RunExplorer, tidy

__all__ = ["NormalizationFamilyExplorer", "BatchSizeExplorer", "full_batch_size_grid"]


def _family_statistics(x, method, num_groups=2, eps=1e-5):
    """Mean, variance and x_hat of every value of an (N, C, P) tensor under one normalization.

    One call of :func:`bnlab.normalize_forward`, over the axes the method
    names: BN (0, 2), LN (1, 2), IN (2,), GN (2, 3) of the (N, G, C/G, P) view.

    Returns
    -------
    mean, var, x_hat : ndarray, shape (N, C, P) each
        The statistics each value is normalized with, broadcast to x's shape.
    """
    n, c, p = x.shape
    if method == "group":
        view = x.reshape(n, num_groups, c // num_groups, p)
        x_hat, cache = normalize_forward(view, axis=(2, 3), eps=eps)
    else:
        axis = {"batch": (0, 2), "layer": (1, 2), "instance": (2,)}[method]
        view = x
        x_hat, cache = normalize_forward(x, axis=axis, eps=eps)
    mean = np.broadcast_to(cache["mean"], view.shape).reshape(x.shape)
    var = np.broadcast_to(cache["var"], view.shape).reshape(x.shape)
    return mean, var, x_hat.reshape(x.shape)


def _number_buttons(options, value, description):
    """A row of buttons for a few numbers (the choices of G or of the batch size).

    Not a ``SelectionSlider``: Jupyter Notebook 7 takes the arrow keys from a focused slider
    for its own shortcuts, and a SelectionSlider's number cannot be typed into (ipywidgets
    lets you type into it and ignores what you typed), so from the keyboard it could not be
    moved there at all. Buttons answer to Tab and Space in every front end.
    """
    return widgets.ToggleButtons(options=list(options), value=value, description=description,
                                 style=SENTENCE_BUTTONS)


class NormalizationFamilyExplorer(Explorer):
    """Pick a normalization and a value of a small tensor: see which values share its mean and variance.

    The tensor ``x`` (default shape (N, C, P) = (4, 6, 5): 4 samples, 6
    channels, 5 positions standing for H * W) holds seeded integers 0-9.
    Left: the Group Norm paper's cube, the chosen value in orange and the
    rest of its group in blue. Right: the same tensor sample by sample, every
    value written, the group shaded. The table gives the group's mean and
    variance (from :func:`bnlab.normalize_forward` over the method's axes)
    and the chosen value normalized. Every (method, G) is computed when the
    explorer is built, so a slider move only looks up and redraws.

    Parameters
    ----------
    shape : (int, int, int), default (4, 6, 5)
    seed : int, default 0
        Seeds the tensor.
    eps : float, default 1e-5

    Controls
    --------
    method : ToggleButtons, ``"batch"``, ``"layer"``, ``"instance"``, ``"group"``
    groups_slider : ToggleButtons, the divisors of C (default 2): G of group norm
    sample_slider, channel_slider, position_slider : IntSlider
        The chosen value ``(n, c, p)``.

    Attributes (after each update)
    ------------------------------
    x : ndarray, shape (N, C, P)
    method : str
    num_groups : int
    voxel : (int, int, int)
    mask : ndarray of bool, shape (N, C, P)
        The values sharing the chosen value's statistics.
    group_size : int
        How many values share them.
    mean, var : float
        The group's mean and (population) variance.
    value, x_hat : float
        The chosen value and its normalized value ``(value - mean) / sqrt(var + eps)``.

    Introduced in notebook 09 (the normalization family).
    """

    title = "Which values share one mean and variance?"

    def __init__(self, shape=(4, 6, 5), seed=0, eps=1e-5):
        super().__init__()
        rng = np.random.default_rng(seed)
        n_size, c_size, p_size = shape
        self.x = rng.integers(0, 10, size=(n_size, c_size, p_size)).astype(np.float64)
        self.eps = eps
        divisors = [g for g in range(1, c_size + 1) if c_size % g == 0]
        self._stats = {(method, g): _family_statistics(self.x, method, g, eps)
                       for method in FAMILY_METHODS for g in (divisors if method == "group" else (1,))}
        self.method_buttons = widgets.ToggleButtons(
            options=[("BN", "batch"), ("LN", "layer"), ("IN", "instance"), ("GN", "group")],
            tooltips=[f"{FAMILY_NAMES[m]}: statistics over {FAMILY_AXES[m]}" for m in FAMILY_METHODS],
            value="batch", description="normalization", style=WIDE)
        self.groups_slider = _number_buttons(divisors, 2 if 2 in divisors else divisors[0],
                                             "groups G (GN)")
        self.sample_slider = widgets.IntSlider(value=0, min=0, max=n_size - 1, description="sample n",
                                               style=WIDE, layout=widgets.Layout(width="300px"))
        self.channel_slider = widgets.IntSlider(value=0, min=0, max=c_size - 1, description="channel c",
                                                style=WIDE, layout=widgets.Layout(width="300px"))
        self.position_slider = widgets.IntSlider(value=0, min=0, max=p_size - 1,
                                                 description="position p (H, W)", style=WIDE,
                                                 layout=widgets.Layout(width="300px"))
        self.table = widgets.HTML()
        state = self.compute()
        for key, value in state.items():
            setattr(self, key, value)
        fig, axes = new_figure(2, width=11.8, height=4.1)
        axes[0].get_subplotspec().get_gridspec().set_width_ratios([1.0, 1.75])
        self.cube = plot_norm_cube(self.method, self.x.shape, self.voxel, self.num_groups, ax=axes[0])
        self.values = plot_tensor_values(self.x, self.mask, self.voxel, ax=axes[1],
                                         title="the tensor x: shaded values share the statistics")
        self.drawn = {"fig": fig, "axes": list(axes), "cube": self.cube, "values": self.values}
        # the 120 written values are drawn once; a move redraws the cube, its title and the shading
        self.set_renderer(fig, [self.cube["faces"], self.cube["front_grid"], self.cube["chosen"],
                                self.cube["title"], self.values["cells"], self.values["ring"]])
        self.draw()
        self.render()
        self.observe(self.method_buttons, self.groups_slider, self.sample_slider, self.channel_slider,
                     self.position_slider)
        controls = widgets.HBox([
            widgets.VBox([self.method_buttons, self.groups_slider]),
            widgets.VBox([self.sample_slider, self.channel_slider, self.position_slider]),
        ])
        self.widget = self.layout(controls, extra=(self.table,))

    def describe(self):
        n, c, p = self.voxel
        name = FAMILY_NAMES[self.method] + (f" with G = {self.num_groups}" if self.method == "group" else "")
        return (f"The tensor x of shape {self.x.shape} (N, C, positions) as a cube and sample by sample: with "
                f"{name} (statistics over {FAMILY_AXES[self.method]}), the value x[{n}, {c}, {p}] = "
                f"{self.value:g} shares its mean {tidy(self.mean):.4g} and variance {self.var:.4g} with "
                f"{self.group_size - 1} other values (shaded); normalized, it becomes {tidy(self.x_hat):.4g}.")

    def compute(self):
        method = self.method_buttons.value
        num_groups = int(self.groups_slider.value)
        voxel = (int(self.sample_slider.value), int(self.channel_slider.value), int(self.position_slider.value))
        mask = sharing_mask(method, self.x.shape, voxel, num_groups)  # ValueError for a bad voxel or G
        mean, var, x_hat = self._stats[(method, num_groups if method == "group" else 1)]
        return {"method": method, "num_groups": num_groups, "voxel": voxel, "mask": mask,
                "group_size": int(mask.sum()), "mean": float(mean[voxel]), "var": float(var[voxel]),
                "value": float(self.x[voxel]), "x_hat": float(x_hat[voxel])}

    def draw(self):
        update_norm_cube(self.cube, self.method, self.voxel, self.num_groups)
        update_tensor_values(self.values, self.mask, self.voxel)
        self.table.value = self._table_html()

    def _table_html(self):
        n, c, p = self.voxel
        name = FAMILY_NAMES[self.method] + (f" (G = {self.num_groups})" if self.method == "group" else "")
        rows = [
            ("normalization", name),
            ("statistics over", FAMILY_AXES[self.method]),
            ("values sharing them", str(self.group_size)),
            ("their mean", f"{self.mean + 0.0:.4f}"),
            ("their variance", f"{self.var + 0.0:.4f}"),
            (f"x[{n}, {c}, {p}]", f"{self.value:g}"),
            ("normalized: (x − mean) / √(var + eps)", f"{self.x_hat + 0.0:.4f}"),
        ]
        body = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                       for k, v in rows)
        return ("<table style='border-collapse:collapse;font-size:1.05em;text-align:right' cellpadding='3'>"
                f"{body}</table>")


# --- the batch-size experiment ---------------------------------------------------------------

#: ``bnlab.train.batch_size_experiment()`` with its defaults (8 epochs, lr 0.05 * B / 32, seeds 0 and 1),
#: measured once (about 40 s of CPU): correct test predictions out of 359, per [method][batch size][seed].
_FULL_GRID_CORRECT = {
    "batch": ((139, 180), (330, 330), (340, 341), (343, 346), (345, 344)),
    "layer": ((340, 343), (339, 343), (339, 341), (338, 341), (342, 342)),
    "group": ((345, 345), (346, 343), (345, 340), (344, 345), (343, 341)),
    None: ((342, 339), (342, 340), (342, 338), (339, 337), (344, 335)),
}
_FULL_GRID_TEST_SIZE = 359


def full_batch_size_grid():
    """The full batch-size grid, as :func:`bnlab.train.batch_size_experiment` with its defaults returns it.

    Measured once and stored (the run takes about 40 s of CPU, too long for a
    notebook): BN, LN, GN and no normalization at batch sizes 2, 4, 8, 16 and
    32, 8 epochs, learning rate ``0.05 * B / 32``, seeds 0 and 1, on
    ``load_digits_split(0)``. ``tests/test_widgets_family.py`` re-runs some
    of its cells; ``benchmarks/bench_norms.py`` re-runs all of them.

    Returns
    -------
    BatchSizeResult
        A fresh copy (``wall_time`` 0: not timed here).

    Introduced in notebook 09 (the normalization family).
    """
    methods = tuple(_FULL_GRID_CORRECT)
    batch_sizes = (2, 4, 8, 16, 32)
    correct = np.array([_FULL_GRID_CORRECT[m] for m in methods], dtype=np.float64)
    return BatchSizeResult(methods=methods, batch_sizes=batch_sizes, seeds=(0, 1),
                           learning_rates=tuple(0.05 * b / 32 for b in batch_sizes),
                           accuracy=correct / _FULL_GRID_TEST_SIZE,
                           config=dict(epochs=8, lr_at_32=0.05, hidden=(64, 64, 64), num_groups=8,
                                       bn_momentum=0.1))


_METHOD_OPTIONS = [("BN", "batch"), ("LN", "layer"), ("GN", "group"), ("RMSNorm", "rms"), ("none", "none")]
_BATCH_SIZES = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


class BatchSizeExplorer(RunExplorer):
    """Train the batch-size experiment's MLP with one normalization at one batch size, against the grid.

    Sliders and buttons only record the settings; the Run button (or
    :meth:`update`) trains one network with
    :func:`bnlab.train.run_batch_size` (a few seconds at batch size 2, well
    under one at 32) while a progress bar moves. Left: the grid's test
    accuracy against batch size, one line per normalization, your run as a
    star and earlier runs as small markers. Right: your run's test accuracy
    after each epoch. The table gives the accuracy in evaluation mode (as
    the grid), the same network evaluated in training mode (the test set in
    batches of B, normalized with each batch's own statistics) and the
    training loss of the last epoch.

    Parameters
    ----------
    grid : BatchSizeResult, optional
        The curves to compare with, and the recipe of a run (its epochs,
        lr_at_32, hidden widths, bn_momentum). Default
        :func:`full_batch_size_grid` (8 epochs, two seeds).
    run : bool, default True
        Train once with the default settings when constructed.
    data : DigitsSplit, optional
        Default ``bnlab.datasets.load_digits_split(0)`` (the grid's data).

    Controls
    --------
    method_buttons : ToggleButtons, ``"batch"``, ``"layer"``, ``"group"``, ``"rms"``, ``"none"``
    batch_size_slider : ToggleButtons, 2 to 64 (default 32)
    groups_slider : ToggleButtons, divisors of the hidden width (default the grid's 8)
    seed_slider : IntSlider, 0 to 9
    run_button : Button
    progress : IntProgress (epochs done)

    Attributes (after each run)
    ---------------------------
    history : EpochHistory
        From :func:`bnlab.train.run_batch_size` (with the model).
    settings : dict
        The run's arguments (``norm``, ``batch_size``, ``num_groups``, ``seed``, ...).
    accuracy : float
        Final test accuracy, evaluation mode (NaN if the run diverged).
    train_mode_accuracy : float
        The same network, test set in training mode in batches of ``batch_size``.
    train_loss : float
        Mean mini-batch loss of the last epoch.
    grid_accuracy : float or None
        The grid's mean accuracy for this method and batch size (None if not in the grid).
    runs : list of dict
        Every successful run: ``norm``, ``batch_size``, ``num_groups``, ``seed``, ``accuracy``.
    pending : bool
        True when the controls changed since the last run.
    last_run_seconds : float

    Introduced in notebook 09 (the normalization family).
    """

    title = "Batch size: train one normalization at one batch size"

    def __init__(self, grid=None, run=True, data=None):
        super().__init__()
        self.grid = full_batch_size_grid() if grid is None else grid
        if not isinstance(self.grid, BatchSizeResult):
            raise TypeError(f"grid must be a BatchSizeResult (from batch_size_experiment), "
                            f"got {type(self.grid).__name__}")
        self._data = load_digits_split(0) if data is None else data
        config = self.grid.config
        self._recipe = {k: config[k] for k in ("epochs", "lr_at_32", "hidden", "bn_momentum")}
        width = min(self._recipe["hidden"])
        divisors = [g for g in range(1, width + 1) if all(h % g == 0 for h in self._recipe["hidden"])]
        slider = widgets.Layout(width="330px")
        self.method_buttons = widgets.ToggleButtons(
            options=_METHOD_OPTIONS, value="batch", description="normalization", style=WIDE,
            tooltips=["batch norm (running statistics in eval mode)", "layer norm", "group norm",
                      "RMS norm", "no normalization"])
        self.batch_size_slider = _number_buttons(_BATCH_SIZES, 32, "batch size")
        groups = config.get("num_groups", 8)
        self.groups_slider = _number_buttons(divisors, groups if groups in divisors else divisors[0],
                                            "groups G (GN)")
        self.seed_slider = widgets.IntSlider(value=0, min=0, max=9, description="seed", style=WIDE,
                                             layout=slider, continuous_update=False)
        run_row = self.run_controls()
        self.progress.max = self._recipe["epochs"]
        self.summary = widgets.HTML()
        self.history, self.settings, self.runs = None, self.read_settings(), []
        self.accuracy = self.train_mode_accuracy = self.train_loss = float("nan")
        self.grid_accuracy, self.last_run_seconds = None, 0.0
        self._last_settings = self.settings
        self._build_figure()
        self.observe(self.method_buttons, self.batch_size_slider, self.groups_slider, self.seed_slider)
        if not (run and self.update()):
            self.draw()
            self.render()
        controls = widgets.VBox([
            self.method_buttons,
            widgets.HBox([widgets.VBox([self.batch_size_slider, self.groups_slider]),
                          widgets.VBox([self.seed_slider, run_row])]),
        ])
        self.widget = self.layout(controls, extra=(self.summary,))

    def describe(self):
        grid = (f"Left: test accuracy against batch size ({', '.join(str(b) for b in self.grid.batch_sizes)}) "
                f"for {', '.join(NORM_LABELS[m] for m in self.grid.methods)}, from the stored grid.")
        if self.history is None:
            return grid + " No run yet: press Run."
        s = self.settings
        result = "diverged" if self.history.diverged else f"{100 * self.accuracy:.1f} %"
        return (grid + f" Your run, {NORM_LABELS[s['norm']]} at batch size {s['batch_size']}, is a star at "
                f"{result}; right: its test accuracy after each of {s['epochs']} epochs.")

    def _build_figure(self):
        fig, axes = new_figure(2, width=12.0, height=4.2)
        grid = self.grid
        self.drawn = {"fig": fig, "axes": list(axes),
                      "grid": plot_batch_size_accuracy(grid, ax=axes[0], run_marker=True)}
        ax = axes[1]
        with plot_style():
            (self._epoch_line,) = ax.plot([], [], marker="o", color=BATCH_SIZE_STYLES["BN"][0])
            self._past = axes[0].scatter([], [], s=36, zorder=5, edgecolors="white", linewidths=0.5)
            ax.set_xlim(0, self._recipe["epochs"])
            ax.set_ylim(0, 100)
            finish_axes(ax, "your run: test accuracy after each epoch", "epoch",
                              "test accuracy (%, eval mode)")
        self.drawn["epochs"] = self._epoch_line
        self.drawn["past_runs"] = self._past
        self.set_renderer(fig, [])  # every run redraws everything

    def read_settings(self):
        """The run_batch_size arguments the controls describe."""
        method = self.method_buttons.value
        return {"norm": None if method == "none" else method, "batch_size": int(self.batch_size_slider.value),
                "num_groups": int(self.groups_slider.value), "seed": int(self.seed_slider.value),
                **self._recipe}

    def settings_changed(self):
        return self.read_settings() != self._last_settings

    def compute(self):
        settings = self.read_settings()
        self.start_progress(settings["epochs"])
        start = time.perf_counter()

        def progress(epoch, _epochs):
            self.progress.value = epoch

        # bad settings (G not dividing the widths, ...) raise ValueError before any training
        history = run_batch_size(data=self._data, progress=progress, **settings)
        x_test, y_test = self._data.x_test, self._data.y_test
        if history.diverged:
            train_mode = float("nan")
        else:
            train_mode = evaluate_in_training_mode(history.model, x_test, y_test, settings["batch_size"])[1]
        accuracy = history.final_test_accuracy
        self._last_settings = settings
        run = {k: settings[k] for k in ("norm", "batch_size", "num_groups", "seed")}
        run["accuracy"] = accuracy
        return {"history": history, "settings": settings, "accuracy": accuracy,
                "train_mode_accuracy": train_mode,
                "train_loss": float(history.train_loss[-1]) if len(history.train_loss) > 1 else float("nan"),
                "grid_accuracy": self._grid_accuracy(settings["norm"], settings["batch_size"]),
                "runs": self.runs + [run], "pending": False,
                "last_run_seconds": time.perf_counter() - start}

    def _grid_accuracy(self, norm, batch_size):
        grid = self.grid
        if norm not in grid.methods or batch_size not in grid.batch_sizes:
            return None
        return float(grid.mean_accuracy(norm)[grid.batch_sizes.index(batch_size)])

    def draw(self):
        grid_panel = self.drawn["grid"]
        if self.history is None:
            update_batch_size_run(grid_panel, None, None)
            self._epoch_line.set_data([], [])
        else:
            s = self.settings
            label = NORM_LABELS[s["norm"]]
            colour = BATCH_SIZE_STYLES.get(label, ("#000000",))[0]
            text = f"{label}, B = {s['batch_size']}: " + (
                "diverged" if self.history.diverged else f"{100 * self.accuracy:.1f} %")
            update_batch_size_run(grid_panel, s["batch_size"], self.accuracy if not self.history.diverged
                                  else 0.0, label=text)
            self._epoch_line.set_data(self.history.epochs, 100.0 * self.history.test_accuracy)
            self._epoch_line.set_color(colour)
            self.drawn["axes"][1].set_xlim(0, max(1, s["epochs"]))
            earlier = [r for r in self.runs[:-1] if np.isfinite(r["accuracy"])]
            if earlier:
                self._past.set_offsets([[r["batch_size"], 100.0 * r["accuracy"]] for r in earlier])
                self._past.set_facecolors([BATCH_SIZE_STYLES.get(NORM_LABELS[r["norm"]], ("#000000",))[0]
                                           for r in earlier])
            else:
                self._past.set_offsets(np.empty((0, 2)))
        self.summary.value = self._summary_html()

    def render(self, full=True):
        # a run moves limits and labels: lay the figure out again, then draw it whole
        self.fig.set_layout_engine("constrained")
        super().render(full=True)

    def _summary_html(self):
        if self.history is None:
            return "<p>No run yet: press Run.</p>"
        s, h = self.settings, self.history
        label = NORM_LABELS[s["norm"]]

        def pct(value):
            return "–" if value is None or not np.isfinite(value) else f"{100 * value:.1f} %"

        groups = f", G = {s['num_groups']}" if s["norm"] == "group" else ""
        rows = [
            ("run", f"{label}, batch size {s['batch_size']}{groups}, seed {s['seed']}, "
                    f"lr {s['lr_at_32'] * s['batch_size'] / 32:g}, {s['epochs']} epochs"),
            ("test accuracy, evaluation mode", pct(self.accuracy) + (" (diverged)" if h.diverged else "")),
            (f"same network, training mode (test batches of {s['batch_size']})", pct(self.train_mode_accuracy)),
            ("training loss, last epoch (ln 10 = 2.30 is guessing)",
             "–" if not np.isfinite(self.train_loss) else f"{self.train_loss:.3f}"),
            ("the grid's mean here", pct(self.grid_accuracy) if self.grid_accuracy is not None
             else "not in the grid"),
        ]
        body = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                       for k, v in rows)
        return ("<table style='border-collapse:collapse;font-size:1.05em;text-align:right' cellpadding='3'>"
                f"{body}</table>")
