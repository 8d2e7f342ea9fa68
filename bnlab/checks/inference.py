"""Exercise checkers of notebook 10: folding BN into a dense layer, precise BN statistics, what AdaBN repairs."""

from __future__ import annotations

import numpy as np

from ..core import fold_batchnorm
from ..layers import BatchNorm
from .feedback import Feedback, call_safely, close, compare_arrays, missing_return

__all__ = ["check_fold", "check_precise_stats", "check_adabn_shifts", "ADABN_SHIFT_CHOICES"]


# ---------------------------------------------------------------- folding

def _fold_cases():
    """Two folding problems: a square W (a row/column mix-up still runs) and a (5, 3) one.

    The bias is far from 0 (the unscaled-bias bug hides behind a zero bias),
    eps is large and some variances small (so a missing eps shows), gamma is
    not 1 and has a negative entry.
    """
    rng = np.random.default_rng(10)
    cases = []
    for d, m in ((4, 4), (5, 3)):
        W = rng.normal(size=(d, m))
        b = rng.normal(loc=1.5, scale=1.0, size=m)
        mean = rng.normal(scale=2.0, size=m)
        var = rng.uniform(0.02, 3.0, size=m)
        gamma = rng.uniform(0.5, 2.0, size=m) * np.where(np.arange(m) == 1, -1.0, 1.0)
        beta = rng.normal(size=m)
        cases.append((W, b, mean, var, gamma, beta, 0.05))
    return cases


def _fold_variants(W, b, mean, var, gamma, beta, eps):
    """Typical answers: ``{name: (W2, b2)}`` for each scale variant and bias formula."""
    scales = {
        "right": gamma / np.sqrt(var + eps),
        "no eps": gamma / np.sqrt(var),
        "eps outside": gamma / (np.sqrt(var) + eps),
        "no sqrt": gamma / (var + eps),
        "no gamma": 1.0 / np.sqrt(var + eps),
    }
    weights = {}
    biases = {}
    for name, s in scales.items():
        weights[name, "columns"] = W * s
        weights[name, "rows"] = W * s[:, None] if W.shape[0] == W.shape[1] else None
        biases[name, "right"] = (b - mean) * s + beta
        biases[name, "unscaled bias"] = b + beta - mean * s
        biases[name, "bias dropped"] = beta - mean * s
        biases[name, "beta dropped"] = (b - mean) * s
    weights["unchanged", "columns"] = W
    return weights, biases


_FOLD_HINT = ("with s = gamma / sqrt(var + eps) per output feature: W2 = W * s (each column of bnlab's "
              "(D, M) weights: output feature j is column j) and b2 = (b - mean) * s + beta")

_SCALE_MISTAKES = {
    "no eps": ("eps is missing: s = gamma / sqrt(var) instead of gamma / sqrt(var + eps)",
               ("the folded layer must compute what BN computed in evaluation mode, eps included "
                "(it matters for features with a tiny variance)")),
    "eps outside": ("eps is outside the square root: gamma / (sqrt(var) + eps)",
                    "BN adds eps to the variance: s = gamma / sqrt(var + eps)"),
    "no sqrt": ("the scale divides by the variance: gamma / (var + eps)",
                "BN divides by the standard deviation: s = gamma / sqrt(var + eps)"),
    "no gamma": ("gamma is missing from the scale: 1 / sqrt(var + eps)",
                 "BN multiplies the normalized value by gamma: s = gamma / sqrt(var + eps)"),
}


