"""Re-execute the notebooks in place, storing outputs and widget state.

    python scripts/run_notebooks.py                 # every notebooks/*.ipynb
    python scripts/run_notebooks.py notebooks/02_normalization.ipynb

Each notebook runs top to bottom on a fresh kernel started in ``notebooks/``
(with nbclient, ``store_widget_state=True`` so GitHub and nbviewer show the
controls), then is written back. Prints the time per notebook and in all.
Run it after changing bnlab or a notebook, and commit the result: CI compares
the stored outputs with a fresh execution (nbval).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def execute(path, timeout=300):
    """Execute one notebook in place; return the seconds it took."""
    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
        record_timing=False,
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    if not _has_widgets(nb):
        nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return seconds


def _has_widgets(nb):
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return bool(state.get("state"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.paths] or sorted(NOTEBOOKS.glob("*.ipynb"))
    # small matrices: one BLAS thread is faster and keeps two kernels from fighting
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    start = time.perf_counter()
    failed = False
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {p: pool.submit(execute, p) for p in paths}
        for path, future in futures.items():
            try:
                print(f"{path.name:40s} {future.result():6.1f} s", flush=True)
            except Exception as exc:  # report every notebook, then fail
                failed = True
                print(f"{path.name:40s} FAILED: {type(exc).__name__}: {str(exc)[-2000:]}", flush=True)
    print(f"{'total (wall)':40s} {time.perf_counter() - start:6.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
