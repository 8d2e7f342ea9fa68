"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits():
    """The digits split every training test uses (loaded once)."""
    from bnlab.datasets import load_digits_split

    return load_digits_split(0)
