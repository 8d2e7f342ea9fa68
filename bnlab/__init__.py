"""bnlab: learn Batch Normalization by touching it.

The public API (see README.md):

>>> import bnlab
>>> z, gamma, beta = bnlab.seed_batch()
>>> mean, var = bnlab.batch_stats(z)
>>> y, cache = bnlab.batchnorm_forward(z, gamma, beta, eps=1e-5)
"""

from .conventions import CONVENTIONS, Convention, get_convention
from .core import (
    affine,
    batch_stats,
    batchnorm_backward,
    batchnorm_backward_graph,
    batchnorm_forward,
    normalize,
    update_running_stats,
)
from .data import random_batch, seed_batch
from .gradcheck import numerical_gradient, rel_error
from .layers import BatchNorm
from .notebook import setup_notebook, show

# after training (notebooks 10-11)
from .conventions import Translation, render_translation, translate
from .core import fold_batchnorm
from .datasets import shift_digits
from .layers import fold_model
from .running import recalibrate_batchnorm

__version__ = "0.1.0"

__all__ = [
    "batch_stats",
    "normalize",
    "affine",
    "batchnorm_forward",
    "batchnorm_backward",
    "batchnorm_backward_graph",
    "update_running_stats",
    "BatchNorm",
    "rel_error",
    "numerical_gradient",
    "seed_batch",
    "random_batch",
    "CONVENTIONS",
    "Convention",
    "get_convention",
    "setup_notebook",
    "show",
    "fold_batchnorm",
    "fold_model",
    "recalibrate_batchnorm",
    "shift_digits",
    "translate",
    "Translation",
    "render_translation",
]
