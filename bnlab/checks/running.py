"""Exercise checkers of notebook 05: the running update, converting momentum, the eval forward pass."""

from __future__ import annotations

import numpy as np

from ..conventions import CONVENTIONS, get_convention
from ..core import affine, batch_stats, normalize, update_running_stats
from ..running import convert_momentum
from .feedback import NOT_NUMBERS, Feedback, call_safely, close, compare_arrays

__all__ = ["check_running_update", "check_keras_to_pytorch", "check_eval_forward"]


def _exercise_batch():
    """A small batch whose statistics differ clearly from the running ones (N = 5, D = 3)."""
    rng = np.random.default_rng(5)
    batch = rng.normal(loc=[2.0, -1.0, 0.5], scale=[1.5, 0.5, 2.0], size=(5, 3))
    running_mean = np.array([0.2, -0.1, 0.4])
    running_var = np.array([1.5, 0.8, 1.2])
    return batch, running_mean, running_var


def _pair(feedback, got, what):
    try:
        new_mean, new_var = got
    except (TypeError, ValueError):
        feedback.fail(f"{what} should return two arrays (new_mean, new_var), got {type(got).__name__}",
                      "end your function with: return new_mean, new_var")
        return None
    return new_mean, new_var


def check_running_update(update, convention="pytorch"):
    """Exercise (notebook 05): a learner's running-statistics update in one convention.

    Parameters
    ----------
    update : callable
        ``update(running_mean, running_var, batch, momentum) -> (new_mean, new_var)``
        with ``batch`` of shape (N, D) and the statistics of shape (D,).
    convention : {"keras", "pytorch"}

    Returns
    -------
    Feedback
        Recognises the momentum meaning swapped (the other framework's
        formula), the biased variance where the unbiased one is stored (and
        the reverse), statistics over the wrong axis.

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """

    conv = get_convention(convention)
    other = next(c for c in CONVENTIONS.values() if c.name != conv.name)
    feedback = Feedback(f"Exercise: the {conv.name} running-statistics update")
    batch, running_mean, running_var = _exercise_batch()
    n = batch.shape[0]
    batch_mean, batch_var = batch_stats(batch)
    for momentum in (conv.momentum, 0.3):
        ok, got = call_safely(feedback, update, running_mean.copy(), running_var.copy(), batch.copy(),
                              momentum, what="update")
        if not ok:
            return feedback
        pair = _pair(feedback, got, "update")
        if pair is None:
            return feedback
        new_mean, new_var = pair

        def variant(weight, unbiased):
            """The exponential average with this batch weight and variance estimator (typical answers)."""
            stored = batch_var * (n / (n - 1)) if unbiased else batch_var
            return (running_mean + weight * (batch_mean - running_mean),
                    running_var + weight * (stored - running_var))

        def matches(got, expected):
            return close(got, expected, atol=1e-8, rtol=0)

        expected = update_running_stats(running_mean, running_var, batch_mean, batch_var, momentum,
                                        convention=conv, n=n)
        if np.shape(new_mean) == (n,) or np.shape(new_var) == (n,):
            return feedback.fail(
                f"new_mean/new_var have shape ({n},): one value per sample, not per feature",
                "the statistics of a batch are per feature: mean and variance over axis=0")
        if matches(new_mean, expected[0]) and matches(new_var, expected[1]):
            continue
        swapped = variant(other.batch_weight(momentum), conv.unbiased_running_var)  # other meaning
        meaning = ("in keras momentum weights the running value: momentum·running + (1 − momentum)·batch"
                   if conv.momentum_weights_running else
                   "in pytorch momentum weights the batch: (1 − momentum)·running + momentum·batch")
        if matches(new_mean, swapped[0]):
            return feedback.fail(f"momentum's meaning is swapped (momentum = {momentum:g}): your update "
                                 f"gives the new batch the weight {other.batch_weight(momentum):g}, "
                                 f"{conv.name} gives it {conv.batch_weight(momentum):g}", meaning)
        other_var = variant(conv.batch_weight(momentum), not conv.unbiased_running_var)[1]
        if matches(new_mean, expected[0]) and matches(new_var, other_var):
            if conv.unbiased_running_var:
                return feedback.fail(
                    "the running mean is right, but the variance stored is the biased one (ddof=0)",
                    f"pytorch stores the unbiased batch variance: var · n / (n − 1) (here n = {n}), "
                    "i.e. np.var(batch, axis=0, ddof=1)")
            return feedback.fail(
                "the running mean is right, but the variance stored is the unbiased one (ddof=1)",
                "keras stores the biased batch variance: np.var(batch, axis=0) (ddof=0)")
        if matches(new_mean, expected[0]):
            feedback.ok("the running mean is right")
            compare_arrays(feedback, "the running variance", new_var, expected[1], rtol=1e-7, atol=1e-8,
                           hint=meaning)
            return feedback
        compare_arrays(feedback, "the running mean", new_mean, expected[0], rtol=1e-7, atol=1e-8,
                       hint=meaning)
        return feedback
    feedback.ok(f"running mean and variance match bnlab.update_running_stats(..., convention="
                f"{conv.name!r}) for momentum {conv.momentum:g} and 0.3")
    if conv.unbiased_running_var:
        feedback.ok("the unbiased variance (n / (n − 1)) is stored")
    else:
        feedback.ok("the biased variance (ddof=0) is stored")
    return feedback


