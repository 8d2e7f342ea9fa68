"""Accessibility of every explorer in JupyterLab: an axe-core scan and the keyboard.

For every numbered notebook with explorers (one page at a time, one JupyterLab
server and one Chromium for the module): Run All, then for each explorer box
(``.bnlab-explorer``; JupyterLab's own interface is not scanned, it has open
findings of its own, jupyterlab#16888 and #16890):

- axe-core (bundled with ``axe-playwright-python``), WCAG 2.1 A and AA rules:
  no violation of impact "serious" or "critical" (the failure lists each rule,
  its nodes and axe's help); moderate and minor ones are printed;
- every control has an accessible name (what a screen reader announces);
- Tab from the first control reaches every control;
- each enabled control changes with the keyboard (sliders: arrow keys; selects:
  arrow keys, which JupyterLab would take for itself without the explorer's
  script, ipywidgets#3912; checkboxes and toggle buttons: Space; text areas:
  typing; buttons: Enter) and the explorer answers (its figure, texts or
  readouts change); then the control is put back. A control disabled by
  another setting (ShiftExplorer's noise slider) is operated once the toggle
  button that enables it is pressed.

A summary per explorer (axe findings, each control's keyboard result) goes to
``artifacts/a11y/`` (ignored by git).

    OMP_NUM_THREADS=1 python -m pytest -p no:nbval -o addopts="" tests/test_accessibility.py -q -s
"""

from __future__ import annotations

import json
import os
import time

import pytest
from _support import headless_chromium, require_module, running_server, skip_or_fail
from a11y_support import (
    BLOCKING,
    EXPLORERS,
    accessible_names,
    axe_scan,
    box_selector,
    controls_of,
    count_by_rule,
    describe_violations,
    mark_explorers,
    operate,
    operate_disabled,
    tab_through,
    wait_idle,
)
from browser_support import (
    ARTIFACTS,
    CHROMIUM,
    ROOT,
    VIEWPORT,
    LabServer,
    open_and_run_all,
)

pytestmark = pytest.mark.browser

NOTEBOOKS = [ROOT / "notebooks" / f"{stem}.ipynb" for stem in EXPLORERS]
REPORT_DIR = ARTIFACTS.parent / "a11y"


@pytest.fixture(scope="module")
def lab():
    """One JupyterLab server on a free loopback port for the module."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        skip_or_fail(f"{CHROMIUM} is missing: install Debian's chromium package, or set BNLAB_CHROMIUM")
    require_module("playwright.sync_api", "pip install playwright (never 'playwright install')")
    require_module("axe_playwright_python.sync_playwright",
                   "pip install axe-playwright-python (it bundles axe-core)")
    require_module("jupyterlab", "pip install jupyterlab")
    with running_server(lambda: LabServer(ROOT), "JupyterLab") as server:
        yield server


@pytest.fixture(scope="module")
def browser(lab):
    with headless_chromium(REPORT_DIR) as chromium:
        yield chromium


def test_every_notebook_with_an_explorer_is_listed():
    """EXPLORERS names the notebooks that show explorers: a new notebook with one must be added."""
    shown = set()
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if path.name.startswith("00_"):
            continue
        cells = json.loads(path.read_text())["cells"]
        if any("Explorer(" in "".join(c["source"])
               for c in cells if c["cell_type"] == "code"):
            shown.add(path.stem)
    assert shown == set(EXPLORERS), f"notebooks with explorers {sorted(shown)}, listed {sorted(EXPLORERS)}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_explorers_are_accessible(notebook, lab, browser):
    rel = notebook.relative_to(ROOT).as_posix()
    names = EXPLORERS[notebook.stem]
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(30_000)
    start = time.monotonic()
    report = {}
    try:
        result, shot, _fail = open_and_run_all(page, lab, rel, REPORT_DIR)
        wait_idle(page)
        count = mark_explorers(page)
        assert count == len(names), f"{rel}: {count} explorer boxes (.bnlab-explorer) on show, expected {names}"
        problems = []
        for k, name in enumerate(names):
            box = page.locator(box_selector(k))
            box.scroll_into_view_if_needed()
            violations, to_review = axe_scan(page, k, review=True)
            blocking = [v for v in violations if v["impact"] in BLOCKING]
            if blocking:
                problems.append(f"{name}: axe found serious/critical violations:\n{describe_violations(blocking)}")
            controls = controls_of(box)
            names_found = accessible_names(box, controls)
            for control in controls:
                control["accessible_name"] = names_found[control["index"]]
            unnamed = [c for c in controls if not c["accessible_name"]]
            if unnamed:
                problems.append(f"{name}: controls without an accessible name: {unnamed}")
            visited = tab_through(page, box, controls)
            missed = [c for c in controls if not c["disabled"] and c["index"] not in visited]
            if missed:
                problems.append(f"{name}: not reachable with Tab: {missed}")
            keyboard = []
            for control in controls:
                try:
                    if control["disabled"]:  # enabled by another setting (a toggle button): operate it there
                        outcome = operate_disabled(page, box, control, controls)
                        if outcome is None:
                            problems.append(f"{name}: {control} is disabled and no toggle button enables it")
                            continue
                    else:
                        outcome = operate(page, box, control)
                except Exception as exc:  # noqa: BLE001 - a playwright timeout: report it, go on
                    outcome = {"value_changed": False, "explorer_answered": False, "error": str(exc)[:500]}
                keyboard.append({**control, **outcome})
                if not (outcome["value_changed"] and outcome["explorer_answered"]):
                    problems.append(f"{name}: control {control} did not answer the keyboard: {outcome}")
            report[name] = {"axe": count_by_rule(violations), "axe_details": violations,
                            "axe_needs_review": count_by_rule(to_review), "axe_review_details": to_review,
                            "tab_order": visited, "controls": keyboard}
            shot(f"a11y_{k}_{name}", box)
        errors = result["page_errors"]
        if errors:
            problems.append(f"page errors: {errors}")
    finally:
        page.close()
        lab.shutdown_kernels_of(rel)
        (REPORT_DIR / f"{notebook.stem}.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"\n{notebook.name}: {time.monotonic() - start:.0f} s")
    for name, entry in report.items():
        operable = sum(1 for c in entry["controls"] if c.get("value_changed") and c.get("explorer_answered"))
        disabled = sum(1 for c in entry["controls"] if c["disabled"])
        print(f"  {name}: axe {entry['axe'] or 'no violations'} (to review: {entry['axe_needs_review'] or 'none'}); "
              f"{len(entry['controls'])} controls, "
              f"{len(entry['tab_order'])} reached by Tab, {operable} operated by keyboard "
              f"({disabled} of them once another setting enabled them)")
    assert not problems, f"{rel}:\n" + "\n".join(problems)
