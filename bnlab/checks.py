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
        worst = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape) if got.ndim else ()
        feedback.fail(
            f"{name} differs from the expected values (at index {worst if len(worst) != 1 else worst[0]}: "
            f"got {got[worst] + 0.0:.6g}, expected {expected[worst] + 0.0:.6g})",
            hint,
        )
        return False
    feedback.ok(f"{name} is right")
    return True


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
