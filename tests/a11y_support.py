"""Accessibility checks of the explorers in a real browser: axe-core scans and keyboard use.

Used by ``tests/test_accessibility.py``, on top of ``tests/browser_support.py``
(its JupyterLab server, Chromium and Run All). Kept separate so the scan can be
run by hand, printing every finding of every explorer::

    python tests/a11y_support.py notebooks/04_shift_scale_invariance.ipynb ...

axe-core comes bundled with ``axe-playwright-python`` (nothing is downloaded at
run time). Scans are limited to bnlab's own outputs: each explorer's box
(``.bnlab-explorer``, the class :meth:`bnlab.widgets.base.Explorer.layout`
gives it), never JupyterLab's own interface, which has open findings of its
own (jupyterlab#16888, jupyterlab#16890).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

from browser_support import (
    ARTIFACTS,
    KERNEL_IDLE,
    PANEL,
    ROOT,
    VIEWPORT,
    LabServer,
    kernel_status_text,
    launch_chromium,
    open_and_run_all,
    wait_for,
)

#: WCAG 2.1 levels A and AA, nothing else (no best-practice rules).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
#: Impacts that fail the test; "moderate" and "minor" findings are reported, not failed.
BLOCKING = ("serious", "critical")

#: The class every explorer's outer box carries (``Explorer.layout``).
EXPLORER_CLASS = "bnlab-explorer"
#: Before that class existed (the baseline): the outermost widget box of an output.
ANY_WIDGET_OUTPUT = ".jp-OutputArea-output > .jupyter-widgets"

#: Which explorers each notebook shows, in order (what the test expects to find).
EXPLORERS = {
    "01_batch_statistics": ["BatchStatsExplorer"],
    "02_normalization": ["NormalizationExplorer"],
    "03_scale_and_shift": ["ScaleShiftExplorer"],
    "04_shift_scale_invariance": ["ShiftScaleExplorer"],
    "05_running_statistics": ["TrainEvalExplorer", "RunningStatsExplorer"],
    "06_backward_pass": ["BatchCouplingExplorer"],
    "07_training_with_bn": ["TrainingExplorer"],
    "08_conv_batchnorm": ["ConvBatchNormExplorer"],
    "09_normalization_family": ["NormalizationFamilyExplorer", "BatchSizeExplorer"],
    "10_inference": ["ShiftExplorer"],
    "11_frameworks_and_pitfalls": ["TranslatorExplorer", "PitfallExplorer"],
}

#: Marks the boxes found on the page (``data-bnlab-a11y="k"``) so axe can be pointed at one.
MARK = "data-bnlab-a11y"


def mark_explorers(page, selector=None):
    """Give every explorer box on show a ``data-bnlab-a11y`` index; returns how many there are."""
    selector = selector or f"{PANEL} .{EXPLORER_CLASS}"
    return page.evaluate(
        """([selector, mark]) => {
            const boxes = Array.from(document.querySelectorAll(selector))
                .filter(b => !b.parentElement.closest(selector));  // outermost only
            boxes.forEach((b, k) => b.setAttribute(mark, String(k)));
            return boxes.length;
        }""",
        [selector, MARK],
    )


def box_selector(k):
    return f"[{MARK}='{k}']"


def _findings(items):
    return [{
        "id": v["id"], "impact": v["impact"], "help": v["help"], "helpUrl": v.get("helpUrl", ""),
        "tags": [t for t in v.get("tags", []) if t.startswith("wcag")],
        "nodes": [{"target": n.get("target"), "html": n.get("html", "")[:300],
                   "summary": (n.get("failureSummary") or "").strip()} for n in v["nodes"]],
    } for v in items]


def axe_scan(page, k, review=False):
    """axe-core's WCAG 2.1 A/AA violations inside explorer box ``k`` (see :func:`mark_explorers`).

    Returns a list of dicts: ``id``, ``impact``, ``help``, ``helpUrl``, ``nodes``
    (each ``target`` and ``html``, and axe's ``summary`` of what to fix). With
    ``review``, returns ``(violations, incomplete)``: the second list holds what
    axe could not decide and leaves to a person (e.g. the contrast of text over
    a background it cannot compute).
    """
    from axe_playwright_python.sync_playwright import Axe

    options = dict(AXE_OPTIONS, resultTypes=["violations", "incomplete"]) if review else AXE_OPTIONS
    response = Axe().run(page, context={"include": [[box_selector(k)]]}, options=options).response
    violations = _findings(response["violations"])
    return (violations, _findings(response.get("incomplete", []))) if review else violations


def count_by_rule(violations):
    """``{"rule (impact)": nodes}`` of a scan."""
    return {f"{v['id']} ({v['impact']})": len(v["nodes"]) for v in violations}


def describe_violations(violations):
    """Readable lines: rule, impact, help, then every node (target, html, what axe says to fix)."""
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v['helpUrl']}]")
        for node in v["nodes"]:
            lines.append(f"    {node['target']}: {node['html'][:160]}")
            if node["summary"]:
                lines.append("      " + node["summary"].replace("\n", "\n      ")[:400])
    return "\n".join(lines)


# ---------------------------------------------------------------- the keyboard

#: JavaScript (on an explorer box): mark its keyboard controls in DOM order and describe them.
#: A control: a slider handle, a button, a select, a text area or text box, a checkbox.
JS_CONTROLS = """(box) => {
    const sel = '[role="slider"], button, select, textarea, input';
    const controls = Array.from(box.querySelectorAll(sel)).filter(e => e.getClientRects().length > 0);
    return controls.map((e, k) => {
        e.setAttribute('data-bnlab-control', String(k));
        const widget = e.closest('.jupyter-widgets:not(button)') || e;
        const label = widget.querySelector('.widget-label');
        let kind = e.tagName.toLowerCase();
        if (e.getAttribute('role') === 'slider') kind = 'slider';
        else if (kind === 'input') kind = (e.type || 'text');
        else if (kind === 'button' && e.closest('.widget-toggle-buttons')) kind = 'toggle';
        const disabled = e.disabled || e.hasAttribute('disabled')
            || !!e.closest('[disabled]') || e.getAttribute('aria-disabled') === 'true';
        return {index: k, kind: kind, disabled: disabled,
                name: (e.getAttribute('aria-label') || '').trim(),
                label: label ? label.textContent.trim() : '',
                text: (e.textContent || '').trim().slice(0, 80),
                title: e.getAttribute('title') || ''};
    });
}"""

#: JavaScript: the state of control ``k`` a key press should change.
JS_CONTROL_STATE = """(box, k) => {
    const e = box.querySelector(`[data-bnlab-control="${k}"]`);
    if (!e) return null;
    // aria-valuenow is rounded to one decimal by noUiSlider: a step of 0.01 does not show in it
    if (e.getAttribute('role') === 'slider') return e.getAttribute('aria-valuetext') + ' ' + e.getAttribute('aria-valuenow');
    if (e.type === 'checkbox') return String(e.checked);
    if (e.tagName === 'BUTTON' && e.closest('.widget-toggle-buttons'))
        return Array.from(e.parentElement.querySelectorAll('button')).map(b => b.classList.contains('mod-active')).join();
    return String(e.value);
}"""

#: JavaScript: which control (its data-bnlab-control index) has the focus, -1 for another element
#: inside the box, null outside it.
JS_FOCUSED = """(box) => {
    const a = document.activeElement;
    if (!a || !box.contains(a)) return null;
    const c = a.closest('[data-bnlab-control]');
    return c && box.contains(c) ? Number(c.getAttribute('data-bnlab-control')) : -1;
}"""

#: What a key press must change in the explorer: images, HTML texts, readouts, descriptions, messages.
JS_SNAPSHOT = """(box) => JSON.stringify({
    images: Array.from(box.querySelectorAll('img')).map(i => i.src),
    html: Array.from(box.querySelectorAll('.widget-html-content')).map(h => h.innerText),
    readouts: Array.from(box.querySelectorAll('.widget-readout')).map(r => r.innerText),
    labels: Array.from(box.querySelectorAll('.widget-label')).map(r => r.innerText),
})"""


def controls_of(box):
    """The keyboard controls of an explorer box (marked ``data-bnlab-control``), in DOM order."""
    return box.evaluate(JS_CONTROLS)


def accessible_names(box, controls):
    """Chromium's accessible name of each control (from its accessibility tree), by index; '' if none."""
    names = {}
    for control in controls:
        snapshot = box.locator(f"[data-bnlab-control='{control['index']}']").aria_snapshot()
        first = snapshot.strip().splitlines()[0] if snapshot.strip() else ""
        if first.startswith("- '") and first.endswith("'"):  # YAML's quoting of a line with ': ' in it
            first = "- " + first[3:-1].replace("''", "'")
        match = re.match(r'^- [\w-]+ "((?:[^"\\]|\\.)*)"', first)
        names[control["index"]] = match.group(1).strip() if match else ""
    return names


def tab_through(page, box, controls, limit=None):
    """Focus the box's first control, press Tab until the focus leaves the box; the indices visited."""
    first = box.locator("[data-bnlab-control]").first
    first.focus()
    visited = []
    for _ in range(limit or 3 * len(controls) + 10):
        where = box.evaluate(JS_FOCUSED)
        if where is None:
            break
        if where >= 0 and where not in visited:
            visited.append(where)
        page.keyboard.press("Tab")
    return visited


def _wait_change(read, before, timeout):
    """True once ``read()`` differs from ``before`` (within ``timeout`` seconds), else False."""
    try:
        wait_for(lambda: read() != before, timeout, "a change")
        return True
    except TimeoutError:
        return False


def operate(page, box, control, run_timeout=180):
    """Change ``control`` with the keyboard, check the front end and the kernel answered, put it back.

    Sliders and selects: an arrow key; checkboxes and toggle buttons:
    Space; text areas: a typed extra row (the first row again), then Tab; buttons: Enter.
    Returns a dict: ``keys``, ``value_changed`` (the control's own state), ``explorer_answered``
    (the explorer's images, texts or readouts changed), ``restored``.
    """
    k = control["index"]
    loc = box.locator(f"[data-bnlab-control='{k}']")

    def state():
        return box.evaluate(JS_CONTROL_STATE, k)

    def snap():
        return box.evaluate(JS_SNAPSHOT)

    kind = control["kind"]
    wait_idle(page)
    before_state, before_snap = state(), snap()
    undo = []
    loc.focus()
    if kind == "slider":
        at_max = loc.evaluate("h => Number(h.getAttribute('aria-valuenow')) >= Number(h.getAttribute('aria-valuemax'))")
        key, back = ("ArrowLeft", "ArrowRight") if at_max else ("ArrowRight", "ArrowLeft")
        keys = [key]
        undo = [back]
    elif kind == "select":
        # JupyterLab takes ArrowUp/ArrowDown (and letters such as a, b) from a closed <select> in an
        # output for its own commands (ipywidgets#3912, open); the explorer's script keeps them
        last = loc.evaluate("s => s.selectedIndex >= s.options.length - 1")
        keys = ["ArrowUp"] if last else ["ArrowDown"]
        undo = ("option", loc.input_value())
    elif kind in ("checkbox",):
        keys, undo = ["Space"], ["Space"]
    elif kind == "toggle":
        active = loc.evaluate("b => b.classList.contains('mod-active')")
        if active:  # press another button of the group (the next one, or the previous one)
            keys = ["Tab", "Space"] if loc.evaluate("b => !!b.nextElementSibling") else ["Shift+Tab", "Space"]
        else:
            keys = ["Space"]
        undo = None  # put back by pressing the button that was active: found below
    elif kind in ("textarea", "text"):
        original = loc.input_value()
        extra = original.strip().splitlines()[0]
        keys = ["Control+End", "Enter", *extra, "Tab"]
        undo = ("text", original)
    elif kind == "button":
        keys, undo = ["Enter"], []
    else:
        keys, undo = [], []
    active_before = None
    if kind == "toggle":
        active_before = loc.evaluate(
            "b => Array.from(b.parentElement.querySelectorAll('button')).findIndex(x => x.classList.contains('mod-active'))")
    for key in keys:
        if len(key) == 1:
            page.keyboard.type(key)
        else:
            page.keyboard.press(key)
    timeout = run_timeout if kind == "button" else 30
    value_changed = _wait_change(state, before_state, 10)
    answered = _wait_change(snap, before_snap, timeout)
    if kind == "button" and not value_changed:
        value_changed = answered  # a button has no value of its own: its effect is what changed
    wait_idle(page, timeout)
    # put it back
    restored = True
    if isinstance(undo, tuple) and undo[0] == "option":
        loc.select_option(value=undo[1])
    elif isinstance(undo, tuple):
        loc.focus()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(undo[1])
        page.keyboard.press("Tab")
    elif undo is None and active_before is not None and active_before >= 0:
        box.locator(f"[data-bnlab-control='{k}']").evaluate(
            "(b, i) => b.parentElement.querySelectorAll('button')[i].focus()", active_before)
        page.keyboard.press("Space")
    elif undo:
        loc.focus()
        for key in undo:
            page.keyboard.press(key)
    if kind != "button":
        try:
            wait_for(lambda: state() == before_state, 15, "the control to be put back")
        except TimeoutError:
            restored = False
    wait_idle(page, timeout)
    return {"keys": keys if kind not in ("textarea", "text") else ["typing a row", "Tab"],
            "value_changed": value_changed, "explorer_answered": answered, "restored": restored}


JS_DISABLED = """(box, k) => {
    const e = box.querySelector(`[data-bnlab-control="${k}"]`);
    return !e || e.disabled || e.hasAttribute('disabled') || !!e.closest('[disabled]')
        || e.getAttribute('aria-disabled') === 'true';
}"""

JS_ACTIVE_IN_GROUP = """(b) => Array.from(b.parentElement.querySelectorAll('button'))
    .findIndex(x => x.classList.contains('mod-active'))"""


def operate_disabled(page, box, control, controls):
    """A control disabled by another setting: press each toggle button (Space) until it is enabled,
    operate it, then press the toggle group's first choice again. None if no button enables it."""
    for toggle in [c for c in controls if c["kind"] == "toggle"]:
        loc = box.locator(f"[data-bnlab-control='{toggle['index']}']")
        if loc.evaluate("b => b.classList.contains('mod-active')"):
            continue
        active = loc.evaluate(JS_ACTIVE_IN_GROUP)
        wait_idle(page)
        loc.focus()
        page.keyboard.press("Space")
        try:
            wait_for(lambda: not box.evaluate(JS_DISABLED, control["index"]), 10, "the control to be enabled")
        except TimeoutError:
            enabled = False
        else:
            enabled = True
            outcome = operate(page, box, {**control, "disabled": False})
        loc.evaluate("(b, i) => b.parentElement.querySelectorAll('button')[i].focus()", active)
        page.keyboard.press("Space")
        wait_for(lambda: box.evaluate(JS_DISABLED, control["index"]), 15, "the control to be disabled again")
        wait_idle(page)
        if enabled:
            return {**outcome, "enabled_by": toggle.get("accessible_name") or toggle["text"]}
    return None


def wait_idle(page, timeout=60):
    wait_for(lambda: KERNEL_IDLE.match(kernel_status_text(page) or ""), timeout, "an idle kernel")


def scan_notebook(page, server, rel_path, selector=None):
    """Open ``rel_path``, Run All, scan every explorer box; ``[(k, violations), ...]``."""
    open_and_run_all(page, server, rel_path, ARTIFACTS / "a11y")
    wait_idle(page)
    time.sleep(0.5)
    count = mark_explorers(page, selector)
    return [(k, axe_scan(page, k)) for k in range(count)]


def main(argv=None):
    """Scan notebooks by hand: ``--any`` scans every widget output (what the baseline measured)."""
    from playwright.sync_api import sync_playwright

    argv = sys.argv[1:] if argv is None else argv
    selector = None
    if argv and argv[0] == "--any":
        selector, argv = f"{PANEL} {ANY_WIDGET_OUTPUT}", argv[1:]
    root = Path(os.environ.get("BNLAB_BROWSER_ROOT", ROOT))
    report = {}
    with LabServer(root) as server, sync_playwright() as p:
        browser = launch_chromium(p)
        for rel in argv:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(30_000)
            try:
                found = scan_notebook(page, server, rel, selector)
            finally:
                page.close()
                server.shutdown_kernels_of(rel)
            stem = Path(rel).stem
            names = EXPLORERS.get(stem, [])
            for k, violations in found:
                name = names[k] if k < len(names) else f"box {k}"
                report[f"{stem}/{name}"] = count_by_rule(violations)
                print(f"== {stem} / {name}: {count_by_rule(violations)}")
                print(describe_violations(violations))
            sys.stdout.flush()
        browser.close()
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
