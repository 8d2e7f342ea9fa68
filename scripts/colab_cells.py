"""Write the Colab install cell and the "Open in Colab" badges from pyproject's ``[project.urls]``.

    python scripts/colab_cells.py           # update notebooks/*.ipynb and README.md in place
    python scripts/colab_cells.py --check   # change nothing; exit 1 when something is out of date

The repository's public address is written in one place, ``Repository`` under
``[project.urls]`` in ``pyproject.toml``; the branch the badges and the install
cell point at is :data:`BRANCH`. From them this script writes

* at the top of every ``notebooks/*.ipynb``, two cells tagged ``colab`` (slide type
  ``skip``, so slides and apps leave them out): a code cell that installs bnlab
  from the repository when the notebook runs in Google Colab and does nothing
  anywhere else, and a markdown cell with an "Open in Colab" badge;
* an "Open in Colab" column in the README's notebook map, and the owner, name and
  branch in the README's Binder badge.

Running it twice changes nothing the second time. After it changed a notebook,
re-execute that notebook (``python scripts/run_notebooks.py <it>``): the cells
below the new ones get new execution counts. ``tests/test_colab.py`` checks that
everything agrees with ``pyproject.toml``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"

#: The branch Colab opens and installs from.
BRANCH = "main"
#: The tag of both Colab cells (tools that drop or hide cells by tag can find them).
TAG = "colab"
INSTALL_CELL_ID = "colab-install"
BADGE_CELL_ID = "colab-badge"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
GITHUB = re.compile(r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)/?$")


def repository_url(pyproject=ROOT / "pyproject.toml"):
    """``[project.urls] Repository`` from ``pyproject.toml``, e.g. ``https://github.com/bnlab/bnlab``."""
    with open(pyproject, "rb") as handle:
        urls = tomllib.load(handle)["project"]["urls"]
    url = urls["Repository"]
    if GITHUB.match(url) is None:
        raise ValueError(f"[project.urls] Repository must be https://github.com/OWNER/NAME, not {url!r}")
    return url.rstrip("/")


def owner_and_name(repo_url):
    match = GITHUB.match(repo_url)
    return match["owner"], match["name"]


def pip_requirement(repo_url, branch=BRANCH):
    """What the install cell hands to pip: ``bnlab @ git+https://github.com/OWNER/NAME@BRANCH``."""
    return f"bnlab @ git+{repo_url}@{branch}"


def colab_url(repo_url, notebook_name, branch=BRANCH):
    """The Colab address of ``notebooks/<notebook_name>`` on GitHub."""
    owner, name = owner_and_name(repo_url)
    return (
        f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/notebooks/{notebook_name}"
    )


def badge(repo_url, notebook_name, alt="Open in Colab", branch=BRANCH):
    return f"[![{alt}]({BADGE_IMAGE})]({colab_url(repo_url, notebook_name, branch)})"


def install_source(repo_url, branch=BRANCH):
    """The install cell: pip-installs bnlab without dependencies in Colab, nothing elsewhere."""
    return (
        "# In Colab only: install bnlab, keeping Colab's own numpy, matplotlib and ipywidgets.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",\n'
        f'                    "{pip_requirement(repo_url, branch)}"], check=True)'
    )


def badge_source(repo_url, notebook_name, branch=BRANCH):
    return badge(repo_url, notebook_name, branch=branch)


def _metadata(cell, tags):
    cell.setdefault("metadata", {})
    cell["metadata"]["slideshow"] = {"slide_type": "skip"}
    cell["metadata"]["tags"] = list(tags)


def _set_source(cell, text):
    """Set a cell's source, leaving it alone when it already reads ``text`` (as a list of lines too)."""
    source = cell.get("source", "")
    if ("".join(source) if isinstance(source, list) else source) != text:
        cell["source"] = text


def _new_cell(cell_type, cell_id):
    import nbformat

    cell = {"cell_type": cell_type, "id": cell_id, "metadata": {}, "source": ""}
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return nbformat.from_dict(cell)  # attribute access too, as nbformat.write expects


def update_notebook(nb, notebook_name, repo_url, branch=BRANCH):
    """Put the two Colab cells first in ``nb`` (a notebook dict, changed in place); True when it changed."""
    before = json.dumps(nb, sort_keys=True)
    colab = [c for c in nb["cells"] if TAG in c.get("metadata", {}).get("tags", [])]
    install = next((c for c in colab if c["cell_type"] == "code"), None) or _new_cell(
        "code", INSTALL_CELL_ID
    )
    _set_source(install, install_source(repo_url, branch))
    _metadata(install, [TAG, "hide-input"])
    shown = next((c for c in colab if c["cell_type"] == "markdown"), None) or _new_cell(
        "markdown", BADGE_CELL_ID
    )
    _set_source(shown, badge_source(repo_url, notebook_name, branch))
    _metadata(shown, [TAG])
    nb["cells"] = [install, shown] + [c for c in nb["cells"] if c is not install and c is not shown]
    return json.dumps(nb, sort_keys=True) != before


# ---------------------------------------------------------------- README

_ROW = re.compile(
    r"^\| \[(?P<stem>\w+)\]\(notebooks/(?P=stem)\.ipynb\) \|"
    r"(?: \[!\[[^\]]*\]\([^)]*\)\]\([^)]*\) \|)?"  # an earlier Colab cell
    r" (?P<rest>.*)$"
)
_BINDER = re.compile(r"(https://mybinder\.org/v2/gh/)[\w.-]+/[\w.-]+/[\w.-]+(\?)")


def update_readme(text, repo_url, branch=BRANCH):
    """The README with a Colab column in the notebook map and the Binder badge pointing at ``repo_url``."""
    owner, name = owner_and_name(repo_url)
    text = _BINDER.sub(rf"\g<1>{owner}/{name}/{branch}\g<2>", text)
    lines = text.split("\n")
    for i, line in enumerate(lines):
        match = _ROW.match(line)
        if match:
            stem = match["stem"]
            cell = badge(repo_url, f"{stem}.ipynb", alt=f"Open {stem} in Colab", branch=branch)
            lines[i] = f"| [{stem}](notebooks/{stem}.ipynb) | {cell} | {match['rest']}"
        elif line == "| Notebook | What you touch |":
            lines[i] = "| Notebook | Colab | What you touch |"
            if i + 1 < len(lines) and lines[i + 1] == "|---|---|":
                lines[i + 1] = "|---|---|---|"
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def notebook_paths():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when out of date")
    args = parser.parse_args(argv)
    repo_url = repository_url()
    import nbformat  # here: the functions above work on plain dicts, without it

    stale = []
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        if update_notebook(nb, path.name, repo_url):
            stale.append(path)
            if not args.check:
                nbformat.validate(nb)
                nbformat.write(nb, path)
    readme = README.read_text(encoding="utf-8")
    new_readme = update_readme(readme, repo_url)
    if new_readme != readme:
        stale.append(README)
        if not args.check:
            README.write_text(new_readme, encoding="utf-8")
    verb = "out of date" if args.check else "updated"
    for path in stale:
        print(f"{verb}: {path.relative_to(ROOT)}")
    if not stale:
        print(f"everything agrees with {repo_url} (branch {BRANCH})")
    changed_notebooks = [p for p in stale if p.suffix == ".ipynb"]
    if changed_notebooks and not args.check:
        print("now re-execute them: python scripts/run_notebooks.py "
              + " ".join(str(p.relative_to(ROOT)) for p in changed_notebooks))
    return 1 if (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
