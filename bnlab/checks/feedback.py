"""What every checker shares: :class:`Feedback`, :func:`call_safely`, :func:`compare_arrays`.

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

__all__ = ["Feedback", "call_safely", "compare_arrays", "close", "missing_return", "read_choice",
           "NOT_NUMBERS"]

#: What NumPy raises when a learner's answer cannot be read as numbers (text, ``None``, a ragged
#: list, an integer too large for a float): catch these to turn the answer into feedback.
NOT_NUMBERS = (TypeError, ValueError, OverflowError)


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
        # text colours at 4.5:1 or more on white (WCAG AA): the palette's green #009E73 is 3.4:1 and
        # its vermillion #D55E00 3.9:1, so the verdict is written in darker shades of the same hues
        colour = "#007A59" if self.passed else "#A34800"
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
    except NOT_NUMBERS:
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


def close(got, expected, rtol=1e-5, atol=1e-6):
    """True when ``got`` is numbers of ``expected``'s shape and close to it (quietly)."""
    try:
        with np.errstate(all="ignore"):
            got = np.asarray(got, dtype=np.float64)
            return got.shape == np.shape(expected) and bool(np.allclose(got, expected, rtol=rtol, atol=atol))
    except NOT_NUMBERS:
        return False


def missing_return(feedback, value, what):
    """Record the classic forgotten ``return``; True when ``value`` is None."""
    if value is None:
        feedback.fail(f"{what} returned None: is the return statement missing?",
                      "end the function with return ...")
        return True
    return False


def read_choice(feedback, answer, choices, hint):
    """The letter a learner chose (``'b'``, ``'(b)'``, ``' B '``), or None after recording why it is not one.

    ``choices`` holds the valid letters (a dict or any collection of them).
    """
    if not isinstance(answer, str):
        feedback.fail(f"answer with one letter as a string, e.g. 'a', got {type(answer).__name__}", hint)
        return None
    letter = answer.strip().strip("()").strip().lower()
    if letter not in choices:
        feedback.fail(f"{answer!r} is not one of the choices {', '.join(choices)}", hint)
        return None
    return letter
