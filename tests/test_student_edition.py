"""The student edition (``scripts/make_student_edition.py``): the notebooks without the worked solutions.

No solution code is left in it, every notebook in it runs top to bottom on a
fresh kernel, every exercise check answers an unfinished answer with "not yet"
and a hint (never a traceback), and the command refuses to write into
``notebooks/``. Everything is written under ``tmp_path``, never into the repository.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import numpy as np
import pytest
from _support import warnings_as_errors

from bnlab import checks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SCRIPT = ROOT / "scripts" / "make_student_edition.py"


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


edition = _load_script("make_student_edition")
SOURCES = {path.name: nbformat.read(path, as_version=4) for path in sorted(NOTEBOOKS.glob("*.ipynb"))}


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """(folder, report): the student edition written into a temporary folder."""
    outdir = tmp_path_factory.mktemp("student") / "student_edition"
    report = edition.make_student_edition(outdir)
    return outdir, report


def _student_notebooks(outdir):
    return {path.name: nbformat.read(path, as_version=4) for path in sorted(outdir.glob("*.ipynb"))}


# ---------------------------------------------------------------- the source notebooks' tags


def test_every_worked_solution_is_tagged_and_only_code_cells_are():
    assert SOURCES, "no notebooks found"
    for name, nb in SOURCES.items():
        assert edition.tag_problems(nb) == [], name
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source.lstrip().startswith("# Solution"):
                assert edition.is_solution(cell), f"{name}: untagged solution {cell.source[:60]!r}"
            if edition.is_solution(cell):
                assert cell.cell_type == "code", f"{name}: a {cell.cell_type} cell is tagged solution"
        if name[:2].isdigit() and name[:2] != "00":  # DESIGN: every notebook from 01 on has them
            assert any(edition.is_solution(cell) for cell in nb.cells), f"{name} has no worked solution"


def test_an_untagged_solution_stops_the_edition(tmp_path):
    """The tag rule can fail: an untagged solution or a tagged markdown cell writes nothing."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("# Solution: the answer\nanswer = 42"),
        nbformat.v4.new_markdown_cell("Solution (click to expand):"),
        nbformat.v4.new_code_cell("answer = 41 + 1"),
        nbformat.v4.new_markdown_cell("the answer is 42", metadata={"tags": ["solution"]}),
    ])
    problems = edition.tag_problems(nb)
    assert len(problems) == 3, problems
    assert "cell 0" in problems[0] and "not tagged" in problems[0]
    assert "cell 2" in problems[1] and "not tagged" in problems[1]
    assert "cell 3" in problems[2] and "markdown" in problems[2]
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(nb, source / "01_leaky.ipynb")
    with pytest.raises(edition.EditionError, match="leak"):
        edition.make_student_edition(tmp_path / "out", notebooks=source)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- 1. no solution code remains


