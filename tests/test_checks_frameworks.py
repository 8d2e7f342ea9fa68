"""Checkers of notebook 11 (bnlab.checks.frameworks): right answers pass, typical mistakes get their hints."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from _support import assert_fails, assert_passes, learner_bug

import bnlab
from bnlab import checks

# ---------------------------------------------------------------- the validation loop


def _eval_loop(model, batches):
    return np.concatenate([model.forward(x, training=False) for x in batches])


def _eval_loop_as_list(model, batches):
    return [model.forward(x, training=False) for x in batches]


def _train_loop(model, batches):  # the bug as written in the notebook
    return np.concatenate([model.forward(x, training=True) for x in batches])


def _train_loop_on_a_copy(model, batches):  # statistics safe, outputs still batch-dependent
    model = copy.deepcopy(model)
    return np.concatenate([model.forward(x, training=True) for x in batches])


def _peeks_in_training_mode(model, batches):
    model.forward(batches[0], training=True)
    return _eval_loop(model, batches)


def _transposed(model, batches):
    return _eval_loop(model, batches).T


def _no_return(model, batches):
    _eval_loop(model, batches)


def _skips_lone_batches(model, batches):
    return np.concatenate([model.forward(x, training=False) for x in batches if len(x) > 1])


@pytest.mark.parametrize("right", [_eval_loop, _eval_loop_as_list])
def test_evaluation_loop_right(right):
    assert_passes(checks.check_evaluation_loop(right))


@pytest.mark.parametrize(("wrong", "words"), [
    (_train_loop, ["training-mode outputs", "depends on the other samples", "training=False"]),
    (_train_loop_on_a_copy, ["training-mode outputs"]),
    (_peeks_in_training_mode, ["changed the model's running statistics", "500 → 501"]),
    (_transposed, ["shape (3, 25)", "expected (25, 3)"]),
    (_no_return, ["returned None"]),
    (_skips_lone_batches, ["last one of 1 sample", "shape (24, 3)"]),
    (learner_bug, ["raised ZeroDivisionError"]),
    ("not a function", ["should be a function"]),
])
def test_evaluation_loop_wrong(wrong, words):
    assert_fails(checks.check_evaluation_loop(wrong), *words)


def test_evaluation_loop_crash_on_the_lone_batch_gets_its_hint():
    def refuses_one(model, batches):
        for x in batches:
            if len(x) == 1:  # a training-mode forward sneaked in: fine for big batches, refused for one
                copy.deepcopy(model).forward(x, training=True)
        return _eval_loop(model, batches)

    assert_fails(checks.check_evaluation_loop(refuses_one), "raised ValueError", "evaluation mode it is fine")


# ---------------------------------------------------------------- the last batch


def _drop_last(x, batch_size):
    return [x[i * batch_size:(i + 1) * batch_size] for i in range(len(x) // batch_size)]


def _loader(x, batch_size):  # the bug: the incomplete last batch kept, whatever its size
    return [x[start:start + batch_size] for start in range(0, len(x), batch_size)]


def _drop_only_lone(x, batch_size):
    batches = _loader(x, batch_size)
    return batches[:-1] if len(batches[-1]) == 1 else batches


def _merge_lone(x, batch_size):
    batches = _loader(x, batch_size)
    if len(batches[-1]) == 1:
        batches[-2:] = [np.vstack(batches[-2:])]
    return batches


def _as_array(x, batch_size):
    return np.stack(_drop_last(x, batch_size))


@pytest.mark.parametrize("right", [_drop_last, _as_array])
def test_training_batches_right(right):
    feedback = checks.check_training_batches(right)
    assert_passes(feedback)
    assert len(feedback.lines) == 1


@pytest.mark.parametrize("acceptable", [_drop_only_lone, _merge_lone])
def test_training_batches_other_fixes_pass_with_a_remark(acceptable):
    feedback = checks.check_training_batches(acceptable)
    assert_passes(feedback)
    assert "drop_last=True is the usual fix" in str(feedback)


@pytest.mark.parametrize(("wrong", "words"), [
    (_loader, ["[32, 32, 32, 1]", "a batch of one", "drop_last=True"]),
    (lambda x, b: _drop_last(x, b)[:-1], ["33 sample(s) left out"]),
    (lambda x, b: _drop_last(x, b)[1:], ["not the rows of x in order"]),
    (lambda x, b: _drop_last(x[::-1], b), ["not the rows of x in order"]),
    (lambda x, b: [x], ["only an incomplete last batch should go"]),
    (lambda x, b: [], ["no batches at all"]),
    (lambda x, b: "batches", ["list of 2-D arrays"]),
    (lambda x, b: None, ["returned None"]),
    (learner_bug, ["raised ZeroDivisionError"]),
])
def test_training_batches_wrong(wrong, words):
    assert_fails(checks.check_training_batches(wrong), *words)


# ---------------------------------------------------------------- frozen BN


@pytest.mark.parametrize("answer", ["b, c, f", "bcf", "(b) (c) (f)", ["b", "c", "f"], {"F", "C", "B"}])
def test_frozen_bn_right(answer):
    assert_passes(checks.check_frozen_bn(answer))


@pytest.mark.parametrize(("answer", "words"), [
    ("a, b, c, f", ["(a) moves the running statistics", "pytorch#86590"]),
    ("b, c, d, f", ["(d) moves", "keras#4762"]),
    ("b, c, e, f", ["(e) moves", "pytorch convention"]),
    ("b, f", ["(c) leaves them alone too", "inference mode"]),
    ("c, f", ["(b) leaves them alone too", "bn.eval()"]),
    ("b, c", ["(f) leaves them alone too"]),
    ("b, c, f, z", ["z: not among the choices"]),
    ("", ["no letter given"]),
    (3, ["answer with letters"]),
])
def test_frozen_bn_wrong(answer, words):
    assert_fails(checks.check_frozen_bn(answer), *words)


def test_frozen_bn_choices_follow_bnlab():
    """The bnlab choices are decided by running BatchNorm: (e) moves, (f) does not."""
    for convention, moves in (("pytorch", True), ("keras", False)):
        bn = bnlab.BatchNorm(2, convention=convention)
        bn.trainable = False
        bn.forward(np.array([[1.0, 2.0], [3.0, 5.0]]), training=True)
        assert (not np.array_equal(bn.running_mean, np.zeros(2))) == moves
    assert set(checks.FROZEN_BN_CHOICES) == set("abcdef")


# ---------------------------------------------------------------- momentum, both ways


def _with_translate(momentum, source):
    if momentum is None:
        return None
    t = bnlab.translate(source, momentum)
    return t.keras["momentum"] if source == "pytorch" else t.pytorch["momentum"]


def _by_hand(momentum, source):
    return None if momentum is None else 1 - momentum


@pytest.mark.parametrize("right", [_with_translate, _by_hand])
def test_momentum_translation_right(right):
    assert_passes(checks.check_momentum_translation(right))


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda m, s: m, ["unchanged", "d2l's mix-up", "weight 0.9 instead of 0.1"]),
    (lambda m, s: 1 - m, ["raised TypeError", "return None for it"]),
    (lambda m, s: 0.0 if m is None else 1 - m, ["returned 0.0", "cumulative average"]),
    (lambda m, s: None, ["should return a number"]),
    (lambda m, s: round(1 - m, 1), ["returned 0", "expected 0.01"]),
    (learner_bug, ["raised ZeroDivisionError"]),
    (lambda m, s: 10**400, ["too large for a float"]),
])
def test_momentum_translation_wrong(wrong, words):
    assert_fails(checks.check_momentum_translation(wrong), *words)


def test_feedback_renders_html_for_every_checker():
    for feedback in (checks.check_evaluation_loop(_train_loop), checks.check_training_batches(_drop_last),
                     checks.check_frozen_bn("a"), checks.check_momentum_translation(_by_hand)):
        assert "<div" in feedback._repr_html_()