def _diagnose_fold(feedback, W2, b2, case):
    """Name the mistake in ``(W2, b2)`` for ``case``; True when both are right."""
    W, b, mean, var, gamma, beta, eps = case
    expected_W, expected_b = fold_batchnorm(W, b, mean, var, gamma, beta, eps)
    weights, biases = _fold_variants(W, b, mean, var, gamma, beta, eps)

    def matches(got, expected):
        return expected is not None and close(got, expected, rtol=1e-9, atol=1e-9)

    w_ok, b_ok = matches(W2, expected_W), matches(b2, expected_b)
    if w_ok and b_ok:
        return True
    if not w_ok:
        found = next((key for key, value in weights.items() if matches(W2, value)), None)
        if found is not None and found[1] == "rows":
            feedback.fail(
                "W2 scales the rows of W: in bnlab's Dense (x @ W, W of shape (D, M)) a row belongs to an "
                "input feature; the output features BN normalized are the columns",
                "multiply column j by s[j]: W * s (broadcasting over the last axis), not W * s[:, None]")
            return False
        if found is not None and found[0] == "unchanged":
            feedback.fail("W2 is W unchanged: BN's scale s = gamma / sqrt(var + eps) must go into the weights",
                          _FOLD_HINT)
            return False
        if found is not None and found[0] in _SCALE_MISTAKES:
            feedback.fail(*_SCALE_MISTAKES[found[0]])
            return False
        compare_arrays(feedback, "W2", W2, expected_W, rtol=1e-9, atol=1e-9, hint=_FOLD_HINT)
        return False
    feedback.ok("W2 = W · s, column by column (one scale per output feature)")
    found = next((key for key, value in biases.items() if matches(b2, value)), None)
    if found is not None and found[0] == "right":
        reason = found[1]
        if reason == "unscaled bias":
            feedback.fail(
                "b2 adds the old bias b unscaled: b + beta − mean · s (the bug of ultralytics/yolov3#807; "
                "it hides while b is 0, as it usually is before BN)",
                "the old bias passes through BN like the rest of x·W + b: b2 = (b − mean) · s + beta")
        elif reason == "bias dropped":
            feedback.fail("b2 ignores the old bias b: beta − mean · s is only right when b = 0",
                          "the old bias passes through BN too: b2 = (b − mean) · s + beta")
        else:
            feedback.fail("b2 is missing beta: BN adds beta after scaling",
                          "b2 = (b − mean) · s + beta")
        return False
    if found is not None and found[0] in _SCALE_MISTAKES:
        feedback.fail("W2 is right, but b2 uses another scale: " + _SCALE_MISTAKES[found[0]][0],
                      "use the same s = gamma / sqrt(var + eps) for both: b2 = (b − mean) · s + beta")
        return False
    compare_arrays(feedback, "b2", b2, expected_b, rtol=1e-9, atol=1e-9, hint=_FOLD_HINT)
    return False


