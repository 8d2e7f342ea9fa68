"""Exercise checkers of notebook 09 (bnlab.checks.family): right answers pass, each mistake gets its hint."""

from __future__ import annotations

import numpy as np
import pytest
from _support import assert_fails, assert_passes, learner_bug

from bnlab import checks, plots

# ---------------------------------------------------------------- group norm by reshaping

def _grouped(view_of, axis, eps_where="inside", reshape_back=True):
    """A learner's group norm: x viewed by ``view_of(N, C, G)``, normalized over ``axis``."""
    def group_norm(x, num_groups, eps):
        n, c = x.shape[:2]
        view = x.reshape(view_of(n, c, num_groups))
        mean = view.mean(axis=axis, keepdims=True)
        if eps_where == "inside":
            y = (view - mean) / np.sqrt(view.var(axis=axis, keepdims=True) + eps)
        elif eps_where == "outside":
            y = (view - mean) / (view.std(axis=axis, keepdims=True) + eps)
        else:
            y = (view - mean) / view.std(axis=axis, keepdims=True)
        return y.reshape(x.shape) if reshape_back else y
    return group_norm


RIGHT = _grouped(lambda n, c, g: (n, g, c // g, -1), (2, 3))


def test_group_norm_right_answer_passes():
    assert_passes(checks.check_group_norm(RIGHT))


def test_group_norm_with_bnlab_passes():
    import bnlab

    assert_passes(checks.check_group_norm(lambda x, g, eps: bnlab.group_norm(x, g, eps=eps)))


@pytest.mark.parametrize("learner, words", [
    (_grouped(lambda n, c, g: (n, c // g, g, -1), (2, 3)),
     ["(N, C/G, G) view", "groups of G", "(N, G, C/G, H*W)"]),
    (_grouped(lambda n, c, g: (n, c // g, g, -1), (1, 3)), ["(N, C/G, G) view", "c % G"]),
    (_grouped(lambda n, c, g: (n, g, c // g, -1), (2, 3), eps_where="none"), ["eps is missing", "inside"]),
    (_grouped(lambda n, c, g: (n, g, c // g, -1), (2, 3), eps_where="outside"), ["outside the square root"]),
    (_grouped(lambda n, c, g: (n, -1), (1,)), ["layer norm", "axis=(2, 3)"]),
    (_grouped(lambda n, c, g: (n, c, -1), (2,)), ["instance norm", "positions only"]),
    (_grouped(lambda n, c, g: (n, g, c // g, -1), (0, 2, 3)), ["batch axis N"]),
    (_grouped(lambda n, c, g: (n, g, c // g, -1), (3,)), ["instance norm"]),  # the same thing
    (_grouped(lambda n, c, g: (n, g, c // g, -1), (2,)), ["channels only"]),
    (_grouped(lambda n, c, g: (n, g, c // g, -1), (2, 3), reshape_back=False), ["reshape it back"]),
])
def test_group_norm_mistakes_get_their_hint(learner, words):
    assert_fails(checks.check_group_norm(learner), *words)


def test_group_norm_other_failures_are_feedback():
    assert_fails(checks.check_group_norm(learner_bug), "raised ZeroDivisionError")
    assert_fails(checks.check_group_norm(lambda x, g, eps: None), "returned None")
    assert_fails(checks.check_group_norm(lambda x, g, eps: x[:1]), "expected (2, 6, 3, 3)")
    assert_fails(checks.check_group_norm(lambda x, g, eps: x * np.nan), "NaN")
    assert_fails(checks.check_group_norm(lambda x, g, eps: RIGHT(x, g, eps) + 0.1), "differs")
    assert_fails(checks.check_group_norm(lambda x, g, eps: "y"), "should return an array")
    assert_fails(checks.check_group_norm("not a function"), "should be a function")


# ---------------------------------------------------------------- which values share statistics

SHAPE, VOXEL = (4, 6, 5), (1, 2, 0)


def test_shared_values_right_answers_pass():
    right = np.zeros(SHAPE, dtype=bool)
    right[1, 2:4, :] = True
    assert_passes(checks.check_shared_values(right))
    assert "channels 2–3 of sample 1" in str(checks.check_shared_values(right))
    assert_passes(checks.check_shared_values(right.astype(int)))  # 0/1 is fine
    for method in plots.FAMILY_METHODS:
        assert_passes(checks.check_shared_values(plots.sharing_mask(method, SHAPE, (3, 5, 4), 2),
                                                 method=method, voxel=(3, 5, 4), num_groups=2))


def _right():
    return plots.sharing_mask("group", SHAPE, VOXEL, 3)


def _edited(change):
    mask = _right()
    change(mask)
    return mask


@pytest.mark.parametrize("mask, words", [
    (plots.sharing_mask("layer", SHAPE, VOXEL), ["Layer Norm group"]),
    (plots.sharing_mask("instance", SHAPE, VOXEL), ["Instance Norm group"]),
    (plots.sharing_mask("batch", SHAPE, VOXEL), ["Batch Norm group"]),
    (plots.sharing_mask("group", SHAPE, VOXEL, 2), ["groups of 3 channels", "C/G = 2"]),
    (_edited(lambda m: m.__setitem__(VOXEL, False)), ["itself is not marked"]),
    (_edited(lambda m: m.__setitem__((0, 2, 0), True)), ["other samples"]),
    (_edited(lambda m: m.__setitem__((1, 3, 4), False)), ["not every position"]),
    (_edited(lambda m: m.__setitem__((1, 4, slice(None)), True)), ["channels marked: 2, 3, 4", "2–3"]),
    (np.zeros((4, 6)), ["shape (4, 6)"]),
    (np.full(SHAPE, 0.5), ["True/False"]),
    (None, ["mask is None"]),
])
def test_shared_values_mistakes_get_their_hint(mask, words):
    assert_fails(checks.check_shared_values(mask), *words)


# ---------------------------------------------------------------- batch size one

def test_batch_size_one_choice():
    assert_passes(checks.check_batch_size_one("b"))
    assert_passes(checks.check_batch_size_one(" (B) "))
    assert_fails(checks.check_batch_size_one("a"), "refuses a batch of one", "collapsing")
    assert_fails(checks.check_batch_size_one("c"), "momentum only changes")
    assert_fails(checks.check_batch_size_one("d"), "work with a batch of one")
    assert_fails(checks.check_batch_size_one("e"), "not one of the choices")
    assert_fails(checks.check_batch_size_one(2), "one letter")
    assert set(checks.BATCH_SIZE_ONE_CHOICES) == {"a", "b", "c", "d"}
