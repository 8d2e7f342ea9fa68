"""Checkers of notebook 06 (bnlab.checks.backward): right answers pass, typical mistakes get their hints."""

from __future__ import annotations

import numpy as np
import pytest
from _support import assert_fails, assert_passes, learner_bug

from bnlab import checks

# ---------------------------------------------------------------- notebook 06: dgamma, dbeta

def test_dgamma_dbeta_right():
    assert_passes(checks.check_dgamma_dbeta(lambda dy, z_hat: ((dy * z_hat).sum(axis=0), dy.sum(axis=0))))
    assert_passes(checks.check_dgamma_dbeta(lambda dy, z_hat: [np.einsum("nd,nd->d", dy, z_hat),
                                                                 list(dy.sum(axis=0))]))


@pytest.mark.parametrize("wrong, words", [
    (lambda dy, zh: (dy * zh, dy), ["sum over the batch is missing", "hint"]),
    (lambda dy, zh: ((dy * zh).sum(axis=1), dy.sum(axis=1)), ["axis 1"]),
    (lambda dy, zh: ((dy * zh).sum(), dy.sum()), ["sums over everything"]),
    (lambda dy, zh: ((dy * zh).mean(axis=0), dy.mean(axis=0)), ["mean"]),
    (lambda dy, zh: (dy.sum(axis=0), (dy * zh).sum(axis=0)), ["swapped"]),
    (lambda dy, zh: (dy.sum(axis=0), dy.sum(axis=0)), ["dgamma", "factor z_hat"]),
    (lambda dy, zh: ((dy * zh).sum(axis=0), (dy * zh).sum(axis=0)), ["dbeta", "simply added"]),
    (lambda dy, zh: ((dy * zh).sum(axis=0), 2 * dy.sum(axis=0)), ["dbeta differs"]),
    (lambda dy, zh: (dy * zh).sum(axis=0), ["two arrays"]),
    (lambda dy, zh: ("x", "y"), ["numbers"]),
])
def test_dgamma_dbeta_wrong(wrong, words):
    assert_fails(checks.check_dgamma_dbeta(wrong), *words)


def test_dgamma_dbeta_raising_and_not_callable():
    assert_fails(checks.check_dgamma_dbeta(learner_bug), "raised ZeroDivisionError", "learner bug")
    assert_fails(checks.check_dgamma_dbeta(42), "should be a function")


@pytest.mark.parametrize("checker", [checks.check_dgamma_dbeta, checks.check_closed_form_dz,
                                     checks.check_blind_upstream_gradient, checks.check_percentiles])
def test_forgotten_return_is_named(checker):
    assert_fails(checker(lambda *args: None), "returned none", "return statement")


# ---------------------------------------------------------------- notebook 06: closed-form dz

def _closed_form(dy, z_hat, gamma, inv_std):
    n = dy.shape[0]
    dz_hat = dy * gamma
    return inv_std / n * (n * dz_hat - dz_hat.sum(axis=0) - z_hat * (dz_hat * z_hat).sum(axis=0))


def test_closed_form_dz_right():
    assert_passes(checks.check_closed_form_dz(_closed_form))

    def second_form(dy, z_hat, gamma, inv_std):  # the form that reuses dbeta and dgamma
        n = dy.shape[0]
        return gamma * inv_std * (dy - (dy.sum(axis=0) + z_hat * (dy * z_hat).sum(axis=0)) / n)

    feedback = checks.check_closed_form_dz(second_form)
    assert_passes(feedback)
    assert "Σ dz = 0" in str(feedback)


def _variant(name):
    def dz(dy, z_hat, gamma, inv_std):
        n = dy.shape[0]
        dz_hat = dy * gamma
        s1, s2 = dz_hat.sum(axis=0), (dz_hat * z_hat).sum(axis=0)
        return {
            "constants": dz_hat * inv_std,
            "no mean term": inv_std / n * (n * dz_hat - z_hat * s2),
            "no var term": inv_std / n * (n * dz_hat - s1),
            "plus sign": inv_std / n * (n * dz_hat - s1 + z_hat * s2),
            "no gamma": _closed_form(dy, z_hat, np.ones_like(gamma), inv_std),
            "no 1/N": inv_std * (n * dz_hat - s1 - z_hat * s2),
            "no inv_std": (n * dz_hat - s1 - z_hat * s2) / n,
            "axis 1": inv_std / n * (n * dz_hat - dz_hat.sum(axis=1, keepdims=True)
                                     - z_hat * (dz_hat * z_hat).sum(axis=1, keepdims=True)),
            "zeros": np.zeros_like(dy),
            "transposed": _closed_form(dy, z_hat, gamma, inv_std).T,
        }[name]
    return dz


@pytest.mark.parametrize("name, words", [
    ("constants", ["both batch terms are missing"]),
    ("no mean term", ["− Σ dz_hat term is missing", "mean"]),
    ("no var term", ["variance"]),
    ("plus sign", ["sign"]),
    ("no gamma", ["gamma is missing"]),
    ("no 1/N", ["1/N"]),
    ("no inv_std", ["inv_std"]),
    ("axis 1", ["axis 1"]),
    ("zeros", ["differs"]),
    ("transposed", ["shape"]),
])
def test_closed_form_dz_wrong(name, words):
    assert_fails(checks.check_closed_form_dz(_variant(name)), *words)


def test_closed_form_dz_raising():
    assert_fails(checks.check_closed_form_dz(learner_bug), "raised ZeroDivisionError")


# ---------------------------------------------------------------- notebook 06: blind upstream gradient

@pytest.mark.parametrize("make_dy", [
    lambda z_hat: 2.0 + 3.0 * z_hat,
    lambda z_hat: -z_hat,
    lambda z_hat: np.arange(z_hat.shape[1]) * z_hat + 1.0,
])
def test_blind_upstream_gradient_right(make_dy):
    assert_passes(checks.check_blind_upstream_gradient(make_dy))


@pytest.mark.parametrize("make_dy, words", [
    (lambda z_hat: np.ones_like(z_hat), ["all-ones trap"]),
    (lambda z_hat: np.full_like(z_hat, 7.0), ["all-ones trap"]),
    (lambda z_hat: np.zeros_like(z_hat), ["all zeros"]),
    (lambda z_hat: z_hat**2, ["dz is not zero"]),
    (lambda z_hat: np.random.default_rng(0).standard_normal(z_hat.shape), ["dz is not zero"]),
    (lambda z_hat: z_hat[:, :1], ["shape"]),
    (lambda z_hat: z_hat * np.inf, ["nan or infinity"]),
    (lambda z_hat: "dy", ["numbers"]),
])
def test_blind_upstream_gradient_wrong(make_dy, words):
    assert_fails(checks.check_blind_upstream_gradient(make_dy), *words)


def test_blind_upstream_gradient_raising():
    assert_fails(checks.check_blind_upstream_gradient(learner_bug), "raised ZeroDivisionError")
