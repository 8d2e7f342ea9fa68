"""Checkers of notebooks 01-03 (bnlab.checks.forward): right answers pass, each typical mistake gets its hint."""

from __future__ import annotations

import numpy as np
import pytest

import bnlab
from bnlab import checks


def _fails_with(feedback, *words):
    text = str(feedback)
    assert not feedback.passed, text
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    assert "Hint:" in text
    return text


def _raises(*_args):
    raise RuntimeError("boom")


# ---------------------------------------------------------------- 01: batch statistics

def test_batch_stats_right():
    feedback = checks.check_batch_stats(lambda z: (z.mean(axis=0), z.var(axis=0)))
    assert feedback.passed, str(feedback)
    assert checks.check_batch_stats(bnlab.batch_stats).passed


@pytest.mark.parametrize("fn, words", [
    (lambda z: (z.mean(axis=1), z.var(axis=1)), ["axis=1", "per sample"]),
    (lambda z: (z.mean(axis=0), z.var(axis=0, ddof=1)), ["ddof=1", "N - 1"]),
    (lambda z: (z.mean(axis=0), z.std(axis=0)), ["standard deviation"]),
    (lambda z: (z.mean(), z.var()), ["single number"]),
    (lambda z: (z.mean(axis=0), z.var(axis=1)), ["axis=1"]),
    (lambda z: z.mean(axis=0), ["two things"]),
    (lambda z: (z.mean(axis=0) + 1, z.var(axis=0)), ["mean differs"]),
])
def test_batch_stats_typical_mistakes(fn, words):
    _fails_with(checks.check_batch_stats(fn), *words)


def test_batch_stats_in_place_and_raising():
    def in_place(z):
        z -= z.mean(axis=0)
        return z.mean(axis=0), (z**2).mean(axis=0)

    _fails_with(checks.check_batch_stats(in_place), "in place")
    _fails_with(checks.check_batch_stats(_raises), "RuntimeError", "boom")
    _fails_with(checks.check_batch_stats("not a function"), "should be a function")


def test_stable_variance_right():
    def two_pass(z):
        d = z - z.mean(axis=0)
        return (d * d).mean(axis=0)

    def shifted(z):
        d = z - z[0]
        return (d**2).mean(axis=0) - d.mean(axis=0) ** 2

    for fn in (two_pass, shifted, lambda z: bnlab.batch_stats(z)[1]):
        assert checks.check_stable_variance(fn).passed, str(checks.check_stable_variance(fn))


def test_stable_variance_typical_mistakes():
    naive = checks.check_stable_variance(lambda z: (z**2).mean(axis=0) - z.mean(axis=0) ** 2)
    _fails_with(naive, "offset 10000", "E[z²] − E[z]²")
    assert "offset 0: relative error" in str(naive)  # near zero the naive formula is fine
    _fails_with(checks.check_stable_variance(lambda z: z.var(axis=0, ddof=1)), "ddof=1")
    _fails_with(checks.check_stable_variance(lambda z: z.var(axis=1)), "shape")
    _fails_with(checks.check_stable_variance(lambda z: z.std(axis=0)), "off by")
    _fails_with(checks.check_stable_variance(lambda z: None), "shape")
    _fails_with(checks.check_stable_variance(lambda z: "var"), "not numbers")
    _fails_with(checks.check_stable_variance(_raises), "RuntimeError")


def test_stable_variance_names_an_inaccurate_result():
    # float32 one-pass in a wider accumulator is still cancelled: wildly wrong, not negative
    def sloppy(z):
        return np.abs((z.astype(np.float32) ** 2).mean(axis=0) - z.mean(axis=0) ** 2)

    _fails_with(checks.check_stable_variance(sloppy), "offset 10000")


# ---------------------------------------------------------------- 02: normalization

def test_normalize_right():
    assert checks.check_normalize(lambda z, m, v, eps: (z - m) / np.sqrt(v + eps)).passed
    assert checks.check_normalize(lambda z, m, v, eps: bnlab.normalize(z, m, v, eps=eps)).passed


@pytest.mark.parametrize("fn, words", [
    (lambda z, m, v, eps: (z - m) / np.sqrt(v), ["NaN", "constant", "eps"]),
    (lambda z, m, v, eps: (z - m) / np.sqrt(np.where(v > 0, v, 1.0)), ["eps is missing"]),
    (lambda z, m, v, eps: (z - m) / (v + eps), ["variance", "standard deviation"]),
    (lambda z, m, v, eps: (z - m) / (np.sqrt(v) + eps), ["outside the square root"]),
    (lambda z, m, v, eps: z / np.sqrt(v + eps), ["mean is not subtracted"]),
    (lambda z, m, v, eps: (z - m) / np.sqrt(v + eps) * 2, ["z_hat differs"]),
    (lambda z, m, v, eps: ((z - m) / np.sqrt(v + eps))[:, 0], ["shape"]),
])
def test_normalize_typical_mistakes(fn, words):
    _fails_with(checks.check_normalize(fn), *words)


