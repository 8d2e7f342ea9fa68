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
    group_norm,
    group_norm_backward,
    group_norm_forward,
    instance_norm,
    instance_norm_backward,
    instance_norm_forward,
    layer_norm,
    layer_norm_backward,
    layer_norm_forward,
    normalize,
    normalize_backward,
    normalize_forward,
    rms_norm,
    rms_norm_backward,
    rms_norm_forward,
    update_running_stats,
)
from .data import random_batch, seed_batch
from .gradcheck import numerical_gradient, rel_error
from .layers import BatchNorm, Conv2D, Flatten, GlobalAvgPool2D, GroupNorm, LayerNorm, RMSNorm
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
    "normalize_forward",
    "normalize_backward",
    "layer_norm",
    "layer_norm_forward",
    "layer_norm_backward",
    "group_norm",
    "group_norm_forward",
    "group_norm_backward",
    "instance_norm",
    "instance_norm_forward",
    "instance_norm_backward",
    "rms_norm",
    "rms_norm_forward",
    "rms_norm_backward",
    "BatchNorm",
    "LayerNorm",
    "GroupNorm",
    "RMSNorm",
    "Conv2D",
    "GlobalAvgPool2D",
    "Flatten",
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
