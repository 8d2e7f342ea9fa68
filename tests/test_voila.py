"""The notebooks in Voila: as apps (code hidden) and as reveal.js slide decks, in headless Chromium.

One Voila server (``voila notebooks/``, isolated, on a free loopback port) and
one browser serve the whole module:

- app mode, every notebook: ``/voila/render/<nb>`` shows no code, no error and
  no unrendered widget, and the first explorer's slider, moved with the keyboard,
  changes its image or text;
- the explorer gallery (``explorers.ipynb``): every tab opens and shows its
  explorer, and a slider in one tab changes that tab's image;
- slides, every numbered notebook: ``/voila/render/<nb>?template=reveal`` is a
  deck of at least three slides; Space leads to the first explorer, whose
  sliders and images lie inside the window and its images inside the slide at
  1400x1000 and at 1280x720 (a 720p projector), and a slider dragged with the
  mouse changes the image.

Voila's reveal template loads reveal.js' style sheets, jQuery and Font Awesome
from CDNs; the test answers those requests from npm packages installed in
``artifacts/voila-cdn/`` (``python tests/voila_support.py --install-cdn``; the
fixture installs them when missing) and aborts every other outside request.
Screenshots go to ``artifacts/voila/``.

- the same decks in projector mode (larger text and explorer images): a second
  server whose kernels have ``BNLAB_PROJECTOR=1``; every explorer must fit there
  too (screenshots in ``artifacts/voila/projector/``).

Needs voila, playwright, ``/usr/bin/chromium`` and npm (for the decks); without
them the test skips on a learner's machine and fails in CI (``BNLAB_REQUIRE_ALL=1``).
"""

from __future__ import annotations

import os
import time

import pytest
from _support import headless_chromium, require_module, running_server, skip_or_fail
from voila_support import (
    ARTIFACTS,
    CHROMIUM,
    JS_IMAGES_LOADED,
    JS_PROBLEMS,
    NOTEBOOKS,
    VIEWPORTS,
    CdnMirror,
    CdnUnavailable,
    PageRecord,
    VoilaServer,
    check_app,
    check_deck,
    install_cdn_packages,
    move_first_slider,
    wait_for,
    wait_for_widgets,
)

pytestmark = pytest.mark.browser

GALLERY = "explorers.ipynb"
NUMBERED = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
APPS = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb") if p.name != GALLERY)
#: Building one tab's explorer (the training explorer trains first; the machine may be busy).
TAB_TIMEOUT = 120


@pytest.fixture(scope="module")
def mirror():
    """The local stand-ins for the CDNs (installed with npm once, then reused)."""
    try:
        install_cdn_packages()
    except CdnUnavailable as exc:
        skip_or_fail(str(exc))
    return CdnMirror()


@pytest.fixture(scope="module")
def voila():
    require_module("voila", "pip install voila (requirements.txt)")
    # normal mode, whatever the shell says
    with running_server(lambda: VoilaServer(NOTEBOOKS, env={"BNLAB_PROJECTOR": "0"}), "Voila") as server:
        yield server


@pytest.fixture(scope="module")
def voila_projector(voila):
    """A second server whose kernels run in projector mode (BNLAB_PROJECTOR=1 in their environment)."""
    with running_server(lambda: VoilaServer(NOTEBOOKS, env={"BNLAB_PROJECTOR": "1"}),
                        "Voila (projector mode)") as server:
        yield server


@pytest.fixture(scope="module")
def browser(voila):
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install chromium (or set BNLAB_CHROMIUM)")
    require_module("playwright.sync_api", "pip install playwright (never 'playwright install')")
    with headless_chromium(ARTIFACTS) as chromium:
        yield chromium


def _kernels_ended(voila, notebook):
    """Voila ends a page's kernel when the page closes: nothing may pile up over the module."""
    try:
        wait_for(lambda: not voila.kernel_processes(), 30, "the page's kernel to end")
    except TimeoutError:
        pytest.fail(f"{notebook}: kernels still running after its page closed: {voila.kernel_processes()}")


def test_every_notebook_has_an_app_and_a_deck_test():
    assert GALLERY in {p.name for p in NOTEBOOKS.glob("*.ipynb")}
    assert len(NUMBERED) >= 12 and set(NUMBERED) <= set(APPS)


@pytest.mark.parametrize("notebook", APPS)
def test_notebook_as_an_app(notebook, voila, browser, mirror):
    start = time.monotonic()
    result = check_app(browser, voila, mirror, notebook)
    _kernels_ended(voila, notebook)
    print(f"\n{notebook} (app): {time.monotonic() - start:.1f} s (page {result['times']['load']:.1f} s), "
          f"{result['explorers']} explorers, slider {result['readouts'][0]} -> {result['readouts'][1]} "
          f"({result['answered']}), image changed: {result['image_changed']}, "
          f"aborted requests: {len(result['aborted'])}")
    assert result["image_changed"] or result["html_changed"]


