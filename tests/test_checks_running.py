"""Checkers of notebook 05 (bnlab.checks.running): right answers pass, typical mistakes get their hints."""

from __future__ import annotations

import numpy as np
import pytest
from _support import assert_fails, learner_bug

import bnlab
from bnlab import checks


def _seed64():
    z, gamma, beta = (x.astype(np.float64) for x in bnlab.seed_batch())
    return z, gamma, beta


# ---------------------------------------------------------------- notebook 05

def _torch_style(rm, rv, batch, m):
    return (1 - m) * rm + m * batch.mean(axis=0), (1 - m) * rv + m * batch.var(axis=0, ddof=1)


def _torch_biased(rm, rv, batch, m):
    return (1 - m) * rm + m * batch.mean(axis=0), (1 - m) * rv + m * batch.var(axis=0)


def _keras_style(rm, rv, batch, m):
    return m * rm + (1 - m) * batch.mean(axis=0), m * rv + (1 - m) * batch.var(axis=0)


def _keras_unbiased(rm, rv, batch, m):
    return m * rm + (1 - m) * batch.mean(axis=0), m * rv + (1 - m) * batch.var(axis=0, ddof=1)


def _wrong_axis(rm, rv, batch, m):
    return m * rm.mean() + (1 - m) * batch.mean(axis=1), m * rv.mean() + (1 - m) * batch.var(axis=1)


def _with_bnlab(convention):
    def update(rm, rv, batch, m):
        mean, var = bnlab.batch_stats(batch)
        return bnlab.update_running_stats(rm, rv, mean, var, m, convention=convention, n=batch.shape[0])
    return update


@pytest.mark.parametrize("convention, right", [
    ("pytorch", _torch_style), ("pytorch", _with_bnlab("pytorch")),
    ("keras", _keras_style), ("keras", _with_bnlab("keras")),
])
def test_running_update_right(convention, right):
    feedback = checks.check_running_update(right, convention)
    assert feedback.passed, str(feedback)


@pytest.mark.parametrize("convention, wrong, words", [
    ("pytorch", _keras_unbiased, ["meaning is swapped", "weight 0.9", "weights the batch"]),
    ("pytorch", _keras_style, ["meaning is swapped"]),
    ("pytorch", _torch_biased, ["biased one (ddof=0)", "n / (n − 1)"]),
    ("keras", _torch_biased, ["meaning is swapped", "weights the running value"]),
    ("keras", _keras_unbiased, ["unbiased one (ddof=1)", "ddof=0"]),
    ("keras", _wrong_axis, ["per sample", "axis=0"]),
    ("pytorch", _wrong_axis, ["per sample"]),
    ("pytorch", lambda rm, rv, b, m: rm, ["two arrays"]),
    ("keras", lambda rm, rv, b, m: (rm, rv), ["running mean", "differs"]),
    ("keras", lambda rm, rv, b, m: (_keras_style(rm, rv, b, m)[0], rv), ["mean is right", "variance"]),
    ("pytorch", learner_bug, ["ZeroDivisionError", "learner bug"]),
])
def test_running_update_wrong(convention, wrong, words):
    assert_fails(checks.check_running_update(wrong, convention), *words)


def test_running_update_unknown_convention_is_an_error_for_the_author():
    with pytest.raises(ValueError, match="convention"):
        checks.check_running_update(_keras_style, "tensorflow")


def test_keras_to_pytorch():
    assert checks.check_keras_to_pytorch(lambda m: 1 - m).passed
    assert checks.check_keras_to_pytorch(
        lambda m: bnlab.running.convert_momentum(m, "keras", "pytorch")).passed
    assert_fails(checks.check_keras_to_pytorch(lambda m: m), "d2l", "unchanged", "0.1")
    assert_fails(checks.check_keras_to_pytorch(lambda m: 1 / m if m else 1.0), "expected 0.1")
    assert_fails(checks.check_keras_to_pytorch(lambda m: "0.1"), "expected")  # "0.1" -> 0.1, then 0.99 fails
    assert_fails(checks.check_keras_to_pytorch(lambda m: None), "number")
    assert_fails(checks.check_keras_to_pytorch(learner_bug), "ZeroDivisionError")


def _eval_right(z, rm, rv, gamma, beta, eps):
    return gamma * (z - rm) / np.sqrt(rv + eps) + beta


def test_eval_forward_right():
    assert checks.check_eval_forward(_eval_right).passed

    def with_layer(z, rm, rv, gamma, beta, eps):
        bn = bnlab.BatchNorm(z.shape[1], eps=eps)
        bn.running_mean, bn.running_var, bn.gamma, bn.beta = rm, rv, gamma, beta
        return bn.forward(z, training=False)

    assert checks.check_eval_forward(with_layer).passed


@pytest.mark.parametrize("wrong, words", [
    (lambda z, rm, rv, g, b, eps: bnlab.batchnorm_forward(z, g, b, eps=eps)[0],
     ["batch's own mean", "forgot eval mode"]),
    (lambda z, rm, rv, g, b, eps: g * (z - z.mean(0)) / np.sqrt(z.var(0) + eps) + b, ["training mode"]),
    (lambda z, rm, rv, g, b, eps: g * (z - rm) / np.sqrt(rv) + b, ["eps is missing"]),
    (lambda z, rm, rv, g, b, eps: g * (z - rm) / (rv + eps) + b, ["divides by the variance"]),
    (lambda z, rm, rv, g, b, eps: (z - rm) / np.sqrt(rv + eps), ["differs"]),
    (learner_bug, ["ZeroDivisionError"]),
])
def test_eval_forward_wrong(wrong, words):
    assert_fails(checks.check_eval_forward(wrong), *words)


def test_eval_forward_that_fails_on_a_batch_of_one():
    def needs_two(z, rm, rv, gamma, beta, eps):
        if z.shape[0] < 2:
            raise ValueError("need two samples")
        return _eval_right(z, rm, rv, gamma, beta, eps)

    feedback = checks.check_eval_forward(needs_two)
    assert_fails(feedback, "a batch of one must work", "need two samples")
    assert "right for a batch of 5" in str(feedback)


def test_feedback_renders_html_for_every_checker():
    for feedback in (checks.check_effective_eps(learner_bug), checks.check_keras_to_pytorch(lambda m: 1 - m)):
        html = feedback._repr_html_()
        assert html.startswith("<div") and feedback.title.split(":")[0] in html
