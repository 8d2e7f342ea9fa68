"""The Keras and PyTorch batch-norm conventions, written once, as data.

Introduced in ``notebooks/05_running_statistics.ipynb``.

============================  ======================================  =========================================
                              ``"keras"`` (Keras 3, CS231n, the seed)  ``"pytorch"`` (``torch.nn.BatchNorm1d/2d``)
============================  ======================================  =========================================
update                        ``m * running + (1 - m) * batch``        ``(1 - m) * running + m * batch``
stored running variance       biased (``ddof=0``)                      unbiased (``var * n / (n - 1)``)
default momentum              0.99                                    0.1
default eps                   1e-3                                    1e-5
initial running mean / var    0 / 1                                   0 / 1
============================  ======================================  =========================================

Converting: ``torch_momentum = 1 - keras_momentum``. Both normalize the batch
itself with the biased variance; they differ only in what they remember.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Convention:
    """One framework's batch-norm bookkeeping.

    Attributes
    ----------
    name : str
        ``"keras"`` or ``"pytorch"``.
    framework : str
        Where the convention comes from, for display.
    momentum : float
        Default momentum.
    eps : float
        Default eps.
    momentum_weights_running : bool
        True when momentum multiplies the running value (Keras:
        ``m * running + (1 - m) * batch``), False when it multiplies the batch
        value (PyTorch: ``(1 - m) * running + m * batch``).
    unbiased_running_var : bool
        True when the running variance stores the unbiased batch variance
        ``var * n / (n - 1)``.
    initial_mean, initial_var : float
        Initial running statistics.
    frozen_layer_runs_in_inference : bool
        What ``trainable=False`` means for a :class:`bnlab.BatchNorm`. True
        (Keras 3): a frozen layer runs in inference mode even when called
        with ``training=True`` (running statistics used, never updated).
        False (PyTorch's ``requires_grad_(False)``): only gamma and beta stop
        learning; a training-mode forward still normalizes with the batch
        statistics and updates the running ones.
    """

    name: str
    framework: str
    momentum: float
    eps: float
    momentum_weights_running: bool
    unbiased_running_var: bool
    initial_mean: float = 0.0
    initial_var: float = 1.0
    frozen_layer_runs_in_inference: bool = False

    def batch_weight(self, momentum):
        """The weight a new batch statistic gets in the running average."""
        return 1.0 - momentum if self.momentum_weights_running else momentum

    @property
    def update_formula(self):
        if self.momentum_weights_running:
            return "running = momentum * running + (1 - momentum) * batch"
        return "running = (1 - momentum) * running + momentum * batch"


CONVENTIONS = {
    "keras": Convention(
        name="keras",
        framework="Keras 3 keras.layers.BatchNormalization (also CS231n and the seed walkthrough)",
        momentum=0.99,
        eps=1e-3,
        momentum_weights_running=True,
        unbiased_running_var=False,
        frozen_layer_runs_in_inference=True,
    ),
    "pytorch": Convention(
        name="pytorch",
        framework="PyTorch torch.nn.BatchNorm1d / BatchNorm2d",
        momentum=0.1,
        eps=1e-5,
        momentum_weights_running=False,
        unbiased_running_var=True,
        frozen_layer_runs_in_inference=False,
    ),
}


def get_convention(convention):
    """Return the :class:`Convention` named ``convention`` (``"keras"`` or ``"pytorch"``)."""
    if isinstance(convention, Convention):
        return convention
    if not isinstance(convention, str) or convention.lower() not in CONVENTIONS:
        raise ValueError(
            f"convention must be one of {sorted(CONVENTIONS)}, got {convention!r}"
        )
    return CONVENTIONS[convention.lower()]
