"""Exercise checkers of notebooks 01-03 (the forward pass): statistics, normalization, scale and shift."""

from __future__ import annotations

import numpy as np

from ..core import affine, batch_stats, batchnorm_forward, normalize
from ..data import SEED_SCALE, SEED_SHIFT, random_batch, seed_batch
from .feedback import NOT_NUMBERS, Feedback, call_safely, close, compare_arrays

__all__ = [
    "check_batch_stats", "check_stable_variance", "check_normalize",
    "check_normalized_variance", "check_undo_bn", "check_bias_absorbed", "BIAS_EXERCISE",
]


#: The dense layer's bias in notebook 03's exercise: z = x @ W + b, then BN.
BIAS_EXERCISE = np.array([0.3, -2.0, 5.0])


def _pair(feedback, result, names, hint):
    """Unpack a learner's ``(a, b)`` result, or record why it cannot be."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        got = type(result).__name__ if not isinstance(result, (tuple, list)) else f"{len(result)} values"
        feedback.fail(f"your function should return two things, {names}; it returned {got}", hint)
        return None
    return result


def _exercise_batch():
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

    feedback = Feedback("Exercise: batch mean and variance per feature")
    hint = ("BN takes one mean and one variance per feature (column), over the samples: "
            "z.mean(axis=0), z.var(axis=0) (population variance, ddof=0)")
    z = _exercise_batch()
    z_given = z.copy()
    ran, result = call_safely(feedback, batch_stats_fn, z_given)
    if not ran:
        return feedback
    if not np.array_equal(z_given, z):
        feedback.fail("your function changed the batch z in place",
                      "compute new arrays (z.mean(...)) instead of modifying z")
        return feedback
    pair = _pair(feedback, result, "(mean, var)", hint)
    if pair is None:
        return feedback
    mean, var = pair
    expected_mean, expected_var = batch_stats(z)
    n = z.shape[0]
    if close(mean, z.mean(axis=1)):
        feedback.fail(f"mean has shape ({n},): one value per sample, i.e. axis=1; BN wants one per "
                      f"feature, shape ({z.shape[1]},): axis=0", hint)
    elif close(mean, z.mean()):
        feedback.fail("mean is a single number (the whole batch's mean): give an axis, axis=0", hint)
    else:
        compare_arrays(feedback, "mean", mean, expected_mean, hint=hint)
    if close(var, z.var(axis=1)) or close(var, z.var(axis=1, ddof=1)):
        feedback.fail(f"var has shape ({n},): one value per sample, i.e. axis=1; use axis=0", hint)
    elif close(var, z.var()) or close(var, z.var(ddof=1)):
        feedback.fail("var is a single number (the whole batch's variance): give an axis, axis=0", hint)
    elif close(var, z.var(axis=0, ddof=1)):
        feedback.fail(f"var is the sample variance (ddof=1, divides by N - 1 = {n - 1}); BN normalizes "
                      f"with the population variance (ddof=0, divides by N = {n})", hint)
    elif close(var, z.std(axis=0)):
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
        except NOT_NUMBERS:
            return feedback.fail(f"for {what} your function returned {type(var).__name__}, not numbers",
                                 hint)
        if var.shape != reference.shape:
            return feedback.fail(f"for {what} the variance has shape {var.shape}, expected "
                                 f"{reference.shape} (one per feature: axis=0)", hint)
        if close(var, z.astype(np.float64).var(axis=0, ddof=1), rtol=1e-3, atol=0):
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
    except NOT_NUMBERS:
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
    if close(z_hat[:, varying], wrong["no_eps"][:, varying], rtol=1e-9, atol=0):
        return feedback.fail("eps is missing: with eps = 1e-2 the result must be a little smaller", hint)
    for key, message in (("var", "you divided by the variance; divide by the standard deviation "
                                 "sqrt(var + eps)"),
                         ("outside", "eps is added outside the square root: sqrt(var) + eps"),
                         ("no_mean", "the mean is not subtracted: (z - mean) first")):
        if close(z_hat[:, varying], wrong[key][:, varying], rtol=1e-9, atol=0):
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
        except NOT_NUMBERS:
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
        except NOT_NUMBERS:
            return feedback.fail(f"{name} should be numbers, got {type(value).__name__}", hint)
        if array.shape != (3,):
            return feedback.fail(f"{name} has shape {array.shape}, expected (3,): one per feature", hint)
        arrays.append(array)
    gamma, beta = arrays

    def near(a, b):
        return close(a, b, rtol=1e-7, atol=1e-9)

    if near(gamma, expected_beta) and near(beta, expected_gamma):
        return feedback.fail("gamma and beta are swapped: gamma scales, beta shifts", hint)
    if near(gamma, np.sqrt(var_z + eps)) or near(beta, mean_z):
        feedback.fail("these are the statistics of z; the batch here is z' = 2·z + 10, whose mean and "
                      "variance are different", hint)
        return feedback
    gamma_wrong = [
        (np.sqrt(var), "gamma = sqrt(var) forgets eps: BN divided by sqrt(var + eps)"),
        (var + eps, "gamma is the variance; it needs the square root, sqrt(var + eps)"),
        (var, "gamma is the variance; it needs the square root, sqrt(var + eps)"),
        (1 / np.sqrt(var + eps), "gamma = 1 / sqrt(var + eps) divides again; multiply back instead"),
    ]
    if near(gamma, expected_gamma):
        feedback.ok("gamma = sqrt(var + eps) is right")
    else:
        for candidate, message in gamma_wrong:
            if near(gamma, candidate):
                feedback.fail(message, hint)
                break
        else:
            compare_arrays(feedback, "gamma", gamma, expected_gamma, rtol=1e-7, atol=1e-9, hint=hint)
    if near(beta, -expected_beta):
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

    feedback = Feedback("Exercise: the bias before BN")
    hint = ("BN subtracts the batch mean: the mean of z + b is mean(z) + b, so b cancels "
            "before beta is added")
    seed = seed_batch()
    z, gamma, beta = (x.astype(np.float64) for x in seed)
    b = BIAS_EXERCISE
    try:
        got = np.asarray(beta_without_bias, dtype=np.float64)
    except NOT_NUMBERS:
        return feedback.fail(f"beta should be numbers, got {type(beta_without_bias).__name__}", hint)
    if got.shape != (3,):
        return feedback.fail(f"beta has shape {got.shape}, expected (3,): one per feature", hint)
    if close(got, beta + b, rtol=0, atol=1e-6):
        return feedback.fail("beta + b would add the bias after BN, where it was never felt: "
                             "BN removed it", hint)
    if close(got, beta - b, rtol=0, atol=1e-6):
        return feedback.fail("beta - b compensates for a bias that BN already removed", hint)
    if not compare_arrays(feedback, "beta", got, beta, rtol=0, atol=1e-6, hint=hint):
        return feedback
    y_with_bias, _ = batchnorm_forward(z + b, gamma, beta, eps=seed.eps)
    y_without, _ = batchnorm_forward(z, gamma, got, eps=seed.eps)
    compare_arrays(feedback, "BN's output without the bias (same as with it)", y_without, y_with_bias,
                   rtol=1e-9, atol=1e-9, hint=hint)
    return feedback
