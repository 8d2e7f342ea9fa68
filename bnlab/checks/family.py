"""Exercise checkers of notebook 09: group norm by reshaping, which values share statistics, batch size one."""

from __future__ import annotations

import numpy as np

from ..core import group_norm
from ..plots import FAMILY_METHODS, FAMILY_NAMES, sharing_mask
from .feedback import (
    NOT_NUMBERS,
    Feedback,
    call_safely,
    close,
    compare_arrays,
    missing_return,
    read_choice,
)

__all__ = ["check_group_norm", "check_shared_values", "check_batch_size_one", "BATCH_SIZE_ONE_CHOICES"]


# --- exercise 1: group norm by reshaping -------------------------------------------------------

#: (shape, num_groups) the learner's group norm is tried on; C / G differs from G in each,
#: so groups of C/G channels and groups of G channels give different answers.
_GROUP_NORM_CASES = (((2, 6, 3, 3), 3), ((3, 8, 5), 4), ((2, 12, 2, 2), 3))
_EPS = 1e-5


def _group_norm_input(shape, num_groups, seed):
    """Seeded input whose first group (sample 0) has a tiny variance (1e-6), so eps matters there."""
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=1.5, scale=2.0, size=shape)
    per_group = shape[1] // num_groups
    x[0, :per_group] = 5.0 + 1e-3 * rng.standard_normal(x[0, :per_group].shape)
    return x


def _normalized(x, view_shape, axis, eps, where="inside"):
    """x viewed as ``view_shape``, normalized over ``axis`` with eps inside, outside or without the root."""
    view = x.reshape(view_shape)
    mean = view.mean(axis=axis, keepdims=True)
    var = view.var(axis=axis, keepdims=True)
    with np.errstate(all="ignore"):
        if where == "inside":
            x_hat = (view - mean) / np.sqrt(var + eps)
        elif where == "outside":
            x_hat = (view - mean) / (np.sqrt(var) + eps)
        else:
            x_hat = (view - mean) / np.sqrt(var)
    return x_hat.reshape(x.shape)


def _group_norm_mistakes(x, num_groups, eps):
    """The typical wrong answers: (description, hint, array)."""
    n, c = x.shape[:2]
    g, per = num_groups, c // num_groups
    grouped = (n, g, per, -1)
    interleaved = (n, per, g, -1)
    reshape_hint = ("view x as (N, G, C/G, H*W): the G groups come first, each holding C/G neighbouring "
                    "channels; x.reshape(N, C // G, G, -1) puts the channels of a group G apart")
    eps_hint = "eps goes inside the square root: (x − mean) / np.sqrt(var + eps)"
    axes_hint = ("within the (N, G, C/G, H*W) view, the statistics run over the channels of the group and "
                 "all positions: axis=(2, 3), one mean and variance per sample and group")
    return [
        ("the groups are built from the (N, C/G, G) view: consecutive channels were split into groups of G, "
         f"i.e. {c // g} groups instead of {g}", reshape_hint, _normalized(x, (n, per, g, -1), (2, 3), eps)),
        ("the groups are built from the (N, C/G, G) view: channel c landed in group c % G (strided "
         "channels) instead of group c // (C/G)", reshape_hint, _normalized(x, interleaved, (1, 3), eps)),
        ("eps is missing: one group has a tiny variance (1e-6) and its values come out about three times "
         "too large", eps_hint, _normalized(x, grouped, (2, 3), eps, where="none")),
        ("eps is added to the standard deviation, outside the square root", eps_hint,
         _normalized(x, grouped, (2, 3), eps, where="outside")),
        ("this normalizes each sample over all its channels at once (layer norm, G = 1)", axes_hint,
         _normalized(x, (n, 1, c, -1), (2, 3), eps)),
        ("this normalizes each channel on its own, over its positions only (instance norm, G = C)",
         axes_hint,
         _normalized(x, (n, c, 1, -1), (2, 3), eps)),
        ("the statistics include the batch axis N: every sample's group shares them (batch norm per group)",
         axes_hint, _normalized(x, grouped, (0, 2, 3), eps)),
        ("the statistics run over the group's channels only, not over the positions", axes_hint,
         _normalized(x, grouped, (2,), eps)),
    ]


