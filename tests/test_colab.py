"""Colab: every notebook's install cell and badges agree with ``[project.urls]`` in pyproject.toml.

The repository's address is written once, under ``[project.urls]``; ``scripts/colab_cells.py``
writes from it each notebook's first two cells (a code cell that installs bnlab in Colab and
does nothing anywhere else, then an "Open in Colab" badge) and the README's Colab column.
Here the expected addresses are built again from pyproject.toml, independently of the script.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import re
import sys
import types
from pathlib import Path
from unittest import mock

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from _support import require_module

    tomllib = require_module("tomli", "pip install tomli (Python 3.10 has no tomllib)")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BRANCH = "main"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\"']+")
MARKDOWN_BADGE = re.compile(r"\[!\[(?P<alt>[^\]]*)\]\((?P<image>[^)]+)\)\]\((?P<link>[^)]+)\)")


def _urls():
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["urls"]


REPOSITORY = _urls()["Repository"]
OWNER_NAME = REPOSITORY.removeprefix("https://github.com/")


def expected_colab_link(notebook_name):
    return f"https://colab.research.google.com/github/{OWNER_NAME}/blob/{BRANCH}/notebooks/{notebook_name}"


def expected_requirement():
    return f"bnlab @ git+{REPOSITORY}@{BRANCH}"


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _load(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def colab_problems(nb, notebook_name):
    """What is wrong with a notebook's Colab cells (an empty list when nothing is)."""
    problems = []
    cells = nb["cells"]
    if len(cells) < 2:
        return ["fewer than two cells"]
    install, shown = cells[0], cells[1]
    source = _source(install)
    tags = install.get("metadata", {}).get("tags", [])
    if install["cell_type"] != "code" or "colab" not in tags:
        problems.append("the first cell is not the code cell tagged 'colab'")
    if install.get("metadata", {}).get("slideshow", {}).get("slide_type") != "skip":
        problems.append("the install cell's slide type is not 'skip'")
    if '"google.colab" in sys.modules' not in source:
        problems.append("the install cell does not ask whether it runs in Colab")
    if f'"{expected_requirement()}"' not in source:
        problems.append(f"the install cell does not install {expected_requirement()!r}")
    if "--no-deps" not in source or re.search(r"--upgrade\b|\"-U\"", source):
        problems.append("the install cell may upgrade Colab's packages (needs --no-deps, no --upgrade)")
    if install.get("outputs"):
        problems.append(f"the install cell has stored outputs: {install['outputs']}")
    code_tagged = [c for c in cells if c["cell_type"] == "code" and "colab" in c.get("metadata", {}).get("tags", [])]
    if len(code_tagged) != 1:
        problems.append(f"{len(code_tagged)} code cells are tagged 'colab' (one expected)")
    badges = MARKDOWN_BADGE.findall(_source(shown)) if shown["cell_type"] == "markdown" else []
    if "colab" not in shown.get("metadata", {}).get("tags", []) or len(badges) != 1:
        problems.append("the second cell is not one markdown 'Open in Colab' badge tagged 'colab'")
    else:
        alt, image, link = badges[0]
        if not alt.strip():
            problems.append("the badge has no alt text")
        if image != BADGE_IMAGE:
            problems.append(f"the badge's image is {image!r}, not {BADGE_IMAGE!r}")
        if link != expected_colab_link(notebook_name):
            problems.append(f"the badge links to {link!r}, not {expected_colab_link(notebook_name)!r}")
    if shown.get("metadata", {}).get("slideshow", {}).get("slide_type") != "skip":
        problems.append("the badge cell's slide type is not 'skip'")
    for cell in cells:  # any other Colab link (a markdown cell, another badge) points here too
        for link in COLAB_LINK.findall(_source(cell)):
            if link != expected_colab_link(notebook_name):
                problems.append(f"a Colab link to {link!r} in a {cell['cell_type']} cell")
    for link in re.findall(r"git\+(https://[^\s@\"']+)", "".join(_source(c) for c in cells)):
        if link != REPOSITORY:
            problems.append(f"an install from {link!r}, not {REPOSITORY!r}")
    return problems


@contextlib.contextmanager
def _colab(present):
    """``sys.modules`` with (a fake) or without ``google.colab``; every way to start a process mocked."""
    fake = {}
    if present:
        google = types.ModuleType("google")
        google.colab = types.ModuleType("google.colab")
        fake = {"google": google, "google.colab": google.colab}
    mocks = {
        name: mock.Mock(name=name, return_value=mock.Mock(returncode=0))
        for name in ("run", "call", "check_call", "check_output", "Popen")
    }
    with mock.patch.dict(sys.modules, fake):
        if not present:
            sys.modules.pop("google.colab", None)
        with contextlib.ExitStack() as stack:
            for name, fn in mocks.items():
                stack.enter_context(mock.patch(f"subprocess.{name}", fn))
            mocks["os.system"] = stack.enter_context(mock.patch("os.system"))
            yield mocks


def _run_cell(source, present):
    """Execute the install cell's source; (mocks, what it printed)."""
    out, err = io.StringIO(), io.StringIO()
    with _colab(present) as mocks, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        exec(compile(source, "<colab install cell>", "exec"), {"__name__": "__main__"})  # noqa: S102
    return mocks, out.getvalue() + err.getvalue()


# ---------------------------------------------------------------- pyproject


def test_pyproject_names_the_repository_once():
    urls = _urls()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", urls["Repository"]), urls
    assert urls["Homepage"] == urls["Repository"], urls


