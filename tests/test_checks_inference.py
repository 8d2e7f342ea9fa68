"""Checkers of notebook 10 (bnlab.checks.inference): right answers pass, typical mistakes get their hints."""

from __future__ import annotations

import numpy as np
import pytest
from _support import assert_fails, assert_passes, learner_bug

import bnlab
from bnlab import checks

# ---------------------------------------------------------------- folding


def _right(W, b, mean, var, gamma, beta, eps):
    s = gamma / np.sqrt(var + eps)
    return W * s, (b - mean) * s + beta


def _with_bnlab(W, b, mean, var, gamma, beta, eps):
    return bnlab.fold_batchnorm(W, b, mean, var, gamma, beta, eps)


def _unscaled_bias(W, b, mean, var, gamma, beta, eps):  # ultralytics/yolov3#807
    s = gamma / np.sqrt(var + eps)
    return W * s, b + beta - mean * s


def _bias_dropped(W, b, mean, var, gamma, beta, eps):
    s = gamma / np.sqrt(var + eps)
    return W * s, beta - mean * s


def _beta_dropped(W, b, mean, var, gamma, beta, eps):
    s = gamma / np.sqrt(var + eps)
    return W * s, (b - mean) * s


def _no_eps(W, b, mean, var, gamma, beta, eps):
    s = gamma / np.sqrt(var)
    return W * s, (b - mean) * s + beta


def _eps_outside(W, b, mean, var, gamma, beta, eps):
    s = gamma / (np.sqrt(var) + eps)
    return W * s, (b - mean) * s + beta


def _no_sqrt(W, b, mean, var, gamma, beta, eps):
    s = gamma / (var + eps)
    return W * s, (b - mean) * s + beta


def _no_gamma(W, b, mean, var, gamma, beta, eps):
    s = 1 / np.sqrt(var + eps)
    return W * s, (b - mean) * s + beta


def _rows(W, b, mean, var, gamma, beta, eps):
    s = gamma / np.sqrt(var + eps)
    return W * s[:, None], (b - mean) * s + beta


def _unchanged_weights(W, b, mean, var, gamma, beta, eps):
    s = gamma / np.sqrt(var + eps)
    return W, (b - mean) * s + beta


def _in_place(W, b, mean, var, gamma, beta, eps):
    s = gamma / np.sqrt(var + eps)
    W *= s
    b -= mean
    b *= s
    b += beta
    return W, b


def _bias_only_eps_missing(W, b, mean, var, gamma, beta, eps):
    return W * gamma / np.sqrt(var + eps), (b - mean) * gamma / np.sqrt(var) + beta


@pytest.mark.parametrize("fold", [_right, _with_bnlab])
def test_fold_right_answers_pass(fold):
    feedback = checks.check_fold(fold)
    assert_passes(feedback)
    assert "yolov3#807" in str(feedback)


@pytest.mark.parametrize("fold, words", [
    (_unscaled_bias, ("unscaled", "yolov3#807", "(b − mean) · s + beta")),
    (_bias_dropped, ("ignores the old bias",)),
    (_beta_dropped, ("missing beta",)),
    (_no_eps, ("eps is missing",)),
    (_eps_outside, ("outside the square root",)),
    (_no_sqrt, ("divides by the variance",)),
    (_no_gamma, ("gamma is missing",)),
    (_rows, ("rows", "columns", "W * s[:, None]")),
    (_unchanged_weights, ("W2 is W unchanged",)),
    (_in_place, ("in place", "W", "b")),
    (_bias_only_eps_missing, ("b2 uses another scale", "eps is missing")),
])
def test_fold_mistakes_get_their_hints(fold, words):
    assert_fails(checks.check_fold(fold), *words)


def test_fold_the_unscaled_bias_bug_is_not_hidden_by_a_zero_bias():
    """The exercise's biases are far from 0: the bug that hides in practice shows here."""
    for W, b, *_ in checks.inference._fold_cases():
        assert np.all(np.abs(b) > 0.1) or np.abs(b).max() > 1


def test_fold_crash_none_and_shapes_are_feedback():
    assert_fails(checks.check_fold(learner_bug), "raised ZeroDivisionError")
    assert_fails(checks.check_fold(lambda *a: None), "returned None")
    assert_fails(checks.check_fold(lambda W, *a: W), "two arrays")
    assert_fails(checks.check_fold(lambda W, b, *a: (W[:, :1], b)), "shape")
    assert_fails(checks.check_fold("fold"), "should be a function")
    assert_fails(checks.check_fold(lambda W, b, *a: (W * 2.0, b)), "W2 differs")

    def bias_off(W, b, mean, var, gamma, beta, eps):
        W2, b2 = _right(W, b, mean, var, gamma, beta, eps)
        return W2, b2 + 0.01

    assert_fails(checks.check_fold(bias_off), "b2 differs")


