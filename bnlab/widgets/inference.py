"""Explorer of notebook 10: the same trained BN network on shifted test digits, with and without AdaBN."""

from __future__ import annotations

import copy
import functools
import html
from collections import OrderedDict

import ipywidgets as widgets
import numpy as np

from ..datasets import load_digits_split, shift_digits
from ..layers import BatchNorm
from ..plots import plot_shift_panels, update_shift_panels
from ..running import recalibrate_batchnorm
from ..train import train_bn_mlp
from .base import SENTENCE_BUTTONS, WIDE, Explorer

__all__ = ["ShiftExplorer"]


@functools.lru_cache(maxsize=2)
def _trained(seed):
    """The digits split and the BN network :func:`bnlab.train.train_bn_mlp` trains with ``seed`` (cached)."""
    data = load_digits_split(0)
    history = train_bn_mlp(seed=seed, data=data)
    if history.diverged:  # pragma: no cover - the defaults train
        raise RuntimeError(f"training diverged: {history.diverged_reason}")
    return data, history.model


def _norm_layers(model):
    return [layer for layer in model.layers if isinstance(layer, BatchNorm)]


class ShiftExplorer(Explorer):
    """Shift the test digits and see what BN's statistics do: as trained, or re-estimated (AdaBN).

    One BN network (:func:`bnlab.train.train_bn_mlp`, seed 0: 64-64-64-10,
    BN before each ReLU) is trained on the clean digits once, when the first
    explorer is built (about half a second; cached). Every control then only
    evaluates: the test set is shifted (:func:`bnlab.shift_digits`), and the
    network classifies it with the running statistics training left, and
    with statistics re-estimated on the shifted test inputs
    (:func:`bnlab.recalibrate_batchnorm` on a copy, the whole test set as one
    batch, no labels: AdaBN, Li et al. 2016).

    The figure: a few shifted test digits (under each its true class; a
    thick vermillion frame when the statistics in use classify it wrongly);
    one BN layer's per-feature mean and standard deviation on the shifted
    test set, as AdaBN re-estimates them (every BN layer re-estimated, so a
    deeper layer's come after the earlier layers'), against the running
    values (on the dashed diagonal: nothing moved); the test accuracy on the
    clean set, on the shifted set as trained, and on the shifted set with
    re-estimated statistics.

    Inversion with strength ``s`` is ``(1 - 2s) x + s``, a contrast change
    with ``a = 1 - 2s``: AdaBN repairs it for ``s < 0.5`` and not beyond.

    Parameters
    ----------
    seed : int, default 0
        The training seed.
    digits_shown : int, default 8
        How many test digits the top row shows (the first ones of the test set).

    Controls
    --------
    shift_choice : ToggleButtons
        ``"contrast_brightness"`` (``a * x + b``), ``"noise"`` (Gaussian, std
        ``s``) or ``"invert"`` (``(1 - s) * x + s * (1 - x)``); only that kind's
        sliders are enabled.
    contrast_slider : FloatSlider, 0.05 to 2 (a; default 0.5)
    brightness_slider : FloatSlider, -0.5 to 1 (b; default 0.3)
    noise_slider : FloatSlider, 0 to 1 (s; default 0.3)
    invert_slider : FloatSlider, 0 to 1 (s; default 1)
    adapt : ToggleButtons
        False: BN uses the training statistics; True: the re-estimated ones.
    layer_choice : Dropdown
        Which BN layer's statistics are drawn (1, 2 or 3).

    Attributes (after each update)
    ------------------------------
    kind : str
    strength : float or (float, float)
        What :func:`bnlab.shift_digits` got.
    x_shifted : ndarray, shape (N_test, 64)
    accuracy_clean, accuracy_trained, accuracy_adabn : float
        Test accuracy on the clean set (training statistics), on the shifted
        set with the training statistics and with re-estimated ones.
    adapted : bool
    accuracy : float
        The accuracy with the statistics in use.
    layer : int
    running_mean, running_var : ndarray, shape (64,)
        The drawn layer's running statistics (what training left).
    shifted_mean, shifted_var : ndarray, shape (64,)
        The same layer's statistics re-estimated on the shifted test set
        (:func:`bnlab.recalibrate_batchnorm` on the whole model).
    predictions : ndarray of int, shape (digits_shown,)
        Classes given to the digits shown, with the statistics in use.

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """

    title = "Shift the test digits: BN's statistics as trained, or re-estimated (AdaBN)"

    KINDS = (("contrast & brightness: a·x + b", "contrast_brightness"), ("gaussian noise", "noise"),
             ("inversion", "invert"))
    #: Results kept per shift (a slider swept back and forth recomputes nothing).
    CACHED_SHIFTS = 64

    def __init__(self, seed=0, digits_shown=8):
        super().__init__()
        self._data, self._model = _trained(int(seed))
        self._digits_shown = int(digits_shown)
        if not 1 <= self._digits_shown <= 12:
            raise ValueError(f"digits_shown must be between 1 and 12, got {digits_shown!r}")
        x_test, y_test = self._data.x_test, self._data.y_test
        self._clean_accuracy = float(np.mean(self._model.forward(x_test, training=False).argmax(axis=1) == y_test))
        self._cache = OrderedDict()
        wide = widgets.Layout(width="360px")
        self.shift_choice = widgets.ToggleButtons(options=list(self.KINDS), value="contrast_brightness",
                                          description="shift", style=SENTENCE_BUTTONS)
        self.contrast_slider = widgets.FloatSlider(value=0.5, min=0.05, max=2.0, step=0.05,
                                                   description="contrast a", style=WIDE, layout=wide)
        self.brightness_slider = widgets.FloatSlider(value=0.3, min=-0.5, max=1.0, step=0.05,
                                                     description="brightness b", style=WIDE, layout=wide)
        self.noise_slider = widgets.FloatSlider(value=0.3, min=0.0, max=1.0, step=0.05,
                                                description="noise std s", style=WIDE, layout=wide)
        self.invert_slider = widgets.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05,
                                                 description="inversion s", style=WIDE, layout=wide)
        self.adapt = widgets.ToggleButtons(
            options=[("training statistics (as trained)", False),
                     ("recompute BN statistics on the test inputs (AdaBN)", True)],
            value=False, description="BN uses", style=SENTENCE_BUTTONS)
        self.layer_choice = widgets.Dropdown(options=[(f"BN layer {i}", i) for i in (1, 2, 3)], value=1,
                                             description="statistics of", style=WIDE)
        self.summary = widgets.HTML()
        self._sync_sliders()
        state = self.compute()
        for key, value in state.items():
            setattr(self, key, value)
        self.drawn = plot_shift_panels(*self._panel_args())
        d = self.drawn
        self._drawn_layer = self.layer
        dynamic = [d["mosaic"], *d["frames"], *d["points"].values(), *d["bars"],
                   *d["bar_labels"]]
        self.set_renderer(d["fig"], dynamic)
        self.draw()
        self.render()
        self.shift_choice.observe(self._sync_sliders, names="value")
        self.observe(self.shift_choice, self.contrast_slider, self.brightness_slider, self.noise_slider,
                     self.invert_slider, self.adapt, self.layer_choice)
        controls = widgets.VBox([
            self.shift_choice,
            widgets.HBox([widgets.VBox([self.contrast_slider, self.brightness_slider]),
                          widgets.VBox([self.noise_slider, self.invert_slider])]),
            widgets.HBox([self.adapt, self.layer_choice]),
        ])
        self.widget = self.layout(controls, extra=[self.summary])

    def describe(self):
        used = "re-estimated on the shifted inputs (AdaBN)" if self.adapted else "from training"
        return (f"Top: the first {len(self.predictions)} test digits shifted to "
                f"{self.describe_shift(self.kind, self.strength)}, with the classes the network gives them "
                f"(BN statistics {used}). Below: BN layer {self.layer}'s running mean and standard deviation "
                f"per feature against those of the shifted inputs, and test accuracy: clean "
                f"{100 * self.accuracy_clean:.1f} %, training statistics {100 * self.accuracy_trained:.1f} %, "
                f"re-estimated {100 * self.accuracy_adabn:.1f} %.")

    # -- controls
    def _sync_sliders(self, _change=None):
        kind = self.shift_choice.value
        self.contrast_slider.disabled = self.brightness_slider.disabled = kind != "contrast_brightness"
        self.noise_slider.disabled = kind != "noise"
        self.invert_slider.disabled = kind != "invert"

    def read_shift(self):
        """``(kind, strength)`` for :func:`bnlab.shift_digits`, from the controls."""
        kind = self.shift_choice.value
        if kind == "contrast_brightness":
            return kind, (round(float(self.contrast_slider.value), 6), round(float(self.brightness_slider.value), 6))
        slider = self.noise_slider if kind == "noise" else self.invert_slider
        return kind, round(float(slider.value), 6)

    @staticmethod
    def describe_shift(kind, strength):
        """The shift in words, e.g. ``"0.5·x + 0.3"``."""
        if kind == "contrast_brightness":
            a, b = strength
            sign = "−" if b < 0 else "+"
            return f"{a:g}·x {sign} {abs(b):g}"
        if kind == "noise":
            return f"x + noise (std {strength:g})"
        return f"inverted, s = {strength:g}" if strength < 1 else "1 − x (inverted)"

    # -- the cycle
    def _evaluate(self, kind, strength):
        key = (kind, strength)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        x_test, y_test = self._data.x_test, self._data.y_test
        x = shift_digits(x_test, kind, strength, rng=0)  # bad strengths raise ValueError / TypeError
        trained_scores = self._model.forward(x, training=False)
        adapted = copy.deepcopy(self._model)
        recalibrate_batchnorm(adapted, [x])  # AdaBN: the whole shifted test set, no labels
        adapted_scores = adapted.forward(x, training=False)
        k = self._digits_shown
        result = {
            "x_shifted": x,
            "accuracy_trained": float(np.mean(trained_scores.argmax(axis=1) == y_test)),
            "accuracy_adabn": float(np.mean(adapted_scores.argmax(axis=1) == y_test)),
            "predictions_trained": trained_scores[:k].argmax(axis=1),
            "predictions_adabn": adapted_scores[:k].argmax(axis=1),
            "shifted_stats": [(bn.running_mean, bn.running_var) for bn in _norm_layers(adapted)],
        }
        self._cache[key] = result
        while len(self._cache) > self.CACHED_SHIFTS:
            self._cache.popitem(last=False)
        return result

    def compute(self):
        kind, strength = self.read_shift()
        result = self._evaluate(kind, strength)
        adapted = bool(self.adapt.value)
        layer = int(self.layer_choice.value)
        bn = _norm_layers(self._model)[layer - 1]
        shifted_mean, shifted_var = result["shifted_stats"][layer - 1]
        accuracy = result["accuracy_adabn"] if adapted else result["accuracy_trained"]
        return {
            "kind": kind, "strength": strength, "x_shifted": result["x_shifted"], "adapted": adapted,
            "layer": layer, "accuracy_clean": self._clean_accuracy,
            "accuracy_trained": result["accuracy_trained"], "accuracy_adabn": result["accuracy_adabn"],
            "accuracy": accuracy, "running_mean": bn.running_mean, "running_var": bn.running_var,
            "shifted_mean": shifted_mean, "shifted_var": shifted_var,
            "predictions": result["predictions_adabn" if adapted else "predictions_trained"],
        }

    def _panel_args(self):
        k = self._digits_shown
        stats = {"running_mean": self.running_mean, "running_std": np.sqrt(self.running_var),
                 "shifted_mean": self.shifted_mean, "shifted_std": np.sqrt(self.shifted_var)}
        accuracy = {"clean": self.accuracy_clean, "trained": self.accuracy_trained, "adabn": self.accuracy_adabn}
        return (self.x_shifted[:k], self._data.y_test[:k], stats, accuracy, self.predictions, self.adapted,
                self.layer)

    def draw(self):
        retitle = self.layer != self._drawn_layer
        update_shift_panels(self.drawn, *self._panel_args()[:5], adapted=self.adapted,
                            layer=self.layer if retitle else None)
        self._drawn_layer = self.layer
        self._full_render = retitle  # the titles are static: draw everything once
        self.summary.value = self._summary_html()

    def render(self, full=False):
        super().render(full=full or getattr(self, "_full_render", False))
        self._full_render = False

    def _summary_html(self):
        shift = html.escape(self.describe_shift(self.kind, self.strength))
        used = "statistics re-estimated on the shifted test inputs" if self.adapted else "training statistics"
        return (f"<p style='font-size:1.05em;margin:4px 0'>Test digits shifted to <b>{shift}</b>: accuracy "
                f"<b>{100 * self.accuracy:.1f}%</b> with the {used} "
                f"(training statistics {100 * self.accuracy_trained:.1f}%, re-estimated "
                f"{100 * self.accuracy_adabn:.1f}%; clean test set {100 * self.accuracy_clean:.1f}%).</p>")
