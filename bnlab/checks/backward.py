"""Exercise checkers of notebook 06: dgamma and dbeta, the closed-form dz, the all-ones upstream trap."""

from __future__ import annotations

import numpy as np

from ..core import batchnorm_backward, batchnorm_forward
from .feedback import NOT_NUMBERS, Feedback, call_safely, close, compare_arrays, missing_return

__all__ = ["check_dgamma_dbeta", "check_closed_form_dz", "check_blind_upstream_gradient"]


def _exercise_batch(seed, n, d):
    """A float64 batch with its BN cache and a random upstream gradient (for the checkers)."""

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
    _, _, cache, dy = _exercise_batch(6, 5, 3)
    z_hat = cache["z_hat"]
    hint = ("y = gamma·z_hat + beta for every sample, and gamma, beta are shared by the batch: "
            "add up each sample's contribution, dgamma = Σ_i dy_i·z_hat_i and dbeta = Σ_i dy_i "
            "(sum over axis 0, one number per feature)")
    ok, result = call_safely(feedback, param_grads, dy.copy(), z_hat.copy(), what="param_grads")
    if not ok or missing_return(feedback, result, "param_grads"):
        return feedback
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return feedback.fail("param_grads should return two arrays, (dgamma, dbeta)", hint)
    dgamma, dbeta = result
    expected = {"dgamma": (dy * z_hat).sum(axis=0), "dbeta": dy.sum(axis=0)}
    if close(dgamma, expected["dbeta"], rtol=1e-6, atol=1e-9) and close(dbeta, expected["dgamma"], rtol=1e-6, atol=1e-9):
        return feedback.fail("dgamma and dbeta are swapped: beta is added (its gradient is Σ dy), "
                             "gamma multiplies z_hat (its gradient is Σ dy·z_hat)", hint)
    for name, got, product in (("dgamma", dgamma, dy * z_hat), ("dbeta", dbeta, dy)):
        if close(got, expected[name], rtol=1e-6, atol=1e-9):
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
            if close(got, value, rtol=1e-6, atol=1e-9):
                feedback.fail(f"{name}: {why}", hint)
                break
        else:
            compare_arrays(feedback, name, got, expected[name], rtol=1e-6, atol=1e-9, hint=hint)
    return feedback


def _closed_form_variants(dy, z_hat, gamma, inv_std):
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

    feedback = Feedback("Exercise: the closed-form dz")
    hint = ("dz = (1/N)·inv_std·(N·dz_hat − Σ dz_hat − z_hat·Σ(dz_hat·z_hat)) with dz_hat = dy·gamma "
            "and the sums over axis 0")
    for seed, (n, d) in ((61, (6, 4)), (62, (9, 3))):
        _, gamma, cache, dy = _exercise_batch(seed, n, d)
        z_hat, inv_std = cache["z_hat"], cache["inv_std"].reshape(d)
        ok, got = call_safely(feedback, closed_form_dz, dy.copy(), z_hat.copy(), gamma.copy(), inv_std.copy(),
                              what="closed_form_dz")
        if not ok or missing_return(feedback, got, "closed_form_dz"):
            return feedback
        expected, _, _ = batchnorm_backward(dy, cache)
        if close(got, expected, rtol=1e-6, atol=1e-10):
            continue
        _, wrong = _closed_form_variants(dy, z_hat, gamma, inv_std)
        for value, why in wrong:
            if close(got, value, rtol=1e-6, atol=1e-10):
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

    feedback = Feedback("Exercise: a gradient check that proves nothing")
    hint = ("dz removes from dy its mean and its component along z_hat (the last two terms of the closed "
            "form); try dy = a + b·z_hat with b ≠ 0")
    for seed, (n, d) in ((63, (6, 3)), (64, (10, 2))):
        _, gamma, cache, _ = _exercise_batch(seed, n, d)
        ok, dy = call_safely(feedback, make_dy, cache["z_hat"].copy(), what="make_dy")
        if not ok or missing_return(feedback, dy, "make_dy"):
            return feedback
        try:
            dy = np.asarray(dy, dtype=np.float64)
        except NOT_NUMBERS:
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
