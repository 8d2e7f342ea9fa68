"""Checkers of notebook 07 (bnlab.checks.training): right answers pass, typical mistakes get their hints."""

from __future__ import annotations

import numpy as np
import pytest
from _support import assert_fails, assert_passes, learner_bug

from bnlab import checks

# ---------------------------------------------------------------- notebook 07: where BN goes

@pytest.mark.parametrize("block", [
    ["dense", "batchnorm", "sigmoid"],
    ("Linear", "BN", "activation"),
    ["Dense", "batch_norm", "ReLU"],
])
def test_bn_placement_right(block):
    feedback = checks.check_bn_placement(block)
    assert_passes(feedback)
    assert "before the nonlinearity" in str(feedback)


@pytest.mark.parametrize("block, words", [
    (["dense", "sigmoid", "batchnorm"], ["after the nonlinearity", "before"]),
    (["batchnorm", "dense", "sigmoid"], ["before the dense layer"]),
    (["dense", "sigmoid"], ["no bn"]),
    (["dense", "batchnorm", "sigmoid", "dropout"], ["unknown", "dropout"]),
    (["dense", "batchnorm", "batchnorm"], ["exactly three layers"]),
    (["sigmoid", "dense", "batchnorm"], ["nonlinearity comes last"]),
    ("dense, batchnorm, sigmoid", ["list of layer names"]),
    (None, ["list of layer names"]),
])
def test_bn_placement_wrong(block, words):
    assert_fails(checks.check_bn_placement(block), *words)


# ---------------------------------------------------------------- notebook 07: percentiles

@pytest.mark.parametrize("percentiles", [
    lambda x, unit: np.percentile(x[:, unit], [15, 50, 85]),
    lambda x, unit: np.quantile(x[:, unit], [0.15, 0.5, 0.85]),
    lambda x, unit: np.percentile(x[:, unit], [15, 50, 85], method="nearest"),
    lambda x, unit: [float(np.percentile(x[:, unit], q)) for q in (15, 50, 85)],
])
def test_percentiles_right(percentiles):
    assert_passes(checks.check_percentiles(percentiles))


@pytest.mark.parametrize("percentiles, words", [
    (lambda x, unit: np.percentile(x, [15, 50, 85]), ["over all units"]),
    (lambda x, unit: np.percentile(x[unit], [15, 50, 85]), ["one sample (a row)"]),
    (lambda x, unit: np.percentile(x[:, unit], [0.15, 0.5, 0.85]), ["in percent"]),
    (lambda x, unit: np.array([x[:, unit].mean() - x[:, unit].std(), x[:, unit].mean(),
                               x[:, unit].mean() + x[:, unit].std()]), ["mean ± std"]),
    (lambda x, unit: np.percentile(x[:, unit], [85, 50, 15]), ["order"]),
    (lambda x, unit: np.percentile(x[:, unit], [10, 50, 90]), ["differs"]),
    (lambda x, unit: np.percentile(x[:, unit], [15, 85]), ["shape"]),
    (lambda x, unit: np.quantile(x[:, unit], [15, 50, 85]), ["raised ValueError"]),
    (lambda x, unit: None, ["returned none", "return statement"]),
    (lambda x, unit: "15, 50, 85", ["numbers"]),
    (learner_bug, ["raised ZeroDivisionError"]),
])
def test_percentiles_wrong(percentiles, words):
    assert_fails(checks.check_percentiles(percentiles), *words)


# ---------------------------------------------------------------- notebook 07: noisy BN

@pytest.mark.parametrize("answer", ["b", "B", " (b) "])
def test_noisy_bn_right(answer):
    feedback = checks.check_noisy_bn_conclusion(answer)
    assert_passes(feedback)
    assert "smoother" in str(feedback)


@pytest.mark.parametrize("answer, words", [
    ("a", ["(a)", "accuracy curves"]),
    ("c", ["(c)", "survives the noise"]),
    ("d", ["(d)", "jump"]),
    ("e", ["not one of the choices"]),
    (2, ["one letter"]),
])
def test_noisy_bn_wrong(answer, words):
    assert_fails(checks.check_noisy_bn_conclusion(answer), *words)


def test_noisy_bn_choices_are_documented():
    assert set(checks.NOISY_BN_CHOICES) == {"a", "b", "c", "d"}
    assert "covariate shift" in checks.NOISY_BN_CHOICES["b"]
