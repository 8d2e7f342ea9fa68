"""Exercise checkers of notebook 11: the classic BN bugs fixed, and momenta translated."""

from __future__ import annotations

import copy
import numbers

import numpy as np

from ..conventions import translate
from ..layers import BatchNorm, Dense, ReLU, Sequential
from .feedback import NOT_NUMBERS, Feedback, call_safely, close, missing_return

__all__ = ["check_evaluation_loop", "check_training_batches", "check_frozen_bn", "FROZEN_BN_CHOICES",
           "check_momentum_translation"]


# --------------------------------------------------------------------------- the evaluation loop

def _trained_model():
    """A small classifier with BN whose running statistics look trained (not the initial 0 and 1)."""
    rng = np.random.default_rng(11)
    model = Sequential([Dense(6, 5, "he", rng=rng), BatchNorm(5, convention="pytorch"), ReLU(),
                        Dense(5, 3, "he", rng=rng)])
    bn = model[1]
    bn.running_mean = rng.normal(0.0, 1.0, 5)
    bn.running_var = rng.uniform(0.5, 2.0, 5)
    bn.gamma, bn.beta = rng.uniform(0.5, 1.5, 5), rng.normal(0.0, 0.3, 5)
    bn.num_batches_tracked = 500
    return model


def _as_scores(got):
    """The learner's result as one array: a list of per-batch score arrays is joined (friendly)."""
    if isinstance(got, (list, tuple)) and got and all(isinstance(part, np.ndarray) for part in got):
        try:
            return np.concatenate(got)
        except ValueError:
            return got
    return got


def check_evaluation_loop(evaluate):
    """Exercise (notebook 11): fix a validation loop that runs BN in training mode.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(model, batches) -> scores``: ``model`` a
        :class:`bnlab.layers.Sequential` with a BatchNorm layer, ``batches``
        a list of input arrays (N_i, 6); ``scores`` the model's outputs for
        every sample, batch after batch, shape (sum N_i, 3) (a list of
        per-batch arrays is accepted too).

    Returns
    -------
    Feedback
        Recognises training mode (outputs normalized with each batch's own
        statistics), running statistics moved by the loop, a crash on the
        last batch of one sample, and a missing return.

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    feedback = Feedback("Exercise: the validation loop")
    hint = ("evaluation must use the running statistics and change nothing: "
            "model.forward(x, training=False) (PyTorch: model.eval(); Keras: model(x, training=False))")
    rng = np.random.default_rng(3)
    model = _trained_model()
    x = rng.normal(0.5, 1.5, size=(25, 6))
    cases = (("batches of 8, 8 and 9", [x[:8], x[8:16], x[16:]]),
             ("batches of 8, 8, 8 and a last one of 1 sample", [x[:8], x[8:16], x[16:24], x[24:]]))
    bn = model[1]
    saved = (bn.running_mean.copy(), bn.running_var.copy(), bn.num_batches_tracked)
    for what, batches in cases:
        mine = copy.deepcopy(model)
        ok, got = call_safely(feedback, evaluate, mine, [b.copy() for b in batches], what="evaluate")
        if not ok:
            if len(batches[-1]) == 1 and "one value per feature" in feedback.lines[-1][1]:
                feedback.hint = ("a batch of one is refused in training mode (no variance to estimate); in "
                                 "evaluation mode it is fine: " + hint)
            return feedback
        if missing_return(feedback, got, "evaluate"):
            return feedback
        scores = _as_scores(got)
        expected = np.concatenate([model.forward(b, training=False) for b in batches])
        trained = copy.deepcopy(model)
        train_mode = (np.concatenate([trained.forward(b, training=True) for b in batches])
                      if min(len(b) for b in batches) > 1 else None)  # training mode refuses a batch of one
        if (train_mode is not None and close(scores, train_mode, rtol=1e-7, atol=1e-9)
                and not close(scores, expected, rtol=1e-7, atol=1e-9)):
            return feedback.fail(f"{what}: these are training-mode outputs: each batch is normalized with its "
                                 "own mean and variance, so a sample's score depends on the other samples in "
                                 "its batch", hint)
        moved = mine[1]
        if not (np.array_equal(moved.running_mean, saved[0]) and np.array_equal(moved.running_var, saved[1])
                and moved.num_batches_tracked == saved[2]):
            return feedback.fail(f"{what}: the loop changed the model's running statistics "
                                 f"(num_batches_tracked {saved[2]} → {moved.num_batches_tracked}): a forward "
                                 "pass in training mode updates them, even just to look", hint)
        if np.shape(scores) != expected.shape:
            return feedback.fail(f"{what}: the scores have shape {np.shape(scores)}, expected {expected.shape} "
                                 "(one row of 3 scores per sample, batch after batch)", hint)
        if not close(scores, expected, rtol=1e-7, atol=1e-9):
            return feedback.fail(f"{what}: the scores differ from the evaluation-mode outputs", hint)
        feedback.ok(f"{what}: the scores are the evaluation-mode outputs")
    return feedback.ok("the running statistics are untouched, and the last batch of one works too")


# --------------------------------------------------------------------------- the last batch

def _batches_of(got):
    """The learner's batches as a list of 2-D arrays, or None."""
    if isinstance(got, np.ndarray) and got.ndim == 3:
        return list(got)
    if not isinstance(got, (list, tuple)):
        return None
    parts = []
    for part in got:
        try:
            part = np.asarray(part, dtype=np.float64)
        except NOT_NUMBERS:
            return None
        if part.ndim != 2:
            return None
        parts.append(part)
    return parts


