"""Slider-to-picture latency in a real browser: JupyterLab in headless Chromium (run by hand).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_browser.py
    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_browser.py --notebooks 01,04 --presses 20

Needs ``/usr/bin/chromium`` (or ``BNLAB_CHROMIUM``), ``playwright`` (the Python
package only: ``playwright install`` is never needed) and ``jupyterlab``;
the front end is JupyterLab (Notebook 7 is not supported). Nothing is
written inside the repository: the notebooks are copied to a temporary
folder, JupyterLab serves that folder (its runtime files are in another
temporary folder, see ``tests/browser_support.py``), and both are removed at
the end, also after an error, Ctrl-C or SIGTERM (only a failed step's
screenshot is kept, in ``artifacts/bench_browser/``, ignored by git).

For each notebook (default: every numbered notebook but the index): open the copy in
JupyterLab, Run All (the browser test's steps,
:func:`browser_support.open_and_run_all`), take the first explorer (the first
output holding a slider), focus its first slider and press an arrow key
``--presses`` times (after ``--warmup`` untimed presses), alternating
ArrowRight and ArrowLeft so the value stays in range. Before each press the
kernel is idle and ``--settle`` seconds have passed; each press waits for the
change it causes. One press is timed *in the page* with ``performance.now()``
clocks, from the keydown event (``event.timeStamp``, a capturing listener on
``window``) to the mutation that puts the explorer's new picture in the page
(a ``MutationObserver`` on the output area sees the ``<img>``'s ``src``
change). An explorer whose sliders only record settings for a Run button
(notebook 07) is timed to the change of its message instead, and left out of
the comparison.

The baseline is what a typical tutorial does: a notebook made on the fly with
``%matplotlib inline`` and an ``ipywidgets.interact`` function that draws a
new three-panel pyplot figure (histograms of a batch before and after BN, a
bar chart of the statistics) on every move of a ``FloatSlider``; it is timed
the same way, to the moment the new figure's ``<img>`` appears.

Where the time goes (table 2, medians): a wrapped ``WebSocket`` in the page
(installed before JupyterLab loads) timestamps the messages, and a cell
appended to the temporary copy wraps the slider's ``set_state`` and the
explorer's ``compute``/``draw``/renderer in the kernel (test only, the
package is untouched) and writes their times to a file in the temporary
folder:

- ``key>send``: keydown to the widget's ``comm_msg`` leaving the page;
- ``kernel``: the kernel handling the slider's message (``set_state``: echo,
  observers, the explorer's update, sending its widgets' new state), wall
  clock, and ``(its CPU)``: the CPU time of the kernel's main thread meanwhile
  (less than ``kernel`` when the kernel waited for a CPU: a busy machine);
  ``compute``, ``draw`` (the artists' data), ``png`` (``FastRenderer.png``:
  the dynamic artists drawn on the kept background, and the encoding),
  ``full draw`` (whole-figure redraws within ``png``, when axes limits
  changed) and ``encode`` (the PNG encoder within ``png``) are parts of it;
  ``img sent`` is when the image's new value was sent within it;
- ``echo``: the kernel's ``echo_update`` of the slider value reaching the page
  (ipywidgets sends it first, from the kernel's IOPub thread);
- ``transport``: the rest of the round trip from ``comm_msg`` sent to the
  image message received by the page, i.e. ``(recv - send) - img sent``
  (browser -> server -> kernel and back, message (de)serialization);
- ``recv>img``: the image message received to the ``<img>`` ``src`` change
  (JupyterLab and ipywidgets handling it in the page);
- ``decode``: ``img.decode()`` after the change, and ``frame``: the next
  animation frame after that (the picture is on screen);
- ``send>idle``: ``comm_msg`` sent to the kernel's ``idle`` status for it
  arriving: ipywidgets' front end sends a widget's next value only then (its
  message throttle: one message in flight per widget, later values merged),
  so while a slider is dragged or a key held, this is the time per update;
- ``full``: presses that redrew the whole figure; ``PNG kB``: size of the
  picture; ``px``: its size in pixels.

Table 3 adds up the CPU time used (``/proc``) during the timed presses by the
kernels, the JupyterLab server, Chromium, this script, and every other
process on the machine, per press: on a shared two-core machine the kernel
competes with all of them.

``--variant`` runs experiments: the explorer, in the kernel of the temporary
copy only, renders its picture another way (``pngfast``: the same pixels as
a PNG without row filters at zlib level 1; ``palette``: a 256-colour PNG;
``jpeg``; ``bmp``: no compression; ``dpiNN``: fewer pixels; ``notext``: the
changing texts drawn in the figure left out, i.e. what they cost; parts
joined by ``+`` combine, e.g. ``notext+pngfast``). They
replace ``bnlab.plots._encode_png`` or change the figure in the kernel and
are rows of their own, not compared with the baseline.

The exit status is 0 unless a notebook failed to run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
# the kernels import bnlab from this checkout
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
)

from browser_support import (
    CHROMIUM,
    KERNEL_IDLE,
    PANEL,
    VIEWPORT,
    LabServer,
    StepError,
    kernel_status_text,
    launch_chromium,
    open_and_run_all,
    wait_for,
)

NOTEBOOKS = ROOT / "notebooks"
#: Screenshots of a failed step (ignored by git).
SHOTS = ROOT / "artifacts" / "bench_browser"
#: ``--variant`` experiments (besides ``dpiNN``): how the kernel renders the explorer's picture.
VARIANTS = ("none", "pngfast", "palette", "jpeg", "bmp", "notext")
BASELINE = "baseline_interact_pyplot"
GOAL_MEDIAN_MS = 50.0
GOAL_RATIO = 4.0
#: Seconds to wait for one press's change to show.
PRESS_TIMEOUT = 20
#: A Run/Train button: the explorer's sliders only record settings (its message changes).
RUN_BUTTON = re.compile(r"^\s*(Run|Train)\b", re.IGNORECASE)

# ---------------------------------------------------------------- page-side JavaScript

#: Installed before JupyterLab loads: every WebSocket's messages are timestamped (while
#: ``window.__benchWSOn``); only a timestamp and a reference are stored, parsing waits.
JS_WS_HOOK = """(() => {
  const Original = window.WebSocket;
  const log = (window.__benchWS = []);
  class TimedWebSocket extends Original {
    constructor(...args) {
      super(...args);
      // added before JupyterLab sets onmessage, so it runs first; timeStamp = arrival
      this.addEventListener('message', (e) => {
        if (window.__benchWSOn) log.push({dir: 'in', t: e.timeStamp, data: e.data});
      });
    }
    send(data) {
      if (window.__benchWSOn) log.push({dir: 'out', t: performance.now(), data});
      return super.send(data);
    }
  }
  window.WebSocket = TimedWebSocket;
})();"""

#: Watch one output area: images (``mode == 'img'``) or HTML texts (``'html'``); keydowns.
JS_INSTALL = """(box, mode) => {
  const st = (window.__bench = {box, mode, rec: null});
  const imgs = () => Array.from(box.querySelectorAll('img'));
  const htmls = () => Array.from(box.querySelectorAll('.widget-html-content')).map(h => h.innerHTML);
  st.snapshot = () => JSON.stringify(mode === 'img' ? imgs().map(i => i.src) : htmls());
  const frame = (r) => requestAnimationFrame(() => { r.tFrame = performance.now(); r.done = true; });
  new MutationObserver(() => {
    const r = st.rec;
    if (!r || r.tKey === null || r.tChange !== null) return;
    if (st.snapshot() === r.before) return;
    r.tChange = performance.now();
    if (mode !== 'img') { r.tDecoded = r.tChange; frame(r); return; }
    const old = new Set(JSON.parse(r.before));
    const img = imgs().find(i => !old.has(i.src));
    if (!img) { r.tDecoded = r.tChange; frame(r); return; }
    r.src = img.src.slice(0, 40);
    img.decode().then(
      () => { r.tDecoded = performance.now(); frame(r); },
      (err) => { r.decodeError = String(err); r.tDecoded = performance.now(); frame(r); });
  }).observe(box, {subtree: true, childList: true, characterData: true, attributes: true,
                   attributeFilter: ['src']});
  window.addEventListener('keydown', (e) => {
    const r = st.rec;
    if (r && r.tKey === null && (e.key === 'ArrowLeft' || e.key === 'ArrowRight')) {
      r.tKey = e.timeStamp;        // when the browser made the event
      r.tListener = performance.now();
    }
  }, true);
  return performance.timeOrigin;
}"""

#: Start a press: forget old WebSocket messages, remember what the output shows now.
JS_ARM = """() => {
  const st = window.__bench;
  window.__benchWS.length = 0;
  window.__benchWSOn = true;
  st.rec = {before: st.snapshot(), tKey: null, tListener: null, tChange: null, tDecoded: null,
            tFrame: null, done: false};
}"""

#: The press's record and its WebSocket messages, parsed (jupyter_server's v1 protocol,
#: or JSON text frames).
JS_TAKE = """() => {
  const st = window.__bench;
  window.__benchWSOn = false;
  const dec = new TextDecoder();
  const parse = (entry) => {
    const out = {dir: entry.dir, t: entry.t};
    try {
      let channel, header, parent, content, nbuf = 0;
      const data = entry.data;
      if (typeof data === 'string') {
        out.bytes = data.length;
        const m = JSON.parse(data);
        channel = m.channel; header = m.header; parent = m.parent_header; content = m.content;
        nbuf = (m.buffers || []).length;
      } else {
        const buf = data instanceof ArrayBuffer ? data
          : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
        out.bytes = buf.byteLength;
        const dv = new DataView(buf);
        const n = Number(dv.getBigUint64(0, true));
        const off = [];
        for (let i = 0; i < n; i++) off.push(Number(dv.getBigUint64(8 * (i + 1), true)));
        const part = (k) => dec.decode(new Uint8Array(buf, off[k], off[k + 1] - off[k]));
        channel = part(0); header = JSON.parse(part(1)); parent = JSON.parse(part(2));
        content = JSON.parse(part(4)); nbuf = Math.max(0, n - 6);
      }
      out.channel = channel;
      out.type = header.msg_type;
      out.id = header.msg_id;
      out.parent = (parent || {}).msg_id || null;
      out.nbuf = nbuf;
      if (header.msg_type === 'status') out.state = content.execution_state;
      if (header.msg_type === 'comm_msg') {
        out.method = (content.data || {}).method;
        out.keys = Object.keys((content.data || {}).state || {});
      }
      if (content && content.data && typeof content.data === 'object' && content.data['image/png'])
        out.png = true;
    } catch (e) { out.error = String(e); }
    return out;
  };
  const r = Object.assign({}, st.rec);
  r.ws = window.__benchWS.map(parse);
  window.__benchWS.length = 0;
  return r;
}"""

#: Size (bytes, as the browser holds it) and pixels of the explorer's current picture.
JS_IMAGE_INFO = """async (box) => {
  const imgs = Array.from(box.querySelectorAll('img')).filter(i => i.naturalWidth > 0);
  if (!imgs.length) return null;
  const img = imgs[imgs.length - 1];
  let bytes = null;
  try { bytes = (await (await fetch(img.src)).arrayBuffer()).byteLength; } catch (e) {}
  return {bytes, width: img.naturalWidth, height: img.naturalHeight,
          shown_width: img.clientWidth, shown_height: img.clientHeight,
          type: img.src.startsWith('data:') ? img.src.slice(5, img.src.indexOf(';'))
                                             : (img.src.startsWith('blob:') ? 'blob' : 'url')};
}"""

# ---------------------------------------------------------------- kernel-side instrumentation

#: Appended to the temporary copy of a notebook (test only): wraps the first slider's
#: ``set_state`` (the kernel's handling of a slider message) and the explorer's steps, and
#: writes one JSON line per slider message to ``LOG``.
KERNEL_HOOK = '''
def __bench_instrument(slider, log_path, explorer=None, image=None):
    import json, time
    perf = time.perf_counter
    current = {}

    def timed(owner, name, key):
        original = getattr(owner, name, None)
        if original is None:
            return
        def wrapper(*args, **kwargs):
            start = perf()
            try:
                return original(*args, **kwargs)
            finally:
                current[key] = current.get(key, 0.0) + (perf() - start) * 1000.0
        setattr(owner, name, wrapper)

    if explorer is not None:
        for name in ("compute", "draw"):
            timed(explorer, name, name)
        renderer = getattr(explorer, "renderer", None)
        if renderer is not None:
            timed(renderer, "png", "png")
            canvas = getattr(getattr(renderer, "fig", None), "canvas", None)
            if canvas is not None:
                timed(canvas, "draw", "full_draw")  # a full redraw (axes limits changed)
        try:  # the PNG encoder FastRenderer calls (a module function: patched for timing)
            import bnlab.plots as plots_module
            if hasattr(plots_module, "_encode_png"):
                timed(plots_module, "_encode_png", "encode")
        except ImportError:
            pass
    if image is not None:
        def sent(change):  # runs after ipywidgets sent the new value (notify_change)
            if "start" in current:
                current["img_sent"] = (perf() - current["start"]) * 1000.0
                current["png_bytes"] = len(change["new"])
        image.observe(sent, names="value")
    original_set_state = slider.set_state
    def set_state(state):
        current.clear()
        current["start"] = perf()
        cpu, process_cpu = time.thread_time(), time.process_time()
        wall = time.time() * 1000.0
        try:
            return original_set_state(state)
        finally:
            current["kernel"] = (perf() - current.pop("start")) * 1000.0
            current["kernel_cpu"] = (time.thread_time() - cpu) * 1000.0
            current["process_cpu"] = (time.process_time() - process_cpu) * 1000.0
            current["wall_start"] = wall
            current["keys"] = sorted(state)
            with open(log_path, "a") as log:
                log.write(json.dumps(current) + "\\n")
    slider.set_state = set_state


def __bench_variant(explorer, variant):
    """Experiment (test only): render the explorer's picture another way from now on.

    ``variant``: ``none`` or parts joined by ``+`` (e.g. ``notext+pngfast``).
    """
    if variant == "none":
        return
    import io, struct, zlib
    import matplotlib.text
    import numpy as np
    import bnlab.plots as plots_module
    from PIL import Image

    def png_unfiltered(canvas):  # the same pixels: PNG rows unfiltered, zlib level 1
        width, height = canvas.get_width_height()
        rgba = np.asarray(canvas.buffer_rgba())
        rows = np.empty((height, 1 + 3 * width), np.uint8)
        rows[:, 0] = 0
        rows[:, 1:] = rgba[:, :, :3].reshape(height, 3 * width)
        def chunk(tag, data):
            crc = zlib.crc32(tag + data) & 0xFFFFFFFF
            return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + chunk(b"IEND", b""))

    def pillow(fmt, **options):
        def encode(canvas):
            width, height = canvas.get_width_height()
            image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
            image = image.convert("RGB")
            if fmt == "png-palette":  # 256 colours
                image = image.quantize(256, method=Image.Quantize.FASTOCTREE)
            buf = io.BytesIO()
            image.save(buf, format="png" if fmt == "png-palette" else fmt, **options)
            return buf.getvalue()
        return encode

    encoders = {
        "pngfast": (png_unfiltered, "png"),
        "palette": (pillow("png-palette", compress_level=1), "png"),
        "jpeg": (pillow("jpeg", quality=90), "jpeg"),
        "bmp": (pillow("bmp"), "bmp"),
    }
    for part in variant.split("+"):
        if part.startswith("dpi"):  # fewer pixels: the same figure at another resolution
            explorer.fig.set_dpi(int(part[3:]))
        elif part == "notext":  # what the changing texts drawn in the figure cost
            renderer = explorer.renderer
            renderer.dynamic = [a for a in renderer.dynamic if not isinstance(a, matplotlib.text.Text)]
        elif part in encoders:
            if not hasattr(plots_module, "_encode_png"):
                raise RuntimeError("bnlab.plots._encode_png is gone: variant " + part + " needs it")
            plots_module._encode_png, explorer.image.format = encoders[part]
        else:
            raise ValueError("unknown variant " + part)
    explorer.render(full=True)


def __bench_first_slider(widget):
    import ipywidgets
    kinds = (ipywidgets.FloatSlider, ipywidgets.IntSlider, ipywidgets.FloatLogSlider,
             ipywidgets.SelectionSlider)
    stack = [widget]
    while stack:
        w = stack.pop(0)
        if isinstance(w, kinds):
            return w
        stack[:0] = list(getattr(w, "children", ()) or ())
    return None
'''

#: The baseline: a typical tutorial's interact + pyplot figure.
BASELINE_SOURCE = (
    "%matplotlib inline\n"
    "import numpy as np\n"
    "import matplotlib.pyplot as plt\n"
    "from ipywidgets import FloatSlider, interact\n"
    "\n"
    "rng = np.random.default_rng(0)\n"
    "z = rng.normal(loc=[-2.0, 1.0, 3.0], scale=[0.5, 1.5, 1.0], size=(400, 3))\n"
    "\n"
    "\n"
    "def show_bn(gamma=1.0, beta=0.0):\n"
    "    mu, var = z.mean(axis=0), z.var(axis=0)\n"
    "    y = gamma * (z - mu) / np.sqrt(var + 1e-5) + beta\n"
    "    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))\n"
    "    for j in range(z.shape[1]):\n"
    "        axes[0].hist(z[:, j], bins=30, alpha=0.6, label=f'feature {j}')\n"
    "        axes[1].hist(y[:, j], bins=30, alpha=0.6, label=f'feature {j}')\n"
    "    axes[0].set(title='batch before BN', xlabel='value', ylabel='count')\n"
    "    axes[1].set(title=f'after BN (gamma={gamma:.1f}, beta={beta:.1f})', xlabel='value')\n"
    "    axes[0].legend()\n"
    "    x = np.arange(z.shape[1])\n"
    "    axes[2].bar(x - 0.2, y.mean(axis=0), 0.4, label='mean')\n"
    "    axes[2].bar(x + 0.2, y.std(axis=0), 0.4, label='std')\n"
    "    axes[2].set_xticks(x, [f'feature {j}' for j in x])\n"
    "    axes[2].set(title='statistics after BN')\n"
    "    axes[2].legend()\n"
    "    plt.tight_layout()\n"
    "    plt.show()\n"
    "\n"
    "\n"
    "bn_plot = interact(show_bn, gamma=FloatSlider(value=1.0, min=0.1, max=3.0, step=0.1),\n"
    "                   beta=FloatSlider(value=0.0, min=-3.0, max=3.0, step=0.1))\n"
)

#: ``name = widgets.SomeExplorer(`` (or ``bnlab.widgets.``): the notebook's explorers, in order.
EXPLORER_CELL = re.compile(r"^(\w+)\s*=\s*(?:bnlab\.)?widgets\.(\w+)\(", re.MULTILINE)


def _code_cell(source):
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": source,
    }


def prepare_notebook(src, dest_dir, variant="none"):
    """Copy ``src`` into ``dest_dir`` with the kernel hook appended; a job (dict)."""
    nb = json.loads(Path(src).read_text())
    stem = Path(src).stem + ("" if variant == "none" else "__" + variant.replace("+", "-"))
    log = (dest_dir / f"{stem}.kernel.jsonl").resolve()
    found = None
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            m = EXPLORER_CELL.search("".join(cell["source"]))
            if m:
                found = m.groups()
                break
    if found:
        var, _cls = found
        hook = KERNEL_HOOK + (
            f"\n__bench_variant({var}, {variant!r})"
            f"\n__bench_instrument(__bench_first_slider({var}.widget), {str(log)!r},"
            f" explorer={var}, image=getattr({var}, 'image', None))\n"
        )
        nb["cells"].append(_code_cell(hook))
    elif variant != "none":
        raise SystemExit(f"{src}: no explorer found for the variant {variant!r}")
    dest = dest_dir / f"{stem}.ipynb"
    dest.write_text(json.dumps(nb))
    label = Path(src).stem + ("" if variant == "none" else f" [{variant}]")
    return {
        "rel": dest.name,
        "explorer": found[1] if found else "?",
        "log": log,
        "label": label,
        "variant": variant,
    }


def make_baseline(dest_dir):
    log = (dest_dir / f"{BASELINE}.kernel.jsonl").resolve()
    hook = KERNEL_HOOK + (
        f"\n__bench_instrument(__bench_first_slider(bn_plot.widget), {str(log)!r})\n"
    )
    nb = {
        "cells": [_code_cell(BASELINE_SOURCE), _code_cell(hook)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    dest = dest_dir / f"{BASELINE}.ipynb"
    dest.write_text(json.dumps(nb))
    return {
        "rel": dest.name,
        "explorer": "interact + pyplot",
        "log": log,
        "label": "baseline: interact + pyplot",
        "variant": "baseline",
    }


# ---------------------------------------------------------------- measuring one notebook


def _first(entries, pred):
    return next((e for e in entries if pred(e)), None)


def analyse_press(rec, mode):
    """Times (ms) of one press from its page record and WebSocket messages."""
    ws = rec["ws"]
    out = {
        "e2e": rec["tChange"] - rec["tKey"],
        "listener_lag": rec["tListener"] - rec["tKey"],
        "decode": rec["tDecoded"] - rec["tChange"],
        "frame": rec["tFrame"] - rec["tKey"],
    }
    send = _first(
        ws,
        lambda e: (
            e["dir"] == "out"
            and e.get("type") == "comm_msg"
            and e.get("method") == "update"
            and e["t"] >= rec["tKey"] - 1
        ),
    )
    if send is None:
        return out
    out["key_send"] = send["t"] - rec["tKey"]
    out["send_epoch_rel"] = send["t"]

    def answers(e):
        if e["dir"] != "in" or e["t"] > rec["tChange"] + 0.01:
            return False
        if mode == "img":
            return (e.get("type") == "comm_msg" and e.get("nbuf", 0) > 0) or (
                e.get("type") in ("display_data", "execute_result", "update_display_data")
            )
        return e.get("type") == "comm_msg" and e.get("method") == "update"

    echo = _first(
        ws,
        lambda e: e["dir"] == "in" and e.get("method") == "echo_update" and e["t"] >= send["t"],
    )
    if echo is not None:
        out["echo"] = echo["t"] - send["t"]
    recv = [e for e in ws if answers(e)]
    if recv:
        out["send_recv"] = recv[-1]["t"] - send["t"]
        out["recv_change"] = rec["tChange"] - recv[-1]["t"]
        out["recv_bytes"] = recv[-1].get("bytes")
    idle = _first(
        ws,
        lambda e: (
            e["dir"] == "in"
            and e.get("type") == "status"
            and e.get("state") == "idle"
            and e.get("parent") == send.get("id")
        ),
    )
    if idle is not None:
        out["send_idle"] = idle["t"] - send["t"]
    out["messages_in"] = sum(1 for e in ws if e["dir"] == "in" and e["t"] <= rec["tChange"])
    return out


def read_kernel_log(path):
    try:
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError:
        return []


def match_kernel(presses, kernel_records, time_origin):
    """Attach to each press the kernel record of its slider message (by wall-clock time)."""
    for p in presses:
        send = p.get("send_epoch_rel")
        if send is None:
            continue
        send_wall = time_origin + send
        best = None
        for k in kernel_records:
            lag = k["wall_start"] - send_wall
            if -20 <= lag <= p["e2e"] + 20 and (best is None or abs(lag) < abs(best[0])):
                best = (lag, k)
        if best is None:
            continue
        k = best[1]
        p["kernel"] = k["kernel"]
        p["full_draw"] = k.get("full_draw", 0.0)
        for key in (
            "kernel_cpu",
            "process_cpu",
            "compute",
            "draw",
            "png",
            "encode",
            "img_sent",
            "png_bytes",
        ):
            if key in k:
                p[key] = k[key]
        if "send_recv" in p:
            sent_at = k.get("img_sent", k["kernel"])
            p["transport"] = p["send_recv"] - sent_at


def cpu_times(server_pid):
    """CPU seconds used so far by: the kernels, the JupyterLab server, Chromium (and
    playwright's driver), this script, and every other process (``busy`` minus those)."""
    hz = os.sysconf("SC_CLK_TCK")
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        procs[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / hz, cmdline)

    def under(pid, root):
        seen = 0
        while pid and pid in procs and seen < 64:
            if pid == root:
                return True
            pid, seen = procs[pid][0], seen + 1
        return False

    me = os.getpid()
    out = {"kernel": 0.0, "server": 0.0, "browser": 0.0, "bench": 0.0}
    for pid, (_ppid, cpu, cmdline) in procs.items():
        if under(pid, server_pid):
            out["kernel" if b"ipykernel" in cmdline else "server"] += cpu
        elif pid == me:
            out["bench"] += cpu
        elif under(pid, me):
            out["browser"] += cpu
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    out["busy"] = (user + nice + system + irq + softirq + steal) / hz
    out["wall"] = time.monotonic()
    return out


def cpu_per_press(before, after, presses):
    """Milliseconds of CPU per press for each group in :func:`cpu_times`, and ``other``."""
    d = {k: (after[k] - before[k]) * 1000.0 / presses for k in before}
    d["other"] = d["busy"] - sum(d[k] for k in ("kernel", "server", "browser", "bench"))
    return d


def wait_idle(page, timeout=30):
    wait_for(
        lambda: KERNEL_IDLE.match(kernel_status_text(page) or ""),
        timeout,
        "the kernel to be idle",
        interval=0.05,
    )


def measure(browser, server, job, args, shots_dir):
    """Open ``job["rel"]``, Run All, press the first slider's arrow keys; a dict of results."""
    rel, explorer, kernel_log = job["rel"], job["explorer"], job["log"]
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(JS_WS_HOOK)
    page = context.new_page()
    page.set_default_timeout(30_000)
    row = {
        "notebook": job["label"],
        "explorer": explorer,
        "variant": job["variant"],
        "presses": [],
        "errors": [],
    }
    try:
        result, _shot, fail = open_and_run_all(page, server, rel, shots_dir)
        result["step"] = "find the explorer"
        box = page.locator(
            PANEL + " .jp-OutputArea-output",
            has=page.locator(".widget-slider"),
        ).first
        box.scroll_into_view_if_needed(timeout=15_000)
        wait_for(
            lambda: box.evaluate(
                "b => Array.from(b.querySelectorAll('img')).some(i => i.complete && i.naturalWidth > 0)"
            ),
            30,
            "the explorer's image to load",
        )
        if explorer == "?":
            row["explorer"] = box.evaluate(
                "b => ((b.querySelector('h3') || {}).innerText || '').slice(0, 30)"
            )
        slider = box.locator(".widget-slider").first
        handle = slider.locator(".noUi-handle").first
        row["slider"] = slider.evaluate(
            "s => ((s.querySelector('.widget-label') || {}).innerText || '').trim()"
        )
        has_run = (
            box.locator("button", has_text=RUN_BUTTON).count() > 0 and job["variant"] != "baseline"
        )
        mode = "html" if has_run else "img"
        row["mode"] = mode
        time_origin = box.evaluate(JS_INSTALL, mode)
        aria = handle.evaluate(
            "h => [h.getAttribute('aria-valuenow'), h.getAttribute('aria-valuemax')]"
        )
        try:
            at_max = float(aria[0]) >= float(aria[1])
        except (TypeError, ValueError):
            at_max = False
        key = "ArrowLeft" if at_max else "ArrowRight"
        result["step"] = "presses"
        wait_idle(page)
        cpu_before = None
        for i in range(args.warmup + args.presses):
            if i == args.warmup:
                cpu_before = cpu_times(server.process.pid)
            if not handle.evaluate("h => document.activeElement === h"):
                handle.focus()
            wait_idle(page)
            time.sleep(args.settle)
            page.evaluate(JS_ARM)
            page.keyboard.press(key)
            try:
                page.wait_for_function(
                    "() => window.__bench.rec && window.__bench.rec.done",
                    timeout=PRESS_TIMEOUT * 1000,
                )
            except Exception:  # noqa: BLE001 - playwright's TimeoutError
                rec = page.evaluate(JS_TAKE)
                row["errors"].append(
                    f"press {i + 1} ({key}): nothing changed within {PRESS_TIMEOUT} s "
                    f"(keydown seen: {rec['tKey'] is not None})"
                )
                if len(row["errors"]) >= 3:
                    fail("; ".join(row["errors"]))
                key = "ArrowLeft" if key == "ArrowRight" else "ArrowRight"
                continue
            rec = page.evaluate(JS_TAKE)
            if i >= args.warmup:
                press = analyse_press(rec, mode)
                press["key"] = key
                row["presses"].append(press)
            key = "ArrowLeft" if key == "ArrowRight" else "ArrowRight"
        wait_idle(page)
        if cpu_before is not None:
            row["cpu"] = cpu_per_press(cpu_before, cpu_times(server.process.pid), args.presses)
        row["image"] = box.evaluate(JS_IMAGE_INFO)
        match_kernel(row["presses"], read_kernel_log(kernel_log), time_origin)
        if result["page_errors"]:
            row["errors"].append(f"page errors: {result['page_errors'][:3]}")
    except StepError as exc:
        row["errors"].append(str(exc))
    finally:
        context.close()
        try:
            server.shutdown_kernels_of(rel)
        except OSError:
            pass
    return row


# ---------------------------------------------------------------- report


def _stat(presses, key, how=statistics.median):
    values = [p[key] for p in presses if p.get(key) is not None]
    return how(values) if values else float("nan")


def _p90(values):
    values = sorted(values)
    return values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]