def _python(source):
    """A cell's source as plain Python (IPython's %magics and !commands rewritten)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _statements(source):
    """Every statement of a cell, at any depth, as normalised source (comments and spacing gone)."""
    tree = ast.parse(_python(source))
    return {ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.stmt)}


def _function_bodies(source):
    """{name: body} for every function a cell defines; the body without its docstring, normalised."""
    bodies = {}
    for node in ast.walk(ast.parse(_python(source))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]
            bodies[node.name] = ast.unparse(ast.Module(body=body, type_ignores=[]))
    return bodies


def _lines(source):
    return {line.strip() for line in source.splitlines() if line.strip()}


@functools.lru_cache(maxsize=1)
def _solution_fingerprints():
    """For each solution cell: its function bodies, statements and lines found in no other cell.

    Returns a list of ``(where, bodies, statements, lines)``.
    """
    shared_statements, shared_lines, shared_bodies = set(), set(), set()
    for nb in SOURCES.values():
        for cell in nb.cells:
            if not edition.is_solution(cell):
                shared_lines |= _lines(cell.source)
                if cell.cell_type == "code":
                    shared_statements |= _statements(cell.source)
                    shared_bodies |= set(_function_bodies(cell.source).values())
    found = []
    for name, nb in SOURCES.items():
        for index, cell in enumerate(nb.cells):
            if edition.is_solution(cell):
                bodies = {f: b for f, b in _function_bodies(cell.source).items() if b not in shared_bodies}
                found.append((f"{name} cell {index}", bodies, _statements(cell.source) - shared_statements,
                              _lines(cell.source) - shared_lines))
    return found


def _leaks(notebooks):
    """What of the worked solutions appears in ``notebooks`` ({name: nb}), as messages."""
    statements, lines, bodies = set(), set(), set()
    for nb in notebooks.values():
        for cell in nb.cells:
            lines |= _lines(cell.source)
            if cell.cell_type == "code":
                statements |= _statements(cell.source)
                bodies |= set(_function_bodies(cell.source).values())
    leaks = []
    for where, solution_bodies, solution_statements, solution_lines in _solution_fingerprints():
        leaks += [f"{where}: the body of {f}()" for f, body in solution_bodies.items() if body in bodies]
        leaks += [f"{where}: statement {s!r}" for s in sorted(solution_statements & statements)]
        leaks += [f"{where}: line {line!r}" for line in sorted(solution_lines & lines)]
    return leaks


def test_every_solution_cell_has_something_to_look_for():
    fingerprints = _solution_fingerprints()
    assert len(fingerprints) == sum(edition.is_solution(c) for nb in SOURCES.values() for c in nb.cells)
    for where, bodies, statements, lines in fingerprints:
        assert statements and lines, f"{where}: nothing in it differs from the exercise cells"
    assert sum(len(bodies) for _, bodies, _, _ in fingerprints) >= 15  # most solutions are functions


def test_the_leak_finder_finds_the_solutions_in_the_source_notebooks():
    """The search below can fail: run on the notebooks themselves it finds every solution cell."""
    leaks = _leaks(SOURCES)
    for where, bodies, _, _ in _solution_fingerprints():
        assert any(leak.startswith(f"{where}: statement") for leak in leaks), where
        assert any(leak.startswith(f"{where}: line") for leak in leaks), where
        for function in bodies:
            assert f"{where}: the body of {function}()" in leaks


def test_no_solution_code_remains(student):
    outdir, _ = student
    notebooks = _student_notebooks(outdir)
    assert sorted(notebooks) == sorted(SOURCES)
    leaks = _leaks(notebooks)
    assert not leaks, "solution code in the student edition:\n" + "\n".join(leaks)
    for name, nb in notebooks.items():
        assert not any(edition.is_solution(cell) for cell in nb.cells), name
        assert not any(edition.is_solution_heading(cell) for cell in nb.cells), name


def test_the_student_edition_keeps_the_rest_and_clears_outputs(student):
    outdir, report = student
    notebooks = _student_notebooks(outdir)
    removed = {name: (solutions, headings) for name, solutions, headings in report}
    for name, source in SOURCES.items():
        nb = notebooks[name]
        solutions = sum(edition.is_solution(cell) for cell in source.cells)
        assert removed[name][0] == solutions, name
        kept = [cell.source for cell in source.cells
                if not edition.is_solution(cell) and not edition.is_solution_heading(cell)]
        assert [cell.source for cell in nb.cells if cell.id != edition.NOTE_ID] == kept, name
        assert len(nb.cells) == len(source.cells) - sum(removed[name]) + 1
        note = [cell for cell in nb.cells if cell.id == edition.NOTE_ID]
        assert len(note) == 1 and note[0].cell_type == "markdown", name
        assert note[0].metadata["slideshow"]["slide_type"] == "skip"
        assert nb.cells.index(note[0]) <= 1 and "Student edition" in note[0].source
        assert "widgets" not in nb.metadata, name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, name
        # every link to another notebook still finds it
        for cell in nb.cells:
            for target in re.findall(r"\]\(([\w.-]+\.ipynb)(?:#[\w-]*)?\)", cell.source):
                assert (outdir / target).exists(), f"{name} links to {target}"
        # the exercises ("your turn" cells) and their checks stay: every check a notebook with
        # worked solutions leaves to the learner is still there
        exercise_checks = [line for cell in nb.cells if cell.cell_type == "code"
                           for line in cell.source.splitlines() if CHECK_CALL.match(line)]
        assert bool(exercise_checks) == (solutions > 0), name


def test_the_source_notebooks_are_not_touched(tmp_path):
    before = {path: path.read_bytes() for path in NOTEBOOKS.glob("*.ipynb")}
    edition.make_student_edition(tmp_path / "out")
    assert {path: path.read_bytes() for path in NOTEBOOKS.glob("*.ipynb")} == before


# ---------------------------------------------------------------- 2. every student notebook runs


def test_every_student_notebook_runs_top_to_bottom(student, tmp_path):
    """On a fresh kernel started in the student edition's folder (``import bnlab`` from the environment)."""
    run_notebooks = _load_script("run_notebooks")
    outdir, _ = student
    for path in outdir.glob("*.ipynb"):  # a copy: the fixture's notebooks stay unexecuted
        (tmp_path / path.name).write_bytes(path.read_bytes())
    paths = sorted(tmp_path.glob("*.ipynb"))
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    failures, seconds = [], {}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {path: pool.submit(run_notebooks.execute, path) for path in paths}
        for path, future in futures.items():
            try:
                seconds[path.name] = future.result()
            except Exception as exc:  # report every notebook, then fail
                failures.append(f"{path.name}: {type(exc).__name__}: {str(exc)[-1500:]}")
    print(f"student edition executed in {time.perf_counter() - start:.1f} s: "
          + ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items()))
    assert not failures, "\n".join(failures)
    for path in paths:  # nothing a learner sees is a traceback or a warning
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for output in cell.get("outputs", []):
                assert output.output_type != "error", f"{path.name} cell {index}: {output.get('ename')}"
                assert not (output.output_type == "stream" and output.name == "stderr"), (
                    f"{path.name} cell {index} writes to stderr: {output.text[:300]}")


