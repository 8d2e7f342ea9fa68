"""Exercise checkers: a learner's function or value in, friendly feedback out.

Every ``check_...`` function returns a :class:`Feedback`: what is right, what
is off, and a hint. It never raises at the learner: an exception inside the
learner's function is caught and reported as feedback. In a notebook the
feedback shows as coloured HTML; its plain-text form (what ``print`` and
nbval see) is stable.
"""

from __future__ import annotations

import html
import traceback

import numpy as np

__all__ = ["Feedback", "call_safely", "compare_arrays",
           # notebooks 04 and 05
           "check_negative_scale_output", "check_gradient_scaling", "check_effective_eps",
           "check_running_update", "check_keras_to_pytorch", "check_eval_forward"]


class Feedback:
    """The result of a check.

    Attributes
    ----------
    title : str
        The exercise.
    passed : bool
    lines : list of (bool, str)
        Each item: (ok, what was checked / what is off).
    hint : str
        Shown when something is off.
    """

    def __init__(self, title):
        self.title = title
        self.lines = []
        self.hint = ""

    def ok(self, text):
        self.lines.append((True, text))
        return self

    def fail(self, text, hint=""):
        self.lines.append((False, text))
        if hint and not self.hint:
            self.hint = hint
        return self

    @property
    def passed(self):
        return bool(self.lines) and all(ok for ok, _ in self.lines)

    def __bool__(self):
        return self.passed

    def __str__(self):
        head = f"{self.title}: {'all checks passed' if self.passed else 'not yet'}"
        body = [f"  {'✔' if ok else '✘'} {text}" for ok, text in self.lines]
        if not self.passed and self.hint:
            body.append(f"  Hint: {self.hint}")
        return "\n".join([head, *body])

    __repr__ = __str__

    def _repr_html_(self):
        colour = "#009E73" if self.passed else "#D55E00"
        items = "".join(
            f"<li style='list-style:none'>{'✔' if ok else '✘'} {html.escape(text)}</li>"
            for ok, text in self.lines
        )
        hint = (f"<p><b>Hint:</b> {html.escape(self.hint)}</p>"
                if self.hint and not self.passed else "")
        verdict = "all checks passed" if self.passed else "not yet"
        return (f"<div style='border-left:5px solid {colour};padding:4px 10px'>"
                f"<b>{html.escape(self.title)}</b>: <span style='color:{colour}'>{verdict}</span>"
                f"<ul style='padding-left:4px;margin:4px 0'>{items}</ul>{hint}</div>")


def call_safely(feedback, function, *args, what="your function"):
    """Call the learner's ``function``; on an exception record it in ``feedback`` and return None.

    Returns ``(True, result)`` or ``(False, None)``.
    """
    if not callable(function):
        feedback.fail(f"{what} should be a function, got {type(function).__name__}",
                      "define it with def ... and pass the function itself (no parentheses)")
        return False, None
    try:
        return True, function(*args)
    except Exception as exc:  # a learner's bug must become feedback, not a traceback
        last = traceback.extract_tb(exc.__traceback__)[-1]
        feedback.fail(f"{what} raised {type(exc).__name__}: {exc} (at line {last.lineno}: {last.line})",
                      "run your function on the example input in a cell of its own to see the error")
        return False, None


def compare_arrays(feedback, name, got, expected, rtol=1e-5, atol=1e-6, hint=""):
    """Compare a learner's array with the expected one; record shape and value findings."""
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        feedback.fail(f"{name} should be numbers, got {type(got).__name__}", hint)
        return False
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        feedback.fail(f"{name} has shape {got.shape}, expected {expected.shape}", hint)
        return False
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(got - expected)), got.shape))
        where = "" if not worst else f"at index {worst if len(worst) != 1 else worst[0]}: "
        feedback.fail(
            f"{name} differs from the expected value{'s' if worst else ''} "
            f"({where}got {got[worst] + 0.0:.6g}, expected {expected[worst] + 0.0:.6g})",
            hint,
        )
        return False
    feedback.ok(f"{name} is right")
    return True


# ---- notebooks 01-03: batch statistics, normalization, scale and shift -----

__all__ += ["check_batch_stats", "check_stable_variance", "check_normalize",  # notebooks 01-03
            "check_normalized_variance", "check_undo_bn", "check_bias_absorbed", "BIAS_EXERCISE"]

#: The dense layer's bias in notebook 03's exercise: z = x @ W + b, then BN.
BIAS_EXERCISE = np.array([0.3, -2.0, 5.0])


def _n01_close(got, expected, rtol=1e-5, atol=1e-6):
    """True when ``got`` is numbers of ``expected``'s shape and close to it (quietly)."""
    try:
        with np.errstate(all="ignore"):
            got = np.asarray(got, dtype=np.float64)
            return got.shape == np.shape(expected) and bool(np.allclose(got, expected, rtol=rtol, atol=atol))
    except (TypeError, ValueError):
        return False


