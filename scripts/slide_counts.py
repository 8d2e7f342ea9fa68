"""Count the slides of every notebook deck, as Voila's reveal template will show them.

    python scripts/slide_counts.py                  # every notebooks/NN_*.ipynb, as a Markdown table
    python scripts/slide_counts.py notebooks/04_shift_scale_invariance.ipynb

A deck's slides come from each cell's ``metadata.slideshow.slide_type``
(``slide``, ``subslide``, ``fragment``, ``-``, ``skip``, ``notes``). As in
nbconvert's reveal exporter, the first cell that is neither ``skip`` nor
``notes`` is forced to ``slide``. ``slides`` counts the top-level (left-right)
slides, ``subslides`` the vertical ones below them. The instructor's guide
(docs/instructor_guide.md) quotes these numbers and tests/test_instructor_guide.py
checks them, so rerun this after changing a notebook's slide metadata and copy
the numbers into the guide's table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

#: Cells reveal does not show on a slide.
HIDDEN = {"skip", "notes"}


def slide_types(notebook):
    """Every cell's slide type, with the first visible cell forced to ``slide`` (as reveal does)."""
    types = [cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-") or "-"
             for cell in notebook["cells"]]
    for index, slide_type in enumerate(types):
        if slide_type not in HIDDEN:
            types[index] = "slide"
            break
    return types


def count_slides(notebook):
    """``{"slides": ..., "subslides": ...}`` for a notebook read as a dict (``json.load``)."""
    types = slide_types(notebook)
    return {"slides": types.count("slide"), "subslides": types.count("subslide")}


def count_file(path):
    """:func:`count_slides` of the notebook at ``path``."""
    with open(path, encoding="utf-8") as handle:
        return count_slides(json.load(handle))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="notebooks (default: notebooks/NN_*.ipynb)")
    args = parser.parse_args(argv)
    paths = [Path(p) for p in args.paths] or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    print("| notebook | slides | vertical sub-slides |")
    print("|---|---:|---:|")
    for path in paths:
        counts = count_file(path)
        print(f"| {path.name} | {counts['slides']} | {counts['subslides']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
