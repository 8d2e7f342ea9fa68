"""The notebooks in Jupyter Notebook 7 (``jupyter notebook``, the ``notebook`` package) in headless Chromium.

The same steps as ``tests/test_browser.py`` (JupyterLab), with the same machinery
(``tests/browser_support.py``, ``LabServer(app="notebook")``): for every numbered notebook
but the index, open it at ``/notebooks/<path>``, wait for an idle kernel, clear the
outputs, Run All Cells, check that every code cell ran and none shows an error,
then move the first explorer's slider with the keyboard and check that its image or
HTML changed.

The keyboard route differs. Notebook 7 handles its keyboard shortcuts while a key
press travels down to the focused element (Lumino's capture phase; JupyterLab
starts the same application with ``bubblingKeydown: true`` and lets the focused
element answer first). A slider handle is not a text field, so Notebook 7's
command-mode shortcuts take the arrow keys before the slider sees them
(ArrowRight: ``notebook:move-cursor-heading-below-or-expand``, ArrowUp/Down: the
cell cursor) and the focus leaves the slider. Nothing in Python can stop that. What
works in Notebook 7, JupyterLab and ipywidgets 7.7 alike is the number beside the
slider (its editable readout): it is a text field, so the notebook's shortcuts keep
off it; type a value and press Enter. This test moves the slider that way, and also
presses an arrow key on the handle to record (and warn, should Notebook 7 change)
what the arrow keys do there.

    OMP_NUM_THREADS=1 python -m pytest tests/test_browser_notebook7.py -q
"""

from __future__ import annotations

import os
import re
import time
import warnings

import pytest
from _support import headless_chromium, require_module, running_server, skip_or_fail
from browser_support import (
    ARTIFACTS,
    CHROMIUM,
    PANEL,
    ROOT,
    VIEWPORT,
    LabServer,
    drive_notebook,
    wait_for,
)

pytestmark = pytest.mark.browser

NOTEBOOKS = ROOT / "notebooks"
FOUND = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if not p.name.startswith("00_"))
SHOTS = ARTIFACTS / "notebook7"

#: JavaScript (on a slider): what typing into its readout needs to know.
JS_SLIDER_INFO = """(s) => {
    const h = s.querySelector('.noUi-handle'), r = s.querySelector('.widget-readout');
    return {text: r ? r.innerText.trim() : '', now: h.getAttribute('aria-valuenow'),
            min: h.getAttribute('aria-valuemin'), max: h.getAttribute('aria-valuemax'),
            label: (s.querySelector('.widget-label') || {}).innerText || ''};
}"""

#: JavaScript: the index of the active cell (the notebook's cell cursor).
JS_ACTIVE_CELL = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')).findIndex(c => c.classList.contains('jp-mod-active'))"""


