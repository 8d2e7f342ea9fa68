"""Every explorer of the series on one page, one tab each (``notebooks/explorers.ipynb``).

For a demonstration without code: ``voila notebooks/explorers.ipynb`` serves
the page as an app. Building all fourteen explorers takes half a minute (the
training explorers train when built), so a tab's explorer is built the first
time the tab is opened; the first tab is built at once.
"""

from __future__ import annotations

import html
from typing import NamedTuple

import ipywidgets as widgets

from . import backward, conv, family, forward, frameworks, inference, invariance, running, training
from .base import message_html

__all__ = ["GALLERY", "ExplorerGallery", "GalleryEntry", "explorer_gallery"]


class GalleryEntry(NamedTuple):
    """One tab: its title, the explorer class, and the notebook that introduces the explorer."""

    title: str
    explorer: type
    notebook: str


#: The tabs, in the order of the notebooks.
GALLERY = (
    GalleryEntry("01 statistics", forward.BatchStatsExplorer, "01_batch_statistics.ipynb"),
    GalleryEntry("02 normalize", forward.NormalizationExplorer, "02_normalization.ipynb"),
    GalleryEntry("03 γ and β", forward.ScaleShiftExplorer, "03_scale_and_shift.ipynb"),
    GalleryEntry("04 a·z + b", invariance.ShiftScaleExplorer, "04_shift_scale_invariance.ipynb"),
    GalleryEntry("05 running", running.RunningStatsExplorer, "05_running_statistics.ipynb"),
    GalleryEntry("05 train/eval", running.TrainEvalExplorer, "05_running_statistics.ipynb"),
    GalleryEntry("06 coupling", backward.BatchCouplingExplorer, "06_backward_pass.ipynb"),
    GalleryEntry("07 training", training.TrainingExplorer, "07_training_with_bn.ipynb"),
    GalleryEntry("08 conv", conv.ConvBatchNormExplorer, "08_conv_batchnorm.ipynb"),
    GalleryEntry("09 family", family.NormalizationFamilyExplorer, "09_normalization_family.ipynb"),
    GalleryEntry("09 batch size", family.BatchSizeExplorer, "09_normalization_family.ipynb"),
    GalleryEntry("10 shift", inference.ShiftExplorer, "10_inference.ipynb"),
    GalleryEntry("11 translator", frameworks.TranslatorExplorer, "11_frameworks_and_pitfalls.ipynb"),
    GalleryEntry("11 pitfalls", frameworks.PitfallExplorer, "11_frameworks_and_pitfalls.ipynb"),
)

#: Shown in a tab until its explorer is built.
BUILDING = "Building the explorer… (the training explorers train first: a few seconds)"


class ExplorerGallery:
    """An ``ipywidgets.Tab`` with one explorer per tab, each built when its tab is first opened.

    Parameters
    ----------
    entries : sequence of GalleryEntry, default :data:`GALLERY`
    build_all : bool, default False
        Build every explorer now instead of tab by tab.

    Attributes
    ----------
    widget : ipywidgets.Tab
        What the notebook displays.
    explorers : dict
        Tab index -> the explorer built for it (only the tabs opened so far).
    boxes : list of ipywidgets.VBox
        Each tab's content: a line naming the notebook, then the explorer's widget.
    error : str or None
        The message of an explorer that could not be built (shown in its tab).

    Notes
    -----
    Tab titles are set with ``Tab.set_title``, which ipywidgets 7 and 8 both have.
    Introduced in ``notebooks/explorers.ipynb``.
    """

    def __init__(self, entries=GALLERY, build_all=False):
        self.entries = tuple(entries)
        if not self.entries:
            raise ValueError("the gallery needs at least one explorer")
        self.explorers = {}
        self.error = None
        self.boxes = [widgets.VBox([self._source_line(entry), widgets.HTML(message_html(BUILDING, "info"))])
                      for entry in self.entries]
        self.widget = widgets.Tab(children=self.boxes)
        for index, entry in enumerate(self.entries):
            self.widget.set_title(index, entry.title)
        self.widget.selected_index = 0
        self.widget.observe(self._on_select, names="selected_index")
        for index in range(len(self.entries)) if build_all else (0,):
            self.build(index)

    @staticmethod
    def _source_line(entry):
        name = html.escape(entry.notebook)
        return widgets.HTML(f"<span style='color:#555'>From <a href='{name}' target='_blank'>{name}</a></span>")

    def _on_select(self, change):
        if change["new"] is not None:
            self.build(change["new"])

    def build(self, index):
        """Build tab ``index``'s explorer unless it exists; return it (None if it failed)."""
        if index in self.explorers:
            return self.explorers[index]
        entry = self.entries[index]
        try:
            explorer = entry.explorer()
        except Exception as exc:  # noqa: BLE001 - a learner sees a message, never a traceback
            self.error = f"{entry.title}: the explorer could not be built ({type(exc).__name__}: {exc})"
            self.boxes[index].children = (self._source_line(entry), widgets.HTML(message_html(self.error, "error")))
            return None
        self.explorers[index] = explorer
        self.boxes[index].children = (self._source_line(entry), explorer.widget)
        return explorer

    def select(self, index):
        """Open tab ``index`` (as a click on it does) and return its explorer."""
        self.widget.selected_index = index
        return self.build(index)


def explorer_gallery(build_all=False):
    """Every explorer of the series in one ``Tab``, built lazily; display ``.widget``.

    Returns
    -------
    ExplorerGallery
    """
    return ExplorerGallery(GALLERY, build_all=build_all)
