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


# ---------------------------------------------------------------- accessibility: names and text alternatives

def _explorer_classes():
    return [getattr(widgets, name) for name in widgets.__all__
            if isinstance(getattr(widgets, name), type) and issubclass(getattr(widgets, name), widgets.Explorer)
            and getattr(widgets, name).__module__ != widgets.base.__name__]


def test_fourteen_explorers():
    assert len(_explorer_classes()) == 14, [c.__name__ for c in _explorer_classes()]


@pytest.fixture(scope="module")
def every_explorer(digits):
    """One of each explorer (the two that train: not yet run)."""
    built = {}
    for cls in _explorer_classes():
        if cls is widgets.TrainingExplorer:
            built[cls.__name__] = cls(steps=100, run=False, data=digits)
        elif cls is widgets.BatchSizeExplorer:
            built[cls.__name__] = cls(run=False, data=digits)
        else:
            built[cls.__name__] = cls()
    return built


def _tree(widget):
    todo, found = [widget], []
    while todo:
        w = todo.pop(0)
        found.append(w)
        todo.extend(getattr(w, "children", ()))
    return found


#: What a keyboard user can operate (an IntProgress is shown, not operated, but is named too).
_CONTROLS = (ipywidgets.Button, ipywidgets.ToggleButtons, ipywidgets.Dropdown, ipywidgets.Textarea,
             ipywidgets.Text, ipywidgets.Checkbox, ipywidgets.IntSlider, ipywidgets.FloatSlider,
             ipywidgets.FloatLogSlider, ipywidgets.SelectionSlider, ipywidgets.IntProgress)
_SLIDERS = (ipywidgets.IntSlider, ipywidgets.FloatSlider, ipywidgets.FloatLogSlider, ipywidgets.SelectionSlider)


def _name(control):
    """What names ``control``: its description (a Button: its description or tooltip)."""
    for attribute in ("description", "tooltip"):
        text = getattr(control, attribute, None)
        if isinstance(text, str) and text.strip():
            return text.strip()
    return ""


@pytest.mark.parametrize("name", [c.__name__ for c in _explorer_classes()])
def test_every_control_has_an_accessible_name(every_explorer, name):
    controls = [w for w in _tree(every_explorer[name].widget) if isinstance(w, _CONTROLS)]
    assert len(controls) >= 2, f"{name}: {controls}"
    for control in controls:
        assert _name(control), f"{name}: a {type(control).__name__} without a description: {control}"
        if isinstance(control, ipywidgets.ToggleButtons):  # each button is named by its label
            assert all(str(label).strip() for label in control._options_labels), control
        if isinstance(control, ipywidgets.Button):
            assert control.description.strip() or control.tooltip, f"{name}: an icon-only button without a tooltip"


@pytest.mark.parametrize("name", [c.__name__ for c in _explorer_classes()])
def test_explorer_box_is_marked_and_carries_the_accessibility_script(every_explorer, name):
    """The box carries the class the browser test scans, and the script that names slider handles (and more)."""
    box = every_explorer[name].widget
    assert widgets.base.EXPLORER_CLASS in box._dom_classes
    scripts = [o for w in box.children if isinstance(w, ipywidgets.Output) for o in w.outputs]
    assert len(scripts) == 1 and scripts[0]["data"]["application/javascript"] == widgets.base.ACCESSIBILITY_JS
    assert box.children[-1].layout.display == "none"  # invisible
    # no label titled "null" (ipywidgets 8 writes a tooltip of None as that word)
    assert not [w for w in _tree(box) if "tooltip" in w.trait_names() and w.tooltip is None]


@pytest.mark.parametrize("name", [c.__name__ for c in _explorer_classes()])
def test_the_figure_has_a_text_alternative(every_explorer, name):
    e = every_explorer[name]
    text = e.describe()
    assert isinstance(text, str) and len(text) > 40 and text != e.title, text
    assert e.image.tooltip == " ".join(text.split())  # the <img>'s title (ipywidgets 8)
    assert e.image.description == ""  # what ipywidgets 8 needs before it writes the title
    assert isinstance(e.image, ipywidgets.Image)
    if ipywidgets.__version__.startswith("7."):  # Colab's front end: a caption read by screen readers
        assert e.image.tooltip in e.figure_text.value.replace("&#x27;", "'").replace("&quot;", '"')
    else:
        assert e.figure_text.value == ""


@pytest.mark.parametrize("name", [c.__name__ for c in _explorer_classes()
                                  if not issubclass(c, widgets.RunExplorer)])
def test_the_text_alternative_follows_the_state(name, digits):
    """Moving some slider changes the figure's description (and the image's title with it)."""
    e = getattr(widgets, name)()
    changed = []
    for slider in [w for w in _tree(e.widget) if isinstance(w, _SLIDERS) and not w.disabled]:
        before = e.describe()
        if isinstance(slider, ipywidgets.SelectionSlider):
            options = list(slider.options)
            slider.value = options[-1] if slider.value != options[-1] else options[0]
        else:
            top = slider.base ** slider.max if isinstance(slider, ipywidgets.FloatLogSlider) else slider.max
            bottom = slider.base ** slider.min if isinstance(slider, ipywidgets.FloatLogSlider) else slider.min
            slider.value = top if slider.value != top else bottom
        assert e.error is None, e.error
        if e.describe() != before:
            changed.append(slider.description)
            assert e.image.tooltip == " ".join(e.describe().split())
    assert changed, f"{name}: no slider changed the description"


def _contrast_on_white(colour):
    """WCAG 2.1's contrast ratio of ``colour`` (#RRGGBB) against white."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


def test_message_text_contrast_is_wcag_aa():
    import re

    from bnlab.checks import Feedback

    assert abs(_contrast_on_white("#D55E00") - 3.87) < 0.01  # the palette's vermillion: too light for text
    for kind, colour in widgets.base.TEXT_COLOURS.items():
        assert _contrast_on_white(colour) >= 4.5, (kind, colour)
        assert f"color:{colour}" in widgets.base.message_html("x", kind)
    for passed in (True, False):
        feedback = Feedback("check")
        feedback.ok("a line") if passed else feedback.fail("a line")
        text_colours = re.findall(r"(?<!-)color:\s*(#[0-9A-Fa-f]{6})", feedback._repr_html_())
        assert text_colours and all(_contrast_on_white(c) >= 4.5 for c in text_colours), text_colours
