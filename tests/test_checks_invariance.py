"""Checkers of notebook 04 (bnlab.checks.invariance): right answers pass, typical mistakes get their hints."""

from __future__ import annotations

import numpy as np
import pytest
from _support import assert_fails, learner_bug

import bnlab
from bnlab import checks


def _seed64():
    z, gamma, beta = (x.astype(np.float64) for x in bnlab.seed_batch())
    return z, gamma, beta


# ---------------------------------------------------------------- notebook 04

def test_negative_scale_right_answers():
    z, gamma, beta = _seed64()
    y, cache = bnlab.batchnorm_forward(z, gamma, beta, eps=1e-5)
    assert checks.check_negative_scale_output(-gamma * cache["z_hat"] + beta).passed
    assert checks.check_negative_scale_output(2 * beta - y).passed
    # the seed's float32 numbers work too
    zf, gf, bf = bnlab.seed_batch()
    yf, _ = bnlab.batchnorm_forward(-3 * zf + 5, gf, bf, eps=1e-5)
    assert checks.check_negative_scale_output(yf).passed


@pytest.mark.parametrize("wrong, words", [
    (lambda y, beta: y, ["sign of a was lost", "hint"]),
    (lambda y, beta: -y, ["beta was flipped"]),
    (lambda y, beta: -3 * y + 5, ["a·y + b"]),
    (lambda y, beta: np.zeros((4, 3)), ["differs"]),
    (lambda y, beta: (2 * beta - y)[:, :2], ["shape"]),
    (lambda y, beta: "forty-two", ["numbers"]),
])
def test_negative_scale_wrong_answers(wrong, words):
    z, gamma, beta = _seed64()
    y, _ = bnlab.batchnorm_forward(z, gamma, beta, eps=1e-5)
    assert_fails(checks.check_negative_scale_output(wrong(y, beta)), *words)


def test_gradient_scaling():
    assert checks.check_gradient_scaling(lambda dW, a: dW / a).passed
    assert_fails(checks.check_gradient_scaling(lambda dW, a: dW * a), "dW * a")
    assert_fails(checks.check_gradient_scaling(lambda dW, a: dW), "returned dW:")
    assert_fails(checks.check_gradient_scaling(lambda dW, a: dW / a**2), "dW / a**2")
    assert_fails(checks.check_gradient_scaling(lambda dW, a: dW.T / a), "shape")
    assert_fails(checks.check_gradient_scaling(lambda dW, a: dW - a), "differs")
    assert_fails(checks.check_gradient_scaling(learner_bug), "ZeroDivisionError", "learner bug")
    assert_fails(checks.check_gradient_scaling(42), "should be a function")


def test_gradient_scaling_matches_bnlab_numerically():
    """The checker's claim (dL/d(aW) = dL/dW / a) holds for BN after a dense layer."""
    rng = np.random.default_rng(1)
    x, W, dy = rng.standard_normal((6, 4)), rng.standard_normal((4, 3)), rng.standard_normal((6, 3))
    gamma, beta = np.ones(3), np.zeros(3)

    def grad(weights):
        _, cache = bnlab.batchnorm_forward(x @ weights, gamma, beta, eps=1e-12)
        return x.T @ bnlab.batchnorm_backward(dy, cache)[0]

    np.testing.assert_allclose(grad(3.0 * W), grad(W) / 3.0, rtol=1e-6)


def test_effective_eps():
    assert checks.check_effective_eps(lambda eps, a: eps / a**2).passed
    assert_fails(checks.check_effective_eps(lambda eps, a: eps), "returned eps:")
    assert_fails(checks.check_effective_eps(lambda eps, a: eps * a**2), "upside down")
    assert_fails(checks.check_effective_eps(lambda eps, a: eps / a), "not a")
    assert_fails(checks.check_effective_eps(lambda eps, a: eps / abs(a) ** 3), "expected")
    assert_fails(checks.check_effective_eps(lambda eps, a: "small"), "number")
    assert_fails(checks.check_effective_eps(learner_bug), "ZeroDivisionError")


def test_effective_eps_claim_holds():
    z, _, _ = _seed64()
    mean, var = bnlab.batch_stats(z)
    for a in (2.0, 0.1, -4.0):
        zs = a * z + 3.0
        got = bnlab.normalize(zs, *bnlab.batch_stats(zs), eps=1e-3)
        np.testing.assert_allclose(got, np.sign(a) * bnlab.normalize(z, mean, var, eps=1e-3 / a**2))


def test_an_answer_too_large_for_a_float_is_feedback():
    huge = 10**400  # NumPy raises OverflowError, not ValueError, for it
    assert_fails(checks.check_negative_scale_output(huge))
    assert_fails(checks.check_gradient_scaling(lambda dW, a: huge))
    assert_fails(checks.check_effective_eps(lambda eps, a: huge), "number")
