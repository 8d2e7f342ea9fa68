"""Exercise checkers of notebook 04: shift/scale invariance, scaled weights, the effective eps."""

from __future__ import annotations

import numpy as np

from ..core import batchnorm_forward
from ..data import seed_batch
from .feedback import NOT_NUMBERS, Feedback, call_safely, close, compare_arrays

__all__ = ["check_negative_scale_output", "check_gradient_scaling", "check_effective_eps"]


#: The scale and shift of notebook 04's exercise 1: z' = -3 z + 5 on the seed batch.
NEGATIVE_SCALE_EXERCISE = (-3.0, 5.0)


def check_negative_scale_output(y_shifted):
    """Exercise (notebook 04): BN's output ``y'`` for ``z' = -3 z + 5`` on the seed batch.

    Parameters
    ----------
    y_shifted : array-like, shape (4, 3)
        The learner's ``y'`` (same ``gamma``, ``beta`` and eps 1e-5 as the seed).

    Returns
    -------
    Feedback
        Recognises the typical wrong answers: ``y`` itself (the sign of ``a``
        ignored), ``-y`` (beta flipped too), ``a * y + b`` (the scale and
        shift passed through BN).

    Introduced in ``notebooks/04_shift_scale_invariance.ipynb``.
    """

    feedback = Feedback("Exercise: y' for z' = -3·z + 5")
    seed = seed_batch()
    z, gamma, beta = (x.astype(np.float64) for x in seed)
    a, b = NEGATIVE_SCALE_EXERCISE
    y, _ = batchnorm_forward(z, gamma, beta, eps=seed.eps)
    expected, _ = batchnorm_forward(a * z + b, gamma, beta, eps=seed.eps)
    hint_flip = ("a negative a flips z_hat: (a·z + b − mean') / std' = sign(a)·z_hat, "
                 "so y' = −gamma·z_hat + beta")
    if close(y_shifted, y, rtol=0, atol=1e-4):
        return feedback.fail("this is y, the output for z itself: the sign of a was lost", hint_flip)
    if close(y_shifted, -y, rtol=0, atol=1e-4):
        return feedback.fail("this is −y: beta was flipped too, but only gamma·z_hat changes sign",
                             hint_flip)
    if close(y_shifted, a * y + b, rtol=0, atol=1e-4):
        return feedback.fail("this is a·y + b: BN removes a and b, they do not reach the output",
                             "normalization subtracts the new mean (which absorbs b) and divides by "
                             "the new std (which absorbs |a|)")
    compare_arrays(feedback, "y'", y_shifted, expected, rtol=0, atol=1e-4, hint=hint_flip)
    return feedback


def check_gradient_scaling(gradient_for_scaled_weights):
    """Exercise (notebook 04): the gradient for ``a * W`` from the gradient for ``W``.

    Parameters
    ----------
    gradient_for_scaled_weights : callable
        ``gradient_for_scaled_weights(dW, a) -> ndarray`` of ``dW``'s shape:
        dL/dW evaluated at ``a * W`` (``a > 0``), when ``z = x @ W`` feeds BN.

    Returns
    -------
    Feedback
        Recognises ``dW * a``, ``dW`` (unchanged) and ``dW / a**2``.

    Introduced in ``notebooks/04_shift_scale_invariance.ipynb``.
    """
    feedback = Feedback("Exercise: the gradient for scaled weights")
    rng = np.random.default_rng(4)
    dW = rng.standard_normal((4, 3))
    wrong = {
        "dW * a": (lambda g, a: g * a, "the gradient grows with the weights here, but it shrinks"),
        "dW": (lambda g, a: g, "the output does not change with a, but the gradient does"),
        "dW / a**2": (lambda g, a: g / a**2, ("1/a² is how the relative step (dW/W) shrinks; the "
                                             "gradient itself shrinks by 1/a")),
    }
    hint = ("BN(x·(aW)) = BN(x·W): the loss as a function of V = aW is L(V/a), "
            "so dL/dV = (1/a)·dL/dW (chain rule)")
    for a in (2.0, 0.5, 10.0):
        ok, got = call_safely(feedback, gradient_for_scaled_weights, dW.copy(), a,
                              what="gradient_for_scaled_weights")
        if not ok:
            return feedback
        if close(got, dW / a, atol=1e-9, rtol=0):
            continue
        for name, (formula, why) in wrong.items():
            if close(got, formula(dW, a), atol=1e-9, rtol=0):
                return feedback.fail(f"for a = {a:g} you returned {name}: {why}", hint)
        compare_arrays(feedback, f"the gradient for a = {a:g}", got, dW / a, hint=hint)
        return feedback
    return feedback.ok("dL/d(aW) = dL/dW / a for a = 2, 0.5 and 10: larger weights, smaller gradients")


def check_effective_eps(effective_eps):
    """Exercise (notebook 04): the eps with which ``z`` behaves like ``z' = a z + b`` with ``eps``.

    Parameters
    ----------
    effective_eps : callable
        ``effective_eps(eps, a) -> float``: normalizing ``a z + b`` with
        ``eps`` equals ``sign(a)`` times normalizing ``z`` with this value.

    Returns
    -------
    Feedback
        Recognises ``eps``, ``eps * a**2``, ``eps / a`` and ``eps / |a|``.

    Introduced in ``notebooks/04_shift_scale_invariance.ipynb``.
    """
    feedback = Feedback("Exercise: the effective eps")
    hint = ("(a·z + b − (a·mean + b)) / sqrt(a²·var + eps) = a·(z − mean) / (|a|·sqrt(var + eps/a²))")
    wrong = {
        "eps": (lambda eps, a: eps, "eps does not stay the same: relative to the variance it changes"),
        "eps·a²": (lambda eps, a: eps * a**2, "upside down: a large a makes eps relatively smaller"),
        "eps/a": (lambda eps, a: eps / a, "variances scale with a², not a"),
        "eps/|a|": (lambda eps, a: eps / abs(a), "variances scale with a², not |a|"),
    }
    for eps, a in ((1e-5, 2.0), (1e-3, 0.1), (1e-5, -4.0)):
        ok, got = call_safely(feedback, effective_eps, eps, a, what="effective_eps")
        if not ok:
            return feedback
        expected = eps / a**2
        try:
            value = float(got)
        except NOT_NUMBERS:
            return feedback.fail(f"effective_eps should return a number, got {type(got).__name__}", hint)
        if np.isclose(value, expected, rtol=1e-9, atol=0):
            continue
        for name, (formula, why) in wrong.items():
            if np.isclose(value, formula(eps, a), rtol=1e-9, atol=0):
                return feedback.fail(f"for eps = {eps:g}, a = {a:g} you returned {name}: {why}", hint)
        return feedback.fail(f"for eps = {eps:g}, a = {a:g}: got {value:.6g}, expected {expected:.6g}", hint)
    return feedback.ok("eps / a² for (eps, a) = (1e-5, 2), (1e-3, 0.1), (1e-5, −4)")