def test_normalize_raising():
    _fails_with(checks.check_normalize(_raises), "RuntimeError")
    _fails_with(checks.check_normalize(lambda z, m, v, eps: object()), "not numbers")


def test_normalized_variance_right():
    feedback = checks.check_normalized_variance(lambda var, eps: var / (var + eps))
    assert feedback.passed, str(feedback)
    assert "0.99998" in str(feedback)


@pytest.mark.parametrize("fn, words", [
    (lambda var, eps: 1.0, ["you said 1"]),
    (lambda var, eps: np.sqrt(var / (var + eps)), ["standard deviation"]),
    (lambda var, eps: eps / (var + eps), ["upside down"]),
    (lambda var, eps: var / (var + eps**2), ["expected"]),
    (lambda var, eps: [1, 2], ["not one number"]),
])
def test_normalized_variance_typical_mistakes(fn, words):
    _fails_with(checks.check_normalized_variance(fn), *words)


def test_normalized_variance_raising():
    # a learner's bug that raises in plain Python floats
    _fails_with(checks.check_normalized_variance(lambda var, eps: var / (var - var)), "ZeroDivisionError")
    _fails_with(checks.check_normalized_variance(_raises), "RuntimeError")


# ---------------------------------------------------------------- 03: scale and shift

SEED = bnlab.seed_batch()
Z_SHIFTED = 2.0 * SEED.z.astype(np.float64) + 10.0  # the seed's step 4
MEAN, VAR = bnlab.batch_stats(Z_SHIFTED)            # [12, 11, 17], [2, 5, 5]


def test_undo_bn_right():
    feedback = checks.check_undo_bn(np.sqrt(VAR + 1e-5), MEAN)
    assert feedback.passed, str(feedback)
    assert "it should be z'" in str(feedback)
    assert checks.check_undo_bn(list(np.sqrt(np.array([2.0, 5.0, 5.0]) + 1e-5)), [12, 11, 17]).passed
    # float32 arithmetic is accurate enough
    gamma32 = np.sqrt(VAR.astype(np.float32) + np.float32(1e-5))
    assert checks.check_undo_bn(gamma32, MEAN.astype(np.float32)).passed


@pytest.mark.parametrize("gamma, beta, words", [
    (np.sqrt(VAR), MEAN, ["forgets eps"]),
    (VAR + 1e-5, MEAN, ["square root"]),
    (VAR, MEAN, ["square root"]),
    (1 / np.sqrt(VAR + 1e-5), MEAN, ["divides again"]),
    (np.sqrt(VAR + 1e-5), -MEAN, ["wrong way"]),
    (MEAN, np.sqrt(VAR + 1e-5), ["swapped"]),
    (np.sqrt(np.array([0.5, 1.25, 1.25]) + 1e-5), np.array([1.0, 0.5, 3.5]), ["statistics of z"]),
    (np.sqrt(VAR + 1e-5), np.array([1.0, 0.5, 3.5]), ["statistics of z"]),
    (np.ones(3), np.zeros(3), ["gamma differs", "beta differs"]),
    (np.ones(2), MEAN, ["shape"]),
    ("a", MEAN, ["numbers"]),
])
def test_undo_bn_typical_mistakes(gamma, beta, words):
    _fails_with(checks.check_undo_bn(gamma, beta), *words)


def test_bias_absorbed_right():
    feedback = checks.check_bias_absorbed(SEED.beta)
    assert feedback.passed, str(feedback)
    assert "same as with it" in str(feedback)


@pytest.mark.parametrize("beta, words", [
    (SEED.beta + checks.BIAS_EXERCISE, ["beta + b"]),
    (SEED.beta - checks.BIAS_EXERCISE, ["beta - b"]),
    (np.zeros(3), ["beta differs"]),
    (np.zeros(4), ["shape"]),
    ("zero", ["numbers"]),
    (None, ["shape"]),
])
def test_bias_absorbed_typical_mistakes(beta, words):
    _fails_with(checks.check_bias_absorbed(beta), *words)


def test_feedback_renders_as_html():
    html = checks.check_undo_bn(np.sqrt(VAR), MEAN)._repr_html_()
    assert "not yet" in html and "Hint" in html


HUGE = 10**400  # a Python int too large for a float: NumPy raises OverflowError, not ValueError


@pytest.mark.parametrize("feedback", [
    lambda: checks.check_undo_bn(HUGE, HUGE),
    lambda: checks.check_bias_absorbed(HUGE),
    lambda: checks.check_normalize(lambda z, mean, var, eps: HUGE),
    lambda: checks.check_stable_variance(lambda z: [HUGE] * 3),
    lambda: checks.check_batch_stats(lambda z: (HUGE, HUGE)),
], ids=["undo_bn", "bias_absorbed", "normalize", "stable_variance", "batch_stats"])
def test_an_answer_too_large_for_a_float_is_feedback(feedback):
    _fails_with(feedback())
