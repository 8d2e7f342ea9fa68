"""Explorer of notebook 04: shift and scale a batch and watch BN's output stay put."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..core import batch_stats, batchnorm_forward, normalize
from ..data import SEED_EPS, SEED_SCALE, SEED_SHIFT, seed_batch
from ..plots import plot_shift_scale, update_shift_scale
from .base import SENTENCE_BUTTONS, Explorer, format_batch, parse_batch

__all__ = ["ShiftScaleExplorer"]


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
                                          description="sign of a", style=SENTENCE_BUTTONS)
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

    def describe(self):
        return (f"Three panels: the batch z, the transformed z' = a·z + b with a = {self.a:.3g} and "
                f"b = {self.b:.3g}, and BN's outputs y = BN(z) (open circles) and y' = BN(z') (dots), "
                f"eps = {self.eps:.0e}: the largest difference max |y' − y| is {self.max_gap:.2g}.")

    def compute(self):
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
        extra = f"z' behaves like z with eps/a² = {self.effective_eps:.2g}"
        update_shift_scale(self.drawn, self.z, self.z_shifted, self.y, self.y_shifted,
                           scale=self.a, shift=self.b, extra=extra)
