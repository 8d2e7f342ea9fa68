"""Helpers for the browser test: a throw-away JupyterLab server and a notebook driver.

Used by ``tests/test_browser.py``. Kept separate so the steps can be run by
hand against any folder of notebooks::

    python tests/browser_support.py notebooks/04_shift_scale_invariance.ipynb

Nothing is written inside the repository: JupyterLab's runtime, config, data,
settings and workspaces live in a temporary folder, autosave is off,
checkpoints go to the temporary folder, and the notebooks are never saved.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "browser"
#: Debian's chromium package; BNLAB_CHROMIUM points elsewhere (e.g. /usr/bin/chromium-browser).
CHROMIUM = os.environ.get("BNLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: JupyterLab user settings for the test server (written to its temporary settings folder).
LAB_SETTINGS = {
    # never write the notebooks back while the test runs them
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # no "would you like news?" toast over the notebook, no update check
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

#: Tall enough for the tallest explorer to fit in one screenshot.
VIEWPORT = {"width": 1400, "height": 1600}

# Timeouts (seconds); generous because the machine may be shared and slow.
SERVER_START_TIMEOUT = 90
PAGE_LOAD_TIMEOUT = 90
KERNEL_IDLE_TIMEOUT = 90
RUN_ALL_TIMEOUT = 180
WIDGET_UPDATE_TIMEOUT = 30
RUN_BUTTON_TIMEOUT = 180
RUN_EXPLORER_SLIDER_TIMEOUT = 8


def free_port():
    """A free TCP port on the loopback interface (bind to port 0, let the OS choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- the server


#: Per front end: the server application's config class, the page that proves it is up, and the
#: page errors its own front end raises on every page (with or without bnlab), matched exactly.
APPS = {
    "lab": {"config": "LabApp", "page": "/lab", "known_page_errors": ()},
    # Jupyter Notebook 7 (the `notebook` package): JupyterLab's DOM, pages at /notebooks/<path>
    "notebook": {
        "config": "JupyterNotebookApp",
        "page": "/tree",
        "known_page_errors": ("Cannot read properties of undefined (reading 'schema')",),
    },
}


class LabServer:
    """``python -m jupyter lab`` on a free loopback port with a random token, fully isolated.

    Parameters
    ----------
    root_dir : path
        The folder JupyterLab serves (the repository).
    work_dir : path, optional
        Where runtime files, config, settings, workspaces and logs go
        (default: a new temporary folder, removed by :meth:`stop`).
    app : {"lab", "notebook"}
        ``jupyter lab`` (JupyterLab) or ``jupyter notebook`` (Jupyter Notebook 7).
    """

    def __init__(self, root_dir=ROOT, work_dir=None, app="lab"):
        self.app = app
        self.known_page_errors = APPS[app]["known_page_errors"]
        self.root_dir = Path(root_dir).resolve()
        self._own_work_dir = work_dir is None
        self.work_dir = Path(
            tempfile.mkdtemp(prefix="bnlab-lab-") if work_dir is None else work_dir
        )
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.work_dir / "jupyterlab.log"
        self.process = None
        self._log = None

    # -- lifecycle
    def start(self, timeout=SERVER_START_TIMEOUT):
        work = self.work_dir
        dirs = {
            name: work / name
            for name in (
                "runtime",
                "config",
                "data",
                "settings",
                "workspaces",
                "checkpoints",
                "ipython",
            )
        }
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        for name, value in LAB_SETTINGS.items():
            target = dirs["settings"] / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(value))
        env = dict(os.environ)
        env.update(
            {
                "OMP_NUM_THREADS": "1",
                "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
                "JUPYTER_CONFIG_DIR": str(dirs["config"]),  # ignore the user's ~/.jupyter
                "JUPYTER_DATA_DIR": str(dirs["data"]),  # notebook signatures, user kernelspecs
                "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
                "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
                "IPYTHONDIR": str(dirs["ipython"]),
                "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ in the repository
                "JUPYTER_PLATFORM_DIRS": "1",
            }
        )
        env.pop("MPLBACKEND", None)
        cmd = [
            sys.executable,
            "-m",
            "jupyter",
            self.app,
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--allow-root",
            f"--{APPS[self.app]['config']}.workspaces_dir={dirs['workspaces']}",
            f"--{APPS[self.app]['config']}.user_settings_dir={dirs['settings']}",
            f"--FileCheckpoints.root_dir={dirs['checkpoints']}",
            "--ServerApp.terminals_enabled=False",
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the server's lifetime
        self.process = subprocess.Popen(
            cmd,
            cwd=work,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # its own process group
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with code {self.process.returncode} while "
                    f"starting:\n{self.log_tail()}"
                )
            try:
                if self.api("GET", "/api/status", timeout=5) is not None:
                    # the lab page itself (its first request builds the page config)
                    self.api("GET", APPS[self.app]["page"], timeout=30, raw=True)
                    return self
            except (OSError, urllib.error.URLError) as exc:
                last_error = exc
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"JupyterLab did not answer on {self.base_url} within {timeout} s "
            f"({last_error}):\n{self.log_tail()}"
        )

    def stop(self):
        """Shut every kernel down, then end the server's whole process group."""
        if self.process is not None and self.process.poll() is None:
            try:
                for kernel in self.api("GET", "/api/kernels", timeout=5) or []:
                    self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=10)
            except (OSError, urllib.error.URLError, ValueError):
                pass
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # anything left in the group (kernels) goes too
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- helpers
    def url(self, path, workspace=None):
        """The lab URL of ``path`` (relative to the root), with the token.

        With ``workspace``, JupyterLab opens it in that (new, empty) workspace,
        so tabs left by an earlier page are not restored next to it.
        """
        if self.app == "notebook":  # one notebook per page, no workspace to restore
            return f"{self.base_url}/notebooks/{path}?token={self.token}"
        where = f"/lab/workspaces/{workspace}" if workspace else "/lab"
        return f"{self.base_url}{where}/tree/{path}?reset&token={self.token}"

    def api(self, method, path, timeout=10, raw=False):
        """Call the server's REST API with the token; JSON-decoded answer (None when empty)."""
        request = urllib.request.Request(
            self.base_url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        if raw or not body:
            return body if raw else None
        return json.loads(body)

    def sessions_for(self, path):
        return [s for s in self.api("GET", "/api/sessions") or [] if s.get("path") == path]

    def shutdown_kernels_of(self, path):
        """Delete the sessions (and so the kernels) of the notebook at ``path``; their ids."""
        ids = []
        for session in self.sessions_for(path):
            ids.append(session["kernel"]["id"])
            self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
        return ids

    def log_tail(self, lines=40):
        try:
            self._log and self._log.flush()
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------- the page

#: The notebook panel on show (a hidden one may linger from a restored workspace).
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

#: JavaScript returning the prompts of every code cell, e.g. ["[1]:", "[*]:", "[ ]:"].
JS_PROMPTS = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell .jp-InputArea-prompt'))
  .map(p => p.textContent.replace(/\\s+/g, ''))"""

#: JavaScript returning the text of every error-looking output (stderr/error renderings).
JS_ERROR_OUTPUTS = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output'))
  .filter(o => (o.getAttribute('data-mime-type') || '') === 'application/vnd.jupyter.stderr'
               || o.classList.contains('jp-mod-error'))
  .map(o => o.textContent)"""

#: JavaScript listing outputs where a widget did not render (still loading, a text repr, an error).
JS_UNRENDERED_WIDGETS = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output'))
  .map(o => o.textContent.trim())
  .filter(t => /^Loading widget|Error displaying widget|^(VBox|HBox|Box|GridBox|Tab|Accordion|Image|HTML)\\(/.test(t))
  .map(t => t.slice(0, 200))"""

#: JavaScript: true when every image inside a widget has loaded and has a size.
JS_IMAGES_LOADED = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output .jupyter-widgets img'))
  .every(i => i.complete && i.naturalWidth > 0)"""

#: JavaScript (on a noUiSlider handle): record every aria-valuenow it takes from now on.
JS_WATCH_HANDLE = """(h) => {
    h.__bnlabValues = [h.getAttribute('aria-valuenow')];
    new MutationObserver(() => h.__bnlabValues.push(h.getAttribute('aria-valuenow')))
        .observe(h, {attributes: true, attributeFilter: ['aria-valuenow']});
}"""

#: What the kernel status item in the status bar reads once a kernel is idle, e.g. "Python 3 (ipykernel) | Idle".
KERNEL_IDLE = re.compile(r"^\s*(?!No Kernel)\S.*\|\s*Idle\s*$")
ERROR_TEXT = re.compile(r"Traceback|\b[A-Z]\w*(Error|Exception)\b\s*:?")


class StepError(AssertionError):
    """A step of the notebook run failed; the message says which notebook, which step, what was seen."""


def wait_for(predicate, timeout, what, interval=0.2):
    """Poll ``predicate()`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what} (last seen: {last!r})")


def settle(read, timeout, what, interval=0.3):
    """Poll ``read()`` until two readings ``interval`` apart agree; return the last one."""
    previous = read()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        current = read()
        if current == previous:
            return current
        previous = current
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def kernel_status_text(page):
    """The status bar's kernel item ("Python 3 (ipykernel) | Idle"), or '' if not shown.

    Jupyter Notebook 7 has no status bar: there it is made alike from the toolbar's
    kernel name and its execution indicator ("Kernel status: Idle ...").
    """
    return page.evaluate("""() => {
        const items = Array.from(document.querySelectorAll('#jp-main-statusbar .jp-StatusBar-TextItem'));
        const hit = items.map(i => i.textContent.trim()).find(t => /\\|\\s*(Idle|Busy|Starting|Connecting|Restarting|Unknown|Dead|Initializing|Disconnected)/i.test(t) || /No Kernel/.test(t));
        if (hit || document.querySelector('#jp-main-statusbar')) return hit || '';
        const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
        const name = panel && panel.querySelector('.jp-KernelName');
        const state = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
        const m = state && /Kernel status:\\s*(\\w+)/.exec(state.textContent);
        return name && m ? `${name.textContent.trim()} | ${m[1]}` : '';
    }""")


def run_menu(page, menu, item):
    """Open ``menu`` in the main menu bar and click ``item`` (e.g. "Run", "Run All Cells")."""
    page.locator(
        "#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(rf"^{re.escape(menu)}$")
    ).click()
    entry = page.locator(
        ".lm-Menu-content .lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel",
        has_text=re.compile(rf"^{re.escape(item)}$"),
    )
    entry.first.wait_for(state="visible", timeout=10_000)
    entry.first.click()


def explorer_snapshot(box):
    """What a slider move must change in one explorer: its images and its HTML texts.

    The slider readouts (``.widget-readout``) are left out: the browser updates
    them without the kernel.
    """
    return box.evaluate("""(box) => ({
        images: Array.from(box.querySelectorAll('img')).map(i => i.src),
        html: Array.from(box.querySelectorAll('.widget-html-content')).map(h => h.innerText),
        readouts: Array.from(box.querySelectorAll('.widget-readout')).map(r => r.innerText || r.value || ''),
    })""")


def open_and_run_all(page, server, rel_path, shots_dir):
    """Open a notebook, wait for an idle kernel, clear the outputs, Run All, wait for the widgets.

    The first steps of :func:`drive_notebook` (also used by
    ``benchmarks/bench_browser.py``). Returns ``(result, shot, fail)``: the
    dict of what happened so far (``result["step"]`` names the current step),
    ``shot(label, target=None)`` taking a screenshot into ``shots_dir``, and
    ``fail(message)`` raising :class:`StepError` with the step, the page's
    errors and the screenshots.
    """
    name = Path(rel_path).stem
    shots_dir = Path(shots_dir)
    shots_dir.mkdir(parents=True, exist_ok=True)
    page_errors = []
    for old in shots_dir.glob(f"{name}_*.png"):  # screenshots of an earlier run
        old.unlink()
    console_errors = []
    content_writes = []
    page.on(
        "request",
        lambda req: (
            content_writes.append(f"{req.method} {req.url.split('?')[0]}")
            if req.method in ("PUT", "PATCH", "DELETE") and "/api/contents" in req.url
            else None
        ),
    )
    known_errors = []  # the front end's own, on every page (LabServer.known_page_errors)
    known = getattr(server, "known_page_errors", ())
    page.on(
        "pageerror",
        lambda exc: (known_errors if str(exc) in known else page_errors).append(str(exc)),
    )
    page.on(
        "console",
        lambda msg: console_errors.append(msg.text[:300]) if msg.type == "error" else None,
    )
    t0 = time.monotonic()
    result = {
        "notebook": rel_path,
        "page_errors": page_errors,
        "known_page_errors": known_errors,
        "console_errors": console_errors,
        "content_writes": content_writes,
        "screenshots": [],
        "times": {},
        "step": "open",
        "t0": t0,
    }

    def shot(label, target=None):
        path = shots_dir / f"{name}_{label.replace(' ', '_')}.png"
        try:
            (target or page).screenshot(path=str(path), timeout=15_000)
            result["screenshots"].append(str(path))
        except Exception as exc:  # noqa: BLE001 - a failing screenshot must not hide the real failure
            result["screenshots"].append(f"{path} (failed: {exc})")
        return path

    def fail(message):
        shot(f"FAILED_{result['step']}")
        raise StepError(
            f"{rel_path}: step '{result['step']}': {message}\n"
            f"  page errors: {page_errors or 'none'}\n"
            f"  console errors: {console_errors[:5] or 'none'}\n"
            f"  screenshots: {', '.join(result['screenshots'])}"
        )

    try:
        # 1. open the notebook
        workspace = f"bnlab-{re.sub(r'[^A-Za-z0-9]+', '-', name)}-{secrets.token_hex(4)}"
        page.goto(
            server.url(rel_path, workspace),
            wait_until="domcontentloaded",
            timeout=PAGE_LOAD_TIMEOUT * 1000,
        )
        page.locator(PANEL + " .jp-Notebook .jp-Cell").first.wait_for(
            state="attached", timeout=PAGE_LOAD_TIMEOUT * 1000
        )
        result["times"]["open"] = time.monotonic() - t0

        # 2. a kernel exists and is idle (the toolbar's execution indicator reads idle even
        #    before a kernel exists: read the status bar's kernel item and ask the server)
        result["step"] = "kernel idle"
        wait_for(
            lambda: KERNEL_IDLE.match(kernel_status_text(page) or "") is not None,
            KERNEL_IDLE_TIMEOUT,
            "the status bar to show an idle kernel",
        )
        sessions = wait_for(lambda: server.sessions_for(rel_path), 30, "a session on the server")
        result["kernel_id"] = sessions[0]["kernel"]["id"]
        result["kernel_status"] = kernel_status_text(page)
        result["times"]["kernel"] = time.monotonic() - t0

        # 3. clear the stored outputs (so stored prompts do not pass for fresh ones), run all
        result["step"] = "run all"
        prompts_before = page.evaluate(JS_PROMPTS)
        if not prompts_before:
            fail("the notebook shows no code cells")
        page.locator(PANEL + " .jp-Notebook").first.click(position={"x": 5, "y": 5})
        run_menu(page, "Edit", "Clear Outputs of All Cells")
        wait_for(
            lambda: all(p == "[]:" for p in page.evaluate(JS_PROMPTS)),
            30,
            "the stored prompts to be cleared",
        )
        run_menu(page, "Run", "Run All Cells")

        def finished():
            prompts = page.evaluate(JS_PROMPTS)
            if any(p == "[*]:" for p in prompts):
                return None
            if all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
                return prompts
            if page.evaluate(JS_ERROR_OUTPUTS):  # a cell failed: the rest stays "[ ]:"
                return prompts
            return None

        try:
            prompts = wait_for(finished, RUN_ALL_TIMEOUT, "every code cell to show a number [n]:")
        except TimeoutError as exc:
            fail(f"{exc}; prompts: {page.evaluate(JS_PROMPTS)}")
        result["times"]["run_all"] = time.monotonic() - t0
        result["cells"] = len(prompts)
        page.wait_for_load_state("load")
        errors = [t for t in page.evaluate(JS_ERROR_OUTPUTS) if ERROR_TEXT.search(t)]
        if errors:
            fail(f"a cell shows an error output:\n{errors[0][-3000:]}")
        unnumbered = [p for p in prompts if not re.fullmatch(r"\[\d+\]:", p)]
        if unnumbered:
            fail(f"cells without an execution number after Run All: {prompts}")
        if KERNEL_IDLE.match(kernel_status_text(page) or "") is None:
            wait_for(
                lambda: KERNEL_IDLE.match(kernel_status_text(page) or ""),
                30,
                "the kernel to be idle after Run All",
            )

        # 4. the widgets are rendered
        result["step"] = "widgets rendered"
        handle = page.locator(PANEL + " .jp-OutputArea-output .widget-slider .noUi-handle").first
        try:
            handle.wait_for(state="attached", timeout=30_000)
        except Exception:  # noqa: BLE001 - playwright's TimeoutError
            fail("no ipywidgets slider (.widget-slider .noUi-handle) appeared in any output")
        try:
            wait_for(
                lambda: not page.evaluate(JS_UNRENDERED_WIDGETS),
                30,
                "every widget output to render (no 'Loading widget...', no text repr, "
                "no 'Error displaying widget')",
            )
        except TimeoutError as exc:
            fail(str(exc))
        try:
            wait_for(lambda: page.evaluate(JS_IMAGES_LOADED), 30, "every widget image to load")
        except TimeoutError as exc:
            fail(str(exc))
        # outputs rendered by the widget manager (a failed one shows its text repr instead)
        result["widget_outputs"] = page.locator(
            PANEL + " .jp-OutputArea-output > .jupyter-widgets"
        ).count()
        return result, shot, fail
    except StepError:
        raise
    except Exception as exc:  # noqa: BLE001 - playwright timeouts and the like: name the step
        fail(f"{type(exc).__name__}: {exc}")


def drive_notebook(page, server, rel_path, shots_dir, presses=3, move=None):
    """Open, run all, move the first slider; return a dict of what happened.

    The slider moves with ``presses`` arrow keys on its focused handle, or, with
    ``move``, by ``move(page, box, key, fail)`` (another keyboard route: ``box`` is the
    explorer's output, ``key`` the direction, "ArrowRight" or "ArrowLeft"; it returns a
    note of what it did, kept as ``result["moved"]``).

    Raises :class:`StepError` (with the step, what was seen and the screenshot
    paths) when something goes wrong.
    """
    result, shot, fail = open_and_run_all(page, server, rel_path, shots_dir)
    t0 = result["t0"]
    page_errors, content_writes = result["page_errors"], result["content_writes"]
    try:
        # the explorer: the output holding the first slider
        box = page.locator(
            PANEL + " .jp-OutputArea-output", has=page.locator(".widget-slider")
        ).first
        handle = box.locator(".widget-slider .noUi-handle").first  # its first slider
        box.scroll_into_view_if_needed(timeout=15_000)
        wait_for(
            lambda: box.evaluate(
                "b => Array.from(b.querySelectorAll('img')).some(i => i.complete && i.naturalWidth > 0)"
            ),
            30,
            "the explorer's image to load",
        )
        # every widget output, for a look at how each explorer renders
        outputs = page.locator(PANEL + " .jp-OutputArea-output:has(> .jupyter-widgets)")
        for k in range(outputs.count()):
            shot(f"widget{k + 1}", outputs.nth(k))
        box.scroll_into_view_if_needed(timeout=15_000)
        shot("after_run_all")
        shot("explorer_before", box)
        before = explorer_snapshot(box)
        # messages (info or error lines) an explorer shows before anyone touched it
        result["messages_before"] = box.evaluate(
            "b => Array.from(b.querySelectorAll('[role=alert]')).map(a => a.innerText.trim())"
        )
        if not before["images"] and not before["html"]:
            fail("the first explorer shows neither an image nor HTML text")
        result["slider"] = box.locator(".widget-slider").first.evaluate(
            "s => (s.querySelector('.widget-label') || {}).innerText || ''"
        )

        # 5. move the first slider with the keyboard
        result["step"] = "slider move"
        aria = handle.evaluate(
            "h => [h.getAttribute('aria-valuenow'), h.getAttribute('aria-valuemax')]"
        )
        try:
            at_max = float(aria[0]) >= float(aria[1])
        except (TypeError, ValueError):
            at_max = False
        key = "ArrowLeft" if at_max else "ArrowRight"  # a slider at its maximum moves left instead
        handle.focus()
        focused = page.evaluate("() => document.activeElement && document.activeElement.className")
        if "noUi-handle" not in (focused or ""):
            fail(f"the slider handle did not take the keyboard focus (focused: {focused!r})")
        # record every value the handle takes (keys, and any update coming back from the kernel)
        handle.evaluate(JS_WATCH_HANDLE)
        if move is None:
            for _ in range(presses):
                page.keyboard.press(key)
        else:
            result["moved"] = move(page, box, key, fail)
        result["key"] = key

        def changed():
            now = explorer_snapshot(box)
            return (
                now
                if (now["images"] != before["images"] or now["html"] != before["html"])
                else None
            )

        # an explorer with a Run button (training takes seconds): the slider may only record a
        # setting (its answer: a message, quickly), and Run must redraw with it
        run = box.locator("button", has_text=re.compile(r"^\s*(Run|Train)\b", re.IGNORECASE))
        has_run = run.count() > 0
        try:
            wait_for(
                changed,
                RUN_EXPLORER_SLIDER_TIMEOUT if has_run else WIDGET_UPDATE_TIMEOUT,
                "the explorer's image or HTML to change after the slider moved",
            )
            result["answered"] = "the slider move"
        except TimeoutError as exc:
            if not has_run:
                fail(
                    f"{exc}; slider readouts before {before['readouts']}, now "
                    f"{explorer_snapshot(box)['readouts']}"
                )
            result["step"] = "run button"
            wait_for(
                lambda: KERNEL_IDLE.match(kernel_status_text(page) or ""),
                30,
                "the kernel to be idle after the slider moved",
            )
            run.first.click()
            try:
                wait_for(
                    lambda: explorer_snapshot(box)["images"] != before["images"],
                    RUN_BUTTON_TIMEOUT,
                    "the explorer's image to change after the slider moved and Run was pressed",
                )
            except TimeoutError as exc2:
                fail(str(exc2))
            result["answered"] = "the Run button (after the slider move changed nothing)"
        # let the kernel finish the moves (image and HTML arrive as separate messages)
        wait_for(
            lambda: KERNEL_IDLE.match(kernel_status_text(page) or ""),
            30,
            "the kernel to be idle after the slider moved",
        )
        after = settle(lambda: explorer_snapshot(box), 10, "the explorer to stop changing")
        wait_for(
            lambda: box.evaluate(
                "b => Array.from(b.querySelectorAll('img')).every(i => i.complete)"
            ),
            15,
            "the new image",
        )
        result["readouts"] = (before["readouts"], after["readouts"])
        # the kernel's answers should never move the slider against the keys
        trace = [float(v) for v in handle.evaluate("h => h.__bnlabValues") if v not in (None, "")]
        sign = 1 if key == "ArrowRight" else -1
        result["handle_values"] = trace
        result["slider_jumped"] = any(sign * (b - a) < 0 for a, b in itertools.pairwise(trace))
        result["image_changed"] = after["images"] != before["images"]
        result["html_changed"] = after["html"] != before["html"]
        shot("explorer_after", box)
        shot("after_slider")
        errors = [t for t in page.evaluate(JS_ERROR_OUTPUTS) if ERROR_TEXT.search(t)]
        if errors:
            fail(f"an error output appeared after the slider moved:\n{errors[0][-3000:]}")
        if page_errors:
            fail("the page raised JavaScript errors")
        if content_writes:
            fail(
                f"the page wrote to the server's files (the test must never save): {content_writes}"
            )
        result["times"]["total"] = time.monotonic() - t0
        return result
    except StepError:
        raise
    except Exception as exc:  # noqa: BLE001 - playwright timeouts and the like: name the step
        fail(f"{type(exc).__name__}: {exc}")


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def main(argv=None):
    """Run the browser steps by hand on notebooks given relative to the repository."""
    from playwright.sync_api import sync_playwright

    argv = sys.argv[1:] if argv is None else argv
    root = Path(os.environ.get("BNLAB_BROWSER_ROOT", ROOT))
    with LabServer(root) as server, sync_playwright() as p:
        browser = launch_chromium(p)
        for rel in argv:
            page = browser.new_page(viewport=VIEWPORT)
            try:
                res = drive_notebook(page, server, rel, ARTIFACTS)
                print(json.dumps(res, indent=1, default=str)[:3000])
            finally:
                page.close()
                print("killed kernels", server.shutdown_kernels_of(rel))
        browser.close()


if __name__ == "__main__":
    main()
