"""Write the student edition: a copy of the notebooks without the worked solutions.

    python scripts/make_student_edition.py               # into student_edition/ (git-ignored)
    python scripts/make_student_edition.py OUTDIR        # anywhere else, except inside notebooks/

Every ``notebooks/*.ipynb`` is copied under the same file name, so the links
between notebooks keep working. In each copy:

* the worked solutions (cells tagged ``solution``) are removed, with the
  one-line "Solution (click to expand):" heading in front of one;
* the exercises ("your turn" cells) and their checks stay;
* outputs, execution counts and the stored widget state are cleared, so the
  copy holds no answer printed by a solution and opens clean;
* a short note (a markdown cell, slide type ``skip``) under the title says it
  is the student edition.

The source notebooks are only read. Before writing anything the script checks
that every worked solution is tagged (a code cell starting with ``# Solution``
or following a "Solution (click to expand):" heading) and that only code cells
carry the tag; otherwise it names the cells and writes nothing. Prints the
cells removed per notebook. The copies run top to bottom on a fresh kernel
where ``import bnlab`` works (``pip install -r requirements.txt``).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DEFAULT_OUTDIR = ROOT / "student_edition"
SOLUTION_TAG = "solution"

#: The markdown line that introduces a worked solution in notebooks 01-03.
SOLUTION_HEADING = re.compile(r"^\s*\**Solution\b[^\n]*:\**\s*$")
NOTE_ID = "student-edition-note"
NOTE = ("> **Student edition.** The worked solutions are left out of this copy; the exercises and "
        "their checks are all here. Run an exercise's cell: its check says what is right and gives a "
        "hint when something is off.")


class EditionError(ValueError):
    """The student edition cannot be written (a bad output folder, an untagged solution)."""


def is_solution(cell):
    """True for a worked-solution cell (tagged ``solution``)."""
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def is_solution_heading(cell):
    """True for a one-line markdown cell such as "Solution (click to expand):"."""
    return cell.cell_type == "markdown" and bool(SOLUTION_HEADING.match(cell.source))


def tag_problems(nb):
    """Where ``nb`` breaks the tagging rule, as a list of messages (empty when it holds).

    The rule: a code cell whose source starts with ``# Solution``, or that follows a
    "Solution (click to expand):" heading, is tagged ``solution``; only code cells are.
    """
    problems = []
    for index, cell in enumerate(nb.cells):
        after_heading = index > 0 and is_solution_heading(nb.cells[index - 1])
        if is_solution(cell):
            if cell.cell_type != "code":
                problems.append(f"cell {index} is a {cell.cell_type} cell tagged {SOLUTION_TAG!r}: "
                                "only worked-solution code cells carry the tag")
        elif cell.cell_type == "code" and (cell.source.lstrip().startswith("# Solution") or after_heading):
            first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
            problems.append(f"cell {index} looks like a worked solution ({first[:60]!r}) but is not "
                            f"tagged {SOLUTION_TAG!r}: add the tag (View > Cell metadata)")
    return problems


def student_notebook(nb):
    """The student edition of notebook ``nb`` (not modified).

    Returns ``(student_nb, solutions_removed, headings_removed)``.
    """
    nb = copy.deepcopy(nb)
    cells, solutions, headings = [], 0, 0
    for index, cell in enumerate(nb.cells):
        following = nb.cells[index + 1] if index + 1 < len(nb.cells) else None
        if is_solution(cell):
            solutions += 1
            continue
        if is_solution_heading(cell) and following is not None and is_solution(following):
            headings += 1
            continue
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        cells.append(cell)
    note = nbformat.v4.new_markdown_cell(NOTE, id=NOTE_ID,
                                         metadata={"slideshow": {"slide_type": "skip"}})
    at = 1 if cells and cells[0].cell_type == "markdown" and cells[0].source.startswith("# ") else 0
    cells.insert(at, note)
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    return nb, solutions, headings


def check_outdir(outdir, notebooks=NOTEBOOKS):
    """Refuse to write into the source notebooks' folder (or a folder inside it)."""
    outdir, notebooks = Path(outdir).resolve(), Path(notebooks).resolve()
    if outdir == notebooks or notebooks in outdir.parents:
        raise EditionError(
            f"refusing to write the student edition into {outdir}: it would sit in the source "
            f"notebooks' folder {notebooks}, whose notebooks keep their solutions. Choose another "
            f"folder, e.g. the default {DEFAULT_OUTDIR.name}/ (git-ignored).")
    if outdir.exists() and not outdir.is_dir():
        raise EditionError(f"{outdir} exists and is not a folder")
    return outdir


def make_student_edition(outdir=DEFAULT_OUTDIR, notebooks=NOTEBOOKS):
    """Write the student edition of every ``*.ipynb`` in ``notebooks`` into ``outdir``.

    Returns a list of ``(file_name, solutions_removed, headings_removed)``, one per notebook.
    Raises :class:`EditionError` (writing nothing) for an output folder inside ``notebooks``
    or a worked solution that is not tagged.
    """
    outdir = check_outdir(outdir, notebooks)
    paths = sorted(Path(notebooks).glob("*.ipynb"))
    if not paths:
        raise EditionError(f"no notebooks in {notebooks}")
    sources = {path: nbformat.read(path, as_version=4) for path in paths}
    problems = [f"{path.name}: {problem}" for path, nb in sources.items() for problem in tag_problems(nb)]
    if problems:
        raise EditionError("not writing a student edition that would leak solutions:\n  "
                           + "\n  ".join(problems))
    editions = {path: student_notebook(nb) for path, nb in sources.items()}
    outdir.mkdir(parents=True, exist_ok=True)
    report = []
    for path, (student, solutions, headings) in editions.items():
        nbformat.write(student, outdir / path.name)
        report.append((path.name, solutions, headings))
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="The default folder, student_edition/, is git-ignored. Writing into notebooks/ is refused.")
    parser.add_argument("outdir", nargs="?", default=str(DEFAULT_OUTDIR),
                        help="where to write the copies (default: student_edition/ at the repository's root)")
    args = parser.parse_args(argv)
    try:
        report = make_student_edition(args.outdir)
    except EditionError as exc:
        print(f"make_student_edition: {exc}", file=sys.stderr)
        return 2
    for name, solutions, headings in report:
        extra = f" (and {headings} 'Solution' heading{'s' * (headings != 1)})" if headings else ""
        print(f"{name:40s} {solutions:2d} solution cell{'s' * (solutions != 1)} removed{extra}")
    total = sum(solutions for _, solutions, _ in report)
    print(f"{len(report)} notebooks written to {Path(args.outdir).resolve()}; "
          f"{total} solution cells removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
