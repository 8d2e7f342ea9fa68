"""Helpers for the Voila tests: a throw-away Voila server, local copies of the CDN files, page checks.

Used by ``tests/test_voila.py``. Voila serves ``notebooks/`` as a tree; every
notebook opens at ``/voila/render/<name>`` as an app (code hidden), and with
``?template=reveal`` as a reveal.js slide deck with a live kernel.

Voila's reveal template takes reveal.js' style sheets, jQuery and Font Awesome
from public CDNs, which a test run cannot reach. :class:`CdnMirror` answers
those requests from the same npm packages installed into ``artifacts/voila-cdn/``
(ignored by git) and aborts every other request that leaves the machine (badge
images in markdown, say), so that nothing hangs. Install the packages once,
before the tests (CI does, in ``.ci/run``; the test fixture does it too when
they are missing)::

    python tests/voila_support.py --install-cdn

Nothing is written inside the repository but ``artifacts/``: Voila's runtime,
config and data folders are temporary, and the notebooks are only read.
By hand (screenshots into ``artifacts/voila/``)::

    python tests/voila_support.py 04_shift_scale_invariance.ipynb            # app and deck
    BNLAB_PROJECTOR=1 python tests/voila_support.py 04_shift_scale_invariance.ipynb

``BNLAB_PROJECTOR`` (and any ``BNLAB_*`` variable) set here reaches the
kernels: they inherit the server's environment.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from browser_support import (  # noqa: F401 - launch_chromium and CHROMIUM for the tests
    CHROMIUM,
    explorer_snapshot,
    free_port,
    launch_chromium,
    settle,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "artifacts" / "voila"
#: Where the npm packages standing in for the CDNs are installed (ignored by git).
CDN_DIR = ROOT / "artifacts" / "voila-cdn"

#: The screens a deck must fit: a laptop and a 720p projector.
VIEWPORTS = ({"width": 1400, "height": 1000}, {"width": 1280, "height": 720})

SERVER_START_TIMEOUT = 90
#: Voila executes the whole notebook before the page arrives (07 trains a network).
PAGE_LOAD_TIMEOUT = 240
WIDGET_TIMEOUT = 60
UPDATE_TIMEOUT = 30


# ---------------------------------------------------------------- the CDN mirror

#: The npm packages that stand in for the CDN files of Voila 0.5's templates, name -> version.
#: (Voila 0.5.13's reveal template asks for reveal.js 4.0.2's style sheets on unpkg, jQuery 2.0.3
#: on cdnjs, which npm does not have: 2.2.4 is the last 2.x there, and Font Awesome 5 on jsdelivr;
#: the reveal.js script itself, MathJax and require.js come with Voila or are not loaded.)
CDN_PACKAGES = {
    "reveal.js": "4.0.2",
    "jquery": "2.2.4",
    "@fortawesome/fontawesome-free": "5.15.4",
}

#: URL prefix (a regular expression) -> folder inside the installed packages that answers it.
CDN_ROUTES = (
    (r"https://unpkg\.com/reveal\.js@4\.0\.2/", "reveal.js/"),
    (r"https://cdnjs\.cloudflare\.com/ajax/libs/jquery/2\.[0-9.]+/", "jquery/dist/"),
    (r"https://cdn\.jsdelivr\.net/npm/@fortawesome/fontawesome-free@(\^|%5[Ee])?5[0-9.]*/",
     "@fortawesome/fontawesome-free/"),
)

#: Requests a page may make that are not answered and need not be: the default template's
#: mermaid import (no notebook draws a mermaid diagram), badge images in markdown.
HARMLESS_ABORTS = re.compile(r"mermaid|colab-badge|mybinder\.org/badge|badge_logo|\.svg$|\.png$")


class CdnUnavailable(RuntimeError):
    """npm is missing or could not install the packages."""


def cdn_packages_installed(prefix=CDN_DIR):
    """True when every package of :data:`CDN_PACKAGES` is installed at its version under ``prefix``."""
    for name, version in CDN_PACKAGES.items():
        manifest = Path(prefix) / "node_modules" / name / "package.json"
        try:
            if json.loads(manifest.read_text(encoding="utf-8")).get("version") != version:
                return False
        except (OSError, ValueError):
            return False
    return True


def install_cdn_packages(prefix=CDN_DIR, timeout=600):
    """``npm install`` the CDN packages into ``prefix`` unless already there; returns ``prefix``.

    Raises :class:`CdnUnavailable` when npm is missing or fails.
    """
    prefix = Path(prefix)
    if cdn_packages_installed(prefix):
        return prefix
    npm = shutil.which("npm")
    if npm is None:
        raise CdnUnavailable(
            "npm is not installed (apt-get install npm): it installs reveal.js, jQuery and "
            "Font Awesome, which stand in for the CDNs Voila's slides load"
        )
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(prefix), "--no-save", "--no-package-lock",
           "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error",
           *(f"{name}@{version}" for name, version in CDN_PACKAGES.items())]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CdnUnavailable(f"{' '.join(cmd)} failed: {exc}") from exc
    if done.returncode != 0 or not cdn_packages_installed(prefix):
        raise CdnUnavailable(
            f"{' '.join(cmd)} failed (exit code {done.returncode}):\n{done.stderr[-2000:]}"
        )
    return prefix


class CdnMirror:
    """Answers a page's CDN requests from local npm packages; aborts every other external request.

    ``mirror.attach(page)`` routes every request of ``page``: the Voila server's
    own (``http://127.0.0.1:<port>``) go through; a URL under one of
    :data:`CDN_ROUTES` is answered from the file of the same path in the
    installed package (404 if the package has no such file); anything else is
    aborted at once. What happened is kept per page in ``mirror.log(page)``:
    ``served``, ``missing`` (a CDN path the package lacks) and ``aborted``
    (``(resource type, url)`` pairs).
    """

    def __init__(self, prefix=CDN_DIR):
        self.modules = Path(prefix) / "node_modules"
        self._routes = [(re.compile(pattern), self.modules / folder) for pattern, folder in CDN_ROUTES]
        self._logs = {}

    def local_file(self, url):
        """The installed file answering ``url``, or None when no CDN route matches."""
        for pattern, folder in self._routes:
            match = pattern.match(url)
            if match:
                rest = urllib.parse.unquote(url[match.end():].split("?")[0].split("#")[0])
                target = (folder / rest).resolve()
                if folder.resolve() not in target.parents:
                    return folder / "__outside__"
                return target
        return None

    def log(self, page):
        return self._logs.setdefault(id(page), {"served": [], "missing": [], "aborted": []})

    def attach(self, page):
        log = self.log(page)

        def handle(route):
            request = route.request
            url = request.url
            if url.startswith(("http://127.0.0.1", "data:", "blob:")):
                route.continue_()
                return
            path = self.local_file(url)
            if path is None:
                log["aborted"].append((request.resource_type, url))
                route.abort("blockedbyclient")
            elif path.is_file():
                log["served"].append(url)
                route.fulfill(path=str(path), headers={"Access-Control-Allow-Origin": "*"})
            else:
                log["missing"].append(url)
                route.fulfill(status=404, body="not in the local CDN mirror")

        page.route("**/*", handle)
        return log

    def needed_aborts(self, page):
        """Aborted scripts and style sheets a page may need (not the harmless ones)."""
        return [url for kind, url in self.log(page)["aborted"]
                if kind in ("script", "stylesheet", "font") and not HARMLESS_ABORTS.search(url)]


# ---------------------------------------------------------------- the server


class VoilaServer:
    """``python -m voila <root_dir>`` on a free loopback port with a random token, fully isolated.

    Parameters
    ----------
    root_dir : path
        The folder Voila serves (``notebooks/``); each kernel starts in its notebook's folder.
    env : dict, optional
        Extra environment for the server and so for its kernels (e.g. ``{"BNLAB_PROJECTOR": "1"}``).
    extra_args : sequence of str
        More command-line options for Voila.
    """

    def __init__(self, root_dir=NOTEBOOKS, env=None, extra_args=()):
        self.root_dir = Path(root_dir).resolve()
        self.work_dir = Path(tempfile.mkdtemp(prefix="bnlab-voila-"))
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.work_dir / "voila.log"
        self.extra_env = dict(env or {})
        self.extra_args = list(extra_args)
        self.process = None
        self._log = None

    def start(self, timeout=SERVER_START_TIMEOUT):
        dirs = {name: self.work_dir / name for name in ("runtime", "config", "data", "ipython")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update({
            "OMP_NUM_THREADS": "1",
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),  # ignore the user's ~/.jupyter
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "IPYTHONDIR": str(dirs["ipython"]),
            "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ in the repository
            "JUPYTER_PLATFORM_DIRS": "1",
        })
        env.pop("MPLBACKEND", None)
        env.update(self.extra_env)
        cmd = [
            sys.executable, "-m", "voila", str(self.root_dir),
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            f"--Voila.port={self.port}",
            "--Voila.port_retries=0",
            f"--Voila.token={self.token}",
            f"--Voila.connection_dir_root={dirs['runtime']}",
            *self.extra_args,
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the server's lifetime
        # cwd: the temporary folder, so that no voila.json of the caller's folder applies
        self.process = subprocess.Popen(cmd, cwd=self.work_dir, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Voila exited with code {self.process.returncode} while "
                                   f"starting:\n{self.log_tail()}")
            try:
                self.get("/", timeout=5)
                return self
            except (OSError, urllib.error.URLError) as exc:
                last_error = exc
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"Voila did not answer on {self.base_url} within {timeout} s "
                           f"({last_error}):\n{self.log_tail()}")

    def stop(self):
        """End the server's whole process group (its kernels with it) and remove its folder."""
        if self.process is not None:
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.process.pid, sig)
                except (ProcessLookupError, PermissionError):
                    break
                try:
                    self.process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # kernels left in the group
            except (ProcessLookupError, PermissionError):
                pass
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, notebook, template=None):
        """The page of ``notebook`` (a name inside the root), as an app or with ``template``."""
        query = {"token": self.token}
        if template:
            query["template"] = template
        return f"{self.base_url}/voila/render/{notebook}?{urllib.parse.urlencode(query)}"

    def get(self, path, timeout=10):
        request = urllib.request.Request(self.base_url + path,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    def kernel_processes(self):
        """Process ids of the kernels running in the server's process group (read from /proc)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) != self.process.pid:
                    continue
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except (OSError, ProcessLookupError):
                continue
            if b"ipykernel" in cmdline:
                found.append(int(entry.name))
        return found

    def log_tail(self, lines=40):
        try:
            self._log and self._log.flush()
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])



# ---------------------------------------------------------------- the pages

#: Page errors of Voila 0.5's reveal template itself, tolerated (and counted) in the deck tests.
KNOWN_REVEAL_PAGE_ERRORS = (
    (re.compile(r"reading 'Hub'"),
     ("Voila's reveal.js re-renders MathJax 2 (MathJax.Hub) on every slide change, but the page "
     "carries no MathJax 2 (Voila renders math with its own MathJax 3): the handler throws, "
     "slides and math are unaffected")),
    (re.compile(r"voila_heartbeat is not a function"),
     ("Voila streams a heartbeat script while a notebook executes for more than a few seconds; "
     "the reveal template defines the function only later in the page")),
)

#: JavaScript: what a learner must never see on a Voila page (error outputs, unrendered widgets).
JS_PROBLEMS = """() => {
    const texts = [];
    for (const o of document.querySelectorAll('.jp-OutputArea-output')) {
        const mime = o.getAttribute('data-mime-type') || '';
        const t = (o.innerText || '').trim();
        if (mime === 'application/vnd.jupyter.stderr' || o.classList.contains('jp-mod-error'))
            texts.push('error output: ' + t.slice(0, 300));
        else if (/^Loading widget|Error displaying widget|^(VBox|HBox|Box|GridBox|Tab|Accordion|Image|HTML)\\(/.test(t))
            texts.push('widget not rendered: ' + t.slice(0, 200));
        else if (/Traceback \\(most recent call last\\)/.test(t))
            texts.push('traceback: ' + t.slice(0, 300));
    }
    const body = document.body ? document.body.innerText : '';
    const m = body.match(/There was an error when executing cell[^\\n]*/);
    if (m) texts.push(m[0]);
    return texts;
}"""

#: JavaScript: the code a learner would see (Voila hides it: strip_sources).
JS_VISIBLE_CODE = """() => Array.from(document.querySelectorAll(
    '.jp-CodeCell .jp-InputArea, .jp-InputArea-editor, .cm-editor, .CodeMirror'))
    .map(e => (e.innerText || '').slice(0, 80))"""

#: JavaScript (on an element): true when every image inside has loaded and has a size.
JS_IMAGES_LOADED = """(box) => Array.from(box.querySelectorAll('img'))
    .filter(i => !/^https?:/.test(i.getAttribute('src') || '') || i.src.startsWith(location.origin))
    .every(i => i.complete && i.naturalWidth > 0)"""
# (images from other sites, such as the Open in Colab badge, are aborted here: a classroom loads them)

#: The slide on show: the innermost present section (a vertical stack is present too).
CURRENT_SLIDE = ".reveal .slides section.present:not(.stack)"


class PageRecord:
    """A page with its errors recorded: ``page_errors``, ``console_errors``, the mirror's log."""

    def __init__(self, browser, mirror, viewport):
        self.page = browser.new_page(viewport=dict(viewport))
        self.page.set_default_timeout(30_000)
        self.page_errors = []
        self.console_errors = []
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        self.page.on("console", lambda msg: self.console_errors.append(msg.text[:300])
                     if msg.type == "error" else None)
        self.mirror = mirror
        self.cdn = mirror.attach(self.page)

    def unexpected_page_errors(self, known=()):
        """Page errors not explained by ``known`` ((pattern, why) pairs); and the known ones seen."""
        unexpected, seen = [], {}
        for text in self.page_errors:
            why = next((why for pattern, why in known if pattern.search(text)), None)
            if why is None:
                unexpected.append(text)
            else:
                seen[why] = seen.get(why, 0) + 1
        return unexpected, seen

    def close(self):
        self.page.close()


def wait_for_widgets(page, scope="body", timeout=WIDGET_TIMEOUT):
    """Wait until a slider exists under ``scope``, every widget rendered and every image loaded."""
    page.locator(f"{scope} .widget-slider .noUi-handle").first.wait_for(state="attached",
                                                                         timeout=timeout * 1000)
    wait_for(lambda: not [p for p in page.evaluate(JS_PROBLEMS) if p.startswith("widget not")],
             timeout, "every widget to render")
    wait_for(lambda: page.locator(scope).first.evaluate(JS_IMAGES_LOADED), timeout,
             "every image to load")


def move_first_slider(page, box, presses=3, timeout=UPDATE_TIMEOUT, method="keyboard"):
    """Move ``box``'s first slider; wait until its image or HTML changes.

    ``method``: ``"keyboard"`` (focus the handle, press an arrow key ``presses``
    times) or ``"mouse"`` (drag the handle a fifth of the slider's width: in a
    reveal deck the arrow keys also turn the slide).

    An explorer with a Run button may only record the setting: then Run is
    pressed and the image must change. Returns a dict: ``key``, ``answered``,
    ``image_changed``, ``html_changed``, ``readouts`` (before, after),
    ``hash`` (the page's location hash before and after: a deck must stay on its slide).
    """
    handle = box.locator(".widget-slider .noUi-handle").first
    aria = handle.evaluate("h => [h.getAttribute('aria-valuenow'), h.getAttribute('aria-valuemax')]")
    try:
        at_max = float(aria[0]) >= float(aria[1])
    except (TypeError, ValueError):
        at_max = False
    key = "ArrowLeft" if at_max else "ArrowRight"
    before = explorer_snapshot(box)
    hash_before = page.evaluate("() => location.hash")
    if method == "mouse":
        track = box.locator(".widget-slider .noUi-target").first.bounding_box()
        knob = handle.bounding_box()
        x, y = knob["x"] + knob["width"] / 2, knob["y"] + knob["height"] / 2
        dx = (-1 if at_max else 1) * track["width"] / 5
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + dx, y, steps=5)
        page.mouse.up()
        key = "drag " + ("left" if at_max else "right")
    else:
        handle.focus()
        focused = page.evaluate("() => document.activeElement && document.activeElement.className")
        if "noUi-handle" not in (focused or ""):
            raise AssertionError(f"the slider handle did not take the keyboard focus ({focused!r})")
        for _ in range(presses):
            page.keyboard.press(key)

    def changed():
        now = explorer_snapshot(box)
        return now if (now["images"] != before["images"] or now["html"] != before["html"]) else None

    run = box.locator("button", has_text=re.compile(r"^\s*(Run|Train)\b", re.IGNORECASE))
    answered = "the slider move"
    try:
        wait_for(changed, 8 if run.count() else timeout, "the explorer's image or HTML to change")
    except TimeoutError:
        if not run.count():
            raise
        answered = "the Run button (the slider move only recorded the setting)"
        run.first.click()
        wait_for(lambda: explorer_snapshot(box)["images"] != before["images"], 180,
                 "the explorer's image to change after Run")
    after = settle(lambda: explorer_snapshot(box), 20, "the explorer to stop changing")
    wait_for(lambda: box.evaluate(JS_IMAGES_LOADED), 15, "the new image to load")
    return {
        "key": key,
        "answered": answered,
        "image_changed": after["images"] != before["images"],
        "html_changed": after["html"] != before["html"],
        "readouts": (before["readouts"], after["readouts"]),
        "hash": (hash_before, page.evaluate("() => location.hash")),
    }


# ---------------------------------------------------------------- slides


def deck_shape(page):
    """Top-level slides, and the vertical subslides inside them, of a reveal deck."""
    return page.evaluate("""() => ({
        slides: document.querySelectorAll('.reveal .slides > section').length,
        // a stack's first section is its top-level slide; the others are its subslides
        subslides: document.querySelectorAll('.reveal .slides > section > section').length
                   - document.querySelectorAll('.reveal .slides > section.stack').length,
        fragments: document.querySelectorAll('.reveal .slides .fragment').length,
    })""")


#: JavaScript: the slide on show holds a visible element matching the selector (not one inside a
#: fragment still to come), and its "where": the location hash and how many fragments are shown.
JS_SHOWN = """(selector) => {
    const slide = document.querySelector('%s');
    const hits = slide ? Array.from(slide.querySelectorAll(selector)) : [];
    const shown = hits.some(e => { for (let f = e.closest('.fragment'); f; f = f.parentElement.closest('.fragment'))
                                       if (!f.classList.contains('visible')) return false;
                                   return true; });
    const top = Array.from(document.querySelectorAll('.reveal .slides > section'))
        .findIndex(e => e.classList.contains('present'));
    const sub = slide && slide.parentElement.classList.contains('stack')
        ? Array.from(slide.parentElement.children).indexOf(slide) : 0;
    return {shown, where: `${top}/${sub}|` + document.querySelectorAll('.reveal .fragment.visible').length};
}""".replace("%s", CURRENT_SLIDE)


def go_to_slide_with(page, selector, max_steps=400, pause_ms=120):
    """Press Space (reveal's "next": slides, subslides and fragments) until the slide on show
    shows ``selector``; return the number of presses. Raises AssertionError if the deck ends first."""
    page.evaluate("() => document.activeElement && document.activeElement.blur && document.activeElement.blur()")
    for step in range(max_steps):
        state = page.evaluate(JS_SHOWN, selector)
        if state["shown"]:
            return step
        page.keyboard.press("Space")
        try:  # the deck moves on (a slide, a subslide or a fragment); at its end nothing moves
            wait_for(lambda state=state: page.evaluate(JS_SHOWN, selector)["where"] != state["where"], 3,
                     "the deck to move on", interval=pause_ms / 1000)
        except TimeoutError:
            raise AssertionError(f"the deck ended (at {state['where']}) before a slide showing "
                                 f"{selector}") from None
    raise AssertionError(f"no slide showing {selector} within {max_steps} steps")


def wait_for_layout(page, timeout=10):
    """Wait until reveal's slide box and the slide on show stop moving (a resize, a transition)."""
    return settle(lambda: page.evaluate(
        "() => [document.querySelector('.reveal .slides'), document.querySelector('%s')]"
        ".filter(e => e).map(e => { const r = e.getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height].map(Math.round); })".replace("%s", CURRENT_SLIDE)),
        timeout, "the slides' layout", interval=0.5)


#: JavaScript (on an explorer's output): where its slider handles, images and box lie, against
#: the window and the slide (in CSS pixels of the page, after reveal's scaling).
JS_FIT = """(box) => {
    const r = e => { const b = e.getBoundingClientRect();
                     return {left: b.left, top: b.top, right: b.right, bottom: b.bottom,
                             width: b.width, height: b.height}; };
    return {
        window: {left: 0, top: 0, right: window.innerWidth, bottom: window.innerHeight},
        slides: r(document.querySelector('.reveal .slides')),
        box: r(box),
        sliders: Array.from(box.querySelectorAll('.widget-slider')).map(r),
        // shown: the fraction of its natural size the picture is drawn at (object-fit: contain)
        images: Array.from(box.querySelectorAll('img')).map(i => ({...r(i), natural: i.naturalWidth,
            shown: Math.min(i.getBoundingClientRect().width / i.naturalWidth,
                            i.getBoundingClientRect().height / i.naturalHeight)})),
    };
}"""


#: JavaScript: every slide's content height against the slide's (reveal hides far slides: each is
#: shown for the measurement, then hidden again), with its heading and whether it holds an explorer.
JS_SLIDE_HEIGHTS = """() => {
    const box = document.querySelector('.reveal .slides');
    const limit = parseFloat(box.style.height) || box.offsetHeight;
    const leaves = Array.from(document.querySelectorAll('.reveal .slides section'))
        .filter(s => !s.querySelector('section'));
    // in slide pixels, whether reveal scales the slides with a transform or with zoom
    const scale = box.getBoundingClientRect().height / limit;
    return leaves.map((s, k) => {
        const shown = [s, s.parentElement].filter(e => e.tagName === 'SECTION');
        const displays = shown.map(e => e.style.display);
        shown.forEach(e => { e.style.display = 'block'; });
        const height = Math.round(s.getBoundingClientRect().height / scale);
        // the notebook's cells on the slide (0-based) and their heights, to see where to split
        const cells = Array.from(s.querySelectorAll('[cell-index]')).map(c =>
            [parseInt(c.getAttribute('cell-index'), 10) - 1, Math.round(c.getBoundingClientRect().height / scale)]);
        shown.forEach((e, j) => { e.style.display = displays[j]; });
        const h = s.querySelector('h1, h2, h3, h4');
        const stack = s.parentElement.classList.contains('stack') ? s.parentElement : null;
        const top = Array.from(box.children).indexOf(stack || s);
        const sub = stack ? Array.from(stack.children).indexOf(s) : 0;
        return {slide: `${top}/${sub}`, height, limit, cells,
                heading: h ? h.innerText.replace(/\\s+/g, ' ').slice(0, 60) : '',
                explorer: !!s.querySelector('.widget-slider'),
                figure: !!s.querySelector('.jp-RenderedImage img')};
    });
}"""


def fit_problems(fit, tolerance=1.0):
    """What of an explorer lies off the screen or off the slide's sides (an empty list when it fits).

    Every slider and image must lie inside the window; images must also lie
    between the left and right edges of reveal's slide box (where a figure
    "runs off the slide").
    """
    problems = []
    win, slide = fit["window"], fit["slides"]

    def outside(rect, area):
        return (rect["left"] < area["left"] - tolerance or rect["right"] > area["right"] + tolerance
                or rect["top"] < area["top"] - tolerance or rect["bottom"] > area["bottom"] + tolerance)

    for kind in ("sliders", "images"):
        for k, rect in enumerate(fit[kind]):
            if outside(rect, win):
                problems.append(f"{kind[:-1]} {k + 1} at x {rect['left']:.0f}..{rect['right']:.0f}, "
                                f"y {rect['top']:.0f}..{rect['bottom']:.0f} leaves the "
                                f"{win['right']:.0f}x{win['bottom']:.0f} window")
    for k, rect in enumerate(fit["images"]):
        if rect["left"] < slide["left"] - tolerance or rect["right"] > slide["right"] + tolerance:
            problems.append(f"image {k + 1} at x {rect['left']:.0f}..{rect['right']:.0f} runs off the "
                            f"slide (x {slide['left']:.0f}..{slide['right']:.0f})")
    if not fit["images"]:
        problems.append("the explorer shows no image")
    return problems


# ---------------------------------------------------------------- the checks, one notebook at a time


def _shot(page_or_locator, shots_dir, name):
    path = Path(shots_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        page_or_locator.screenshot(path=str(path), timeout=15_000)
    except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the real failure
        return f"{path} (failed: {exc})"
    return str(path)


def _mode_suffix():
    return "_projector" if os.environ.get("BNLAB_PROJECTOR", "") not in ("", "0") else ""


def check_app(browser, server, mirror, notebook, shots_dir=ARTIFACTS, viewport=VIEWPORTS[0]):
    """Open ``notebook`` as an app (Voila's default template) and move its first explorer's slider.

    Returns a dict of what was seen; raises AssertionError naming the step that failed.
    """
    record = PageRecord(browser, mirror, viewport)
    page = record.page
    name = f"{Path(notebook).stem}_app{_mode_suffix()}"
    result = {"notebook": notebook, "times": {}, "screenshots": []}
    t0 = time.monotonic()
    step = "open"
    try:
        page.goto(server.url(notebook), wait_until="load", timeout=PAGE_LOAD_TIMEOUT * 1000)
        result["times"]["load"] = time.monotonic() - t0
        step = "widgets"
        wait_for_widgets(page)
        result["times"]["widgets"] = time.monotonic() - t0
        step = "what a learner sees"
        problems = page.evaluate(JS_PROBLEMS)
        assert not problems, f"the page shows: {problems}"
        code = page.evaluate(JS_VISIBLE_CODE)
        assert not code, f"code is visible: {code[:3]}"
        result["explorers"] = page.locator(".jp-OutputArea-output:has(.widget-slider)").count()
        step = "slider move"
        box = page.locator(".jp-OutputArea-output", has=page.locator(".widget-slider")).first
        box.scroll_into_view_if_needed()
        result["screenshots"].append(_shot(box, shots_dir, f"{name}_explorer_before"))
        result.update(move_first_slider(page, box))
        result["screenshots"].append(_shot(box, shots_dir, f"{name}_explorer_after"))
        assert result["image_changed"] or result["html_changed"], "the slider move changed nothing"
        step = "after the move"
        problems = page.evaluate(JS_PROBLEMS)
        assert not problems, f"the page shows: {problems}"
        unexpected, _ = record.unexpected_page_errors()
        assert not unexpected, f"page errors: {unexpected}"
        result["aborted"] = [url for _, url in record.cdn["aborted"]]
        result["times"]["total"] = time.monotonic() - t0
        return result
    except Exception as exc:
        result["screenshots"].append(_shot(page, shots_dir, f"{name}_FAILED"))
        raise AssertionError(
            f"{notebook} (app): step '{step}': {type(exc).__name__}: {exc}\n"
            f"  page errors: {record.page_errors or 'none'}\n"
            f"  console errors: {record.console_errors[:5] or 'none'}\n"
            f"  aborted requests: {record.cdn['aborted'][:5] or 'none'}\n"
            f"  screenshots: {result['screenshots']}\n  server log:\n{server.log_tail(15)}"
        ) from exc
    finally:
        record.close()


def check_deck(browser, server, mirror, notebook, shots_dir=ARTIFACTS, viewports=VIEWPORTS,
               min_slides=3):
    """Open ``notebook`` as a reveal.js deck, go to its first explorer, check it fits every viewport.

    The page opens at ``viewports[0]``; Space moves forward until the slide on
    show holds a slider; the explorer's sliders and images must lie inside the
    window and its images inside the slide, at each viewport in turn (the page
    is resized, as a projector's screen would be); then the first slider moves
    with the keyboard and the image must change while the deck stays on its
    slide. Screenshots: the title slide, the first slide with a static figure
    and the explorer's slide at each viewport.

    Returns a dict of what was seen; raises AssertionError naming the step that failed.
    """
    record = PageRecord(browser, mirror, viewports[0])
    page = record.page
    name = f"{Path(notebook).stem}_deck{_mode_suffix()}"
    result = {"notebook": notebook, "times": {}, "screenshots": [], "fit": {}}
    t0 = time.monotonic()
    step = "open"
    try:
        page.goto(server.url(notebook, "reveal"), wait_until="load", timeout=PAGE_LOAD_TIMEOUT * 1000)
        page.locator(".reveal.ready").wait_for(state="attached", timeout=60_000)
        result["times"]["ready"] = time.monotonic() - t0
        step = "deck"
        missing = record.cdn["missing"]
        assert not missing, f"files the local CDN mirror lacks: {missing}"
        needed = mirror.needed_aborts(page)
        assert not needed, f"scripts or style sheets aborted (not in the CDN mirror): {needed}"
        assert page.evaluate("() => getComputedStyle(document.querySelector('.reveal')).position") != "static", (
            "reveal.js' style sheet did not apply")
        result.update(deck_shape(page))
        assert result["slides"] >= min_slides, f"{result['slides']} top-level slides, at least {min_slides} expected"
        wait_for_layout(page)
        result["screenshots"].append(_shot(page, shots_dir, f"{name}_title"))
        problems = page.evaluate(JS_PROBLEMS)
        assert not problems, f"the page shows: {problems}"
        step = "static figure"
        try:
            result["presses_to_figure"] = go_to_slide_with(page, ".jp-RenderedImage img")
            wait_for_layout(page)
            result["screenshots"].append(_shot(page, shots_dir, f"{name}_figure"))
        except AssertionError:
            result["presses_to_figure"] = None  # the deck has no static figure before... anywhere
        step = "go to the explorer"
        presses = go_to_slide_with(page, ".widget-slider")
        result["presses_to_explorer"] = presses + (result["presses_to_figure"] or 0)
        result["explorer_slide"] = page.evaluate(JS_SHOWN, ".widget-slider")["where"].split("|")[0]
        box = page.locator(f"{CURRENT_SLIDE} .jp-OutputArea-output", has=page.locator(".widget-slider")).first
        wait_for(lambda: box.evaluate(JS_IMAGES_LOADED), WIDGET_TIMEOUT, "the explorer's image to load")
        for k, viewport in enumerate(viewports):
            step = f"fit at {viewport['width']}x{viewport['height']}"
            if k:
                page.set_viewport_size(dict(viewport))
            wait_for_layout(page)
            size = f"{viewport['width']}x{viewport['height']}"
            result["screenshots"].append(_shot(page, shots_dir, f"{name}_explorer_{size}"))
            fit = box.evaluate(JS_FIT)
            result["fit"][size] = {"problems": fit_problems(fit), "box": fit["box"], "slides": fit["slides"],
                                   "images": fit["images"]}
        # projector mode's explorer title (bnlab.widgets.base: 1.6em): which mode the kernel ran in
        result["projector_mode"] = box.evaluate("b => b.innerHTML.includes('font-size:1.6em')")
        bad = {size: f["problems"] for size, f in result["fit"].items() if f["problems"]}
        assert not bad, f"the explorer does not fit: {bad}"
        step = "slider move"
        result.update(move_first_slider(page, box, method="mouse"))
        result["screenshots"].append(_shot(page, shots_dir, f"{name}_explorer_after_move"))
        assert result["image_changed"] or result["html_changed"], "the slider move changed nothing"
        assert result["hash"][0] == result["hash"][1], f"the slider move turned the slide: {result['hash']}"
        step = "after the move"
        problems = page.evaluate(JS_PROBLEMS)
        assert not problems, f"the page shows: {problems}"
        # what a presenter does: an arrow key on a focused slider handle moves the slider, and the
        # deck stays (reveal.js listens on the whole page; bnlab's explorer keeps those keys)
        step = "arrow key on a slider"
        handle = box.locator(".widget-slider:not(.mod-disabled) .noUi-handle").first
        page.wait_for_timeout(1000)  # the slider move's round trip to the kernel is over
        handle.focus()
        # the slider's own value (aria-valuenow is rounded to one decimal: 2.17 reads "2.2")
        value_of = """h => { const t = h.closest('.noUi-target');
            return String(t && t.noUiSlider ? t.noUiSlider.get() : h.getAttribute('aria-valuenow')); }"""
        before = handle.evaluate(value_of)
        moved = False
        for key in ("ArrowLeft", "ArrowRight", "ArrowRight"):  # at its minimum: the other way
            page.keyboard.press(key)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and not moved:
                moved = handle.evaluate(value_of) != before
                page.wait_for_timeout(100)
            if moved:
                break
        result["arrow_key_on_slider_turns_slide"] = page.evaluate("() => location.hash") != result["hash"][1]
        result["arrow_key_moves_slider"] = moved
        assert not result["arrow_key_on_slider_turns_slide"], "an arrow key on a slider turned the slide"
        assert result["arrow_key_moves_slider"], (
            "an arrow key on a focused slider did not move it: "
            + json.dumps(handle.evaluate("""h => ({focused: document.activeElement === h,
                active: (document.activeElement || {}).className, now: h.getAttribute('aria-valuenow'),
                min: h.getAttribute('aria-valuemin'), max: h.getAttribute('aria-valuemax'),
                label: h.getAttribute('aria-label'), hash: location.hash})""")) + f" (before: {before})")
        step = "slide heights"  # once every image has loaded and the math is set
        wait_for(lambda: page.evaluate("() => Array.from(document.images).every(i => i.complete)"), 30,
                 "every image of the deck to load")
        heights = settle(lambda: page.evaluate(JS_SLIDE_HEIGHTS), 15, "the slides' heights")
        result["overflowing_slides"] = [h for h in heights if h["height"] > h["limit"] + 1]
        unexpected, known = record.unexpected_page_errors(KNOWN_REVEAL_PAGE_ERRORS)
        result["known_page_errors"] = known
        assert not unexpected, f"page errors: {unexpected}"
        result["aborted"] = [url for _, url in record.cdn["aborted"]]
        result["times"]["total"] = time.monotonic() - t0
        return result
    except Exception as exc:
        result["screenshots"].append(_shot(page, shots_dir, f"{name}_FAILED"))
        raise AssertionError(
            f"{notebook} (deck): step '{step}': {type(exc).__name__}: {exc}\n"
            f"  page errors: {record.page_errors or 'none'}\n"
            f"  console errors: {record.console_errors[:5] or 'none'}\n"
            f"  aborted requests: {record.cdn['aborted'][:5] or 'none'}\n"
            f"  screenshots: {result['screenshots']}\n  server log:\n{server.log_tail(15)}"
        ) from exc
    finally:
        record.close()


def main(argv=None):
    """By hand: ``--install-cdn``, or check notebooks (names inside notebooks/) as app and deck."""
    import argparse

    parser = argparse.ArgumentParser(description="Voila app and deck checks, by hand")
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--install-cdn", action="store_true",
                        help=f"npm install the CDN stand-ins into {CDN_DIR.relative_to(ROOT)} and stop")
    parser.add_argument("--only", choices=("app", "deck"))
    args = parser.parse_args(argv)
    if args.install_cdn:
        try:
            print(install_cdn_packages())
        except CdnUnavailable as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    from playwright.sync_api import sync_playwright

    install_cdn_packages()
    mirror = CdnMirror()
    with VoilaServer() as server, sync_playwright() as p:
        browser = launch_chromium(p)
        for notebook in args.notebooks:
            for kind, check in (("app", check_app), ("deck", check_deck)):
                if args.only and kind != args.only:
                    continue
                try:
                    res = check(browser, server, mirror, notebook)
                    print(json.dumps(res, indent=1, default=str)[:4000])
                except AssertionError as exc:
                    print(f"FAILED: {exc}")
            print("kernels left:", server.kernel_processes())
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
