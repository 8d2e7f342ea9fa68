"""bnlab.widgets.base, and what every explorer promises through it (typed input, messages)."""

from __future__ import annotations

import ipywidgets
import numpy as np
import pytest
from _support import warnings_as_errors

from bnlab import widgets


def _text_boxes(explorer):
    boxes, todo = [], [explorer.widget]
    while todo:
        w = todo.pop()
        if isinstance(w, (ipywidgets.Textarea, ipywidgets.Text)):
            boxes.append(w)
        todo.extend(getattr(w, "children", ()))
    return boxes


def _explorers_with_text_boxes():
    found = []
    for name in widgets.__all__:
        cls = getattr(widgets, name)
        if isinstance(cls, type) and issubclass(cls, widgets.Explorer) and cls.__module__ != widgets.base.__name__:
            if name == "TrainingExplorer":
                continue  # no typed input (and it trains when built)
            if _text_boxes(cls()):
                found.append(cls)
    assert len(found) >= 3, found  # batch statistics, shift/scale, batch coupling at least
    return found


HUGE = ["1e308, 1, 2\n-1e308, 2, 3", "1e200, 1, 2\n-1e200, 2, 3", "1e160, 1, 2\n1e-160, 2, 3",
        "1.7e308, 1, 2\n1.7e308, 2, 3"]


@pytest.mark.parametrize("cls", _explorers_with_text_boxes(), ids=lambda c: c.__name__)
def test_huge_typed_values_give_a_message_never_a_warning(cls):
    explorer = cls()
    for box in _text_boxes(explorer):
        before = bytes(explorer.image.value)
        for text in HUGE:
            with warnings_as_errors():  # nothing a learner sees may be a warning
                box.value = text
            assert explorer.error is not None, f"{text!r} was accepted"
            assert "too large" in explorer.error
            assert "too large" in explorer.message.value
            assert bytes(explorer.image.value) == before, "the last valid picture stays"


@pytest.mark.parametrize("cls", _explorers_with_text_boxes(), ids=lambda c: c.__name__)
def test_large_but_computable_values_work_without_a_warning(cls):
    explorer = cls()
    box = _text_boxes(explorer)[0]
    with warnings_as_errors():  # nothing a learner sees may be a warning
        box.value = "1e100, 1, 2\n-1e100, 2, 3\n5e99, 0, 1"
        assert explorer.error is None, explorer.error
        box.value = "1e-100, 1, 2\n-1e-100, 2, 3"
        assert explorer.error is None, explorer.error


def test_parse_batch_refuses_values_beyond_max_abs():
    assert widgets.parse_batch("1e100, 2\n3, 4").shape == (2, 2)
    with pytest.raises(ValueError, match=r"row 2 \(line 2\): '-2e100' is too large"):
        widgets.parse_batch("1, 2\n-2e100, 4")
    np.testing.assert_array_equal(widgets.parse_batch("5, 2\n3, 4", max_abs=10), [[5, 2], [3, 4]])
    with pytest.raises(ValueError, match="within ±10"):
        widgets.parse_batch("11, 2\n3, 4", max_abs=10)


def test_an_overflow_inside_compute_is_a_message(monkeypatch):
    explorer = widgets.ShiftScaleExplorer()
    state = explorer.z.copy()
    monkeypatch.setattr(explorer, "compute", lambda: {"z": np.array([1e200]) ** 2})
    with warnings_as_errors():  # nothing a learner sees may be a warning
        assert explorer.update() is False
    assert "too large to compute" in explorer.error
    np.testing.assert_array_equal(explorer.z, state)
