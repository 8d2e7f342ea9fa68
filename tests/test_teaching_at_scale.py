"""docs/teaching_at_scale.md stays true: its tables come from the committed benchmark results,
every notebook is measured, and the measuring script itself works (on notebook 01)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from _support import require_module

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
DOC = ROOT / "docs" / "teaching_at_scale.md"
MEMORY_JSON = BENCHMARKS / "results" / "kernel_memory.json"
INSTALL_JSON = BENCHMARKS / "results" / "install.json"


def _load(name):
    """A benchmark script as a module (benchmarks/ is not a package)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # for their `from docblocks import ...`
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load("bench_kernel_memory")


@pytest.fixture(scope="module")
def memory():
    return json.loads(MEMORY_JSON.read_text())


@pytest.fixture(scope="module")
def doc_blocks():
    return _load("docblocks").read_blocks(DOC.read_text())


def notebook_names():
    return sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_notebook_is_measured(memory, doc_blocks):
    measured = [row["name"] for row in memory["notebooks"]]
    missing = sorted(set(notebook_names()) - set(measured))
    assert not missing, (f"not in {MEMORY_JSON.relative_to(ROOT)}: {missing}; re-run "
                         "`python benchmarks/bench_kernel_memory.py --json benchmarks/results/kernel_memory.json` "
                         "then `--update-doc`")
    table = doc_blocks["kernel-memory"]
    absent = [name for name in notebook_names() if f"| {name.removesuffix('.ipynb')} |" not in table]
    assert not absent, f"missing from the doc's memory table: {absent}"


def test_every_measurement_is_plausible(memory):
    for row in memory["baselines"] + memory["notebooks"]:
        assert 0 < row["rss_end_mib"] <= row["rss_peak_mib"], row
        assert row["cpu_s"] > 0, row
    idle = memory["baselines"][0]["rss_end_mib"]
    assert all(row["rss_end_mib"] > idle for row in memory["notebooks"])
    assert memory["lab"]["rows"][0]["kernels"] == 0 and memory["lab"]["rows"][-1]["kernels"] >= 2


@pytest.mark.parametrize("name", ["kernel-memory", "servers", "plan", "z2jh-config"])
def test_doc_tables_and_arithmetic_match_the_json(bench, memory, doc_blocks, name):
    expected = bench.doc_blocks(memory)[name]
    assert doc_blocks.get(name) == expected, (
        f"the doc's '{name}' block differs from {MEMORY_JSON.relative_to(ROOT)}; "
        "run `python benchmarks/bench_kernel_memory.py --update-doc`")


def test_doc_install_table_matches_the_json(doc_blocks):
    install = _load("bench_install")
    expected = install.doc_blocks(json.loads(INSTALL_JSON.read_text()))["install"]
    assert doc_blocks.get("install") == expected, "run `python benchmarks/bench_install.py --update-doc`"


def test_install_variants(tmp_path):
    install = _load("bench_install")
    req = tmp_path / "requirements.txt"
    req.write_text("numpy>=1.24  # maths\nvoila>=0.5  # app mode\n-e .  # bnlab\n")
    base, voila = install.requirement_lines(req)
    assert voila == "voila>=0.5"
    assert base == ["numpy>=1.24", f"-e {ROOT}"]
    assert install.variant_lines("voila", req) == base + ["voila>=0.5"]
    req.write_text("numpy\n")
    assert install.variant_lines("voila", req) == ["numpy", "voila"]


def test_node_arithmetic(bench):
    # 16 GiB: 25 % of 4 GiB + 20 % of 4 GiB + 10 % of 8 GiB reserved, 100 MiB eviction, system pods
    assert bench.node_allocatable_mib(16) == pytest.approx(16384 - 1024 - 819.2 - 819.2 - 100 - bench.SYSTEM_PODS_MIB)
    assert bench.round_up(600) == 640 and bench.round_up(640) == 640


def test_the_benchmark_measures_a_notebook(bench):
    require_module("nbclient", "the kernel-memory benchmark runs notebooks with nbclient")
    require_module("ipykernel")
    row = bench.run_notebook(ROOT / "notebooks" / "01_batch_statistics.ipynb")
    assert row["name"] == "01_batch_statistics.ipynb"
    assert row["code_cells"] > 0
    assert 0 < row["rss_ready_mib"] < row["rss_end_mib"] <= row["rss_peak_mib"]
    assert 0 < row["cpu_cells_s"] <= row["cpu_s"]
    assert row["heaviest_cell"]["cpu_s"] > 0


def test_readme_links_the_doc():
    assert "docs/teaching_at_scale.md" in (ROOT / "README.md").read_text()