def print_tables(rows, baseline):
    base_median = _stat(baseline["presses"], "e2e") if baseline else float("nan")
    header = (
        f"{'notebook':32s} {'explorer':22s} {'slider':24s} {'n':>3s} "
        f"{'median ms':>9s} {'p90 ms':>7s} {'worst ms':>8s} {'base/this':>9s}"
    )
    print("\n1. end to end: keydown -> new picture in the page (ms)\n")
    print(header)
    print("-" * len(header))
    pooled = []
    for row in [*rows, *([baseline] if baseline else [])]:
        name = row["notebook"][:32]
        if not row["presses"]:
            print(
                f"{name:32s} {row['explorer'][:22]:22s} FAILED: {' | '.join(row['errors'])[:400]}"
            )
            continue
        e2e = [p["e2e"] for p in row["presses"]]
        median = statistics.median(e2e)
        is_base = row is baseline
        note = ""
        if row.get("mode") == "html":
            note = "  (settings only: times its message; not compared)"
        elif not is_base and row.get("variant", "none") == "none":
            pooled.extend(e2e)
        ratio = (
            ""
            if is_base or row.get("mode") == "html" or math.isnan(base_median)
            else f"{base_median / median:9.1f}"
        )
        print(
            f"{name:32s} {row['explorer'][:22]:22s} {row.get('slider', '')[:24]:24s} "
            f"{len(e2e):3d} {median:9.1f} {_p90(e2e):7.1f} {max(e2e):8.1f} {ratio:>9s}{note}"
        )
        if row["errors"]:
            print(f"{'':32s}   problems: {' | '.join(row['errors'])[:400]}")
    if pooled and baseline and baseline["presses"]:
        median = statistics.median(pooled)
        print("-" * len(header))
        print(
            f"{'bnlab explorers (as they are), all presses':55s} {'':24s}{len(pooled):3d} "
            f"{median:9.1f} {_p90(pooled):7.1f} {max(pooled):8.1f} {base_median / median:9.1f}"
        )
        ok_median = median <= GOAL_MEDIAN_MS
        ok_ratio = base_median / median >= GOAL_RATIO
        print(
            f"goal: bnlab median <= {GOAL_MEDIAN_MS:g} ms: {'met' if ok_median else 'NOT met'} "
            f"({median:.1f} ms); baseline/bnlab >= {GOAL_RATIO:g}: "
            f"{'met' if ok_ratio else 'NOT met'} ({base_median / median:.1f}x)"
        )

    print("\n2. where the time goes (medians, ms; see the module docstring)\n")
    cols = [
        ("key>send", "key_send"),
        ("kernel", "kernel"),
        ("(its CPU)", "kernel_cpu"),
        ("compute", "compute"),
        ("draw", "draw"),
        ("png", "png"),
        ("full draw", "full_draw"),
        ("encode", "encode"),
        ("img sent", "img_sent"),
        ("echo", "echo"),
        ("transport", "transport"),
        ("recv>img", "recv_change"),
        ("= e2e", "e2e"),
        ("decode", "decode"),
        ("frame", "frame"),
        ("send>idle", "send_idle"),
    ]
    head = (
        f"{'notebook':32s} "
        + " ".join(f"{c:>9s}" for c, _ in cols)
        + f" {'full':>5s} {'PNG kB':>7s} {'px':>9s}"
    )
    print(head)
    print("-" * len(head))
    for row in [*rows, *([baseline] if baseline else [])]:
        if not row["presses"]:
            continue
        cells = []
        for _, key in cols:
            v = _stat(row["presses"], key)
            cells.append(f"{'-':>9s}" if math.isnan(v) else f"{v:9.1f}")
        img = row.get("image") or {}
        size = _stat(row["presses"], "png_bytes")
        if math.isnan(size):  # no kernel record: the browser's copy
            size = img.get("bytes") or float("nan")
        px = f"{img.get('width', 0)}x{img.get('height', 0)}"
        timed = [p for p in row["presses"] if "full_draw" in p]
        full = f"{sum(p['full_draw'] > 0 for p in timed)}/{len(timed)}" if timed else "-"
        print(
            f"{row['notebook'][:32]:32s} "
            + " ".join(cells)
            + f" {full:>5s} {size / 1000:7.1f} {px:>9s}"
        )
    print(
        "\nkernel = the kernel's handling of the slider message (compute, draw and png are "
        "parts of it; img sent = when the new image left, from its start); transport = "
        "(image message received - comm_msg sent) - img sent; recv>img = the page's "
        "handling of the image message; e2e = key>send + img sent + transport + recv>img; "
        "decode and frame follow the e2e mark; send>idle = until the next value may be sent; full = presses that redrew the whole figure (axes limits changed); echo = the kernel's echo_update of the slider value (sent first, by the kernel's IOPub thread)."
    )
    print(f"\n3. CPU per press (ms; from /proc, {os.cpu_count()} CPUs): what shares the machine\n")
    head = (
        f"{'notebook':32s} {'wall':>7s} {'kernel':>7s} {'server':>7s} {'chromium':>8s} "
        f"{'script':>7s} {'others':>7s} {'idle':>7s}"
    )
    print(head)
    print("-" * len(head))
    for row in [*rows, *([baseline] if baseline else [])]:
        c = row.get("cpu")
        if not c:
            continue
        idle = (os.cpu_count() or 1) * c["wall"] - c["busy"]
        print(
            f"{row['notebook'][:32]:32s} {c['wall']:7.1f} {c['kernel']:7.1f} {c['server']:7.1f} "
            f"{c['browser']:8.1f} {c['bench']:7.1f} {c['other']:7.1f} {idle:7.1f}"
        )
    print(
        "\nwall = one press's whole cycle (the press, the kernel going idle, the settle pause); "
        "others = processes outside this benchmark (other work on the machine)."
    )


