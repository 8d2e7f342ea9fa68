"""Test helpers shared by the test modules (import as ``from _support import ...``)."""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings

import pytest

#: Set by .ci/run: a missing optional tool (torch, keras, chromium, ...) fails instead of skipping.
REQUIRE_ALL = os.environ.get("BNLAB_REQUIRE_ALL", "") not in ("", "0")


def skip_or_fail(reason):
    """Skip on a learner's machine; fail in CI, where everything must be present."""
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (BNLAB_REQUIRE_ALL is set: CI must have it)", pytrace=False)
    pytest.skip(reason)


def require_module(name, hint=""):
    """Import ``name`` or skip (fail under BNLAB_REQUIRE_ALL) with a clear reason."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        skip_or_fail(f"{name} is not installed ({exc}){': ' + hint if hint else ''}")


@contextlib.contextmanager
def warnings_as_errors():
    """Every warning raised inside is an error (nothing a learner sees may be a warning).

    Except one a learner never sees: ipywidgets 7 (Colab's) creating its comms
    through ``ipykernel.comm.Comm``, which a newer ipykernel marks deprecated.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=r"The `ipykernel\.comm\.Comm` class has been deprecated",
                                category=DeprecationWarning)
        yield


def image_bytes(explorer):
    """A copy of the explorer's current PNG (to compare before and after a move)."""
    return bytes(explorer.image.value)


# ---------------------------------------------------------------- exercise checkers

def learner_bug(*_args):
    """A learner's function that raises: checkers must turn it into feedback."""
    raise ZeroDivisionError("learner bug")


def assert_fails(feedback, *words):
    """``feedback`` is a failed Feedback whose text names every one of ``words`` (any case)."""
    from bnlab.checks import Feedback

    assert isinstance(feedback, Feedback)
    assert not feedback.passed, str(feedback)
    text = str(feedback).lower()
    for word in words:
        assert word.lower() in text, f"{word!r} not in:\n{feedback}"


def assert_passes(feedback):
    """``feedback`` is a passed Feedback."""
    from bnlab.checks import Feedback

    assert isinstance(feedback, Feedback)
    assert feedback.passed, str(feedback)
    assert "all checks passed" in str(feedback)


@contextlib.contextmanager
def running_server(make, what, attempts=3):
    """A started server from ``make()`` (fresh free port each try), stopped afterwards.

    The browser tests' servers (JupyterLab, Notebook 7, Voila) choose a free
    port before binding it, so another process may take it in between: try
    again, and fail naming ``what`` after ``attempts`` tries.
    """
    server = None
    for attempt in range(attempts):
        server = make()
        try:
            server.start()
            break
        except RuntimeError as exc:
            server.stop()
            if attempt == attempts - 1:
                pytest.fail(f"{what} did not start: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def headless_chromium(shots_dir):
    """Headless Chromium (Debian's, through playwright) for a test module; ``shots_dir`` is made."""
    from browser_support import CHROMIUM, launch_chromium
    from playwright.sync_api import sync_playwright

    os.makedirs(shots_dir, exist_ok=True)
    with sync_playwright() as p:
        try:
            chromium = launch_chromium(p)
        except Exception as exc:  # noqa: BLE001 - report any launch failure clearly
            pytest.fail(f"headless Chromium ({CHROMIUM}) did not start: {exc}", pytrace=False)
        try:
            yield chromium
        finally:
            chromium.close()