# ---------------------------------------------------------------- precise BN statistics


def _precise(batches):
    return batches.mean(axis=1).mean(axis=0), batches.var(axis=1).mean(axis=0)


def _precise_loop(batches):
    means = [batch.mean(axis=0) for batch in batches]
    variances = [batch.var(axis=0) for batch in batches]
    return np.mean(means, axis=0), np.mean(variances, axis=0)


def _ema(momentum):
    def stats(batches):
        mean, var = np.zeros(batches.shape[2]), np.ones(batches.shape[2])
        for batch in batches:
            mean = momentum * mean + (1 - momentum) * batch.mean(axis=0)
            var = momentum * var + (1 - momentum) * batch.var(axis=0)
        return mean, var
    return stats


@pytest.mark.parametrize("precise_stats", [_precise, _precise_loop])
def test_precise_stats_right_answers_pass(precise_stats):
    assert_passes(checks.check_precise_stats(precise_stats))


def test_precise_stats_agree_with_recalibrate_batchnorm():
    """What the checker expects is what bnlab.recalibrate_batchnorm stores."""
    batches = checks.inference._stats_batches()
    model = bnlab.layers.Sequential([bnlab.BatchNorm(3, convention="keras", momentum=0.9)])
    bnlab.recalibrate_batchnorm(model, batches)
    mean, var = _precise(batches)
    np.testing.assert_allclose(model[0].running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(model[0].running_var, var, rtol=1e-12)


@pytest.mark.parametrize("precise_stats, words", [
    (_ema(0.9), ("exponential running average", "0.9")),
    (_ema(0.99), ("exponential running average", "0.99")),
    (lambda batches: (batches[-1].mean(axis=0), batches[-1].var(axis=0)), ("last batch",)),
    (lambda batches: (batches.mean(axis=(0, 1)), batches.reshape(-1, 3).var(axis=0)), ("pooled",)),
    (lambda batches: (batches.mean(axis=1).mean(axis=0), batches.var(axis=1, ddof=1).mean(axis=0)),
     ("unbiased", "ddof=1")),
    (lambda batches: (batches.mean(axis=2), batches.var(axis=2)), ("shape", "one value per feature")),
    (lambda batches: (batches.mean(axis=1).mean(axis=0) + 0.1, batches.var(axis=1).mean(axis=0)),
     ("mean differs",)),
    (lambda batches: (batches.mean(axis=1).mean(axis=0), batches.var(axis=1).mean(axis=0) * 1.1),
     ("var differs",)),
])
def test_precise_stats_mistakes_get_their_hints(precise_stats, words):
    assert_fails(checks.check_precise_stats(precise_stats), *words)


def test_precise_stats_crash_and_none_are_feedback():
    assert_fails(checks.check_precise_stats(learner_bug), "raised ZeroDivisionError")
    assert_fails(checks.check_precise_stats(lambda batches: None), "returned None")
    assert_fails(checks.check_precise_stats(lambda batches: batches), "two arrays")


# ---------------------------------------------------------------- what AdaBN repairs


@pytest.mark.parametrize("answer", ["ab", "a, b", "(a) and (b)", "B A", {"a", "b"}, ["a", "b"], ("b", "a")])
def test_adabn_shifts_right_answers_pass(answer):
    feedback = checks.check_adabn_shifts(answer)
    assert_passes(feedback)
    assert "left out rightly" in str(feedback)


@pytest.mark.parametrize("answer, words", [
    ("a", ("(b) is missing",)),
    ("abd", ("(d) is not repaired", "opposite sign")),
    ("abc", ("(c) is not repaired", "noise")),
    ("abe", ("(e) is not repaired", "structure")),
    ("cde", ("(a) is missing", "(c) is not repaired")),
    ("z", ("not one of the choices",)),
    ("", ("no letter",)),
    (5, ("answer with letters",)),
])
def test_adabn_shifts_wrong_answers_get_their_reasons(answer, words):
    assert_fails(checks.check_adabn_shifts(answer), *words)


def test_adabn_shift_choices_are_listed():
    assert list(checks.ADABN_SHIFT_CHOICES) == ["a", "b", "c", "d", "e"]
    assert all(isinstance(text, str) and text for text in checks.ADABN_SHIFT_CHOICES.values())
