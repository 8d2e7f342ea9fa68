"""The project's promises about itself: README commands, CI, Binder, requirements."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text):
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_quick_start_has_exactly_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = _bash_blocks(quick)
    assert len(blocks) == 2, blocks
    assert all(len(b.splitlines()) == 1 for b in blocks), blocks
    assert "requirements.txt" in blocks[0] and "jupyter lab notebooks/00_index.ipynb" in blocks[0]
    assert "requirements-dev.txt" in blocks[1] and "pytest" in blocks[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    test_command = _bash_blocks(readme.split("## Quick start", 1)[1])[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines(), "CI must run the README's test command verbatim"
    assert "BNLAB_REQUIRE_ALL=1" in ci


def test_readme_links_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"(notebooks/{notebook.name})" in readme, f"README's map lacks {notebook.name}"


def test_every_requirement_says_why():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                assert re.search(r"\s#\s*\S", line), f"{name}: {line!r} has no comment saying why"


def test_learner_requirements_install_bnlab_itself():
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert any(re.match(r"-e \.(\s|$)", line) for line in lines)


def test_torch_is_pinned_to_the_cpu_build():
    dev = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    assert re.search(r"^torch==2\.13\.0\s", dev, flags=re.M)


def test_binder_configuration():
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    binder_reqs = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert "-r ../requirements.txt" in binder_reqs
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"mybinder\.org/v2/gh/[^)]*urlpath=lab/tree/notebooks/00_index\.ipynb", readme)


def test_gitignore_covers_generated_folders():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in (".venv/", ".venv-ci/", "artifacts/", ".hypothesis/"):
        assert entry in ignored


def test_ci_runs_the_explorers_on_ipywidgets_7():
    """Colab ships ipywidgets 7.7.1: CI runs the explorer tests there too, and nothing requires 8."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert '"ipywidgets==7.7.1"' in ci and "tests/test_widgets_*.py" in ci
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'"ipywidgets>=7\.7"', pyproject)
    for name in ("requirements.txt", "pyproject.toml"):
        assert not re.search(r"ipywidgets\s*>=\s*8", (ROOT / name).read_text(encoding="utf-8")), name