# ---------------------------------------------------------------- main


def select_notebooks(spec):
    found = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if not p.name.startswith("00_"))
    if not spec:
        return found
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    chosen = [p for p in found if any(p.name.startswith(w) or p.stem == w for w in wanted)]
    if not chosen:
        raise SystemExit(f"no notebook matches {spec!r} in {NOTEBOOKS}")
    return chosen


def start_lab(root, attempts=3):
    """A started :class:`LabServer` on ``root``; a new free port for each of ``attempts`` tries."""
    for attempt in range(attempts):
        server = LabServer(root)
        try:
            return server.start()
        except RuntimeError as exc:
            server.stop()
            if attempt == attempts - 1:
                raise RuntimeError(f"JupyterLab did not start in {attempts} tries: {exc}") from exc
    raise AssertionError("unreachable")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--notebooks",
        default="",
        help="comma-separated prefixes or stems, e.g. 01,04 (default: 01 to 07)",
    )
    parser.add_argument("--presses", type=int, default=20, help="timed presses (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed presses first (default 2)")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.15,
        help="pause after idle before a press, s (default 0.15)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the interact baseline")
    parser.add_argument(
        "--lab", action="store_true", help="use JupyterLab (the default and only front end)"
    )
    parser.add_argument(
        "--variant",
        default="none",
        help="experiments, comma-separated: none (bnlab as it is), pngfast (the same pixels "
        "as PNG without row filters, zlib level 1), palette (256-colour PNG), jpeg (quality "
        "90), bmp (no compression), dpiNN (e.g. dpi72: fewer pixels), notext (the changing "
        "texts drawn in the figure left out: what they cost), or several joined by + (e.g. "
        "notext+pngfast); each patches the explorer in the kernel of the temporary copy only "
        "(default: none)",
    )
    parser.add_argument("--json", default="", help="also write every press's times to this file")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (notebook copies, logs)"
    )
    args = parser.parse_args(argv)

    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install chromium, or set BNLAB_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    # a SIGTERM ends the run through the finally blocks (JupyterLab, kernels, temp folders)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    notebooks = select_notebooks(args.notebooks)
    variants = [v.strip() for v in args.variant.split(",") if v.strip()] or ["none"]
    for v in variants:
        for part in v.split("+"):
            if part not in VARIANTS and not re.fullmatch(r"dpi\d+", part):
                raise SystemExit(
                    f"unknown variant {part!r}: one of {', '.join(VARIANTS)} or dpiNN, "
                    "or several joined by +"
                )
    work = Path(tempfile.mkdtemp(prefix="bnlab-bench-browser-"))
    server = None
    rows, baseline, failed = [], None, False
    try:
        jobs = [prepare_notebook(p, work, v) for v in variants for p in notebooks]
        if not args.no_baseline:
            jobs.append(make_baseline(work))
        load = os.getloadavg()
        print(
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, chromium {CHROMIUM}; "
            f"{args.presses} presses after {args.warmup} warm-up, settle {args.settle} s"
        )
        server = start_lab(work)
        with sync_playwright() as p:
            browser = launch_chromium(p)
            print(f"JupyterLab on {server.base_url}, Chromium {browser.version}")
            try:
                for job in jobs:
                    start = time.monotonic()
                    row = measure(browser, server, job, args, SHOTS)
                    e2e = [q["e2e"] for q in row["presses"]]
                    summary = (
                        f"median {statistics.median(e2e):.1f} ms, worst {max(e2e):.1f} ms"
                        if e2e
                        else "FAILED"
                    )
                    print(
                        f"  {row['notebook']}: {row['explorer']}, {len(e2e)} presses, {summary} "
                        f"({time.monotonic() - start:.0f} s)",
                        flush=True,
                    )
                    if not e2e:
                        failed = True
                        print("    " + "\n    ".join(row["errors"])[:3000])
                    if job["variant"] == "baseline":
                        baseline = row
                    else:
                        rows.append(row)
            finally:
                browser.close()
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_tables(rows, baseline)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "baseline": baseline}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