def check_training_batches(make_batches):
    """Exercise (notebook 11): cut a training set into batches with no batch of one.

    Parameters
    ----------
    make_batches : callable
        ``make_batches(x, batch_size) -> list of arrays``: consecutive
        batches of the rows of ``x`` (shape (N, D)), in order, as a data loader
        with ``drop_last=True`` cuts them.

    Returns
    -------
    Feedback
        Passes ``drop_last=True`` (every batch complete); also passes, with a
        remark, keeping an incomplete last batch of at least two samples or
        merging a lone sample into the batch before. Recognises a batch of
        one sample (the bug), samples lost or reordered, and too many dropped.

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    feedback = Feedback("Exercise: batches for training")
    hint = ("the last batch of 97 samples in batches of 32 holds 1 sample, which BN refuses in training "
            "mode: drop the incomplete last batch, as DataLoader(..., drop_last=True) does")
    remarks = set()
    for n, batch_size in ((97, 32), (97, 8), (96, 32), (10, 3), (11, 4)):
        x = np.arange(2.0 * n).reshape(n, 2)
        what = f"{n} samples in batches of {batch_size}"
        ok, got = call_safely(feedback, make_batches, x.copy(), batch_size, what="make_batches")
        if not ok or missing_return(feedback, got, "make_batches"):
            return feedback
        batches = _batches_of(got)
        if batches is None:
            return feedback.fail(f"{what}: make_batches should return a list of 2-D arrays (rows of x), got "
                                 f"{type(got).__name__}", hint)
        if not batches:
            return feedback.fail(f"{what}: no batches at all", hint)
        sizes = [len(b) for b in batches]
        if any(size == 1 for size in sizes):
            return feedback.fail(f"{what}: batch sizes {sizes}: a batch of one sample, which training-mode BN "
                                 "refuses (PyTorch: \"Expected more than 1 value per channel when "
                                 "training\")", hint)
        if any(size == 0 for size in sizes) or any(b.shape[1:] != (2,) for b in batches):
            return feedback.fail(f"{what}: batch shapes {[b.shape for b in batches]}: each batch holds rows "
                                 "of x", hint)
        rows = np.concatenate(batches)
        if not np.array_equal(rows, x[:len(rows)]):
            return feedback.fail(f"{what}: the batches are not the rows of x in order (samples lost, repeated "
                                 "or reordered)", hint)
        left_out = n - len(rows)
        if left_out >= batch_size or max(sizes) > batch_size + 1:
            return feedback.fail(f"{what}: batch sizes {sizes} and {left_out} sample(s) left out: only an "
                                 "incomplete last batch should go", hint)
        if sizes == [batch_size] * (n // batch_size):
            continue  # drop_last=True
        remarks.add("an incomplete last batch of two or more samples kept, or a lone sample merged into the "
                    "batch before: BN accepts it (drop_last=True is the usual fix and keeps every batch "
                    "the same size)")
    feedback.ok("no batch of one sample, the rows in order, at most the incomplete last batch left out")
    for remark in sorted(remarks):
        feedback.ok(remark)
    return feedback


# --------------------------------------------------------------------------- frozen BN

FROZEN_BN_CHOICES = {
    "a": "PyTorch: bn.weight.requires_grad_(False) and bn.bias.requires_grad_(False), then model.train() "
         "and training steps",
    "b": "PyTorch: the same, plus bn.eval() on the BN layers after every model.train()",
    "c": "Keras 3: layer.trainable = False on the BN layer, then model.fit(...)",
    "d": "Keras 2 (2017, keras#4762): layer.trainable = False on the BN layer, then model.fit(...)",
    "e": "bnlab: BatchNorm(..., convention=\"pytorch\") with bn.trainable = False, then "
         "bn.forward(x, training=True)",
    "f": "bnlab: BatchNorm(..., convention=\"keras\") with bn.trainable = False, then "
         "bn.forward(x, training=True)",
}
_FROZEN_WHY = {
    "a": ("requires_grad_(False) stops the gradients of gamma and beta, not the running statistics: every "
          "forward in training mode still updates them (pytorch#86590)"),
    "b": "bn.eval() makes the BN layers use their running statistics and leave them alone, gradients or not",
    "c": "Keras 3 runs a layer with trainable=False in inference mode, even inside fit",
    "d": ("Keras 2's trainable=False froze gamma and beta only; fit kept updating the moving statistics "
          "(keras#4762; Keras 3 changed this)"),
    "e": "bnlab's pytorch convention models requires_grad_(False): training mode still updates the statistics",
    "f": "bnlab's keras convention models Keras 3: trainable=False means inference mode",
}


def _bnlab_leaves_alone(convention):
    """Whether a frozen bnlab BatchNorm of this convention keeps its running statistics in training mode."""
    bn = BatchNorm(2, convention=convention)
    bn.trainable = False
    before = bn.running_mean.copy()
    bn.forward(np.array([[1.0, 2.0], [3.0, 5.0]]), training=True)
    return bool(np.array_equal(bn.running_mean, before))


def _letters(answer):
    if isinstance(answer, str):
        return {ch for ch in answer.lower() if ch.isalpha()}
    try:
        return {str(item).strip().strip("()").lower() for item in answer}
    except TypeError:
        return None


def check_frozen_bn(answer):
    """Exercise (notebook 11): which "frozen" BN settings leave the running statistics alone in training.

    Parameters
    ----------
    answer : str or iterable of str
        The letters of :data:`FROZEN_BN_CHOICES` that leave the running
        statistics unchanged while the model trains, e.g. ``"a, d"`` or
        ``{"a", "d"}``.

    Returns
    -------
    Feedback
        Explains each letter wrongly picked or missed. The bnlab choices are
        decided by running :class:`bnlab.BatchNorm`.

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    feedback = Feedback("Exercise: a frozen BN that stays frozen")
    right = {"b", "c"}
    right |= {letter for letter, convention in (("e", "pytorch"), ("f", "keras"))
              if _bnlab_leaves_alone(convention)}
    letters = _letters(answer)
    if letters is None:
        return feedback.fail(f"answer with letters, e.g. \"a, d\", got {type(answer).__name__}",
                             "list every choice that leaves the running statistics alone")
    unknown = sorted(letters - set(FROZEN_BN_CHOICES))
    if unknown:
        return feedback.fail(f"{', '.join(unknown)}: not among the choices {', '.join(FROZEN_BN_CHOICES)}",
                             "list every choice that leaves the running statistics alone")
    if not letters:
        return feedback.fail("no letter given", "list every choice that leaves the running statistics alone")
    for letter in sorted(FROZEN_BN_CHOICES):
        if letter in letters and letter not in right:
            feedback.fail(f"({letter}) moves the running statistics: {_FROZEN_WHY[letter]}",
                          "only gradients stop with requires_grad_(False) or Keras 2's trainable=False; the "
                          "statistics stop in evaluation / inference mode")
        elif letter in right and letter not in letters:
            feedback.fail(f"({letter}) leaves them alone too: {_FROZEN_WHY[letter]}",
                          "inference mode is what stops the statistics: bn.eval(), Keras 3's "
                          "trainable=False, bnlab's keras convention")
        elif letter in right:
            feedback.ok(f"({letter}): {_FROZEN_WHY[letter]}")
    return feedback


