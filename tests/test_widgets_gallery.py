"""bnlab.widgets.gallery: every explorer in one tabbed page, built tab by tab (notebooks/explorers.ipynb).

Runs on ipywidgets 7.7 (Colab's) and 8 alike (CI runs the widget tests on both).
"""

from __future__ import annotations

import re
from pathlib import Path

import ipywidgets
import pytest
from _support import warnings_as_errors

from bnlab import widgets
from bnlab.widgets.gallery import BUILDING, GALLERY, ExplorerGallery, GalleryEntry

ROOT = Path(__file__).resolve().parents[1]


def _explorer_classes():
    """Every concrete explorer bnlab.widgets exports (Explorer subclasses outside base)."""
    return {getattr(widgets, name) for name in widgets.__all__
            if isinstance(getattr(widgets, name), type) and issubclass(getattr(widgets, name), widgets.Explorer)
            and getattr(widgets, name).__module__ != widgets.base.__name__}


def _titles(tab):
    return [tab.get_title(i) for i in range(len(tab.children))]


def test_the_gallery_has_every_explorer_once():
    classes = [entry.explorer for entry in GALLERY]
    assert len(classes) == len(set(classes)) == 14
    assert set(classes) == _explorer_classes(), "a new explorer belongs in the gallery too"


def test_every_entry_names_the_notebook_that_shows_its_explorer():
    numbers = [entry.notebook[:2] for entry in GALLERY]
    assert numbers == sorted(numbers), "the tabs follow the notebooks' order"
    for entry in GALLERY:
        path = ROOT / "notebooks" / entry.notebook
        assert path.is_file(), entry
        assert entry.explorer.__name__ in path.read_text(encoding="utf-8"), entry
        assert entry.title.startswith(entry.notebook[:2] + " "), entry
        assert len(entry.title) <= 14, f"{entry.title!r}: tab titles stay short (14 tabs in a row)"


def test_explorer_gallery_builds_only_the_first_tab():
    with warnings_as_errors():
        gallery = widgets.explorer_gallery()
    tab = gallery.widget
    assert isinstance(tab, ipywidgets.Tab)
    assert len(tab.children) == len(GALLERY)
    assert _titles(tab) == [entry.title for entry in GALLERY]
    assert tab.selected_index == 0
    assert list(gallery.explorers) == [0]
    first = gallery.explorers[0]
    assert isinstance(first, GALLERY[0].explorer)
    assert gallery.boxes[0].children[-1] is first.widget
    assert len(first.image.value) > 1000
    for box in gallery.boxes[1:]:  # the others wait, saying so
        assert BUILDING.split("…")[0] in box.children[-1].value
    assert gallery.error is None


def test_opening_a_tab_builds_its_explorer_once():
    gallery = widgets.explorer_gallery()
    index = next(i for i, entry in enumerate(GALLERY) if entry.explorer is widgets.ShiftScaleExplorer)
    with warnings_as_errors():
        gallery.widget.selected_index = index  # what a click on the tab does
    explorer = gallery.explorers[index]
    assert isinstance(explorer, widgets.ShiftScaleExplorer)
    assert gallery.boxes[index].children[-1] is explorer.widget
    assert gallery.select(index) is explorer  # opening it again builds nothing new
    gallery.widget.selected_index = 0
    gallery.widget.selected_index = index
    assert gallery.explorers[index] is explorer
    # and the explorer in the tab is live
    before = bytes(explorer.image.value)
    explorer.scale_slider.value = explorer.scale_slider.value * 2
    assert bytes(explorer.image.value) != before


def test_every_tab_links_to_its_notebook():
    gallery = widgets.explorer_gallery()
    for entry, box in zip(GALLERY, gallery.boxes):
        assert re.search(rf"href='{re.escape(entry.notebook)}'", box.children[0].value)


class _Broken(widgets.Explorer):
    def __init__(self):
        raise RuntimeError("no data")


def test_an_explorer_that_cannot_be_built_shows_a_message():
    entries = (GALLERY[0], GalleryEntry("99 broken", _Broken, "00_index.ipynb"))
    gallery = ExplorerGallery(entries)
    with warnings_as_errors():
        assert gallery.select(1) is None  # no exception reaches the learner
    assert "could not be built" in gallery.error and "no data" in gallery.error
    assert "could not be built" in gallery.boxes[1].children[-1].value
    assert 1 not in gallery.explorers


def test_build_all_and_bad_arguments():
    entries = GALLERY[:2]
    gallery = ExplorerGallery(entries, build_all=True)
    assert sorted(gallery.explorers) == [0, 1]
    with pytest.raises(ValueError, match="at least one"):
        ExplorerGallery(())


def test_every_explorer_carries_the_deck_style():
    """In a reveal.js deck an explorer fits its slide (tests/test_voila.py measures it): its box is
    marked for the deck style sheet, which comes with the explorer's first widget."""
    from bnlab.widgets.base import DECK_CSS

    gallery = widgets.explorer_gallery()
    explorer = gallery.explorers[0]
    assert "bnlab-explorer" in explorer.widget._dom_classes
    first = explorer.widget.children[0]
    assert first.value.startswith(DECK_CSS)
    assert explorer.title in first.value
    assert all(rule.startswith(".reveal ") for rule in DECK_CSS[len("<style>"):-len("</style>")].split("}")[:-1]), (
        "the deck style applies inside reveal.js decks only")
