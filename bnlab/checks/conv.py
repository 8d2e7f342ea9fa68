"""Exercise checkers of notebook 08: per-channel statistics, values per statistic, the channels-last axes."""

from __future__ import annotations

import numbers

import numpy as np

from ..core import batch_stats
from .feedback import NOT_NUMBERS, Feedback, call_safely, close, compare_arrays, missing_return

__all__ = ["check_channel_stats", "check_values_per_statistic", "check_channels_last_axis",
           "VALUES_PER_STATISTIC_SHAPE"]


#: The (N, C, H, W) shape of the values-per-statistic exercise.
VALUES_PER_STATISTIC_SHAPE = (16, 32, 14, 14)

_RIGHT_AXES_HINT = ("BN for convolutions keeps one statistic per channel (axis 1) and reduces over the "
                    "batch and every position: axis=(0, 2, 3)")


def _exercise_maps(shape, seed):
    """Feature maps with clearly different per-channel means and spreads (float64)."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    loc = rng.uniform(-3.0, 3.0, size=(1, c, 1, 1))
    scale = rng.uniform(0.5, 2.5, size=(1, c, 1, 1))
    return loc + scale * rng.standard_normal(shape)


#: Wrong reductions recognised by the shape of the statistics they give, on (N, C, H, W) = (5, 3, 4, 6).
_WRONG_AXES = {
    0: ("one statistic per channel and position: axis=0 averages over the batch only (N values each), as "
        "for a dense layer; the positions of a map are not normalized the same way"),
    (0, 1): ("the statistics mix the channels (axis=(0, 1)): every position gets one mean over all "
             "channels, but each channel is a different feature"),
    (2, 3): ("one statistic per image and channel (axis=(2, 3)): that is instance normalization, "
             "no batch statistics at all"),
    (1, 2, 3): "one statistic per image (axis=(1, 2, 3)): that is layer normalization over (C, H, W)",
    (0, 2): "the width axis 3 is missing: reduce over the batch and both spatial axes",
    (0, 3): "the height axis 2 is missing: reduce over the batch and both spatial axes",
    (0, 1, 2, 3): "one mean and variance for the whole tensor: BN keeps one per channel",
}


def _wrong_axis_by_shape(shape):
    """{statistic shape: axis} for the exercise shape, so a wrong answer can be named."""
    return {tuple(np.delete(np.array(shape), list(np.atleast_1d(axis)))): axis for axis in _WRONG_AXES}


def check_channel_stats(channel_stats):
    """Exercise (notebook 08): per-channel BN statistics of a batch of feature maps.

    Parameters
    ----------
    channel_stats : callable
        ``channel_stats(z) -> (mean, var)`` with ``z`` of shape (N, C, H, W)
        and ``mean``, ``var`` of shape (C,): population variance (ddof=0).

    Returns
    -------
    Feedback
        Recognises the statistics over the wrong axes (``axis=0`` per
        position, ``(0, 1)`` across channels, ``(2, 3)`` per image,
        ``(1, 2, 3)`` per sample, a forgotten spatial axis, everything at
        once), the sample variance (ddof=1), the standard deviation instead
        of the variance, and ``z.reshape(C, -1)`` without moving the channel
        axis first.

    Introduced in notebook 08 (BN in convolutional networks).
    """
    feedback = Feedback("Exercise: per-channel statistics of feature maps")
    for shape, seed in (((5, 3, 4, 6), 8), ((2, 4, 3, 3), 9)):
        z = _exercise_maps(shape, seed)
        ok, got = call_safely(feedback, channel_stats, z.copy(), what="channel_stats")
        if not ok or missing_return(feedback, got, "channel_stats"):
            return feedback
        try:
            mean, var = got
        except (TypeError, ValueError):
            return feedback.fail(f"channel_stats should return two arrays (mean, var), got {type(got).__name__}",
                                 "end your function with: return mean, var")
        expected_mean, expected_var = batch_stats(z, axis=(0, 2, 3))
        c = shape[1]
        try:
            mean_shape = np.shape(np.asarray(mean, dtype=np.float64))
        except NOT_NUMBERS:
            return feedback.fail(f"mean should be numbers, got {type(mean).__name__}", _RIGHT_AXES_HINT)
        if mean_shape != (c,):
            wrong = _wrong_axis_by_shape(shape).get(mean_shape)
            if wrong is not None:
                return feedback.fail(f"for z of shape {shape} your mean has shape {mean_shape}: "
                                     f"{_WRONG_AXES[wrong]}", _RIGHT_AXES_HINT)
            return feedback.fail(f"for z of shape {shape} your mean has shape {mean_shape}, expected ({c},): "
                                 "one value per channel", _RIGHT_AXES_HINT)
        if not close(mean, expected_mean, rtol=1e-7, atol=1e-9):
            scrambled = z.reshape(c, -1)  # reshape without moving the channel axis first
            if close(mean, scrambled.mean(axis=1), rtol=1e-7, atol=1e-9):
                return feedback.fail(
                    "the mean has the right shape but mixes channels: z.reshape(C, -1) on (N, C, H, W) does "
                    "not group the values by channel (the batch axis comes first)",
                    "move the channel axis to the front first: np.moveaxis(z, 1, 0).reshape(C, -1), "
                    "or use z.mean(axis=(0, 2, 3))")
            compare_arrays(feedback, f"the mean for z of shape {shape}", mean, expected_mean, rtol=1e-7,
                           atol=1e-9, hint=_RIGHT_AXES_HINT)
            return feedback
        if close(var, expected_var, rtol=1e-7, atol=1e-9):
            continue
        n = z.size // c
        if close(var, expected_var * n / (n - 1), rtol=1e-7, atol=1e-9):
            return feedback.fail("the mean is right, but the variance is the sample variance (ddof=1)",
                                 "BN normalizes with the population variance: np.var(z, axis=(0, 2, 3)) "
                                 "(ddof=0, dividing by N·H·W)")
        if close(var, np.sqrt(expected_var), rtol=1e-7, atol=1e-9):
            return feedback.fail("the mean is right, but the second value is the standard deviation",
                                 "return the variance: np.var(z, axis=(0, 2, 3))")
        feedback.ok("the mean is right")
        compare_arrays(feedback, f"the variance for z of shape {shape}", var, expected_var, rtol=1e-7,
                       atol=1e-9, hint=_RIGHT_AXES_HINT)
        return feedback
    return feedback.ok("one mean and one variance per channel, over the batch and every position "
                       "(axis=(0, 2, 3)), for z of shapes (5, 3, 4, 6) and (2, 4, 3, 3)")


def _as_count(answer):
    """``answer`` as an int if it is a whole number (an int, a float like 3136.0, a NumPy number), else None."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, numbers.Integral):
        return int(answer)
    if isinstance(answer, numbers.Real) and np.isfinite(answer) and float(answer).is_integer():
        return int(answer)
    return None