# --------------------------------------------------------------------------- momentum, both ways

def check_momentum_translation(translate_momentum):
    """Exercise (notebook 11): a BN momentum from one framework to the other, cumulative included.

    Parameters
    ----------
    translate_momentum : callable
        ``translate_momentum(momentum, source) -> momentum``: ``source`` is
        ``"pytorch"`` or ``"keras"``, ``momentum`` a number in that
        framework's meaning, or None with ``source="pytorch"`` (PyTorch's
        cumulative average). Returns the other framework's momentum with the
        same effect, or None when it has none.

    Returns
    -------
    Feedback
        Recognises the number copied unchanged (d2l-ai/d2l-en#2213), a number
        returned for PyTorch's cumulative average (Keras has none), and a
        crash on None.

    Introduced in ``notebooks/11_frameworks_and_pitfalls.ipynb``.
    """
    feedback = Feedback("Exercise: momentum from one framework to the other")
    hint = ("a new batch gets the weight momentum in PyTorch and 1 − momentum in Keras: "
            "bnlab.translate(source, momentum) knows it; PyTorch's momentum=None has no Keras equivalent")
    cases = [(0.1, "pytorch"), (0.99, "keras"), (0.9, "keras"), (0.01, "pytorch"), (0.5, "pytorch"),
             (0.0, "keras"), (1.0, "pytorch")]
    for momentum, source in cases:
        t = translate(source, momentum)
        expected = t.keras["momentum"] if source == "pytorch" else t.pytorch["momentum"]
        other = "Keras" if source == "pytorch" else "PyTorch"
        ok, got = call_safely(feedback, translate_momentum, momentum, source, what="translate_momentum")
        if not ok:
            return feedback
        if got is None or isinstance(got, bool) or not isinstance(got, numbers.Real):
            return feedback.fail(f"translate_momentum({momentum:g}, {source!r}) should return a number, got "
                                 f"{got!r}", hint)
        try:
            got = float(got)
        except NOT_NUMBERS:  # an integer too large for a float
            return feedback.fail(f"translate_momentum({momentum:g}, {source!r}) returned a number too large "
                                 "for a float: a momentum lies between 0 and 1", hint)
        if abs(got - expected) <= 1e-9:
            continue
        if abs(got - momentum) <= 1e-9:
            return feedback.fail(f"translate_momentum({momentum:g}, {source!r}) returned {momentum:g} "
                                 f"unchanged: {other} would give a new batch the weight "
                                 f"{1 - t.batch_weight:g} instead of {t.batch_weight:g} (d2l's mix-up)", hint)
        return feedback.fail(f"translate_momentum({momentum:g}, {source!r}) returned {float(got):.6g}, "
                             f"expected {expected:g}", hint)
    feedback.ok("0.1 ↔ 0.9, 0.99 → 0.01, 0.01 → 0.99, 0.5 → 0.5, 0 ↔ 1: the same weight for a new batch")
    ok, got = call_safely(feedback, translate_momentum, None, "pytorch", what="translate_momentum")
    if not ok:
        feedback.hint = ("momentum=None is PyTorch's cumulative average (each batch weighted 1/k); Keras has "
                         "no such setting: return None for it")
        return feedback
    if got is not None:
        return feedback.fail(f"translate_momentum(None, 'pytorch') returned {got!r}: PyTorch's momentum=None "
                             "is a cumulative average (the k-th batch weighted 1/k), which no fixed Keras "
                             "momentum reproduces", "return None when the other framework has no equivalent")
    return feedback.ok("None (PyTorch's cumulative average) → None: Keras has no equivalent")
