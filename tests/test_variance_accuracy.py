"""bnlab's float32 variance stays accurate far from zero, where the textbook formulas do not.

N = 4096 samples of several features (standard deviations 0.03 to 10) sit at
an offset of 1e4 or 1e6, in float32. The reference is the float64 variance of
the very same float32 numbers, so only the arithmetic is being compared.
"""

from __future__ import annotations

import numpy as np
import pytest

from bnlab import BatchNorm, batch_stats, batchnorm_forward

N = 4096
STDS = np.array([1.0, 0.1, 0.5, 2.0, 10.0, 0.03])
OFFSETS = (1e4, 1e6)
TOLERANCE = 1e-4


def far_batch(offset, seed=2015):
    rng = np.random.default_rng(seed)
    return (offset + rng.standard_normal((N, STDS.size)) * STDS).astype(np.float32)


def reference(z):
    z64 = z.astype(np.float64)  # exact: every float32 is a float64
    return z64.mean(axis=0), z64.var(axis=0)


def relative_error(estimate, exact):
    return np.abs(np.asarray(estimate, dtype=np.float64) - exact) / exact


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("seed", [2015, 7])
def test_batch_stats_variance_is_accurate_far_from_zero(offset, seed):
    z = far_batch(offset, seed)
    ref_mean, ref_var = reference(z)
    mean, var = batch_stats(z)
    assert var.dtype == np.float32
    assert np.all(relative_error(var, ref_var) <= TOLERANCE)
    # the mean is as good as float32 can hold it: half an ulp of the offset, plus a little
    assert np.all(np.abs(mean - ref_mean) <= np.spacing(np.float32(offset)) / 2 + TOLERANCE * STDS)


@pytest.mark.parametrize("offset", OFFSETS)
def test_forward_pass_and_layer_use_the_accurate_variance(offset):
    z = far_batch(offset)
    _, ref_var = reference(z)
    eps = 1e-5
    y, cache = batchnorm_forward(
        z, np.ones(STDS.size, np.float32), np.zeros(STDS.size, np.float32), eps=eps
    )
    assert np.all(relative_error(cache["var"].ravel(), ref_var) <= TOLERANCE)
    # the normalized output really has the variance var / (var + eps) and mean 0
    y64 = y.astype(np.float64)
    assert np.all(relative_error(y64.var(axis=0), ref_var / (ref_var + eps)) <= TOLERANCE)
    assert np.all(np.abs(y64.mean(axis=0)) <= TOLERANCE)
    # and the layer's running variance is fed the accurate batch variance
    bn = BatchNorm(STDS.size, convention="keras", momentum=0.0, eps=eps, dtype=np.float64)
    bn.forward(z, training=True)
    assert np.all(relative_error(bn.running_var, ref_var) <= TOLERANCE)


def test_numpy_var_in_float32_fails_at_offset_1e6():
    """So the test above is not trivial: NumPy's float32 var is off by orders of magnitude."""
    z = far_batch(1e6)
    _, ref_var = reference(z)
    assert np.all(relative_error(z.var(axis=0), ref_var) > 1.0)  # every feature off by over 100%
    assert np.max(relative_error(z.var(axis=0), ref_var)) > 1e3  # the narrow ones by over 1000x
    # while bnlab, on the same numbers, is within the tolerance
    assert np.all(relative_error(batch_stats(z)[1], ref_var) <= TOLERANCE)


def test_numpy_var_in_float64_is_fine_it_is_float32_accumulation():
    z = far_batch(1e6)
    _, ref_var = reference(z)
    assert np.all(relative_error(z.astype(np.float64).var(axis=0), ref_var) < 1e-9)


def test_mean_of_squares_minus_square_of_mean_in_float32_is_wrong_at_offset_1e4():
    """E[z^2] - E[z]^2 cancels catastrophically: zero or negative 'variances', errors over 100%.

    Its error is of the order of float32's spacing at offset^2 = 1e8 (that is 8), whatever
    the variance, so every feature up to a standard deviation of 2 is ruined.
    """
    narrow = STDS <= 2.0
    negatives = 0
    for seed in (2015, 7, 0, 1, 2):
        z = far_batch(1e4, seed)
        _, ref_var = reference(z)
        naive = np.mean(z * z, axis=0) - np.mean(z, axis=0) ** 2
        assert naive.dtype == np.float32
        ruined = (naive <= 0) | (relative_error(naive, ref_var) > 1.0)
        assert np.all(ruined[narrow])
        assert np.all(np.abs(naive - ref_var) > 1.0)  # even the widest feature is off by units
        negatives += int(np.sum(naive < 0))
        # bnlab on the same numbers
        assert np.all(relative_error(batch_stats(z)[1], ref_var) <= TOLERANCE)
    assert negatives > 0  # negative variances: sqrt(var + eps) would be NaN


def test_the_same_formula_is_fine_on_centred_data():
    """The trouble is the offset, not the formula alone (the idea behind the shifted algorithm)."""
    z = far_batch(1e4)
    _, ref_var = reference(z)
    centred = z - np.float32(1e4)  # exact: Sterbenz
    naive_centred = np.mean(centred * centred, axis=0) - np.mean(centred, axis=0) ** 2
    assert np.all(relative_error(naive_centred, ref_var) < 1e-2)
