"""Per-student cost of the notebooks: kernel memory and CPU, JupyterLab's and Voila's servers (run by hand).

    OMP_NUM_THREADS=1 python benchmarks/bench_kernel_memory.py              # every notebook, then the servers
    python benchmarks/bench_kernel_memory.py notebooks/01_batch_statistics.ipynb --no-servers
    python benchmarks/bench_kernel_memory.py --json benchmarks/results/kernel_memory.json
    python benchmarks/bench_kernel_memory.py --update-doc    # the doc's generated tables, from the committed JSON

Each notebook runs top to bottom in a fresh kernel, as ``scripts/run_notebooks.py``
does it (nbclient, kernel ``python3`` started in ``notebooks/``, widget state
stored), one notebook at a time. The kernel process is read from
``/proc/<pid>/status`` and ``/proc/<pid>/stat``:

- RSS after the last cell (``VmRSS``) and the peak during the run (``VmHWM``,
  the kernel's own high-water mark, so nothing between two samples is missed);
- CPU seconds of the kernel process (user + sys): the whole notebook, and its
  heaviest cell (the counter read before and after each cell);
- wall seconds (these, unlike RSS, depend on the machine's load).

Baselines, each in a fresh kernel: an idle kernel, after ``import bnlab``, and
after the first cell every notebook shares (``import bnlab``, ``checks``,
``plots``, ``widgets``, ``setup_notebook()``).

Servers (skipped with ``--no-servers``; Voila only if it is installed), and
the CPU of a slider move of every explorer (:func:`measure_sliders`):

- a JupyterLab server (isolated, as in the browser test) idle, then with 1, 2,
  3 ... kernels, each running a whole notebook through the server's websocket
  as a browser would: the server's RSS and the kernels';
- a Voila server rendering one notebook (``--voila-notebook``): its RSS and the
  page's kernel, for 1 and 3 page loads; then a Voila server with
  ``--preheat_kernel=True --pool_size=2``: the pool's kernels (each has run the
  notebook already) and how long a page takes from the pool.

Prints Markdown tables; ``--json PATH`` also writes the figures.
``docs/teaching_at_scale.md`` shows tables and arithmetic generated from the
committed ``benchmarks/results/kernel_memory.json`` by :func:`doc_blocks`;
``--update-doc`` rewrites them there, and ``tests/test_teaching_at_scale.py``
checks that the doc and the JSON agree and that every notebook is listed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from docblocks import replace_blocks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
RESULTS = ROOT / "benchmarks" / "results" / "kernel_memory.json"
DOC = ROOT / "docs" / "teaching_at_scale.md"
MIB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

#: what every notebook's first cell does (notebooks 00-03 exactly; the others import a little more)
FIRST_CELL = "import numpy as np\n\nimport bnlab\nfrom bnlab import checks, plots, widgets\n\nbnlab.setup_notebook()"
BASELINES = {
    "idle kernel": [],
    "after `import bnlab`": ["import bnlab"],
    "after the first cell": [FIRST_CELL],
}
LAB_NOTEBOOKS = ("01_batch_statistics.ipynb", "05_running_statistics.ipynb", "07_training_with_bn.ipynb")
VOILA_NOTEBOOK = "04_shift_scale_invariance.ipynb"
VOILA_POOL = 2


# ---------------------------------------------------------------- /proc


def memory_mib(pid):
    """``{"rss": VmRSS, "hwm": VmHWM}`` of process ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key[2:].lower()] = int(value.split()[0]) / 1024  # kB
    return fields


def cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` (not of its children)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def cmdline(pid):
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def descendants(pid):
    """The pids of every process below ``pid``."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kernels_below(pid):
    """Pids of the ipykernel processes below ``pid``."""
    pids = []
    for child in descendants(pid):
        try:
            if "ipykernel" in cmdline(child):
                pids.append(child)
        except OSError:
            continue
    return pids


def _r(value, digits=1):
    return round(float(value), digits)


# ---------------------------------------------------------------- one notebook, one fresh kernel


async def _run_notebook(nb, cwd, timeout):
    from jupyter_core.utils import ensure_async
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        store_widget_state=True,
        record_timing=False,
    )
    client.reset_execution_trackers()
    cells = []
    async with client.async_setup_kernel():
        pid = client.km.provisioner.pid
        if "ipykernel" not in cmdline(pid):
            raise RuntimeError(f"process {pid} is not an ipykernel: {cmdline(pid)}")
        reply = await client.async_wait_for_reply(await ensure_async(client.kc.kernel_info()))
        assert reply is not None
        ready_cpu, ready = cpu_seconds(pid), memory_mib(pid)
        start = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            before = cpu_seconds(pid)
            await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            cells.append((index, cpu_seconds(pid) - before))
        wall = time.perf_counter() - start
        client.set_widgets_metadata()
        end_cpu, end = cpu_seconds(pid), memory_mib(pid)
    return pid, ready, ready_cpu, end, end_cpu, wall, cells


def run_notebook(path=None, cells=None, name=None, timeout=600):
    """Run a notebook (or a list of code cells) top to bottom in a fresh kernel; its cost as a dict.

    Keys: ``name``, ``code_cells``, ``rss_ready_mib`` (the kernel answering,
    before the first cell), ``rss_end_mib`` (after the last cell),
    ``rss_peak_mib`` (VmHWM), ``cpu_s`` (the kernel process's user + sys CPU
    seconds, start-up included), ``cpu_cells_s`` (the cells only),
    ``heaviest_cell`` (``{"index", "cpu_s", "line"}``), ``wall_s`` (the cells).
    """
    import nbformat

    if path is not None:
        path = Path(path).resolve()
        nb = nbformat.read(path, as_version=4)
        cwd, name = path.parent, name or path.name
    else:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells or []])
        cwd = NOTEBOOKS
    _pid, ready, ready_cpu, end, end_cpu, wall, timings = asyncio.run(_run_notebook(nb, cwd, timeout))
    heaviest = max(timings, key=lambda t: t[1], default=None)
    result = {
        "name": name,
        "code_cells": len(timings),
        "rss_ready_mib": _r(ready["rss"]),
        "rss_end_mib": _r(end["rss"]),
        "rss_peak_mib": _r(end["hwm"]),
        "cpu_s": _r(end_cpu, 2),
        "cpu_cells_s": _r(end_cpu - ready_cpu, 2),
        "wall_s": _r(wall, 2),
    }
    if heaviest is not None:
        source = nb.cells[heaviest[0]].source.strip().splitlines()
        result["heaviest_cell"] = {"index": heaviest[0], "cpu_s": _r(heaviest[1], 2),
                                   "line": source[0][:80] if source else ""}
    return result


# ---------------------------------------------------------------- servers


def _isolated_env(work):
    """Environment for a throw-away Jupyter server whose files all live in ``work``."""
    env = dict(os.environ)
    for name in ("runtime", "config", "data", "ipython"):
        (work / name).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        JUPYTER_CONFIG_DIR=str(work / "config"),
        JUPYTER_DATA_DIR=str(work / "data"),
        IPYTHONDIR=str(work / "ipython"),
        PYTHONDONTWRITEBYTECODE="1",
        JUPYTER_PLATFORM_DIRS="1",
    )
    env.pop("MPLBACKEND", None)
    return env


def _http(url, method="GET", body=None, token=None, timeout=600):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"token {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


async def _execute_over_websocket(ws_url, sources, timeout=600):
    """Run each source in the kernel behind ``ws_url`` (Jupyter's websocket, JSON messages); wait for each reply."""
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(ws_url)
    session = uuid.uuid4().hex
    try:
        for code in sources:
            msg_id = uuid.uuid4().hex
            await conn.write_message(json.dumps({
                "header": {"msg_id": msg_id, "username": "bench", "session": session, "msg_type": "execute_request",
                           "version": "5.3", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True},
            }))
            deadline = time.monotonic() + timeout
            while True:
                message = await asyncio.wait_for(conn.read_message(), max(1.0, deadline - time.monotonic()))
                if message is None:
                    raise RuntimeError("the kernel's websocket closed")
                if isinstance(message, bytes):  # a message with binary buffers (images): never the reply
                    continue
                msg = json.loads(message)
                if msg.get("msg_type") == "execute_reply" and msg.get("parent_header", {}).get("msg_id") == msg_id:
                    if msg["content"].get("status") != "ok":
                        raise RuntimeError(f"a cell failed: {msg['content'].get('ename')}: {msg['content'].get('evalue')}")
                    break
    finally:
        conn.close()


def measure_lab(notebooks=LAB_NOTEBOOKS):
    """A JupyterLab server idle, then with one more kernel (one more notebook run) at a time."""
    import nbformat

    sys.path.insert(0, str(ROOT / "tests"))
    from browser_support import LabServer

    rows = []
    with LabServer(ROOT) as lab:
        pid = lab.process.pid
        if "jupyter" not in cmdline(pid):
            raise RuntimeError(f"process {pid} is not the server: {cmdline(pid)}")
        time.sleep(2)
        rows.append({"kernels": 0, "notebook": None, "server_rss_mib": _r(memory_mib(pid)["rss"]),
                     "kernels_rss_mib": 0.0})
        for count, name in enumerate(notebooks, 1):
            path = f"notebooks/{name}"
            session = json.loads(_http(f"{lab.base_url}/api/sessions", "POST", token=lab.token, body={
                "path": path, "name": name, "type": "notebook", "kernel": {"name": "python3"}}))
            kernel_id = session["kernel"]["id"]
            nb = nbformat.read(ROOT / path, as_version=4)
            sources = [c.source for c in nb.cells if c.cell_type == "code"]
            ws = f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel_id}/channels?token={lab.token}"
            start = time.perf_counter()
            asyncio.run(_execute_over_websocket(ws, sources))
            wall = time.perf_counter() - start
            time.sleep(1)
            kernels = kernels_below(pid)
            rows.append({
                "kernels": len(kernels),
                "notebook": name,
                "server_rss_mib": _r(memory_mib(pid)["rss"]),
                "server_peak_mib": _r(memory_mib(pid)["hwm"]),
                "kernels_rss_mib": _r(sum(memory_mib(k)["rss"] for k in kernels)),
                "wall_s": _r(wall, 2),
            })
            if len(kernels) != count:
                raise RuntimeError(f"expected {count} kernels below the server, found {len(kernels)}")
        server_cpu = cpu_seconds(pid)
    return {"rows": rows, "server_cpu_s": _r(server_cpu, 2)}


class VoilaServer:
    """``python -m voila <notebook>`` on a free loopback port, its files in a temporary folder."""

    def __init__(self, notebook, extra_args=()):
        sys.path.insert(0, str(ROOT / "tests"))
        from browser_support import free_port

        self.notebook = Path(notebook).resolve()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.work = Path(tempfile.mkdtemp(prefix="bnlab-voila-bench-"))
        self.extra_args = list(extra_args)
        self.process = None

    def __enter__(self):
        cmd = [sys.executable, "-m", "voila", str(self.notebook), "--no-browser", f"--port={self.port}",
               "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", *self.extra_args]
        self._log = open(self.work / "voila.log", "wb")
        self.process = subprocess.Popen(cmd, cwd=self.work, env=_isolated_env(self.work), stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"voila exited:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"voila did not answer:\n{self.log_tail()}")

    def log_tail(self):
        self._log.flush()
        return (self.work / "voila.log").read_text(errors="replace")[-3000:]

    def __exit__(self, *exc):
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        self._log.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def render(self):
        """Load the page (Voila runs the notebook before it answers); seconds it took."""
        start = time.perf_counter()
        html = _http(self.url, timeout=600)
        if b"jupyter-widgets" not in html and b"widget" not in html:
            raise RuntimeError("the Voila page has no widgets")
        return time.perf_counter() - start

    def snapshot(self):
        kernels = kernels_below(self.process.pid)
        return {
            "server_rss_mib": _r(memory_mib(self.process.pid)["rss"]),
            "kernels": len(kernels),
            "kernels_rss_mib": _r(sum(memory_mib(k)["rss"] for k in kernels)),
        }

    def wait_for_pool(self, size, timeout=300):
        """Wait until ``size`` kernels exist and have stopped using CPU (the notebook ran in each)."""
        time.sleep(2)
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            kernels = kernels_below(self.process.pid)
            total = sum(cpu_seconds(k) for k in kernels) if len(kernels) >= size else None
            if total is not None and last is not None and total - last < 0.02:
                return
            last = total
            time.sleep(2)
        raise RuntimeError(f"the pool of {size} kernels did not settle:\n{self.log_tail()}")


def voila_available():
    try:
        import voila  # noqa: F401
    except ImportError:
        return False
    return True


def measure_voila(notebook=VOILA_NOTEBOOK, pool=VOILA_POOL):
    """A Voila server rendering ``notebook``: cold pages, then a preheated pool."""
    import voila

    path = NOTEBOOKS / notebook
    cold = []
    with VoilaServer(path) as server:
        time.sleep(2)
        cold.append({"pages": 0, "seconds": None, **server.snapshot()})
        for pages in (1, 2, 3):
            seconds = server.render()
            time.sleep(1)
            cold.append({"pages": pages, "seconds": _r(seconds, 2), **server.snapshot()})
    with VoilaServer(path, ["--preheat_kernel=True", f"--pool_size={pool}"]) as server:
        server.wait_for_pool(pool)
        before = server.snapshot()
        seconds = server.render()
        server.wait_for_pool(pool + 1)  # the page's kernel stays; the pool refills behind it
        after = server.snapshot()
    return {"voila": voila.__version__, "notebook": notebook, "cold": cold,
            "preheated": {"pool_size": pool, "before": before, "page_seconds": _r(seconds, 2), "after_one_page": after}}


# ---------------------------------------------------------------- slider moves


def measure_sliders(moves=6):
    """CPU milliseconds per slider move of every explorer (in this process, as the kernel would spend them).

    Uses ``benchmarks/bench_widgets.py``'s explorers, sliders and its ``steps``
    pattern (1-5 steps around the initial value: arrow keys, drags); one
    untimed warm-up move per slider. ``time.process_time`` counts CPU, not
    wall time, so the machine's load matters little. Not counted: sending the
    new PNG to the browser (a few kB over the websocket). Explorers driven by a
    Run button (:class:`bnlab.widgets.RunExplorer`) are left out: their
    sliders compute nothing until Run, whose cost is a training run (the
    notebooks' heaviest cells).
    """
    import bench_widgets as bw_bench

    from bnlab.widgets import RunExplorer

    rows = []
    for cls in bw_bench.explorer_classes():
        if issubclass(cls, RunExplorer):  # its sliders only set up a run; the Run button does the work
            continue
        explorer = cls()
        per_move = []
        for _name, slider in bw_bench.find_sliders(explorer):
            positions = bw_bench.Positions(slider)
            initial = positions.get()
            try:
                for i, pos in enumerate(bw_bench.plan(positions, "steps", moves)):
                    start = time.process_time()
                    positions.set(pos)
                    if i > 0:
                        per_move.append((time.process_time() - start) * 1000.0)
            finally:
                positions.restore(initial)
        if per_move:
            rows.append({"explorer": cls.__name__, "moves": len(per_move),
                         "median_ms": _r(statistics.median(per_move)), "max_ms": _r(max(per_move))})
    every = [r["median_ms"] for r in rows]
    return {"moves_per_slider": moves, "explorers": rows, "median_of_medians_ms": _r(statistics.median(every)),
            "max_median_ms": _r(max(every))}


# ---------------------------------------------------------------- the whole run


def measure_all(paths, servers=True, log=print):
    import ipykernel
    import ipywidgets
    import jupyterlab
    import matplotlib
    import numpy

    import bnlab

    results = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average": [round(x, 2) for x in os.getloadavg()], "OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"]},
        "versions": {"bnlab": bnlab.__version__, "numpy": numpy.__version__, "matplotlib": matplotlib.__version__,
                     "ipywidgets": ipywidgets.__version__, "ipykernel": ipykernel.__version__,
                     "jupyterlab": jupyterlab.__version__},
        "baselines": [],
        "notebooks": [],
    }
    for name, cells in BASELINES.items():
        row = run_notebook(cells=cells, name=name)
        log(f"{name:40s} RSS {row['rss_end_mib']:6.1f} MiB, peak {row['rss_peak_mib']:6.1f} MiB, CPU {row['cpu_s']:5.2f} s")
        results["baselines"].append(row)
    for path in paths:
        row = run_notebook(path)
        log(f"{row['name']:40s} RSS {row['rss_end_mib']:6.1f} MiB, peak {row['rss_peak_mib']:6.1f} MiB, "
            f"CPU {row['cpu_s']:5.2f} s (heaviest cell {row['heaviest_cell']['cpu_s']:.2f} s), wall {row['wall_s']:.1f} s")
        results["notebooks"].append(row)
    if servers:
        results["sliders"] = measure_sliders()
        log(f"slider moves: {results['sliders']}")
        results["lab"] = measure_lab()
        log(f"JupyterLab server: {results['lab']}")
        if voila_available():
            results["voila"] = measure_voila()
            log(f"Voila: {results['voila']}")
        else:
            log("Voila is not installed: no Voila figures")
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return results


# ---------------------------------------------------------------- what it means (the doc's generated blocks)

#: mybinder.org's limits per user and per repository (see the doc's sources); 1 GB = 10**9 bytes (Kubernetes' "1G")
BINDER_GUARANTEE_MIB = 1e9 / MIB
BINDER_LIMIT_MIB = 2e9 / MIB
BINDER_USERS_PER_REPO = 100
CLASS = 300
#: node sizes for Zero to JupyterHub: (vCPU, GiB)
NODES = ((4, 16), (8, 32))
#: what Kubernetes keeps for itself on a node, GKE's published reservation (25 % of the first 4 GiB, 20 % of the
#: next 4, 10 % of the next 8, 6 % of the next 112) plus its 100 MiB eviction threshold, plus 512 MiB for the
#: per-node pods (kube-proxy, logging, Z2JH's image puller and placeholders)
SYSTEM_PODS_MIB = 512
#: what the operating system keeps on a plain machine running a Voila server
VOILA_SYSTEM_MIB = 1024


def node_allocatable_mib(gib):
    """MiB left for user pods on a node of ``gib`` GiB (see ``SYSTEM_PODS_MIB``)."""
    mib = gib * 1024
    left, reserved = mib, 0.0
    for size, share in ((4096, 0.25), (4096, 0.20), (8192, 0.10), (114688, 0.06)):
        part = min(left, size)
        reserved += share * part
        left -= part
    return mib - reserved - 100 - SYSTEM_PODS_MIB


def round_up(mib, step=64):
    return int(math.ceil(mib / step) * step)


def figures(results):
    """The numbers the doc's arithmetic uses, derived from the measurements only."""
    nbs = results["notebooks"]
    lab = results["lab"]["rows"]
    end = [r["rss_end_mib"] for r in nbs]
    peak = [r["rss_peak_mib"] for r in nbs]
    heavy = max(nbs, key=lambda r: r["heaviest_cell"]["cpu_s"])
    f = {
        "kernel_end_mean": statistics.mean(end),
        "kernel_end_max": max(end),
        "kernel_peak_max": max(peak),
        "kernel_peak_max_name": max(nbs, key=lambda r: r["rss_peak_mib"])["name"],
        "cpu_mean": statistics.mean(r["cpu_s"] for r in nbs),
        "cpu_max": max(r["cpu_s"] for r in nbs),
        "cpu_max_name": max(nbs, key=lambda r: r["cpu_s"])["name"],
        "heavy_cell_s": heavy["heaviest_cell"]["cpu_s"],
        "heavy_cell_name": heavy["name"],
        "lab_server": lab[-1]["server_rss_mib"],
        "lab_server_idle": lab[0]["server_rss_mib"],
        "lab_server_kernels": lab[-1]["kernels"],
    }
    return f


def student_mib(f, open_notebooks, worst=False):
    """One student's memory: the Lab server plus ``open_notebooks`` kernels (typical: mean RSS; worst: max peak)."""
    per_kernel = f["kernel_peak_max"] if worst else f["kernel_end_mean"]
    return f["lab_server"] + open_notebooks * per_kernel


def z2jh_settings(f):
    """``(guarantee, limit)`` in MiB for ``singleuser.memory``: 2 notebooks typical, 3 at their worst peak."""
    return round_up(student_mib(f, 2)), round_up(student_mib(f, 3, worst=True))


def table_notebooks(results):
    m, v = results["machine"], results["versions"]
    lines = [f"Measured {results['date']}: Python {m['python']}, "
             + ", ".join(f"{k} {v[k]}" for k in ("numpy", "matplotlib", "ipywidgets", "ipykernel", "jupyterlab"))
             + f"; {m['cpus']} cores, load average {m['load_average'][0]:.1f} at the start and "
             f"{m['load_average_after'][0]:.1f} at the end. Heaviest cell: its index in the notebook (from 0).",
             "",
             "| notebook | code cells | RSS after the run | peak RSS | kernel CPU | heaviest cell (CPU) | wall |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results["baselines"]:
        lines.append(f"| *{r['name']}* | {r['code_cells']} | {r['rss_end_mib']:.0f} MiB | {r['rss_peak_mib']:.0f} MiB "
                     f"| {r['cpu_s']:.2f} s | | |")
    for r in results["notebooks"]:
        h = r["heaviest_cell"]
        lines.append(f"| {r['name'].removesuffix('.ipynb')} | {r['code_cells']} | {r['rss_end_mib']:.0f} MiB "
                     f"| {r['rss_peak_mib']:.0f} MiB | {r['cpu_s']:.2f} s | {h['cpu_s']:.2f} s (cell {h['index']}) "
                     f"| {r['wall_s']:.1f} s |")
    return "\n".join(lines)


def table_servers(results):
    lines = ["| server | what runs | server RSS | kernels' RSS | total |", "|---|---|---:|---:|---:|"]
    for r in results["lab"]["rows"]:
        what = ("idle, lab page loaded" if not r["kernels"]
                else f"{_plural(r['kernels'], 'kernel')}, the last running {r['notebook']}")
        lines.append(f"| JupyterLab | {what} | {r['server_rss_mib']:.0f} MiB | {r['kernels_rss_mib']:.0f} MiB "
                     f"| {r['server_rss_mib'] + r['kernels_rss_mib']:.0f} MiB |")
    v = results.get("voila")
    if v:
        for r in v["cold"]:
            what = "idle" if not r["pages"] else f"{_plural(r['pages'], 'page')} of {v['notebook']} (the last: {r['seconds']:.1f} s)"
            lines.append(f"| Voila {v['voila']} | {what} | {r['server_rss_mib']:.0f} MiB | {r['kernels_rss_mib']:.0f} MiB "
                         f"({_plural(r['kernels'], 'kernel')}) | {r['server_rss_mib'] + r['kernels_rss_mib']:.0f} MiB |")
        p = v["preheated"]
        for label, r in ((f"pool of {p['pool_size']} preheated, no page yet", p["before"]),
                         (f"one page from the pool ({p['page_seconds']:.2f} s), pool refilled", p["after_one_page"])):
            lines.append(f"| Voila, `--preheat_kernel=True --pool_size={p['pool_size']}` | {label} "
                         f"| {r['server_rss_mib']:.0f} MiB | {r['kernels_rss_mib']:.0f} MiB ({_plural(r['kernels'], 'kernel')}) "
                         f"| {r['server_rss_mib'] + r['kernels_rss_mib']:.0f} MiB |")
    return "\n".join(lines)


def _plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def plan_lines(results):
    """The arithmetic of the doc's plan, every number from ``results``."""
    f = figures(results)
    L, km, kp = f["lab_server"], f["kernel_end_mean"], f["kernel_peak_max"]
    out = []
    add = out.append
    add(f"- **One student** = the JupyterLab server ({L:.0f} MiB with {f['lab_server_kernels']} kernels) + one kernel "
        f"per open notebook ({km:.0f} MiB on average after a run, {kp:.0f} MiB at most at the peak, "
        f"{f['kernel_peak_max_name'].removesuffix('.ipynb')}):")
    for n in (1, 2, 3, 5):
        add(f"  - {_plural(n, 'notebook')} open: {L:.0f} + {n} × {km:.0f} = **{student_mib(f, n):.0f} MiB** typical, "
            f"{L:.0f} + {n} × {kp:.0f} = {student_mib(f, n, worst=True):.0f} MiB if every kernel is at the worst peak.")
    fit_g = int((BINDER_GUARANTEE_MIB - L) // kp)
    fit_l = int((BINDER_LIMIT_MIB - L) // kp)
    add(f"- **mybinder.org** (1 GB = {BINDER_GUARANTEE_MIB:.0f} MiB guaranteed, 2 GB = {BINDER_LIMIT_MIB:.0f} MiB at most): "
        f"({BINDER_GUARANTEE_MIB:.0f} − {L:.0f}) / {kp:.0f} = **{fit_g} notebooks** open at the worst peak within the "
        f"guarantee, ({BINDER_LIMIT_MIB:.0f} − {L:.0f}) / {kp:.0f} = {fit_l} within the limit. "
        f"Memory is not what limits a class on Binder; the {BINDER_USERS_PER_REPO} users per repository are: "
        f"{CLASS} students = {math.ceil(CLASS / BINDER_USERS_PER_REPO)} groups of at most {BINDER_USERS_PER_REPO}.")
    guarantee, limit = z2jh_settings(f)
    add(f"- **Zero to JupyterHub**: `singleuser.memory.guarantee` = server + 2 typical kernels = {L:.0f} + 2 × {km:.0f} "
        f"→ **{guarantee}M**; `singleuser.memory.limit` = server + 3 kernels at the worst peak = {L:.0f} + 3 × {kp:.0f} "
        f"→ **{limit}M** (rounded up to 64 MiB; KubeSpawner's M is MiB).")
    alloc16 = node_allocatable_mib(NODES[0][1])
    add(f"  - Without overcommit (guarantee = limit = {limit}M, so that every student may have three notebooks at "
        f"their worst peak at once): {alloc16:.0f} / {limit} = {int(alloc16 // limit)} students per "
        f"{NODES[0][0]} vCPU / {NODES[0][1]} GiB node, {math.ceil(CLASS / int(alloc16 // limit))} nodes for {CLASS}. "
        f"The typical guarantee below packs about twice as many, and relies on kernel culling and on students shutting "
        f"down the notebooks they have finished.")
    burst = CLASS * f["heavy_cell_s"]
    first_cluster = None
    for vcpu, gib in NODES:
        alloc = node_allocatable_mib(gib)
        per_node = int(alloc // guarantee)
        nodes = math.ceil(CLASS / per_node)
        total_vcpu = nodes * vcpu
        first_cluster = first_cluster or total_vcpu
        add(f"  - {vcpu} vCPU / {gib} GiB node: {alloc:.0f} MiB allocatable (after Kubernetes' reservation and "
            f"{SYSTEM_PODS_MIB} MiB of system pods) / {guarantee} = **{per_node} students per node**; "
            f"{CLASS} students → **{nodes} nodes** ({total_vcpu} vCPU, {CLASS / total_vcpu:.1f} students per vCPU, "
            f"so `singleuser.cpu.guarantee` ≈ {vcpu / per_node:.2f}). "
            f"All {CLASS} pressing Run on the heaviest cell ({f['heavy_cell_s']:.1f} CPU s, "
            f"{f['heavy_cell_name'].removesuffix('.ipynb')}) at once: {CLASS} × {f['heavy_cell_s']:.1f} = {burst:.0f} CPU s "
            f"/ {total_vcpu} vCPU = **{max(f['heavy_cell_s'], burst / total_vcpu):.0f} s** before the last one "
            f"finishes (alone: {f['heavy_cell_s']:.1f} s); a whole notebook top to bottom (at most {f['cpu_max']:.1f} CPU s, "
            f"{f['cpu_max_name'].removesuffix('.ipynb')}): {CLASS} × {f['cpu_max']:.1f} / {total_vcpu} = "
            f"{CLASS * f['cpu_max'] / total_vcpu:.0f} s.")
    add(f"  - For the heaviest cell to finish within 30 s when all {CLASS} press Run together: {CLASS} × "
        f"{f['heavy_cell_s']:.1f} / 30 = **{math.ceil(burst / 30)} vCPU**; within 15 s: {math.ceil(burst / 15)} vCPU. "
        f"CPU, not memory, sizes the cluster for that moment (starts spread over a minute need far less).")
    sliders = results.get("sliders")
    if sliders:
        ms, worst = sliders["median_of_medians_ms"], sliders["max_median_ms"]
        add(f"- **A slider move** costs {ms:.0f} ms of kernel CPU (median over the explorers; the slowest explorer's median "
            f"{worst:.0f} ms): {CLASS} students moving a slider in the same second = {CLASS} × {worst:.0f} ms = "
            f"{CLASS * worst / 1000:.1f} CPU s, / {first_cluster} vCPU = {CLASS * worst / 1000 / first_cluster:.2f} s. "
            f"The explorers are not what loads a server; the training runs are.")
    v = results.get("voila")
    if v:
        cold = v["cold"]
        page = (cold[-1]["server_rss_mib"] + cold[-1]["kernels_rss_mib"] - cold[0]["server_rss_mib"]) / cold[-1]["pages"]
        pre = v["preheated"]["before"]
        per_pool = pre["kernels_rss_mib"] / max(1, pre["kernels"])
        base = cold[0]["server_rss_mib"]
        machine = 16 * 1024 - VOILA_SYSTEM_MIB
        add(f"- **A Voila demo server** ({v['notebook'].removesuffix('.ipynb')}): {base:.0f} MiB idle, then "
            f"**{page:.0f} MiB per open page** (its kernel plus the server's share: ({cold[-1]['server_rss_mib']:.0f} + "
            f"{cold[-1]['kernels_rss_mib']:.0f} − {base:.0f}) / {cold[-1]['pages']}); each preheated kernel waits with "
            f"{per_pool:.0f} MiB, so `--pool_size=N` costs N × {per_pool:.0f} MiB before anyone comes. A page comes from "
            f"the pool in {v['preheated']['page_seconds']:.2f} s instead of {cold[1]['seconds']:.1f} s cold. "
            f"{CLASS} students on one Voila server: {base:.0f} + {CLASS} × {page:.0f} = "
            f"{(base + CLASS * page) / 1024:.1f} GiB; a 16 GiB machine (keeping {VOILA_SYSTEM_MIB} MiB for the system) holds "
            f"({machine} − {base:.0f}) / {page:.0f} = **{int((machine - base) // page)} pages** at once.")
    return "\n".join(out)


def z2jh_config(results):
    """The Zero to JupyterHub ``config.yaml`` lines the plan leads to."""
    f = figures(results)
    guarantee, limit = z2jh_settings(f)
    per_vcpu = min(vcpu / int(node_allocatable_mib(gib) // guarantee) for vcpu, gib in NODES)
    cpu_guarantee = max(0.05, math.floor(per_vcpu / 0.05) * 0.05)
    rows = [
        ("singleuser:", ""),
        ("  image:", ""),
        ("    name: <registry>/bnlab", "built from binder/ with repo2docker"),
        ("    tag: <tag>", ""),
        ("  defaultUrl: /lab/tree/notebooks/00_index.ipynb", ""),
        ("  memory:", ""),
        (f"    guarantee: {guarantee}M", "the server + 2 kernels, typical"),
        (f"    limit: {limit}M", "the server + 3 kernels at the worst peak"),
        ("  cpu:", ""),
        (f"    guarantee: {cpu_guarantee:.2f}", "a node's vCPUs shared by the students it holds"),
        ("    limit: 1", "a kernel computes on one core"),
        ("  extraEnv:", ""),
        ('    OMP_NUM_THREADS: "1"', "as measured; more BLAS threads do not help these small matrices"),
        ("  extraFiles:", ""),
        ("    kernel-culling:", ""),
        ("      mountPath: /etc/jupyter/jupyter_server_config.json", ""),
        ("      data:", ""),
        ("        MappingKernelManager:", ""),
        ("          cull_idle_timeout: 1800", "end kernels idle for 30 minutes (closed tabs)"),
        ("          cull_interval: 300", ""),
    ]
    width = max(len(line) for line, comment in rows if comment) + 2
    body = [f"{line:<{width}}# {comment}" if comment else line for line, comment in rows]
    return "\n".join(["```yaml", *body, "```"])


def doc_blocks(results):
    """``{name: markdown}``: the blocks ``docs/teaching_at_scale.md`` shows between ``<!-- begin NAME -->`` markers."""
    return {"kernel-memory": table_notebooks(results), "servers": table_servers(results), "plan": plan_lines(results),
            "z2jh-config": z2jh_config(results)}




def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--no-servers", action="store_true", help="notebooks only: no JupyterLab or Voila server")
    parser.add_argument("--update-doc", action="store_true",
                        help=f"rewrite the generated blocks of {DOC.relative_to(ROOT)} from --json (default "
                             f"{RESULTS.relative_to(ROOT)}) without measuring")
    args = parser.parse_args(argv)
    if args.update_doc:
        missing = replace_blocks(DOC, doc_blocks(json.loads((args.json or RESULTS).read_text())))
        print(f"updated {DOC}" + (f"; no place for: {missing}" if missing else ""))
        return 0
    paths = args.paths or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    results = measure_all(paths, servers=not args.no_servers)
    print()
    print(table_notebooks(results))
    if "lab" in results:
        print()
        print(table_servers(results))
        if len(results["notebooks"]) > 0:
            print()
            print(plan_lines(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