def check_keras_to_pytorch(keras_to_pytorch):
    """Exercise (notebook 05): convert a Keras momentum to the PyTorch momentum with the same effect.

    Parameters
    ----------
    keras_to_pytorch : callable
        ``keras_to_pytorch(keras_momentum) -> pytorch_momentum`` (floats in [0, 1]).

    Returns
    -------
    Feedback
        Recognises the number passed through unchanged (d2l's mix-up).

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """

    feedback = Feedback("Exercise: Keras momentum to PyTorch momentum")
    hint = ("both give a new batch a weight: keras 1 − momentum, pytorch momentum itself; "
            "find the pytorch momentum giving the same weight")
    for keras_momentum in (0.9, 0.99, 0.5, 0.0, 1.0):
        ok, got = call_safely(feedback, keras_to_pytorch, keras_momentum, what="keras_to_pytorch")
        if not ok:
            return feedback
        expected = convert_momentum(keras_momentum, "keras", "pytorch")
        try:
            value = float(got)
        except NOT_NUMBERS:
            return feedback.fail(f"keras_to_pytorch should return a number, got {type(got).__name__}", hint)
        if np.isclose(value, expected, rtol=0, atol=1e-12):
            continue
        if np.isclose(value, keras_momentum, rtol=0, atol=1e-12):
            return feedback.fail(
                f"keras_to_pytorch({keras_momentum:g}) returned {keras_momentum:g} unchanged: d2l's mix-up "
                f"(PyTorch would then give each new batch the weight {keras_momentum:g} instead of "
                f"{expected:g})", hint)
        return feedback.fail(f"keras_to_pytorch({keras_momentum:g}) returned {value:.6g}, expected "
                             f"{expected:.6g}", hint)
    return feedback.ok("0.9 → 0.1, 0.99 → 0.01, 0.5 → 0.5, 0 → 1 and 1 → 0: the same weight for a new batch")


def check_eval_forward(eval_forward):
    """Exercise (notebook 05): BN's forward pass in evaluation mode.

    Parameters
    ----------
    eval_forward : callable
        ``eval_forward(z, running_mean, running_var, gamma, beta, eps) -> y``
        with ``z`` of shape (N, D) and the rest of shape (D,).

    Returns
    -------
    Feedback
        Recognises the batch's own statistics used instead of the running
        ones (the "forgot eval mode" bug), eps left out, the variance used
        where the standard deviation belongs, and a failure on a batch of one.

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """

    feedback = Feedback("Exercise: BN in evaluation mode")
    batch, running_mean, running_var = _exercise_batch()
    gamma, beta, eps = np.array([1.0, 0.5, 2.0]), np.array([0.0, 1.0, -1.0]), 1e-3
    hint = ("evaluation mode uses the running statistics, never the batch's: "
            "y = gamma · (z − running_mean) / sqrt(running_var + eps) + beta")
    for z, what in ((batch, "a batch of 5"), (batch[:1], "a batch of one sample")):
        ok, got = call_safely(feedback, eval_forward, z.copy(), running_mean.copy(), running_var.copy(),
                              gamma.copy(), beta.copy(), eps, what="eval_forward")
        if not ok:
            if z.shape[0] == 1:
                feedback.hint = ("a batch of one must work in evaluation mode (the running statistics "
                                 "do not depend on the batch); " + hint)
            return feedback
        expected = affine(normalize(z, running_mean, running_var, eps=eps), gamma, beta)
        if close(got, expected, atol=1e-8, rtol=0):
            feedback.ok(f"right for {what}")
            continue
        if z.shape[0] > 1:
            mean, var = batch_stats(z)
            if close(got, affine(normalize(z, mean, var, eps=eps), gamma, beta), atol=1e-8, rtol=0):
                return feedback.fail("this normalizes with the batch's own mean and variance: that is "
                                     "training mode (the classic 'forgot eval mode' bug)", hint)
        if close(got, gamma * (z - running_mean) / np.sqrt(running_var) + beta, atol=1e-8, rtol=0):
            return feedback.fail("eps is missing: it belongs under the square root in evaluation mode too",
                                 hint)
        if close(got, gamma * (z - running_mean) / (running_var + eps) + beta, atol=1e-8, rtol=0):
            return feedback.fail("this divides by the variance; divide by the standard deviation "
                                 "sqrt(running_var + eps)", hint)
        compare_arrays(feedback, f"y for {what}", got, expected, rtol=1e-7, atol=1e-8, hint=hint)
        return feedback
    return feedback