# ---------------------------------------------------------------- 3. checks answer a stub with "not yet"

CHECK_CALL = re.compile(r"^\s*#?\s*(checks\.check_\w+\(.*\))\s*$")


def _check_calls():
    """{call as written: (check name, [argument or None where the learner's answer goes])}.

    From the exercise cells (commented out or not) and the worked solutions of every notebook.
    """
    calls = {}
    for nb in SOURCES.values():
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            for line in cell.source.splitlines():
                match = CHECK_CALL.match(line)
                if not match:
                    continue
                call = ast.parse(match.group(1), mode="eval").body
                # the learner's answer: the first argument, and any other that is not a constant
                arguments = [None if i == 0 or not isinstance(a, ast.Constant) or a.value in ("...", ...)
                             else a.value for i, a in enumerate(call.args)]
                calls.setdefault(f"{call.func.attr}({', '.join(map(repr, arguments))})",
                                 (call.func.attr, arguments))
    return calls


def _returns_none(*_args):
    return None


def _not_implemented(*_args):
    raise NotImplementedError


def _wrong_shape(*_args):
    return np.zeros(7)


def _too_large(*_args):
    return 10**400


#: Unfinished answers: for an exercise that asks for a function, and for one that asks for a value.
STUBS = {
    "a function returning None": _returns_none,
    "a function raising NotImplementedError": _not_implemented,
    "a function returning the wrong shape": _wrong_shape,
    "a function returning an integer too large for a float": _too_large,
    "None": None,
    "...": ...,
    "'...'": "...",
    "an array of the wrong shape": np.zeros(7),
    "an integer too large for a float": 10**400,
}
CALLS = _check_calls()


def test_the_notebooks_use_the_checks():
    used = {name for name, _ in CALLS.values()}
    assert len(used) >= 25, sorted(used)
    assert all(hasattr(checks, name) for name in used), sorted(n for n in used if not hasattr(checks, n))


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_check_answers_an_unfinished_answer_with_not_yet_and_a_hint(call):
    name, arguments = CALLS[call]
    check = getattr(checks, name)
    failures = []
    for stub_name, stub in STUBS.items():
        printed = io.StringIO()
        try:
            with warnings_as_errors(), contextlib.redirect_stdout(printed):
                feedback = check(*[stub if a is None else a for a in arguments])
        except Exception as exc:  # a check must never raise at a learner
            failures.append(f"{stub_name}: raised {type(exc).__name__}: {exc}")
            continue
        text = str(feedback) if feedback is not None else printed.getvalue()
        if not isinstance(feedback, checks.Feedback):
            failures.append(f"{stub_name}: returned {type(feedback).__name__}, not Feedback")
        elif feedback.passed or "not yet" not in text or not feedback.hint or "Hint:" not in text:
            failures.append(f"{stub_name}: no 'not yet' with a hint:\n{text}")
    assert not failures, f"{call}:\n" + "\n".join(failures)


# ---------------------------------------------------------------- 4. the command line


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.ipynb"))}


@pytest.mark.parametrize("outdir", ["notebooks/", NOTEBOOKS, NOTEBOOKS / "student", "scripts/../notebooks"])
def test_writing_into_notebooks_is_refused(outdir):
    with pytest.raises(edition.EditionError, match="keep their solutions"):
        edition.check_outdir(ROOT / outdir)


@pytest.mark.parametrize("outdir", ["notebooks", "notebooks/student"])
def test_the_command_refuses_to_write_into_notebooks(outdir):
    before = _digest(NOTEBOOKS)
    result = _run(outdir)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refusing to write the student edition" in result.stderr
    assert "keep their solutions" in result.stderr and "Traceback" not in result.stderr
    assert _digest(NOTEBOOKS) == before
    assert not (NOTEBOOKS / "student").exists()


def test_the_command_writes_every_notebook_and_counts_the_removed_cells(tmp_path):
    before = _digest(NOTEBOOKS)
    result = _run(tmp_path / "edition")
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "edition").glob("*.ipynb"))
    assert written == sorted(SOURCES)
    lines = result.stdout.splitlines()
    total = 0
    for name, nb in SOURCES.items():
        solutions = sum(edition.is_solution(cell) for cell in nb.cells)
        total += solutions
        line = next(line for line in lines if line.startswith(name))
        assert re.search(rf"\b{solutions} solution cells? removed", line), line
    assert f"{len(SOURCES)} notebooks written" in lines[-1] and f"{total} solution cells removed" in lines[-1]
    assert _digest(NOTEBOOKS) == before


def test_the_command_says_where_it_writes_by_default():
    result = _run("--help")
    assert result.returncode == 0
    assert "student_edition/" in result.stdout and "notebooks/" in result.stdout
    assert "student_edition/" in edition.__doc__
    assert edition.DEFAULT_OUTDIR == ROOT / "student_edition"
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "student_edition/" in ignored, "the default folder must be git-ignored"