def check_values_per_statistic(answer, shape=VALUES_PER_STATISTIC_SHAPE):
    """Exercise (notebook 08): how many values feed each BN statistic of a conv layer.

    Parameters
    ----------
    answer : int
        The number of values behind each mean (and each variance) when
        ``BatchNorm2d`` normalizes a batch of feature maps of ``shape``.
    shape : (N, C, H, W), default :data:`VALUES_PER_STATISTIC_SHAPE` (16, 32, 14, 14)

    Returns
    -------
    Feedback
        Recognises the other counts one gets by reducing over the wrong axes
        (N per position, H·W per image, C·H·W per sample, all values), the
        number of statistics (C) instead of values per statistic, and a
        forgotten spatial axis.

    Introduced in notebook 08 (BN in convolutional networks).
    """
    n, c, h, w = (int(s) for s in shape)
    feedback = Feedback(f"Exercise: values per statistic for feature maps of shape {tuple(shape)}")
    right = n * h * w
    hint = ("BN for convolutions normalizes every position of a map the same way: each channel's mean and "
            "variance run over the batch and all positions, N·H·W values")
    count = _as_count(answer)
    if count is None:
        return feedback.fail(f"the answer should be a whole number, got {answer!r}", hint)
    if count == right:
        return feedback.ok(f"N·H·W = {n}·{h}·{w} = {right} values per channel, {c} channels, so {c} means and "
                           f"{c} variances (and {c} gammas and betas)")
    mistakes = [
        (n * c * h * w, ("that is every value of the batch: BN keeps one mean and variance per channel, not "
                         "one for the whole layer")),
        (n, "that is one statistic per position, over the batch only (axis=0, as for a dense layer)"),
        (h * w, ("that is one statistic per image and channel (instance normalization): BN also runs "
                 "over the batch")),
        (c * h * w, "that is one statistic per image over all channels and positions (layer normalization)"),
        (n * c, "that averages over the channels too, and misses the positions"),
        (c, "that is how many statistics there are (one per channel), not how many values each has"),
        (n * h, "a spatial axis is missing: every position counts, H·W of them per image"),
        (n * w, "a spatial axis is missing: every position counts, H·W of them per image"),
    ]
    for value, why in mistakes:
        if count == value:
            return feedback.fail(f"{count}: {why}", hint)
    return feedback.fail(f"{count} is not it: which axes does BatchNorm2d reduce over?", hint)


