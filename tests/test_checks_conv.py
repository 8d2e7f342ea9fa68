"""Checkers of notebook 08 (bnlab.checks.conv): right answers pass, typical mistakes get their hints."""

from __future__ import annotations

import numpy as np
import pytest
from _support import assert_fails, assert_passes, learner_bug

import bnlab
from bnlab import checks

# ---------------------------------------------------------------- per-channel statistics

RIGHT_CHANNEL_STATS = {
    "numpy": lambda z: (z.mean(axis=(0, 2, 3)), z.var(axis=(0, 2, 3))),
    "bnlab": lambda z: bnlab.batch_stats(z, axis=(0, 2, 3)),
    "moveaxis": lambda z: (np.moveaxis(z, 1, 0).reshape(z.shape[1], -1).mean(axis=1),
                           np.moveaxis(z, 1, 0).reshape(z.shape[1], -1).var(axis=1)),
    "lists": lambda z: (list(z.mean(axis=(0, 2, 3))), list(z.var(axis=(0, 2, 3)))),
}


@pytest.mark.parametrize("name", RIGHT_CHANNEL_STATS)
def test_channel_stats_right(name):
    assert_passes(checks.check_channel_stats(RIGHT_CHANNEL_STATS[name]))


def _over(axis):
    return lambda z: (z.mean(axis=axis), z.var(axis=axis))


@pytest.mark.parametrize("wrong, words", [
    (_over(0), ["axis=0", "batch only", "axis=(0, 2, 3)"]),
    (_over((0, 1)), ["mix the channels", "axis=(0, 1)"]),
    (_over((2, 3)), ["instance normalization", "axis=(2, 3)"]),
    (_over((1, 2, 3)), ["layer normalization"]),
    (_over((0, 2)), ["width axis 3 is missing"]),
    (_over(None), ["whole tensor"]),
    (_over(1), ["shape (5, 4, 6)", "one value per channel"]),
    (lambda z: (z.reshape(z.shape[1], -1).mean(axis=1), z.reshape(z.shape[1], -1).var(axis=1)),
     ["mixes channels", "reshape(C, -1)", "moveaxis"]),
    (lambda z: (z.mean(axis=(0, 2, 3)), z.var(axis=(0, 2, 3), ddof=1)), ["sample variance (ddof=1)"]),
    (lambda z: (z.mean(axis=(0, 2, 3)), z.std(axis=(0, 2, 3))), ["standard deviation"]),
    (lambda z: (z.mean(axis=(0, 2, 3)), z.var(axis=(0, 2, 3)) + 1), ["the mean is right", "variance"]),
    (lambda z: (z.mean(axis=(0, 2, 3)) + 0.5, z.var(axis=(0, 2, 3))), ["the mean for z", "differs"]),
    (lambda z: z.mean(axis=(0, 2, 3)), ["two arrays"]),
    (lambda z: None, ["returned None"]),
    (lambda z: ("a", "b"), ["should be numbers"]),
    (learner_bug, ["raised ZeroDivisionError", "learner bug"]),
    (42, ["should be a function"]),
])
def test_channel_stats_mistakes(wrong, words):
    assert_fails(checks.check_channel_stats(wrong), *words)


def test_channel_stats_sees_a_hard_coded_shape():
    """Right on the first batch only (a function written for C = 3): the second batch catches it."""
    def three_channels(z):
        return z[:, :3].mean(axis=(0, 2, 3)), z[:, :3].var(axis=(0, 2, 3))
    assert_fails(checks.check_channel_stats(three_channels), "(2, 4, 3, 3)", "(3,)")


def test_channel_stats_gives_the_learner_a_copy():
    seen = []

    def mutating(z):
        seen.append(z)
        z -= z.mean(axis=(0, 2, 3), keepdims=True)  # in place: must not change what the checker compares with
        return z.mean(axis=(0, 2, 3)), z.var(axis=(0, 2, 3))

    assert_fails(checks.check_channel_stats(mutating), "the mean for z")
    assert seen


# ---------------------------------------------------------------- values per statistic

def test_values_per_statistic_right():
    n, _, h, w = checks.VALUES_PER_STATISTIC_SHAPE
    for answer in (n * h * w, float(n * h * w), np.int64(n * h * w)):
        assert_passes(checks.check_values_per_statistic(answer))
    assert_passes(checks.check_values_per_statistic(2 * 8 * 8, shape=(2, 3, 8, 8)))


@pytest.mark.parametrize("answer, words", [
    (16 * 32 * 14 * 14, ["every value of the batch"]),
    (16, ["one statistic per position", "axis=0"]),
    (14 * 14, ["instance normalization"]),
    (32 * 14 * 14, ["layer normalization"]),
    (16 * 32, ["averages over the channels"]),
    (32, ["how many statistics there are"]),
    (16 * 14, ["spatial axis is missing"]),
    (1000, ["1000 is not it", "N·H·W"]),
    ("3136", ["whole number"]),
    (3136.5, ["whole number"]),
    (True, ["whole number"]),
    (float("nan"), ["whole number"]),
])
def test_values_per_statistic_mistakes(answer, words):
    assert_fails(checks.check_values_per_statistic(answer), *words)


# ---------------------------------------------------------------- channels last

@pytest.mark.parametrize("axis", [(0, 1, 2), (-4, -3, -2), [2, 1, 0], (0, -3, 2), (np.int64(0), 1, 2)])
def test_channels_last_right(axis):
    assert_passes(checks.check_channels_last_axis(axis))


def test_channels_last_right_answer_gives_the_channels_first_numbers():
    z = np.random.default_rng(0).normal(size=(4, 3, 5, 5))
    first = bnlab.batch_stats(z, axis=(0, 2, 3))
    last = bnlab.batch_stats(np.moveaxis(z, 1, -1), axis=(0, 1, 2))
    np.testing.assert_allclose(first, last)


@pytest.mark.parametrize("axis, words", [
    ((0, 2, 3), ["channels-first answer", "keeps one statistic per row"]),
    (-1, ["Keras writes axis=-1", "kept"]),
    (3, ["Keras writes axis=-1"]),
    (0, ["batch only"]),
    ((1, 2), ["instance normalization"]),
    ((1, 2, 3), ["layer normalization"]),
    ((0, 1, 2, 3), ["everything"]),
    ((0, 1), ["keeps the axes W, C"]),
    ((0, 0, 1), ["same axis twice"]),
    (4, ["does not exist"]),
    ("(0, 1, 2)", ["an int or a tuple of ints"]),
    ((0.0, 1, 2), ["an int or a tuple of ints"]),
    ((True, 1, 2), ["an int or a tuple of ints"]),
])
def test_channels_last_mistakes(axis, words):
    assert_fails(checks.check_channels_last_axis(axis), *words)