@pytest.fixture(scope="module")
def notebook7():
    """A Jupyter Notebook 7 server on a free loopback port serving the repository (module scope)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        skip_or_fail(
            f"{CHROMIUM} is missing: install Debian's chromium package "
            "(apt-get install chromium), or set BNLAB_CHROMIUM to a Chromium binary, "
            "to run the browser test"
        )
    require_module(
        "playwright.sync_api",
        "pip install playwright (the browser itself comes from "
        f"{CHROMIUM}; do not run 'playwright install')",
    )
    notebook = require_module("notebook", "pip install 'notebook>=7.6'")
    if int(notebook.__version__.split(".")[0]) < 7:
        skip_or_fail(f"notebook {notebook.__version__} is not Jupyter Notebook 7: pip install 'notebook>=7.6'")
    with running_server(lambda: LabServer(ROOT, app="notebook"), "Jupyter Notebook 7") as server:
        yield server


@pytest.fixture(scope="module")
def browser(notebook7):
    with headless_chromium(SHOTS) as chromium:
        yield chromium


def typed_value(text, now, low, high):
    """What to type into a slider's readout to move it by about a tenth of its range.

    ``text`` is the readout ("2.00", "16"); ``now``, ``low`` and ``high`` are the
    handle's aria values: the value itself, or its exponent on a log slider.
    """
    value, now, low, high = float(text), float(now), float(low), float(high)
    up = now < high
    decimals = len(text.split(".")[1]) if re.fullmatch(r"-?\d+\.\d+", text) else 0
    if abs(value - now) <= 1e-9 * max(1.0, abs(value)):  # a linear slider
        new = min(max(value + (high - low) / 10 * (1 if up else -1), low), high)
    else:  # a log slider: its handle moves along the exponent
        new = value * 2 if up else value / 2
    typed = f"{new:.{decimals}f}" if "e" not in text else f"{new:.3g}"
    if float(typed) == value:
        typed = f"{value + (1 if up else -1) * 10.0**-decimals:.{decimals}f}"
    return typed


def type_into_readout(page, box, key, fail):
    """Move a slider of the explorer ``box`` with the keyboard: into its readout, type a value, Enter.

    The first slider with an editable readout (a SelectionSlider's is not editable).
    """
    sliders = box.locator(".widget-slider")
    slider = None
    for k in range(sliders.count()):
        readout = sliders.nth(k).locator(".widget-readout")
        if readout.count() and readout.first.get_attribute("contenteditable") == "true":
            slider = sliders.nth(k)
            break
    if slider is None:
        fail("no slider of the explorer has an editable readout to type a value into")
    readout = slider.locator(".widget-readout").first
    info = slider.evaluate(JS_SLIDER_INFO)
    typed = typed_value(info["text"], info["now"], info["min"], info["max"])
    readout.focus()
    focused = page.evaluate("() => document.activeElement && document.activeElement.className")
    if "widget-readout" not in (focused or ""):
        fail(f"the slider's readout did not take the keyboard focus (focused: {focused!r})")
    page.keyboard.press("Control+A")  # inside a text field: selects its text only
    page.keyboard.type(typed)
    page.keyboard.press("Enter")
    try:
        wait_for(lambda: readout.inner_text().strip() != info["text"], 10, "the readout to change")
    except TimeoutError as exc:
        fail(f"{exc}: typed {typed!r} into the {info['label']!r} readout")
    return f"{info['label']!r}: typed {typed!r} into its readout ({info['text']} -> {readout.inner_text().strip()})"


def probe_arrow_keys(page):
    """Press an arrow key on the first explorer's focused slider handle: does the slider move?"""
    box = page.locator(PANEL + " .jp-OutputArea-output", has=page.locator(".widget-slider")).first
    handle = box.locator(".widget-slider .noUi-handle").first
    box.scroll_into_view_if_needed(timeout=15_000)
    now, high = handle.evaluate("h => [h.getAttribute('aria-valuenow'), h.getAttribute('aria-valuemax')]")
    key = "ArrowLeft" if float(now) >= float(high) else "ArrowRight"
    handle.focus()
    cell_before = page.evaluate(JS_ACTIVE_CELL)
    page.keyboard.press(key)
    time.sleep(0.5)
    return {
        "key": key,
        "handle_moved": handle.get_attribute("aria-valuenow") != now,
        "cell_cursor_moved": page.evaluate(JS_ACTIVE_CELL) != cell_before,
        "focus_left_the_handle": "noUi-handle" not in (
            page.evaluate("() => document.activeElement && document.activeElement.className") or ""
        ),
    }


def test_every_slider_can_be_typed_into():
    """In Notebook 7 a slider moves from the keyboard only through its readout (see above):
    no bnlab slider may hide it, and none may be a SelectionSlider, whose readout takes typing
    and ignores it (ipywidgets 8) or cannot be typed into (7)."""
    offenders = []
    for path in sorted((ROOT / "bnlab" / "widgets").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in (r"readout\s*=\s*False", r"\bSelection(Range)?Slider\("):
            offenders += [f"{path.name}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert not offenders, offenders


def test_typed_value():
    assert typed_value("2.00", "1.0", "-3", "3") == "4.00"  # log slider, base 2
    assert typed_value("0.90", "0.9", "0.5", "0.999") == "0.95"
    assert typed_value("16", "16", "2", "128") == "29"
    assert typed_value("128", "128", "2", "128") == "115"  # at its maximum: down
    assert typed_value("0", "0", "0", "3") == "1"  # a small integer range


@pytest.mark.parametrize("notebook", FOUND, ids=[p.stem for p in FOUND])
def test_notebook_runs_in_notebook7(notebook, notebook7, browser):
    rel = notebook.relative_to(ROOT).as_posix()
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(30_000)
    start = time.monotonic()
    try:
        result = drive_notebook(page, notebook7, rel, SHOTS, move=type_into_readout)
        arrows = probe_arrow_keys(page)
    finally:
        page.close()
        notebook7.shutdown_kernels_of(rel)
        left = [(k["id"], k.get("execution_state")) for k in notebook7.api("GET", "/api/kernels") or []]
    seconds = time.monotonic() - start
    assert not left, f"{rel}: kernels still running after its shutdown: {left}"
    print(
        f"\n{notebook.name} (Notebook 7): {seconds:.1f} s, {result['cells']} code cells, "
        f"run all {result['times']['run_all']:.1f} s; {result['moved']}; "
        f"image changed: {result['image_changed']}, html changed: {result['html_changed']} "
        f"(answered: {result['answered']}); {arrows['key']} on the handle: "
        f"slider moved {arrows['handle_moved']}, cell cursor moved {arrows['cell_cursor_moved']}; "
        f"known page errors: {len(result['known_page_errors'])}"
    )
    assert result["image_changed"] or result["html_changed"]
    assert not result["page_errors"], f"{rel}: page errors {result['page_errors']}"
    if arrows["handle_moved"]:
        warnings.warn(
            f"{rel}: in Notebook 7 the arrow keys now move a focused slider: README's keyboard "
            "note and this test's readout route may be out of date",
            stacklevel=1,
        )
