"""Explorer of notebook 06: change one sample and see every output and gradient of its batch move."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..core import batchnorm_backward, batchnorm_forward
from ..data import SEED_EPS, seed_batch
from ..plots import plot_batch_coupling, update_batch_coupling
from .base import TEXT_COLOURS, Explorer, format_batch, parse_batch, tidy

__all__ = ["BatchCouplingExplorer"]


def _cell(value, digits=4):
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

    def describe(self):
        j, k = self.feature, self.sample
        return (f"Feature {j} of all {self.z.shape[0]} samples: the input z, BN's output y and the gradient "
                f"dL/dz, now (stems) and before the change (open circles). Sample {k} is nudged by "
                f"δ = {self.nudge:.2f} and every sample shifted by c = {self.shift:.1f}: the other samples' "
                f"outputs moved by at most {self.max_other_change:.3f}, and the loss changed by "
                f"{tidy(self.loss - self.loss_ref):.4f}.")

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
        j, k = self.feature, self.sample
        subtitles = (
            f"δ = {self.nudge + 0.0:+.2f} on sample {k}, c = {self.shift + 0.0:+.1f}",
            f"others moved by ≤ {self.max_other_change:.3f}",
            f"Σ dz = {tidy(self.sum_dz[j], np.abs(self.dz[:, j]).max()):.2g},  "
            f"Σ dz·ẑ = {tidy(self.sum_dz_z_hat[j], np.abs(self.dz[:, j]).max()):.2g}",
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
            mark = f" style='color:{TEXT_COLOURS['error']};font-weight:bold'" if i == k else ""
            cells = (self.z[i, j], self.z_now[i, j], self.y_ref[i, j], self.y[i, j], self.dz_ref[i, j],
                     self.dz[i, j])
            rows.append(f"<tr{mark}><td>{i}</td>" + "".join(f"<td>{_cell(v)}</td>" for v in cells)
                        + "</tr>")
        change = self.loss - self.loss_ref
        foot = (f"<p>Loss L = Σ dy·y = {self.loss + 0.0:.4f} (before: {self.loss_ref + 0.0:.4f}, change "
                f"{change + 0.0:+.4f}); the gradient predicts dL/dz[{k}, {j}] · δ = "
                f"{self.predicted_change + 0.0:+.4f} for the nudge (first order) and 0 for the shift.</p>")
        return ("<table style='border-collapse:collapse;font-size:1.0em;text-align:right' cellpadding='3'>"
                f"{head}{''.join(rows)}</table>{foot}")