# ---------------------------------------------------------------- notebooks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_starts_with_the_colab_cells(path):
    assert colab_problems(_load(path), path.name) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_install_cell_does_nothing_outside_colab(path):
    source = _source(_load(path)["cells"][0])
    mocks, printed = _run_cell(source, present=False)
    called = {name: m.call_args_list for name, m in mocks.items() if m.called}
    assert not called, f"outside Colab the install cell started a process: {called}"
    assert printed == ""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_install_cell_in_colab_pip_installs_bnlab_without_dependencies(path):
    source = _source(_load(path)["cells"][0])
    mocks, _ = _run_cell(source, present=True)
    assert mocks["run"].call_count == 1, {n: m.call_args_list for n, m in mocks.items()}
    others = [name for name, m in mocks.items() if name != "run" and m.called]
    assert not others, others
    command = list(mocks["run"].call_args.args[0])
    assert command[:4] == [sys.executable, "-m", "pip", "install"], command
    assert "--no-deps" in command, command
    assert not {"--upgrade", "-U", "--force-reinstall"} & set(command), command
    assert command[-1] == expected_requirement(), command


def test_the_checks_catch_a_wrong_notebook():
    """The checks above can fail: each breakage of a good notebook is reported."""
    path = next(p for p in NOTEBOOKS if p.name.startswith("01_"))
    good = _load(path)
    assert colab_problems(good, path.name) == []

    def broken(change):
        nb = copy.deepcopy(good)
        change(nb)
        return colab_problems(nb, path.name)

    def swap_first_cells(nb):
        nb["cells"][0], nb["cells"][2] = nb["cells"][2], nb["cells"][0]

    def other_owner(nb):
        nb["cells"][0]["source"] = _source(nb["cells"][0]).replace(OWNER_NAME, "someone/else")

    def upgrade(nb):
        nb["cells"][0]["source"] = _source(nb["cells"][0]).replace('"--no-deps"', '"--upgrade"')

    def badge_elsewhere(nb):
        nb["cells"][1]["source"] = _source(nb["cells"][1]).replace("/blob/main/", "/blob/dev/")

    def no_alt(nb):
        nb["cells"][1]["source"] = re.sub(r"\[!\[[^\]]*\]", "[![]", _source(nb["cells"][1]))

    def shown_in_slides(nb):
        nb["cells"][0]["metadata"]["slideshow"]["slide_type"] = "slide"

    for change in (swap_first_cells, other_owner, upgrade, badge_elsewhere, no_alt, shown_in_slides):
        assert broken(change), f"{change.__name__} went unnoticed"

    # and a cell that would run pip outside Colab is caught by the execution test
    source = _source(good["cells"][0]).replace('if "google.colab" in sys.modules:', "if True:")
    mocks, _ = _run_cell(source, present=False)
    assert mocks["run"].called


# ---------------------------------------------------------------- README


def test_readme_has_a_colab_badge_per_notebook():
    """Every notebook (the numbered ones and the explorer gallery) has its row and badge in the map."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {m["stem"]: m["row"] for m in re.finditer(
        r"^(?P<row>\| \[(?P<stem>\w+)\]\(notebooks/(?P=stem)\.ipynb\) \|.*)$", readme, flags=re.MULTILINE)}
    assert sorted(rows) == sorted(p.stem for p in NOTEBOOKS)
    for path in NOTEBOOKS:
        badges = MARKDOWN_BADGE.findall(rows[path.stem])
        assert len(badges) == 1, rows[path.stem]
        alt, image, link = badges[0]
        assert alt.strip() and image == BADGE_IMAGE, badges[0]
        assert link == expected_colab_link(path.name), link
    for link in COLAB_LINK.findall(readme):
        assert link in {expected_colab_link(p.name) for p in NOTEBOOKS}, link


def test_readme_binder_badge_points_at_the_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    binder = re.findall(r"https://mybinder\.org/v2/gh/([\w.-]+/[\w.-]+)/([\w.-]+)\?", readme)
    assert binder and all(b == (OWNER_NAME, BRANCH) for b in binder), binder


# ---------------------------------------------------------------- the script


def _script():
    spec = importlib.util.spec_from_file_location("colab_cells", ROOT / "scripts" / "colab_cells.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_agrees_and_is_idempotent():
    """The script finds nothing to change, and repairs a notebook and a README it did not write."""
    script = _script()
    assert script.repository_url() == REPOSITORY and script.BRANCH == BRANCH
    path = next(p for p in NOTEBOOKS if p.name.startswith("04_"))
    nb = _load(path)
    assert not script.update_notebook(nb, path.name, REPOSITORY), "run python scripts/colab_cells.py"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert script.update_readme(readme, REPOSITORY) == readme, "run python scripts/colab_cells.py"

    # from a notebook without the cells: they appear, once, first; a second run changes nothing
    bare = copy.deepcopy(nb)
    bare["cells"] = [c for c in bare["cells"] if "colab" not in c.get("metadata", {}).get("tags", [])]
    assert colab_problems(bare, path.name)
    assert script.update_notebook(bare, path.name, REPOSITORY)
    assert colab_problems(json.loads(json.dumps(bare)), path.name) == []
    assert json.dumps(bare).count('"colab-install"') == 1
    assert not script.update_notebook(bare, path.name, REPOSITORY)
    # and the README without its Colab column gets it back
    plain = re.sub(r" \[!\[[^\]]*\]\([^)]*\)\]\(https://colab[^)]*\) \|", "", readme)
    plain = plain.replace("| Notebook | Colab | What you touch |\n|---|---|---|",
                          "| Notebook | What you touch |\n|---|---|")
    assert plain != readme
    assert script.update_readme(plain, REPOSITORY) == readme
