"""The instructor's guide (docs/instructor_guide.md) stays true to the notebooks and the package.

Every notebook in ``notebooks/`` is named in it; every explorer and checker it names exists (and every
public explorer and checker is named); every notebook heading it quotes, written ``NN § “Heading”``,
is a heading of notebook NN; its table of timings and slides has a row per numbered notebook, with an
execution time and the slide counts the notebook's metadata gives (``scripts/slide_counts.py``).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import bnlab.checks
import bnlab.widgets

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "instructor_guide.md"
NOTEBOOKS = ROOT / "notebooks"

#: How the guide quotes a notebook's section: its number, a section sign, the heading in curly quotes.
QUOTED_HEADING = re.compile(r"(\d\d) § “([^”]+)”")


def _guide():
    return GUIDE.read_text(encoding="utf-8")


def _slide_counts():
    """scripts/slide_counts.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("slide_counts", ROOT / "scripts" / "slide_counts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _numbered_notebooks():
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def notebook_headings(path):
    """Every Markdown heading (``#`` to ``######``) of a notebook, as text without the hashes."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    headings = set()
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for line in source.splitlines():
            match = re.match(r"#{1,6}\s+(.*\S)\s*$", line)
            if match:
                headings.add(match.group(1))
    return headings


def _section(text, title):
    """The text of the ``## title`` section, up to the next ``## `` heading."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def _table_rows(section):
    """The rows of the Markdown table(s) in ``section`` that name a numbered notebook, by file name."""
    rows = {}
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.search(r"\b(\d\d_\w+\.ipynb)\b", cells[0])
        if match:
            assert match.group(1) not in rows, f"two rows for {match.group(1)}"
            rows[match.group(1)] = cells
    return rows


def test_guide_names_every_notebook():
    guide = _guide()
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert len(notebooks) >= 12
    missing = [path.name for path in notebooks if path.name not in guide]
    assert not missing, f"docs/instructor_guide.md does not name {missing}"


def test_named_explorers_exist_and_every_explorer_is_named():
    guide = _guide()
    named = set(re.findall(r"\b\w+Explorer\b", guide))
    assert named
    unknown = sorted(name for name in named if not isinstance(getattr(bnlab.widgets, name, None), type))
    assert not unknown, f"the guide names explorers bnlab.widgets does not have: {unknown}"
    public = {name for name in bnlab.widgets.__all__
              if name.endswith("Explorer") and name not in ("Explorer", "RunExplorer")}
    assert not public - named, f"explorers the guide does not mention: {sorted(public - named)}"


def test_named_checkers_exist_and_every_checker_is_named():
    guide = _guide()
    named = set(re.findall(r"\bcheck_\w+", guide))
    assert named
    unknown = sorted(name for name in named if not callable(getattr(bnlab.checks, name, None)))
    assert not unknown, f"the guide names checkers bnlab.checks does not have: {unknown}"
    public = {name for name in bnlab.checks.__all__ if name.startswith("check_")}
    assert not public - named, f"checkers (exercises) the guide does not mention: {sorted(public - named)}"


def test_quoted_headings_exist_in_their_notebooks():
    guide = _guide()
    quotes = QUOTED_HEADING.findall(guide)
    assert len(quotes) >= 24
    assert guide.count("§") == len(quotes), "every § must quote a heading as NN § “Heading”"
    headings = {}
    problems = []
    for number, heading in quotes:
        paths = sorted(NOTEBOOKS.glob(f"{number}_*.ipynb"))
        if len(paths) != 1:
            problems.append(f"{number} § “{heading}”: no single notebook {number}_*.ipynb")
            continue
        if paths[0] not in headings:
            headings[paths[0]] = notebook_headings(paths[0])
        if heading not in headings[paths[0]]:
            problems.append(f"{number} § “{heading}”: not a heading of {paths[0].name}")
    assert not problems, "\n".join(problems)


def test_notebook_headings_are_read_from_markdown_cells():
    headings = notebook_headings(NOTEBOOKS / "01_batch_statistics.ipynb")
    assert "Why axis 0?" in headings and "01 · Batch statistics" in headings
    assert not any(h.startswith("#") for h in headings)


def test_timings_and_slides_table_matches_the_notebooks():
    rows = _table_rows(_section(_guide(), "Timings and slides"))
    counts = _slide_counts()
    problems = []
    names = {path.name for path in _numbered_notebooks()}
    for stale in sorted(set(rows) - names):
        problems.append(f"{stale}: a row for a notebook that does not exist")
    for path in _numbered_notebooks():
        cells = rows.get(path.name)
        if cells is None:
            problems.append(f"{path.name}: no row in the table of timings and slides")
            continue
        if f"(../notebooks/{path.name})" not in cells[0]:
            problems.append(f"{path.name}: the row should link ../notebooks/{path.name}")
        if not re.fullmatch(r"\d+(\.\d+)? s", cells[1]):
            problems.append(f"{path.name}: execution time {cells[1]!r} is not like '3.7 s'")
        expected = counts.count_file(path)
        found = {"slides": cells[4], "subslides": cells[5]}
        for key in ("slides", "subslides"):
            if found[key] != str(expected[key]):
                problems.append(f"{path.name}: {key} {found[key]} in the guide, {expected[key]} in the "
                                "notebook's metadata (python scripts/slide_counts.py)")
    assert not problems, "\n".join(problems)


def test_slide_counts_follow_reveal():
    counts = _slide_counts()

    def cell(slide_type=None):
        metadata = {} if slide_type is None else {"slideshow": {"slide_type": slide_type}}
        return {"cell_type": "markdown", "metadata": metadata, "source": ""}

    # the first cell that is neither skip nor notes is forced to a slide, as nbconvert's reveal does
    notebook = {"cells": [cell("skip"), cell("notes"), cell(), cell("fragment"), cell("slide"),
                          cell("subslide"), cell("subslide"), cell("skip"), cell("slide")]}
    assert counts.count_slides(notebook) == {"slides": 3, "subslides": 2}
    assert counts.count_slides({"cells": [cell("slide"), cell("-")]}) == {"slides": 1, "subslides": 0}


def test_readme_links_the_guide():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/instructor_guide.md)" in readme