def check_group_norm(group_norm_function):
    """Exercise (notebook 09): group normalization by reshaping, without gamma and beta.

    Parameters
    ----------
    group_norm_function : callable
        ``group_norm_function(x, num_groups, eps) -> y`` with ``x`` of shape
        (N, C, *spatial) and ``y`` of the same shape.

    Returns
    -------
    Feedback
        Compared with :func:`bnlab.group_norm` on three shapes (2-D and 1-D
        spatial, C / G different from G); recognises the (N, C/G, G) view
        (groups of G channels, or strided channels), eps left out or added
        outside the square root, statistics over the wrong axes (all
        channels, each channel's positions only, the batch axis included,
        the group's channels only), a result of the wrong shape and a
        missing return.

    Introduced in notebook 09 (the normalization family).
    """
    feedback = Feedback("Exercise: group norm by reshaping")
    hint = ("x.reshape(N, G, C // G, -1); mean and variance over axis=(2, 3) with keepdims=True; "
            "(x − mean) / np.sqrt(var + eps); reshape back to x.shape")
    for seed, (shape, num_groups) in enumerate(_GROUP_NORM_CASES):
        x = _group_norm_input(shape, num_groups, seed)
        where = f"x of shape {shape} with G = {num_groups}"
        ok, got = call_safely(feedback, group_norm_function, x.copy(), num_groups, _EPS,
                              what="your group_norm")
        if not ok or missing_return(feedback, got, "your group_norm"):
            return feedback
        expected = group_norm(x, num_groups, eps=_EPS)
        try:
            got_array = np.asarray(got, dtype=np.float64)
        except NOT_NUMBERS:
            return feedback.fail(f"your group_norm should return an array, got {type(got).__name__}", hint)
        if got_array.shape != expected.shape:
            if got_array.size == expected.size:
                return feedback.fail(f"for {where} the result has shape {got_array.shape}: reshape it back "
                                     f"to x's shape {shape}", "end with: return y.reshape(x.shape)")
            return feedback.fail(f"for {where} the result has shape {got_array.shape}, expected {shape}", hint)
        if close(got_array, expected, rtol=1e-6, atol=1e-8):
            continue
        if not np.isfinite(got_array).all():
            return feedback.fail(f"for {where} the result holds NaN or infinity",
                                 "eps goes inside the square root: (x − mean) / np.sqrt(var + eps)")
        for text, mistake_hint, wrong in _group_norm_mistakes(x, num_groups, _EPS):
            if close(got_array, wrong, rtol=1e-6, atol=1e-8):
                return feedback.fail(f"for {where}: {text}", mistake_hint)
        compare_arrays(feedback, f"y for {where}", got_array, expected, rtol=1e-6, atol=1e-8, hint=hint)
        return feedback
    return feedback.ok("matches bnlab.group_norm on (2, 6, 3, 3) with G = 3, (3, 8, 5) with G = 4 and "
                       "(2, 12, 2, 2) with G = 3, including a group whose tiny variance makes eps matter")


# --- exercise 2: which values share statistics ----------------------------------------------------

def check_shared_values(mask, method="group", shape=(4, 6, 5), voxel=(1, 2, 0), num_groups=3):
    """Exercise (notebook 09): mark the values that share their mean and variance with one value.

    Parameters
    ----------
    mask : array-like of bool (or 0/1), shape ``shape``
        True where a value of an (N, C, P) tensor is normalized with the same
        mean and variance as ``x[voxel]``.
    method : {"batch", "layer", "instance", "group"}, default "group"
    shape : (int, int, int), default (4, 6, 5)
    voxel : (int, int, int), default (1, 2, 0)
    num_groups : int, default 3

    Returns
    -------
    Feedback
        Recognises another method's group (BN, LN, IN, or GN with C/G
        groups instead of G), other samples included, positions or channels
        left out, the value itself missing.

    Introduced in notebook 09 (the normalization family).
    """
    name = FAMILY_NAMES.get(method, str(method)) + (f" with G = {num_groups}" if method == "group" else "")
    feedback = Feedback(f"Exercise: which values share statistics with x{tuple(voxel)} ({name})")
    expected = sharing_mask(method, shape, voxel, num_groups)
    n, c, p = voxel
    hint = {"batch": "BN: one mean and variance per channel, over every sample and position: mask[:, c, :]",
            "layer": "LN: one mean and variance per sample, over every channel and position: mask[n, :, :]",
            "instance": "IN: one per sample and channel, over the positions: mask[n, c, :]",
            "group": (f"GN: one per sample and group; with C = {shape[1]} and G = {num_groups} a group is "
                      f"{shape[1] // max(num_groups, 1)} neighbouring channels; every position counts")}[method]
    if mask is None:
        return feedback.fail("mask is None: build an array, e.g. mask = np.zeros(shape, dtype=bool)", hint)
    try:
        got = np.asarray(mask)
        if got.dtype.kind not in "biuf" or not np.isin(got, (0, 1)).all():
            raise ValueError
        got = got.astype(bool)
    except NOT_NUMBERS:
        return feedback.fail("mask should hold True/False (or 1/0) values", hint)
    if got.shape != expected.shape:
        return feedback.fail(f"mask has shape {got.shape}, expected {expected.shape} (N, C, P)", hint)
    if np.array_equal(got, expected):
        where = {"batch": f"channel {c} of every sample, at every position",
                 "layer": f"every channel and position of sample {n}",
                 "instance": f"channel {c} of sample {n}, at every position",
                 "group": f"channels {_channel_range(expected[n])} of sample {n}, at every position"}[method]
        return feedback.ok(f"right: {int(expected.sum())} values share x{tuple(voxel)}'s statistics: {where}")
    if not got[tuple(voxel)]:
        return feedback.fail(f"x{tuple(voxel)} itself is not marked: a value shares its own statistics", hint)
    for other in FAMILY_METHODS:
        if other != method and np.array_equal(got, sharing_mask(other, shape, voxel, num_groups)):
            return feedback.fail(f"this is the {FAMILY_NAMES[other]} group "
                                 f"(statistics over its axes), not {name}'s", hint)
    if method == "group":
        swapped = shape[1] // num_groups
        if swapped != num_groups and np.array_equal(got, sharing_mask("group", shape, voxel, swapped)):
            return feedback.fail(f"these are groups of {num_groups} channels ({swapped} groups): G counts "
                                 f"the groups, each holding C/G = {swapped} channels", hint)
    others = [m for m in range(shape[0]) if m != n]
    if method != "batch" and got[others].any():
        return feedback.fail("values of other samples are marked: only batch norm mixes samples", hint)
    channels = got.any(axis=(0, 2))
    expected_channels = expected.any(axis=(0, 2))
    if np.array_equal(channels, expected_channels) and not got[expected].all():
        return feedback.fail("the right channels, but not every position: the statistics run over all "
                             "positions (H, W) of them", hint)
    if not np.array_equal(channels, expected_channels):
        marked = ", ".join(str(k) for k in np.nonzero(channels)[0]) or "none"
        return feedback.fail(f"channels marked: {marked}; the group has channels "
                             f"{_channel_range(expected.any(axis=0))}", hint)
    missing, extra = int((expected & ~got).sum()), int((got & ~expected).sum())
    return feedback.fail(f"{int(got.sum())} values marked, {int(expected.sum())} expected "
                         f"({missing} missing, {extra} too many)", hint)