def check_fold(fold):
    """Exercise (notebook 10): fold an evaluation-mode BN into the dense layer before it.

    Parameters
    ----------
    fold : callable
        ``fold(W, b, mean, var, gamma, beta, eps) -> (W2, b2)`` with ``W`` of
        shape (D, M) as in bnlab's ``Dense`` (``x @ W + b``), the rest of
        shape (M,), such that ``x @ W2 + b2`` equals BN's evaluation-mode
        output ``gamma * (x @ W + b - mean) / sqrt(var + eps) + beta``.

    Returns
    -------
    Feedback
        Recognises the old bias added unscaled (ultralytics/yolov3#807) or
        dropped, beta dropped, eps missing or outside the square root, the
        variance in place of the standard deviation, gamma missing, the
        weights unscaled, the rows of ``W`` scaled instead of its columns
        (the wrong axis), and inputs changed in place.

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    feedback = Feedback("Exercise: folding BN into the dense layer before it")
    for case in _fold_cases():
        ok, got = call_safely(feedback, fold, *[a.copy() if isinstance(a, np.ndarray) else a for a in case],
                              what="fold")
        if not ok:
            return feedback
        if missing_return(feedback, got, "fold"):
            return feedback
        try:
            W2, b2 = got
        except (TypeError, ValueError):
            return feedback.fail(f"fold should return two arrays (W2, b2), got {type(got).__name__}",
                                 "end your function with: return W2, b2")
        W = case[0]
        if np.shape(W2) != W.shape or np.shape(b2) != (W.shape[1],):
            return feedback.fail(
                f"for W of shape {W.shape}, W2 has shape {np.shape(W2)} and b2 {np.shape(b2)}; expected "
                f"{W.shape} and ({W.shape[1]},)", _FOLD_HINT)
        if not _diagnose_fold(feedback, W2, b2, case):
            return feedback
        feedback.lines.clear()
    _check_untouched(feedback, fold)
    if feedback.lines:
        return feedback
    feedback.ok("W2 = W · s per output feature (the columns of bnlab's (D, M) weights), eps under the root")
    feedback.ok("b2 = (b − mean) · s + beta: the old bias is scaled too (the yolov3#807 bug is avoided)")
    return feedback


def _check_untouched(feedback, fold):
    """Fail if ``fold`` changed its arguments in place (folding a model twice would scale it twice)."""
    case = _fold_cases()[1]
    arguments = [a.copy() if isinstance(a, np.ndarray) else a for a in case]
    ok, _ = call_safely(feedback, fold, *arguments, what="fold")
    if not ok:
        return
    names = ("W", "b", "mean", "var", "gamma", "beta")
    changed = [name for name, before, after in zip(names, case, arguments) if not np.array_equal(before, after)]
    if changed:
        feedback.fail(f"fold changed its input {', '.join(changed)} in place: the caller's layer is modified, "
                      "and folding it again would apply BN twice",
                      "make new arrays (W2 = W * s), not W *= s")


# ---------------------------------------------------------------- precise BN

def _stats_batches():
    """Batches whose statistics differ from batch to batch and from the initial 0 and 1 (S=6, N=8, D=3)."""
    rng = np.random.default_rng(11)
    centres = np.array([3.0, -2.0, 0.5]) + rng.normal(scale=1.0, size=(6, 1, 3))
    return centres + rng.normal(scale=[0.5, 2.0, 1.0], size=(6, 8, 3))


def _ema(batches, momentum):
    mean, var = np.zeros(batches.shape[2]), np.ones(batches.shape[2])
    for batch in batches:
        mean = momentum * mean + (1 - momentum) * batch.mean(axis=0)
        var = momentum * var + (1 - momentum) * batch.var(axis=0)
    return mean, var


def check_precise_stats(precise_stats):
    """Exercise (notebook 10): precise BN's statistics, the equal-weight average over batches.

    Parameters
    ----------
    precise_stats : callable
        ``precise_stats(batches) -> (mean, var)`` with ``batches`` of shape
        (S, N, D) (S batches of a layer's pre-activations): the plain average
        of the S batch means and of the S biased batch variances, shape (D,)
        each. What :func:`bnlab.recalibrate_batchnorm` stores (keras
        convention), ``torch.optim.swa_utils.update_bn`` and fvcore's
        ``update_bn_stats`` compute.

    Returns
    -------
    Feedback
        Recognises the exponential running average (momentum 0.9 or 0.99,
        from 0 and 1), the last batch alone, the pooled variance of all
        samples, the unbiased variance, statistics over the wrong axis.

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    feedback = Feedback("Exercise: precise BN statistics (equal weights)")
    batches = _stats_batches()
    hint = ("average the statistics of the batches with equal weights: the mean over the batches of "
            "batch.mean(axis=0), and of batch.var(axis=0)")
    ok, got = call_safely(feedback, precise_stats, batches.copy(), what="precise_stats")
    if not ok or missing_return(feedback, got, "precise_stats"):
        return feedback
    try:
        mean, var = got
    except (TypeError, ValueError):
        return feedback.fail(f"precise_stats should return two arrays (mean, var), got {type(got).__name__}",
                             "end your function with: return mean, var")
    bn = BatchNorm(batches.shape[2], convention="keras", momentum="cumulative")
    for batch in batches:
        bn.forward(batch, training=True)
    expected = (bn.running_mean, bn.running_var)

    def matches(got_value, value):
        return close(got_value, value, rtol=1e-9, atol=1e-9)

    if matches(mean, expected[0]) and matches(var, expected[1]):
        feedback.ok("the mean is the average of the batch means")
        feedback.ok("the variance is the average of the (biased) batch variances, each batch weighted 1/S: "
                    "the same as bnlab.recalibrate_batchnorm")
        return feedback
    for momentum in (0.9, 0.99):
        ema = _ema(batches, momentum)
        if matches(mean, ema[0]):
            return feedback.fail(
                f"this is the exponential running average (momentum {momentum:g}, from 0 and 1): recent "
                "batches weigh more and the initial values linger, which is what precise BN replaces", hint)
    if np.shape(mean) != (batches.shape[2],):
        return feedback.fail(f"mean has shape {np.shape(mean)}, expected ({batches.shape[2]},): one value per "
                             "feature (average over the batches and the samples in each)", hint)
    last = (batches[-1].mean(axis=0), batches[-1].var(axis=0))
    if matches(mean, last[0]):
        return feedback.fail("these are the last batch's statistics alone: precise BN averages all batches",
                             hint)
    if not matches(mean, expected[0]):
        compare_arrays(feedback, "mean", mean, expected[0], rtol=1e-9, atol=1e-9, hint=hint)
        return feedback
    feedback.ok("the mean is the average of the batch means")
    n = batches.shape[1]
    if matches(var, batches.reshape(-1, batches.shape[2]).var(axis=0)):
        return feedback.fail(
            "this is the variance of all samples pooled: it also counts how far the batch means spread "
            "around their average. Precise BN averages the per-batch variances, the statistic BN normalized "
            "with in training", "np.mean([batch.var(axis=0) for batch in batches], axis=0)")
    if matches(var, expected[1] * n / (n - 1)):
        return feedback.fail("the batch variances are the unbiased ones (ddof=1); BN normalizes with the biased "
                             "variance, and the keras convention stores that one", "batch.var(axis=0), ddof=0")
    compare_arrays(feedback, "var", var, expected[1], rtol=1e-9, atol=1e-9, hint=hint)
    return feedback


# ---------------------------------------------------------------- what AdaBN repairs

#: Shifts of the test digits; which ones can re-estimated BN statistics repair?
ADABN_SHIFT_CHOICES = {
    "a": "lower contrast and brighter: 0.5 · x + 0.3",
    "b": "more contrast: 2 · x",
    "c": "Gaussian noise added to every pixel (std 0.3)",
    "d": "inverted: 1 − x (ink and paper swapped)",
    "e": "each digit moved one pixel to the left",
}
_ADABN_RIGHT = {"a", "b"}
_ADABN_WHY = {
    "a": ("a · x + b with a > 0 scales and shifts every first-layer pre-activation, and the re-estimated mean "
          "and variance undo that (up to eps)"),
    "b": "a contrast change is a · x with a > 0: its effect on each feature's mean and std is undone (up to eps)",
    "c": ("noise adds variance that re-estimation can scale away, but the detail it buried stays buried: "
          "accuracy improves by a few points at most"),
    "d": ("1 − x is a · x + b with a = −1: the statistics are re-centred, but every normalized feature comes "
          "out with the opposite sign (notebook 04: a negative a flips BN's output), so the next layers read "
          "the pattern reversed"),
    "e": ("moving the digits changes which pixel carries the ink: a change of structure, not of each "
          "feature's mean and spread"),
}


def _letters(answer):
    if isinstance(answer, str):
        text = answer.lower()
        for ch in "(),;/&+":
            text = text.replace(ch, " ")
        text = text.replace(" and ", " ")
        parts = text.split()
        if len(parts) == 1 and parts[0].isalpha() and len(parts[0]) > 1:
            parts = list(parts[0])  # "ab"
        return parts
    try:
        return [str(item).strip().strip("()").lower() for item in answer]
    except TypeError:
        return None


def check_adabn_shifts(answer):
    """Exercise (notebook 10): which shifts of the test inputs can re-estimated BN statistics (AdaBN) repair?

    Parameters
    ----------
    answer : str or collection of str
        The letters of :data:`ADABN_SHIFT_CHOICES` that AdaBN repairs, e.g.
        ``"ab"``, ``"a, b"`` or ``{"a", "b"}``.

    Returns
    -------
    Feedback
        Each letter chosen wrongly or missed gets its reason.

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    feedback = Feedback("Exercise: which shifts can AdaBN repair?")
    hint = ("re-estimating BN's statistics can undo a change of each feature's mean and spread; "
            "ask of each shift whether it is only that")
    letters = _letters(answer)
    if letters is None:
        return feedback.fail(f"answer with letters, e.g. 'ab' or {{'a', 'b'}}, got {type(answer).__name__}", hint)
    unknown = [letter for letter in letters if letter not in ADABN_SHIFT_CHOICES]
    if unknown:
        return feedback.fail(f"{', '.join(repr(u) for u in unknown)} is not one of the choices "
                             f"{', '.join(ADABN_SHIFT_CHOICES)}", hint)
    chosen = set(letters)
    if not chosen:
        return feedback.fail("no letter given: at least one of the shifts can be repaired", hint)
    for letter in sorted(ADABN_SHIFT_CHOICES):
        if letter in chosen and letter in _ADABN_RIGHT:
            feedback.ok(f"({letter}) repaired: {_ADABN_WHY[letter]}")
        elif letter in chosen:
            feedback.fail(f"({letter}) is not repaired: {_ADABN_WHY[letter]}", hint)
        elif letter in _ADABN_RIGHT:
            feedback.fail(f"({letter}) is missing, yet it is repaired: {_ADABN_WHY[letter]}", hint)
    if feedback.passed:
        feedback.ok("(c), (d) and (e) are left out rightly: noise, inversion and moved digits change more than "
                    "the first two moments")
    return feedback
