"""How the code is organised (README, "How the code is organised"), checked.

bnlab is a house of floors: a module imports only from its own floor or below,
and there are no circles. ``plots``, ``widgets`` and ``checks`` are packages
with one shared module each and one module per topic, the same topic names in
all three, re-exporting every public name at the package level.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bnlab"

#: Floors, bottom up: a module may import its own floor and those below, never above.
FLOORS = {
    "core": 1, "conventions": 1, "data": 1, "_validate": 1,
    "layers": 2, "running": 2, "gradcheck": 2, "datasets": 2,
    "train": 3, "walkthrough": 3, "pitfalls": 3,
    "plots": 4,
    "widgets": 5, "checks": 5, "notebook": 5,
}
#: The package's face and its command line sit above every floor.
ENTRY_POINTS = {"bnlab", "bnlab.__main__"}
#: Shared machinery of each layered package (widgets.gallery gathers every topic's explorer);
#: every other module there is a topic.
SHARED = {"plots": {"theme", "render"}, "widgets": {"base", "gallery"}, "checks": {"feedback"}}


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name, path, known=None):
    """Every bnlab module ``name`` (source file ``path``) imports, at top level or inside functions."""
    known = _modules() if known is None else known
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "bnlab")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "bnlab":
                continue
            if node.module is None:  # from . import core, layers
                found.update(f"{target}.{alias.name}" for alias in node.names)
            else:
                found.add(target)
    return {m for m in found if m in known and m != name}


def _floor(module):
    parts = module.split(".")
    if len(parts) == 1:
        return None
    return FLOORS[parts[1]]


def test_every_module_has_a_floor():
    for name in _modules():
        if name not in ENTRY_POINTS:
            assert name.split(".")[1] in FLOORS, f"{name} has no floor: add it to FLOORS (and the README)"


@pytest.mark.parametrize("name", sorted(set(_modules()) - ENTRY_POINTS))
def test_no_module_imports_a_floor_above_its_own(name):
    path = _modules()[name]
    above = sorted(m for m in _imports(name, path) if m not in ENTRY_POINTS and _floor(m) > _floor(name))
    assert not above, f"{name} (floor {_floor(name)}) imports from above: " + ", ".join(
        f"{m} (floor {_floor(m)})" for m in above)


def test_no_circular_imports():
    modules = _modules()
    graph = {name: _imports(name, path) - ENTRY_POINTS for name, path in modules.items()
             if name not in ENTRY_POINTS}

    def visit(node, trail):
        if node in trail:
            cycle = trail[trail.index(node):] + [node]
            pytest.fail("circular import: " + " -> ".join(cycle))
        for nxt in graph.get(node, ()):
            # a package's __init__ re-exports its own modules: that is not a circle
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue
            visit(nxt, trail + [node])

    for name in graph:
        visit(name, [])


def test_the_floor_test_catches_an_upward_import(tmp_path):
    """The check above can fail: a core that imports plots and widgets is reported."""
    fake = tmp_path / "core.py"
    fake.write_text("from .plots import render_png\n\ndef f():\n    from . import widgets\n")
    found = _imports("bnlab.core", fake, known=_modules())
    assert found == {"bnlab.plots", "bnlab.widgets"}
    assert all(_floor(m) > _floor("bnlab.core") for m in found)


def _topics(package):
    return sorted(p.stem for p in (PACKAGE / package).glob("*.py")
                  if p.stem != "__init__" and p.stem not in SHARED[package])


def test_the_three_packages_share_their_topic_names():
    assert _topics("plots") == _topics("widgets") == _topics("checks"), (
        "every topic has a module in plots/, widgets/ and checks/")


@pytest.mark.parametrize("package", sorted(SHARED))
def test_each_package_reexports_every_public_name(package):
    pkg = importlib.import_module(f"bnlab.{package}")
    assert len(pkg.__all__) == len(set(pkg.__all__)), f"bnlab.{package}.__all__ has duplicates"
    for module in sorted(SHARED[package]) + _topics(package):
        mod = importlib.import_module(f"bnlab.{package}.{module}")
        assert mod.__all__, f"bnlab.{package}.{module} has an empty __all__"
        for name in mod.__all__:
            assert name in pkg.__all__ and getattr(pkg, name) is getattr(mod, name), (
                f"bnlab.{package}.{name} (from {module}) is not re-exported")


def test_no_notebook_prefixed_names():
    """The module is the namespace: no helper carries its notebook in its name (_n05_pair)."""
    for path in PACKAGE.rglob("*.py"):
        found = re.findall(r"\b_?n\d\d_\w+", path.read_text(encoding="utf-8"), flags=re.IGNORECASE)
        assert not found, f"{path.relative_to(ROOT)}: {sorted(set(found))}"


def test_tests_mirror_the_topic_modules():
    for package in SHARED:
        for topic in _topics(package):
            if package == "plots" and (ROOT / "tests" / f"test_widgets_{topic}.py").exists():
                continue  # a topic's figures may be tested beside its explorer
            assert (ROOT / "tests" / f"test_{package}_{topic}.py").exists(), (
                f"tests/test_{package}_{topic}.py is missing")
