"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits():
    """The digits split every training test uses (loaded once)."""
    from bnlab.datasets import load_digits_split

    return load_digits_split(0)


@pytest.fixture(autouse=True)
def normal_mode():
    """Every test starts in normal (not projector) mode, whatever BNLAB_PROJECTOR says, and leaves it so."""
    from bnlab.plots import theme

    theme.set_projector(False)
    yield
    theme.set_projector(False)