@pytest.mark.parametrize("notebook", NUMBERED)
def test_notebook_as_a_deck(notebook, voila, browser, mirror):
    start = time.monotonic()
    result = check_deck(browser, voila, mirror, notebook)
    _kernels_ended(voila, notebook)
    assert not result["projector_mode"], f"{notebook}: the deck's explorer is in projector mode"
    fits = ", ".join(f"{size}: figure drawn at {f['images'][0]['shown']:.0%} of its pixels, "
                     f"box {f['box']['width']:.0f}x{f['box']['height']:.0f} px in a "
                     f"{f['slides']['width']:.0f}x{f['slides']['height']:.0f} px slide"
                     for size, f in result["fit"].items())
    tall = [f"{o['slide']} {o['heading'][:30]!r} ({o['height']} px; cells {o['cells']})"
            for o in result["overflowing_slides"]]
    print(f"\n{notebook} (deck): {time.monotonic() - start:.1f} s, {result['slides']} slides "
          f"+ {result['subslides']} subslides, {result['fragments']} fragments; explorer at "
          f"{result['explorer_slide']} after {result['presses_to_explorer']} presses of Space; {fits}; "
          f"known Voila page errors: {sum(result['known_page_errors'].values())}; "
          f"slides taller than the slide ({len(tall)}): {'; '.join(tall)}")


@pytest.mark.parametrize("notebook", NUMBERED)
def test_notebook_as_a_deck_in_projector_mode(notebook, voila_projector, browser, mirror):
    """Projector mode's larger explorers still fit the slide at 1400x1000 and 1280x720, and answer."""
    result = check_deck(browser, voila_projector, mirror, notebook, shots_dir=ARTIFACTS / "projector")
    _kernels_ended(voila_projector, notebook)
    assert result["projector_mode"], f"{notebook}: the deck's explorer is not in projector mode"
    shown = {size: f"{f['images'][0]['shown']:.0%}" for size, f in result["fit"].items()}
    print(f"\n{notebook} (deck, projector mode): figure drawn at {shown} of its pixels")


def test_explorer_gallery_as_an_app(voila, browser, mirror):
    """explorers.ipynb in Voila: every tab opens and shows its explorer; a slider in one tab answers."""
    from bnlab.widgets.gallery import GALLERY as ENTRIES

    record = PageRecord(browser, mirror, VIEWPORTS[0])
    page = record.page
    start = time.monotonic()
    shown = {}
    try:
        page.goto(voila.url(GALLERY), wait_until="load", timeout=240_000)
        wait_for_widgets(page)
        tabs = page.locator(".widget-tab .lm-TabBar-tab, .widget-tab .p-TabBar-tab")
        assert tabs.count() == len(ENTRIES), f"{tabs.count()} tabs for {len(ENTRIES)} explorers"
        titles = [tabs.nth(k).inner_text().strip() for k in range(tabs.count())]
        assert titles == [entry.title for entry in ENTRIES]
        for k, entry in enumerate(ENTRIES):
            t0 = time.monotonic()
            tabs.nth(k).click()
            panel = page.locator(".widget-tab-contents > .widget-container:visible, "
                                 ".widget-tab-contents > .jupyter-widgets:visible").first

            def ready(panel=panel):
                return (panel.locator("img.widget-image").count() > 0
                        and panel.evaluate(JS_IMAGES_LOADED)
                        and "Building the explorer" not in panel.inner_text())

            wait_for(ready, TAB_TIMEOUT, f"tab {entry.title!r} to show its explorer")
            shown[entry.title] = round(time.monotonic() - t0, 1)
            problems = page.evaluate(JS_PROBLEMS)
            assert not problems, f"tab {entry.title!r}: the page shows {problems}"
            panel.screenshot(path=str(ARTIFACTS / f"explorers_tab{k + 1:02d}.png"))
        # a slider in the tab of notebook 04's explorer
        k = next(k for k, entry in enumerate(ENTRIES) if entry.title.startswith("04"))
        tabs.nth(k).click()
        box = page.locator(".widget-tab-contents > .widget-container:visible").first
        moved = move_first_slider(page, box)
        assert moved["image_changed"], moved
        unexpected, _ = record.unexpected_page_errors()
        assert not unexpected, f"page errors: {unexpected}"
    finally:
        page.screenshot(path=str(ARTIFACTS / "explorers_last.png"))
        record.close()
    _kernels_ended(voila, GALLERY)
    print(f"\n{GALLERY} (app): {time.monotonic() - start:.1f} s; seconds until each tab showed its "
          f"explorer: {shown}")