def _channel_range(mask_of_sample):
    """``"2-3"`` or ``"4"``: the channels a (C, P) mask marks."""
    channels = np.nonzero(np.asarray(mask_of_sample).reshape(-1, mask_of_sample.shape[-1]).any(axis=-1))[0]
    if len(channels) == 0:
        return "none"
    return f"{channels[0]}–{channels[-1]}" if len(channels) > 1 else str(channels[0])


# --- exercise 3: batch size one -------------------------------------------------------------------

BATCH_SIZE_ONE_CHOICES = {
    "a": "Batch norm: with one image it simply uses the running statistics.",
    "b": "Group norm (or layer norm): each sample's statistics come from that sample alone, the same in "
         "training and evaluation.",
    "c": "Batch norm with a smaller momentum, so the running statistics settle faster.",
    "d": "No normalization: with one sample per batch no normalization can compute statistics.",
}
_BATCH_SIZE_ONE_WHY = {
    "a": ("in training BN normalizes with the batch's own statistics: a dense layer's BN refuses a batch of "
          "one (no variance to estimate), and a convolution's BN then estimates each channel's statistics "
          "from a single image, unlike the running statistics used in evaluation; the batch-size "
          "experiment shows BN collapsing already at 2"),
    "c": ("the momentum only changes how the running statistics average the batch statistics; the problem "
          "is the batch statistics themselves, computed from one sample during training"),
    "d": ("layer, group and instance norm compute their statistics inside one sample, so they work with a "
          "batch of one; only batch norm needs other samples"),
}


def check_batch_size_one(answer):
    """Exercise (notebook 09): which normalization for a network trained with one image per batch.

    Parameters
    ----------
    answer : str
        One letter of :data:`BATCH_SIZE_ONE_CHOICES`.

    Returns
    -------
    Feedback
        Explains why each wrong choice fails.

    Introduced in notebook 09 (the normalization family).
    """
    feedback = Feedback("Exercise: a normalization for batch size 1")
    hint = "which methods compute their mean and variance inside one sample? (the cubes of Figure 2)"
    letter = read_choice(feedback, answer, BATCH_SIZE_ONE_CHOICES, hint)
    if letter is None:
        return feedback
    if letter != "b":
        return feedback.fail(f"({letter}): {_BATCH_SIZE_ONE_WHY[letter]}", hint)
    return feedback.ok("(b): GN and LN normalize each sample with its own statistics, so a batch of one is "
                       "fine and training and evaluation compute the same thing (GN was designed for this: "
                       "detection and segmentation with 1-2 images per GPU)")