def _axis_tuple(axis, ndim=4):
    """``axis`` as a sorted tuple of non-negative ints, or a message why not."""
    values = axis if isinstance(axis, (tuple, list)) else (axis,)
    normalized = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return None, f"axis should be an int or a tuple of ints, got {axis!r}"
        if not -ndim <= value < ndim:
            return None, f"axis {value} does not exist on a 4-D tensor (axes 0 to 3, or −4 to −1)"
        normalized.append(int(value) % ndim)
    if len(set(normalized)) != len(normalized):
        return None, f"axis {axis!r} names the same axis twice"
    return tuple(sorted(normalized)), None


def check_channels_last_axis(axis):
    """Exercise (notebook 08): bnlab's ``axis`` for BN of channels-last maps (N, H, W, C), as Keras stores them.

    Parameters
    ----------
    axis : int or tuple of int
        The axes to reduce over, in bnlab's (NumPy's) sense; negative axes
        and any order are accepted.

    Returns
    -------
    Feedback
        Recognises the channels-first tuple (0, 2, 3) carried over, Keras'
        ``axis=-1`` (which names the axis kept, not the axes reduced over),
        per-position statistics (0), per-image statistics (1, 2) and (1, 2, 3),
        and everything at once.

    Introduced in notebook 08 (BN in convolutional networks).
    """
    feedback = Feedback("Exercise: the axes for channels-last feature maps (N, H, W, C)")
    hint = ("bnlab's axis names the axes reduced over (as in NumPy); on (N, H, W, C) the channels are the last "
            "axis, so reduce over the other three")
    normalized, problem = _axis_tuple(axis)
    if problem:
        return feedback.fail(problem, hint)
    if normalized == (0, 1, 2):
        return feedback.ok(f"axis={axis!r}: over N, H and W, one mean and variance per channel; the same "
                           "numbers as axis=(0, 2, 3) on the channels-first (N, C, H, W) maps")
    wrong = {
        (0, 2, 3): ("(0, 2, 3) is the channels-first answer: on (N, H, W, C) it reduces over W and C and keeps "
                    "one statistic per row H"),
        (3,): ("Keras writes axis=-1, but there axis names the axis that is kept (the features); bnlab's axis "
               "names the axes reduced over: on (N, H, W, C) this averages across the channels of each "
               "position"),
        (0,): "that averages over the batch only: one statistic per position and channel (N values each)",
        (1, 2): "that averages over the positions of each image and channel: instance normalization, no batch",
        (1, 2, 3): "that averages over each image: layer normalization",
        (0, 1, 2, 3): "that averages over everything: one mean for the whole tensor, not one per channel",
    }
    if normalized in wrong:
        return feedback.fail(f"axis={axis!r}: {wrong[normalized]}", hint)
    kept = [name for i, name in enumerate("NHWC") if i not in normalized]
    return feedback.fail(f"axis={axis!r} keeps the axes {', '.join(kept)}: BN keeps only the channels C", hint)