def _n01_pair(feedback, result, names, hint):
    """Unpack a learner's ``(a, b)`` result, or record why it cannot be."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        got = type(result).__name__ if not isinstance(result, (tuple, list)) else f"{len(result)} values"
        feedback.fail(f"your function should return two things, {names}; it returned {got}", hint)
        return None
    return result


def _n01_batch():
    """A 5 x 3 float64 batch: not square, so a wrong axis shows in the shape."""
    return np.array([[1.0, 2.0, 3.0],
                     [2.0, 0.0, 4.0],
                     [0.0, -1.0, 2.0],
                     [1.0, 1.0, 5.0],
                     [3.0, 0.5, 1.0]])


def check_batch_stats(batch_stats_fn):
    """Exercise (notebook 01): per-feature batch mean and variance, written by the learner.

    Parameters
    ----------
    batch_stats_fn : callable
        ``batch_stats_fn(z) -> (mean, var)`` for ``z`` of shape (N, D),
        returning arrays of shape (D,).

    Returns
    -------
    Feedback
        Recognises the typical mistakes: statistics over ``axis=1`` (per
        sample instead of per feature), over the whole batch (no axis), the
        sample variance (``ddof=1``), the standard deviation instead of the
        variance, and changing ``z`` in place.

    Introduced in ``notebooks/01_batch_statistics.ipynb``.
    """
    from .core import batch_stats

    feedback = Feedback("Exercise: batch mean and variance per feature")
    hint = ("BN takes one mean and one variance per feature (column), over the samples: "
            "z.mean(axis=0), z.var(axis=0) (population variance, ddof=0)")
    z = _n01_batch()
    z_given = z.copy()
    ran, result = call_safely(feedback, batch_stats_fn, z_given)
    if not ran:
        return feedback
    if not np.array_equal(z_given, z):
        feedback.fail("your function changed the batch z in place",
                      "compute new arrays (z.mean(...)) instead of modifying z")
        return feedback
    pair = _n01_pair(feedback, result, "(mean, var)", hint)
    if pair is None:
        return feedback
    mean, var = pair
    expected_mean, expected_var = batch_stats(z)
    n = z.shape[0]
    if _n01_close(mean, z.mean(axis=1)):
        feedback.fail(f"mean has shape ({n},): one value per sample, i.e. axis=1; BN wants one per "
                      f"feature, shape ({z.shape[1]},): axis=0", hint)
    elif _n01_close(mean, z.mean()):
        feedback.fail("mean is a single number (the whole batch's mean): give an axis, axis=0", hint)
    else:
        compare_arrays(feedback, "mean", mean, expected_mean, hint=hint)
    if _n01_close(var, z.var(axis=1)) or _n01_close(var, z.var(axis=1, ddof=1)):
        feedback.fail(f"var has shape ({n},): one value per sample, i.e. axis=1; use axis=0", hint)
    elif _n01_close(var, z.var()) or _n01_close(var, z.var(ddof=1)):
        feedback.fail("var is a single number (the whole batch's variance): give an axis, axis=0", hint)
    elif _n01_close(var, z.var(axis=0, ddof=1)):
        feedback.fail(f"var is the sample variance (ddof=1, divides by N - 1 = {n - 1}); BN normalizes "
                      f"with the population variance (ddof=0, divides by N = {n})", hint)
    elif _n01_close(var, z.std(axis=0)):
        feedback.fail("var is the standard deviation; the variance is its square", hint)
    else:
        compare_arrays(feedback, "var", var, expected_var, hint=hint)
    return feedback


def check_stable_variance(variance_fn):
    """Exercise (notebook 01): a per-feature variance that survives float32 far from zero.

    Parameters
    ----------
    variance_fn : callable
        ``variance_fn(z) -> var`` for a float32 ``z`` of shape (N, D),
        returning the population variance per feature, shape (D,).

    Returns
    -------
    Feedback
        Runs the function on a float32 batch near 0 and on the same batch
        moved to 1e4; compares with a float64 reference (relative error
        below 1e-3). Recognises the one-pass formula ``E[z²] − E[z]²``
        (negative or wildly wrong variances far from zero) and ``ddof=1``.

    Introduced in ``notebooks/01_batch_statistics.ipynb``.
    """
    from .data import random_batch

    feedback = Feedback("Exercise: a variance that works in float32 far from zero")
    hint = ("subtract a value close to the data first (for instance the mean, or the first sample), "
            "then average the squares: the numbers you square stay small")
    base = random_batch(np.random.default_rng(1), (64, 3), scale=[1.0, 0.5, 2.0], dtype=np.float32)
    for offset in (0.0, 1e4):
        z = (base + np.float32(offset)).astype(np.float32)
        reference = z.astype(np.float64).var(axis=0)
        what = f"the batch at offset {offset:g}"
        with np.errstate(all="ignore"):
            ran, var = call_safely(feedback, variance_fn, z.copy())
        if not ran:
            return feedback
        try:
            var = np.asarray(var, dtype=np.float64)
        except (TypeError, ValueError):
            return feedback.fail(f"for {what} your function returned {type(var).__name__}, not numbers",
                                 hint)
        if var.shape != reference.shape:
            return feedback.fail(f"for {what} the variance has shape {var.shape}, expected "
                                 f"{reference.shape} (one per feature: axis=0)", hint)
        if _n01_close(var, z.astype(np.float64).var(axis=0, ddof=1), rtol=1e-3, atol=0):
            return feedback.fail("this is the sample variance (ddof=1); BN uses ddof=0", hint)
        if not np.all(np.isfinite(var)):
            return feedback.fail(f"for {what} the variance is not finite: {var}", hint)
        if np.any(var < 0):
            return feedback.fail(f"for {what} a variance came out negative ({np.round(var, 4) + 0.0}): "
                                 "E[z²] − E[z]² subtracts two huge, nearly equal numbers in float32", hint)
        error = float(np.max(np.abs(var - reference) / reference))
        if error > 1e-3:
            return feedback.fail(f"for {what} the variance is off by {error:.2g} (relative); expected "
                                 f"about {np.round(reference, 4)}, got {np.round(var, 4) + 0.0}", hint)
        feedback.ok(f"{what}: relative error {error:.1e}")
    return feedback


def check_normalize(normalize_fn):
    """Exercise (notebook 02): normalize a batch with its statistics and eps.

    Parameters
    ----------
    normalize_fn : callable
        ``normalize_fn(z, mean, var, eps) -> z_hat`` for ``z`` of shape
        (N, D) and ``mean``, ``var`` of shape (D,).

    Returns
    -------
    Feedback
        Uses a batch with a constant feature and a large eps (1e-2) so that
        eps matters. Recognises: eps forgotten (division by zero on the
        constant feature), division by the variance instead of the standard
        deviation, eps added outside the square root, the mean not subtracted.

    Introduced in ``notebooks/02_normalization.ipynb``.
    """
    from .core import batch_stats, normalize

    feedback = Feedback("Exercise: normalize with eps")
    hint = "z_hat = (z - mean) / np.sqrt(var + eps): eps goes inside the square root"
    z = np.array([[1.0, 2.0, 7.0],
                  [2.0, 0.0, 7.0],
                  [0.0, -1.0, 7.0],
                  [1.0, 1.0, 7.0],
                  [3.0, 0.5, 7.0]])  # feature 2 is constant: variance 0
    eps = 1e-2
    mean, var = batch_stats(z)
    with np.errstate(all="ignore"):
        ran, z_hat = call_safely(feedback, normalize_fn, z.copy(), mean.copy(), var.copy(), eps)
    if not ran:
        return feedback
    expected = normalize(z, mean, var, eps=eps)
    try:
        z_hat = np.asarray(z_hat, dtype=np.float64)
    except (TypeError, ValueError):
        return feedback.fail(f"your function returned {type(z_hat).__name__}, not numbers", hint)
    if z_hat.shape != z.shape:
        return feedback.fail(f"z_hat has shape {z_hat.shape}, expected {z.shape} (the shape of z)", hint)
    varying = slice(0, 2)
    with np.errstate(all="ignore"):
        wrong = {
            "no_eps": (z - mean) / np.sqrt(var),
            "var": (z - mean) / (var + eps),
            "outside": (z - mean) / (np.sqrt(var) + eps),
            "no_mean": z / np.sqrt(var + eps),
        }
    if not np.all(np.isfinite(z_hat)):
        bad = sorted({int(j) for j in np.argwhere(~np.isfinite(z_hat))[:, 1]})
        return feedback.fail(f"z_hat has NaN or infinity in feature(s) {bad}: feature 2 is constant "
                             "(variance 0), so without eps you divide 0 by 0", hint)
    if _n01_close(z_hat[:, varying], wrong["no_eps"][:, varying], rtol=1e-9, atol=0):
        return feedback.fail("eps is missing: with eps = 1e-2 the result must be a little smaller", hint)
    for key, message in (("var", "you divided by the variance; divide by the standard deviation "
                                 "sqrt(var + eps)"),
                         ("outside", "eps is added outside the square root: sqrt(var) + eps"),
                         ("no_mean", "the mean is not subtracted: (z - mean) first")):
        if _n01_close(z_hat[:, varying], wrong[key][:, varying], rtol=1e-9, atol=0):
            return feedback.fail(message, hint)
    if compare_arrays(feedback, "z_hat", z_hat, expected, rtol=1e-7, atol=1e-9, hint=hint):
        feedback.ok("the constant feature gives z_hat = 0, not NaN: eps is in place")
    return feedback


def check_normalized_variance(predict_fn):
    """Exercise (notebook 02): predict the variance of ẑ from a feature's variance and eps.

    Parameters
    ----------
    predict_fn : callable
        ``predict_fn(var, eps) -> float``: Var(ẑ) for a feature of
        (population) variance ``var`` normalized with ``eps``.

    Returns
    -------
    Feedback
        Tries the seed's feature 0 (var 0.5, eps 1e-5), var equal to eps, a
        constant feature (var 0) and a large variance. Recognises "always 1",
        the standard deviation ``sqrt(var / (var + eps))`` and the flipped
        ``eps / (var + eps)``.

    Introduced in ``notebooks/02_normalization.ipynb``.
    """
    feedback = Feedback("Exercise: the variance of z_hat")
    hint = ("z_hat = (z - mean) / sqrt(var + eps), so Var(z_hat) = var / (var + eps): "
            "just under 1 when var >> eps, 1/2 when var = eps, 0 for a constant feature")
    cases = [(0.5, 1e-5, "the seed's feature 0 (var 0.5, eps 1e-5)"),
             (1e-5, 1e-5, "var = eps = 1e-5"),
             (0.0, 1e-3, "a constant feature (var 0, eps 1e-3)"),
             (100.0, 1e-3, "var 100, eps 1e-3")]
    for var, eps, what in cases:
        with np.errstate(all="ignore"):
            ran, got = call_safely(feedback, predict_fn, var, eps)
        if not ran:
            return feedback
        try:
            got = float(np.asarray(got, dtype=np.float64))
        except (TypeError, ValueError):
            return feedback.fail(f"for {what} your function returned {type(got).__name__}, "
                                 "not one number", hint)
        expected = var / (var + eps)
        if np.isclose(got, expected, rtol=1e-9, atol=1e-12):
            feedback.ok(f"{what}: {expected:.6g}")
            continue
        if np.isclose(got, 1.0, rtol=1e-12, atol=0):
            return feedback.fail(f"for {what} you said 1; eps in the denominator makes it "
                                 f"{expected:.6g}", hint)
        if np.isclose(got, np.sqrt(expected), rtol=1e-9, atol=1e-12):
            return feedback.fail(f"for {what} you gave the standard deviation of z_hat; the variance "
                                 "is its square", hint)
        if np.isclose(got, eps / (var + eps), rtol=1e-9, atol=1e-12):
            return feedback.fail(f"for {what} you gave eps / (var + eps): the fraction is upside down", hint)
        return feedback.fail(f"for {what} you gave {got:.6g}, expected {expected:.6g}", hint)
    return feedback


def check_undo_bn(gamma, beta):
    """Exercise (notebook 03): the gamma and beta that make BN give back its input.

    The batch is the seed's shifted and scaled batch ``z' = 2 z + 10`` (the
    seed's step 4), with eps 1e-5.

    Parameters
    ----------
    gamma, beta : array-like, shape (3,)
        The learner's values for ``z'``.

    Returns
    -------
    Feedback
        Expects ``gamma = sqrt(var' + eps)`` and ``beta = mean'`` (the
        statistics of ``z'``). Recognises the statistics of ``z`` instead of
        ``z'``, ``sqrt(var')`` (eps forgotten), the variance without the
        square root, ``1 / sqrt(var' + eps)``, ``beta = -mean'`` and gamma
        and beta swapped; then checks that BN's output equals ``z'``.

    Introduced in ``notebooks/03_scale_and_shift.ipynb``.
    """
    from .core import affine, batch_stats, normalize
    from .data import SEED_SCALE, SEED_SHIFT, seed_batch

    feedback = Feedback("Exercise: gamma and beta that undo BN")
    hint = ("BN computes gamma * (z' - mean) / sqrt(var + eps) + beta with the batch statistics of z': "
            "undo the division, then the shift")
    seed = seed_batch()
    eps = seed.eps
    z = seed.z.astype(np.float64)
    z_shifted = SEED_SCALE * z + SEED_SHIFT
    mean, var = batch_stats(z_shifted)
    mean_z, var_z = batch_stats(z)
    expected_gamma, expected_beta = np.sqrt(var + eps), mean
    arrays = []
    for name, value in (("gamma", gamma), ("beta", beta)):
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return feedback.fail(f"{name} should be numbers, got {type(value).__name__}", hint)
        if array.shape != (3,):
            return feedback.fail(f"{name} has shape {array.shape}, expected (3,): one per feature", hint)
        arrays.append(array)
    gamma, beta = arrays

    def close(a, b):
        return _n01_close(a, b, rtol=1e-7, atol=1e-9)

    if close(gamma, expected_beta) and close(beta, expected_gamma):
        return feedback.fail("gamma and beta are swapped: gamma scales, beta shifts", hint)
    if close(gamma, np.sqrt(var_z + eps)) or close(beta, mean_z):
        feedback.fail("these are the statistics of z; the batch here is z' = 2·z + 10, whose mean and "
                      "variance are different", hint)
        return feedback
    gamma_wrong = [
        (np.sqrt(var), "gamma = sqrt(var) forgets eps: BN divided by sqrt(var + eps)"),
        (var + eps, "gamma is the variance; it needs the square root, sqrt(var + eps)"),
        (var, "gamma is the variance; it needs the square root, sqrt(var + eps)"),
        (1 / np.sqrt(var + eps), "gamma = 1 / sqrt(var + eps) divides again; multiply back instead"),
    ]
    if close(gamma, expected_gamma):
        feedback.ok("gamma = sqrt(var + eps) is right")
    else:
        for candidate, message in gamma_wrong:
            if close(gamma, candidate):
                feedback.fail(message, hint)
                break
        else:
            compare_arrays(feedback, "gamma", gamma, expected_gamma, rtol=1e-7, atol=1e-9, hint=hint)
    if close(beta, -expected_beta):
        feedback.fail("beta = -mean shifts the wrong way: the mean was subtracted, add it back", hint)
    else:
        compare_arrays(feedback, "beta", beta, expected_beta, rtol=1e-7, atol=1e-9, hint=hint)
    if feedback.passed:
        y = affine(normalize(z_shifted, mean, var, eps=eps), gamma, beta)
        compare_arrays(feedback, "BN's output with your gamma and beta (it should be z')", y, z_shifted,
                       rtol=1e-6, atol=1e-6, hint=hint)
    return feedback


def check_bias_absorbed(beta_without_bias):
    """Exercise (notebook 03): drop the dense layer's bias before BN; which beta keeps the output?

    A layer computes ``z = x @ W + b`` with ``b =`` :data:`BIAS_EXERCISE`,
    followed by BN with the seed's gamma and beta. Without the bias
    (``z = x @ W``), which beta gives exactly the same BN output?

    Parameters
    ----------
    beta_without_bias : array-like, shape (3,)

    Returns
    -------
    Feedback
        Expects the seed's beta unchanged (BN subtracts the batch mean, which
        removes any constant bias). Recognises ``beta + b`` and ``beta - b``,
        then checks the two outputs agree.

    Introduced in ``notebooks/03_scale_and_shift.ipynb``.
    """
    from .core import batchnorm_forward
    from .data import seed_batch

    feedback = Feedback("Exercise: the bias before BN")
    hint = ("BN subtracts the batch mean: the mean of z + b is mean(z) + b, so b cancels "
            "before beta is added")
    seed = seed_batch()
    z, gamma, beta = (x.astype(np.float64) for x in seed)
    b = BIAS_EXERCISE
    try:
        got = np.asarray(beta_without_bias, dtype=np.float64)
    except (TypeError, ValueError):
        return feedback.fail(f"beta should be numbers, got {type(beta_without_bias).__name__}", hint)
    if got.shape != (3,):
        return feedback.fail(f"beta has shape {got.shape}, expected (3,): one per feature", hint)
    if _n01_close(got, beta + b, rtol=0, atol=1e-6):
        return feedback.fail("beta + b would add the bias after BN, where it was never felt: "
                             "BN removed it", hint)
    if _n01_close(got, beta - b, rtol=0, atol=1e-6):
        return feedback.fail("beta - b compensates for a bias that BN already removed", hint)
    if not compare_arrays(feedback, "beta", got, beta, rtol=0, atol=1e-6, hint=hint):
        return feedback
    y_with_bias, _ = batchnorm_forward(z + b, gamma, beta, eps=seed.eps)
    y_without, _ = batchnorm_forward(z, gamma, got, eps=seed.eps)
    compare_arrays(feedback, "BN's output without the bias (same as with it)", y_without, y_with_bias,
                   rtol=1e-9, atol=1e-9, hint=hint)
    return feedback


# ---- notebook 04: shift/scale invariance ------------------------------------

#: The scale and shift of notebook 04's exercise 1: z' = -3 z + 5 on the seed batch.
NEGATIVE_SCALE_EXERCISE = (-3.0, 5.0)


def _n04_matches(got, expected, atol=1e-4):
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return got.shape == np.shape(expected) and np.allclose(got, expected, rtol=0, atol=atol)


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
    from .core import batchnorm_forward
    from .data import seed_batch

    feedback = Feedback("Exercise: y' for z' = -3·z + 5")
    seed = seed_batch()
    z, gamma, beta = (x.astype(np.float64) for x in seed)
    a, b = NEGATIVE_SCALE_EXERCISE
    y, _ = batchnorm_forward(z, gamma, beta, eps=seed.eps)
    expected, _ = batchnorm_forward(a * z + b, gamma, beta, eps=seed.eps)
    hint_flip = ("a negative a flips z_hat: (a·z + b − mean') / std' = sign(a)·z_hat, "
                 "so y' = −gamma·z_hat + beta")
    if _n04_matches(y_shifted, y):
        return feedback.fail("this is y, the output for z itself: the sign of a was lost", hint_flip)
    if _n04_matches(y_shifted, -y):
        return feedback.fail("this is −y: beta was flipped too, but only gamma·z_hat changes sign",
                             hint_flip)
    if _n04_matches(y_shifted, a * y + b):
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
        if _n04_matches(got, dW / a, atol=1e-9):
            continue
        for name, (formula, why) in wrong.items():
            if _n04_matches(got, formula(dW, a), atol=1e-9):
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
        except (TypeError, ValueError):
            return feedback.fail(f"effective_eps should return a number, got {type(got).__name__}", hint)
        if np.isclose(value, expected, rtol=1e-9, atol=0):
            continue
        for name, (formula, why) in wrong.items():
            if np.isclose(value, formula(eps, a), rtol=1e-9, atol=0):
                return feedback.fail(f"for eps = {eps:g}, a = {a:g} you returned {name}: {why}", hint)
        return feedback.fail(f"for eps = {eps:g}, a = {a:g}: got {value:.6g}, expected {expected:.6g}", hint)
    return feedback.ok("eps / a² for (eps, a) = (1e-5, 2), (1e-3, 0.1), (1e-5, −4)")


# ---- notebook 05: running statistics -----------------------------------------

def _n05_batch():
    """A small batch whose statistics differ clearly from the running ones (N = 5, D = 3)."""
    rng = np.random.default_rng(5)
    batch = rng.normal(loc=[2.0, -1.0, 0.5], scale=[1.5, 0.5, 2.0], size=(5, 3))
    running_mean = np.array([0.2, -0.1, 0.4])
    running_var = np.array([1.5, 0.8, 1.2])
    return batch, running_mean, running_var


def _n05_pair(feedback, got, what):
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
    from .conventions import CONVENTIONS, get_convention
    from .core import batch_stats, update_running_stats

    conv = get_convention(convention)
    other = next(c for c in CONVENTIONS.values() if c.name != conv.name)
    feedback = Feedback(f"Exercise: the {conv.name} running-statistics update")
    batch, running_mean, running_var = _n05_batch()
    n = batch.shape[0]
    batch_mean, batch_var = batch_stats(batch)
    for momentum in (conv.momentum, 0.3):
        ok, got = call_safely(feedback, update, running_mean.copy(), running_var.copy(), batch.copy(),
                              momentum, what="update")
        if not ok:
            return feedback
        pair = _n05_pair(feedback, got, "update")
        if pair is None:
            return feedback
        new_mean, new_var = pair

        def variant(weight, unbiased):
            """The exponential average with this batch weight and variance estimator (typical answers)."""
            stored = batch_var * (n / (n - 1)) if unbiased else batch_var
            return (running_mean + weight * (batch_mean - running_mean),
                    running_var + weight * (stored - running_var))

        def matches(got, expected):
            return _n04_matches(got, expected, atol=1e-8)

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
    from .running import convert_momentum

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
        except (TypeError, ValueError):
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
    from .core import affine, batch_stats, normalize

    feedback = Feedback("Exercise: BN in evaluation mode")
    batch, running_mean, running_var = _n05_batch()
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
        if _n04_matches(got, expected, atol=1e-8):
            feedback.ok(f"right for {what}")
            continue
        if z.shape[0] > 1:
            mean, var = batch_stats(z)
            if _n04_matches(got, affine(normalize(z, mean, var, eps=eps), gamma, beta), atol=1e-8):
                return feedback.fail("this normalizes with the batch's own mean and variance: that is "
                                     "training mode (the classic 'forgot eval mode' bug)", hint)
        if _n04_matches(got, gamma * (z - running_mean) / np.sqrt(running_var) + beta, atol=1e-8):
            return feedback.fail("eps is missing: it belongs under the square root in evaluation mode too",
                                 hint)
        if _n04_matches(got, gamma * (z - running_mean) / (running_var + eps) + beta, atol=1e-8):
            return feedback.fail("this divides by the variance; divide by the standard deviation "
                                 "sqrt(running_var + eps)", hint)
        compare_arrays(feedback, f"y for {what}", got, expected, rtol=1e-7, atol=1e-8, hint=hint)
        return feedback
    return feedback


# ---- notebooks 06 and 07: the backward pass, training with BN --------------

__all__ += ["check_dgamma_dbeta", "check_closed_form_dz", "check_blind_upstream_gradient",  # notebook 06
            "check_bn_placement", "check_percentiles", "check_noisy_bn_conclusion", "NOISY_BN_CHOICES"]  # 07


def _n06_close(got, expected, rtol=1e-6, atol=1e-9):
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return got.shape == np.shape(expected) and np.allclose(got, expected, rtol=rtol, atol=atol)


def _n06_none(feedback, value, what):
    """Record the classic forgotten ``return``; True when ``value`` is None."""
    if value is None:
        feedback.fail(f"{what} returned None: is the return statement missing?",
                      "end the function with return ...")
        return True
    return False


def _n06_batch(seed, n, d):
    """A float64 batch with its BN cache and a random upstream gradient (for the checkers)."""
    from .core import batchnorm_forward

    rng = np.random.default_rng(seed)
    z = rng.normal(loc=rng.uniform(-3, 3, d), scale=rng.uniform(0.5, 3, d), size=(n, d))
    gamma = rng.uniform(0.5, 2.0, d)
    beta = rng.normal(size=d)
    _, cache = batchnorm_forward(z, gamma, beta, eps=1e-5)
    dy = rng.standard_normal((n, d))
    return z, gamma, cache, dy


def check_dgamma_dbeta(param_grads):
    """Exercise (notebook 06): the gradients of BN's scale and shift.

    Parameters
    ----------
    param_grads : callable
        ``param_grads(dy, z_hat) -> (dgamma, dbeta)``, with ``dy`` and
        ``z_hat`` of shape (N, D) and both results of shape (D,).

    Returns
    -------
    Feedback
        Recognises a missing sum over the batch, a sum over the wrong axis
        (or over everything), a mean instead of a sum, ``dgamma`` without
        its ``z_hat`` factor, and the two results swapped.

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    feedback = Feedback("Exercise: dgamma and dbeta")
    _, _, cache, dy = _n06_batch(6, 5, 3)
    z_hat = cache["z_hat"]
    hint = ("y = gamma·z_hat + beta for every sample, and gamma, beta are shared by the batch: "
            "add up each sample's contribution, dgamma = Σ_i dy_i·z_hat_i and dbeta = Σ_i dy_i "
            "(sum over axis 0, one number per feature)")
    ok, result = call_safely(feedback, param_grads, dy.copy(), z_hat.copy(), what="param_grads")
    if not ok or _n06_none(feedback, result, "param_grads"):
        return feedback
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return feedback.fail("param_grads should return two arrays, (dgamma, dbeta)", hint)
    dgamma, dbeta = result
    expected = {"dgamma": (dy * z_hat).sum(axis=0), "dbeta": dy.sum(axis=0)}
    if _n06_close(dgamma, expected["dbeta"]) and _n06_close(dbeta, expected["dgamma"]):
        return feedback.fail("dgamma and dbeta are swapped: beta is added (its gradient is Σ dy), "
                             "gamma multiplies z_hat (its gradient is Σ dy·z_hat)", hint)
    for name, got, product in (("dgamma", dgamma, dy * z_hat), ("dbeta", dbeta, dy)):
        if _n06_close(got, expected[name]):
            feedback.ok(f"{name} is right: one number per feature, summed over the batch")
            continue
        wrong = [
            (product, "the sum over the batch is missing: one gradient per sample, shape (N, D), "
                      "but gamma and beta have one value per feature, shape (D,)"),
            (product.sum(axis=1), "this sums over axis 1 (the features) instead of axis 0 (the samples)"),
            (product.sum(), "this sums over everything: one number, but each feature has its own parameter"),
            (product.mean(axis=0), "this is a mean over the batch; the gradient is the sum (each sample's "
                                   "loss term contributes in full)"),
        ]
        if name == "dgamma":
            wrong.append((dy.sum(axis=0), "this is Σ dy, dbeta's formula: dgamma needs the factor z_hat "
                                          "(y changes by z_hat when gamma changes by 1)"))
        else:
            wrong.append(((dy * z_hat).sum(axis=0), "this is Σ dy·z_hat, dgamma's formula: beta is simply "
                                                    "added, so its gradient is Σ dy"))
        for value, why in wrong:
            if _n06_close(got, value):
                feedback.fail(f"{name}: {why}", hint)
                break
        else:
            compare_arrays(feedback, name, got, expected[name], rtol=1e-6, atol=1e-9, hint=hint)
    return feedback


def _n06_closed_form_variants(dy, z_hat, gamma, inv_std):
    """The closed-form dz and its typical mistakes (for :func:`check_closed_form_dz`)."""
    n = dy.shape[0]
    dz_hat = dy * gamma
    s1 = dz_hat.sum(axis=0)
    s2 = (dz_hat * z_hat).sum(axis=0)
    right = inv_std / n * (n * dz_hat - s1 - z_hat * s2)
    s1_rows = dz_hat.sum(axis=1, keepdims=True)
    s2_rows = (dz_hat * z_hat).sum(axis=1, keepdims=True)
    dy_sums = (dy.sum(axis=0), (dy * z_hat).sum(axis=0))
    wrong = [
        (dz_hat * inv_std, "this treats the batch mean and variance as constants (dz = dz_hat·inv_std): "
                           "both batch terms are missing, but mu and var depend on every sample"),
        (inv_std / n * (n * dz_hat - z_hat * s2), "the − Σ dz_hat term is missing: it comes from the mean "
                                                   "(every sample moves mu)"),
        (inv_std / n * (n * dz_hat - s1), "the − z_hat·Σ(dz_hat·z_hat) term is missing: it comes from the "
                                          "variance (every sample moves var)"),
        (inv_std / n * (n * dz_hat - s1 + z_hat * s2), "the sign of the z_hat·Σ(dz_hat·z_hat) term is wrong"),
        (inv_std / n * (n * dy - dy_sums[0] - z_hat * dy_sums[1]),
         "gamma is missing: the upstream gradient of z_hat is dz_hat = dy·gamma"),
        (inv_std * (n * dz_hat - s1 - z_hat * s2), "the factor 1/N is missing (this is N times too large)"),
        ((n * dz_hat - s1 - z_hat * s2) / n, "the factor inv_std = 1/sqrt(var + eps) is missing"),
        (inv_std / n * (n * dz_hat - s1_rows - z_hat * s2_rows),
         "the sums run over axis 1 (the features); BN's statistics, and so its sums, run over axis 0"),
    ]
    return right, wrong


def check_closed_form_dz(closed_form_dz):
    """Exercise (notebook 06): BN's input gradient in closed form.

    Parameters
    ----------
    closed_form_dz : callable
        ``closed_form_dz(dy, z_hat, gamma, inv_std) -> dz`` with ``dy``,
        ``z_hat`` of shape (N, D), ``gamma`` and ``inv_std`` of shape (D,),
        returning ``dz`` of shape (N, D).

    Returns
    -------
    Feedback
        Compared with :func:`bnlab.batchnorm_backward` on two random
        batches; recognises the forgotten mean term, the forgotten variance
        term (or both), a wrong sign, a missing ``gamma``, ``1/N`` or
        ``inv_std``, and sums over the wrong axis.

    Notes
    -----
    .. math:: dz = \\frac{\\text{inv\\_std}}{N}\\Big(N\\,d\\hat z - \\sum_i d\\hat z_i
              - \\hat z \\sum_i d\\hat z_i\\,\\hat z_i\\Big), \\qquad d\\hat z = dy\\,\\gamma

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    from .core import batchnorm_backward

    feedback = Feedback("Exercise: the closed-form dz")
    hint = ("dz = (1/N)·inv_std·(N·dz_hat − Σ dz_hat − z_hat·Σ(dz_hat·z_hat)) with dz_hat = dy·gamma "
            "and the sums over axis 0")
    for seed, (n, d) in ((61, (6, 4)), (62, (9, 3))):
        _, gamma, cache, dy = _n06_batch(seed, n, d)
        z_hat, inv_std = cache["z_hat"], cache["inv_std"].reshape(d)
        ok, got = call_safely(feedback, closed_form_dz, dy.copy(), z_hat.copy(), gamma.copy(), inv_std.copy(),
                              what="closed_form_dz")
        if not ok or _n06_none(feedback, got, "closed_form_dz"):
            return feedback
        expected, _, _ = batchnorm_backward(dy, cache)
        if _n06_close(got, expected, rtol=1e-6, atol=1e-10):
            continue
        _, wrong = _n06_closed_form_variants(dy, z_hat, gamma, inv_std)
        for value, why in wrong:
            if _n06_close(got, value, rtol=1e-6, atol=1e-10):
                return feedback.fail(why, hint)
        compare_arrays(feedback, f"dz for a batch of shape ({n}, {d})", got, expected, rtol=1e-6, atol=1e-10,
                       hint=hint)
        return feedback
    feedback.ok("dz matches bnlab.batchnorm_backward on two random batches")
    return feedback.ok("Σ dz = 0 for every feature, as it must: a shift of the whole batch changes nothing")


def check_blind_upstream_gradient(make_dy):
    """Exercise (notebook 06): an upstream gradient that is not constant but still gives dz = 0.

    Parameters
    ----------
    make_dy : callable
        ``make_dy(z_hat) -> dy`` of ``z_hat``'s shape (N, D).

    Returns
    -------
    Feedback
        Passes when ``dy`` is not constant within a feature and BN's input
        gradient for it vanishes (up to eps's trace) on two batches; fails
        for all zeros, for a constant per feature (the all-ones trap itself)
        and for a ``dy`` whose ``dz`` is not zero.

    Notes
    -----
    ``dz`` is ``gamma * inv_std`` times ``dy`` minus its projection on the
    constant direction and on ``z_hat``; any ``dy = a + b * z_hat`` (per
    feature) gives ``dz = 0`` apart from a relative ``eps / (var + eps)``.

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    from .core import batchnorm_backward

    feedback = Feedback("Exercise: a gradient check that proves nothing")
    hint = ("dz removes from dy its mean and its component along z_hat (the last two terms of the closed "
            "form); try dy = a + b·z_hat with b ≠ 0")
    for seed, (n, d) in ((63, (6, 3)), (64, (10, 2))):
        _, gamma, cache, _ = _n06_batch(seed, n, d)
        ok, dy = call_safely(feedback, make_dy, cache["z_hat"].copy(), what="make_dy")
        if not ok or _n06_none(feedback, dy, "make_dy"):
            return feedback
        try:
            dy = np.asarray(dy, dtype=np.float64)
        except (TypeError, ValueError):
            return feedback.fail(f"make_dy should return numbers, got {type(dy).__name__}", hint)
        if dy.shape != (n, d):
            return feedback.fail(f"make_dy returned shape {dy.shape}; dy must have z_hat's shape {(n, d)}", hint)
        if not np.isfinite(dy).all():
            return feedback.fail("dy contains NaN or infinity", hint)
        if not np.any(dy):
            return feedback.fail("dy is all zeros: then every gradient is zero, trivially; find a non-zero dy",
                                 hint)
        if np.allclose(dy, dy[:1], rtol=1e-9, atol=1e-12):
            return feedback.fail("dy is constant within each feature: that is the all-ones trap you already "
                                 "saw; find a dy whose values differ between samples", hint)
        dz, _, _ = batchnorm_backward(dy, cache)
        scale = np.abs(dy * gamma * cache["inv_std"]).max()
        if np.abs(dz).max() > 1e-3 * scale:
            return feedback.fail(f"for this dy, dz is not zero (max |dz| = {np.abs(dz).max():.3g}): "
                                 "a gradient check with it would test something", hint)
    feedback.ok("dy varies between samples, yet dz = 0 (up to eps's trace) on two batches")
    return feedback.ok("so a gradient check needs a random dy: dy = a + b·z_hat per feature is invisible to dz")


#: Notebook 07's multiple-choice question on noisy BN (letter -> statement).
NOISY_BN_CHOICES = {
    "a": "Noisy BN trains much worse than BN: BN helps because it removes internal covariate shift.",
    "b": ("The distributions of the layer inputs keep moving under noisy BN, yet it trains about as fast "
          "as BN: reducing internal covariate shift is not what makes BN help."),
    "c": "The noise is what makes BN work, so BN trains better the more noise is added.",
    "d": "Under noisy BN the percentiles of the sigmoid inputs stay fixed, as the paper's Figure 1(c) shows.",
}
_NOISY_BN_WHY = {
    "a": ("the accuracy curves say otherwise: noisy BN is about as fast as BN and far ahead of no BN, "
          "although its layer inputs shift at every step"),
    "c": ("the experiment does not show that: noisy BN is a little behind plain BN; it shows BN's benefit "
          "survives the noise"),
    "d": "look at the noisy BN panel: its percentiles jump at every evaluation, far more than with plain BN",
}


def check_noisy_bn_conclusion(answer):
    """Exercise (notebook 07): what Santurkar et al.'s noisy BN experiment tells us.

    Parameters
    ----------
    answer : str
        One letter of :data:`NOISY_BN_CHOICES`.

    Returns
    -------
    Feedback

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    feedback = Feedback("Exercise: what noisy BN tells us")
    hint = "compare panel (a) (accuracy) with the noisy BN percentile panel"
    if not isinstance(answer, str):
        return feedback.fail(f"answer with one letter as a string, e.g. 'a', got {type(answer).__name__}", hint)
    letter = answer.strip().strip("()").strip().lower()
    if letter not in NOISY_BN_CHOICES:
        return feedback.fail(f"{answer!r} is not one of the choices {', '.join(NOISY_BN_CHOICES)}", hint)
    if letter != "b":
        return feedback.fail(f"({letter}): {_NOISY_BN_WHY[letter]}", hint)
    return feedback.ok("(b): the inputs' distributions wander, training does not suffer: Santurkar et al. "
                       "(2018) conclude that BN helps by making the loss landscape smoother, not by "
                       "fixing the distributions")


_N07_LAYER_NAMES = {
    "dense": ("dense", "linear", "fc", "fullyconnected", "matmul", "affine", "wx", "wxb", "weights"),
    "batchnorm": ("bn", "batchnorm", "batchnormalization", "batchnormalisation", "normalization", "norm"),
    "nonlinearity": ("sigmoid", "relu", "tanh", "activation", "nonlinearity", "act"),
}


def _n07_layer(name):
    key = "".join(ch for ch in str(name).lower() if ch.isalnum())
    for canonical, aliases in _N07_LAYER_NAMES.items():
        if key in aliases:
            return canonical
    return None


def check_bn_placement(block):
    """Exercise (notebook 07): the order of the layers in one hidden block of the paper's network.

    Parameters
    ----------
    block : sequence of str
        Layer names in forward order, e.g. ``["dense", "batchnorm", "sigmoid"]``
        (aliases such as ``"linear"``, ``"BN"``, ``"activation"`` are understood).

    Returns
    -------
    Feedback
        Recognises BN after the nonlinearity (later practice varies; the
        paper puts it before), BN before the dense layer, and a block without BN.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    feedback = Feedback("Exercise: where BN goes")
    hint = ("the paper normalizes x = Wu (+ b), the input of the nonlinearity: "
            "z = g(BN(Wu)), so the order is dense → BN → sigmoid")
    if isinstance(block, str) or not isinstance(block, (list, tuple)):
        return feedback.fail("give the block as a list of layer names, e.g. ['dense', 'batchnorm', 'sigmoid']",
                             hint)
    layers = [_n07_layer(name) for name in block]
    unknown = [name for name, layer in zip(block, layers) if layer is None]
    if unknown:
        return feedback.fail(f"unknown layer name(s) {unknown}: use 'dense', 'batchnorm' and 'sigmoid'", hint)
    if "batchnorm" not in layers:
        return feedback.fail("there is no BN in this block: each hidden block of the BN network has one", hint)
    if len(layers) != 3 or sorted(layers) != sorted(_N07_LAYER_NAMES):
        return feedback.fail("a hidden block has exactly three layers: a dense layer, BN and the "
                             "nonlinearity", hint)
    if layers == ["dense", "batchnorm", "nonlinearity"]:
        return feedback.ok("dense → BN → sigmoid: BN before the nonlinearity, as in the paper "
                           "(and the dense layer needs no bias: BN's beta replaces it)")
    if layers == ["dense", "nonlinearity", "batchnorm"]:
        return feedback.fail("BN after the nonlinearity: some later practice does this and it can work, but "
                             "the paper puts BN before it, where the sigmoid's input is (roughly) symmetric "
                             "and non-sparse, so normalizing it gives a stable distribution", hint)
    if layers.index("batchnorm") < layers.index("dense"):
        return feedback.fail("BN before the dense layer normalizes u, the previous layer's output; the paper "
                             "normalizes Wu, which the dense layer computes", hint)
    return feedback.fail("the nonlinearity comes last in the block: it turns the normalized values into the "
                         "block's output", hint)


def check_percentiles(percentiles):
    """Exercise (notebook 07): the 15th, 50th and 85th percentiles of one unit's input over a set of samples.

    Parameters
    ----------
    percentiles : callable
        ``percentiles(pre_activations, unit) -> ndarray of shape (3,)``:
        with ``pre_activations`` of shape (N, units), the percentiles of
        column ``unit`` (what :func:`bnlab.train.run_experiment` records).

    Returns
    -------
    Feedback
        Recognises percentiles over all units, over a row instead of a
        column, fractions passed to ``np.percentile`` (0.15 instead of 15),
        the mean and ±1 std in their place, and the wrong order.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    feedback = Feedback("Exercise: tracking the percentiles")
    hint = "np.percentile(pre_activations[:, unit], [15, 50, 85]): the column of one unit, levels in percent"
    rng = np.random.default_rng(7)
    x = rng.exponential(scale=rng.uniform(0.5, 3.0, 5), size=(200, 5)) + rng.uniform(-2, 2, 5)  # skewed
    unit = 3
    ok, got = call_safely(feedback, percentiles, x.copy(), unit, what="percentiles")
    if not ok or _n06_none(feedback, got, "percentiles"):
        return feedback
    column = x[:, unit]
    levels = [15, 50, 85]
    expected = np.percentile(column, levels)
    tolerance = 0.02 * column.std()  # other interpolation methods are fine
    wrong = [
        (np.percentile(x, levels), "these are the percentiles over all units: take the column x[:, unit]"),
        (np.percentile(x[unit], levels), "x[unit] is one sample (a row); one unit's values are the column x[:, unit]"),
        (np.percentile(column, [0.15, 0.5, 0.85]), "np.percentile takes levels in percent: 15, 50, 85 "
                                                   "(np.quantile takes 0.15, 0.5, 0.85)"),
        (np.array([column.mean() - column.std(), column.mean(), column.mean() + column.std()]),
         "these are the mean and mean ± std: they match the percentiles only for a normal distribution"),
        (expected[::-1], "the order is 15th, 50th, 85th (from low to high)"),
    ]
    try:
        got_array = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return feedback.fail(f"percentiles should return three numbers, got {type(got).__name__}", hint)
    if got_array.shape == (3,) and np.allclose(got_array, expected, rtol=0, atol=tolerance):
        return feedback.ok("the 15th, 50th and 85th percentiles of the unit's column are right")
    for value, why in wrong:
        if got_array.shape == np.shape(value) and np.allclose(got_array, value, rtol=0, atol=1e-9):
            return feedback.fail(why, hint)
    compare_arrays(feedback, "the percentiles", got_array, expected, rtol=0, atol=tolerance, hint=hint)
    return feedback
