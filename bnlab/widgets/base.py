"""What every explorer shares: the :class:`Explorer` cycle, typed-batch parsing, message HTML.

An explorer reads its controls, calls bnlab's core in ``compute`` and updates
its figure's artists in ``draw``; :class:`bnlab.plots.FastRenderer` turns the
figure into PNG bytes for an ``ipywidgets.Image``. Bad input never raises out
of a widget: the message is shown in ``.message`` (and kept in ``.error``) and
the last valid state stays.
"""

from __future__ import annotations

import html
import re

import ipywidgets as widgets
import numpy as np
import traitlets

from ..plots import FastRenderer
from ..plots.theme import projector

__all__ = ["Explorer", "FigureImage", "RunExplorer", "format_batch", "parse_batch"]


_SEPARATORS = re.compile(r"[,\s]+")


#: Largest magnitude a typed value may have: BN squares values and sums the squares, and every
#: explorer scales them further, all of which must stay far inside float64's range (1.8e308).
MAX_ABS_VALUE = 1e100


def parse_batch(text, min_rows=2, max_values=10_000, dtype=np.float64, max_abs=MAX_ABS_VALUE):
    """Parse a batch typed by a learner: one sample per line, numbers separated by commas or spaces.

    Only numbers are accepted (``float()`` on each token; nothing is ever
    evaluated as code). Brackets, as in a pasted NumPy array, are ignored.

    Parameters
    ----------
    text : str
    min_rows : int, default 2
        Fewest samples accepted (training-mode BN needs two).
    max_values : int
        Refuse absurdly large pastes.
    dtype : numpy dtype
    max_abs : float, default 1e100
        Refuse values of larger magnitude: their squares would overflow.

    Returns
    -------
    z : ndarray, shape (N, D)

    Raises
    ------
    ValueError
        Naming what is wrong: an empty batch, a word instead of a number (and
        where), ragged rows, too few rows, NaN or infinity, a value too large
        to compute with.
    """
    if not isinstance(text, str):
        raise TypeError(f"the batch must be text, got {type(text).__name__}")
    rows = []
    for line_no, line in enumerate(text.replace(";", "\n").splitlines(), start=1):
        line = line.strip().strip("[](),").strip()
        if not line:
            continue
        tokens = [t for t in _SEPARATORS.split(line.replace("[", " ").replace("]", " ")) if t]
        values = []
        for token in tokens:
            try:
                value = float(token)
            except ValueError:
                raise ValueError(
                    f"row {len(rows) + 1} (line {line_no}): {token[:20]!r} is not a number"
                ) from None
            if not np.isfinite(value):
                raise ValueError(
                    f"row {len(rows) + 1} (line {line_no}): {token!r} is not a finite number; "
                    "batch normalization needs real values"
                )
            if abs(value) > max_abs:
                raise ValueError(
                    f"row {len(rows) + 1} (line {line_no}): {token!r} is too large to compute with "
                    f"(BN squares it); keep values within ±{max_abs:g}"
                )
            values.append(value)
        rows.append(values)
        if sum(len(r) for r in rows) > max_values:
            raise ValueError(f"the batch is too large for this explorer (more than {max_values} values)")
    if not rows:
        raise ValueError("the batch is empty: type one sample per line, e.g. '1, 2, 3'")
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        counts = ", ".join(str(len(r)) for r in rows)
        raise ValueError(
            f"rows have different numbers of values ({counts}): every sample needs the same features"
        )
    if len(rows) < min_rows:
        raise ValueError(
            f"the batch has {len(rows)} row(s); at least {min_rows} samples are needed "
            "(with one sample there is no variance to estimate)"
        )
    return np.array(rows, dtype=dtype)


def format_batch(z, decimals=4):
    """The inverse of :func:`parse_batch`: one sample per line, comma-separated."""
    z = np.atleast_2d(np.asarray(z))
    return "\n".join(", ".join(f"{v:g}" if v == round(v, decimals) else f"{v:.{decimals}f}" for v in row)
                     for row in z)



#: Colours of text on a white background, each at least 4.5:1 (WCAG 2.1 AA): the dark vermillion
#: #A34800 (6.0:1; the palette's #D55E00 is 3.9:1, enough for a line or a border, not for text) and
#: the palette's blue #0072B2 (5.2:1).
TEXT_COLOURS = {"error": "#A34800", "info": "#0072B2"}


def message_html(text, kind):
    colour = TEXT_COLOURS[kind]
    icon = {"error": "⚠", "info": "ℹ"}[kind]
    size = "1.35em" if projector() else "1.05em"
    return (f'<div role="alert" style="color:{colour};font-size:{size};'
            f'border-left:4px solid {colour};padding:2px 8px">{icon} {html.escape(text)}</div>')


#: In a reveal.js deck (Voila's reveal template) an explorer fits its slide: the figure shrinks to
#: the height the controls leave (slides are 700 px tall), and the title keeps its case (the
#: theme capitalizes headings, turning a into A). Only inside ``.reveal``: JupyterLab is unchanged.
DECK_CSS = ("<style>.reveal .bnlab-explorer{max-height:660px}"
            ".reveal .bnlab-explorer h3{text-transform:none}"
            ".reveal .bnlab-explorer>*{flex-shrink:0}"
            ".reveal .bnlab-explorer>img.widget-image{flex:0 1 auto;min-height:0;object-fit:contain}</style>")


#: Control styles: descriptions as wide as their text.
WIDE = {"description_width": "initial"}


#: ToggleButtons whose labels are sentences: buttons as wide as their labels.
SENTENCE_BUTTONS = {"description_width": "initial", "button_width": "auto"}


def tidy(value, scale=1.0):
    """``value`` for display: rounding residue below 1e-12 * scale shows as 0 (and never -0)."""
    value = float(value)
    return 0.0 if abs(value) < 1e-12 * max(abs(scale), 1e-300) else value + 0.0


# ---------------------------------------------------------------- accessibility

#: The class of every explorer's outer box (what the accessibility test scans, and what the
#: accessibility script below looks for).
EXPLORER_CLASS = "bnlab-explorer"


class FigureImage(widgets.Image):
    """An ``ipywidgets.Image`` whose ``tooltip`` is its text alternative.

    ipywidgets 8 writes a widget's ``tooltip`` into its element's ``title``
    (here the ``<img>``: a screen reader reads it as the image's name, and
    axe's ``image-alt`` rule accepts it), but only for a model that has a
    ``description``; ``Image`` has none, so its front end would stop on the
    missing attribute. This one sends an empty ``description``. ipywidgets 7
    (Colab) has no tooltip on an image: there the same text goes into a
    visually hidden caption (see :meth:`Explorer.describe_figure`).
    """

    description = traitlets.Unicode("").tag(sync=True)
    if "tooltip" not in widgets.Image.class_trait_names():  # ipywidgets 7
        tooltip = traitlets.Unicode(None, allow_none=True).tag(sync=True)


#: ipywidgets 7's front end (Colab's) shows no image title: the description goes into a hidden caption.
_IPYWIDGETS_7 = int(widgets.__version__.split(".")[0]) < 8

#: Text kept off screen but read by screen readers (the usual "visually hidden" recipe).
_VISUALLY_HIDDEN = ("position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;"
                    "clip:rect(0,0,0,0);white-space:nowrap;border:0")

#: What ipywidgets 8 leaves out for assistive technology and the keyboard, added in the browser.
#:
#: - A slider is drawn with noUiSlider: its handle (``role="slider"``, what the keyboard moves)
#:   has no name, the description's ``<label>`` is not tied to it, and ipywidgets offers no
#:   attribute for it (checked up to 8.1.8): the handle gets the description as ``aria-label``,
#:   and the readout's text as ``aria-valuetext`` (noUiSlider writes the raw float,
#:   0.9699999999999993 for 0.97).
#: - ToggleButtons show the button that is on by its colour only: each button gets
#:   ``aria-pressed``, the group ``role="group"`` and the description as its name.
#: - JupyterLab and Notebook 7 take ArrowUp/ArrowDown and letters from a closed ``<select>`` in
#:   an output for their own commands (ipywidgets#3912): plain keys stay with the select.
#:
#: Shown by an invisible ``Output`` inside each explorer; it keeps all this in step (a
#: description that changes, a slider drawn again, another button pressed). Where it does not
#: run nothing else changes; ipywidgets 7 (Colab) draws jQuery UI handles without a slider role.
ACCESSIBILITY_JS = """(function () {
  function labelOf(widget) {
    var label = widget.querySelector('.widget-label');
    return label ? label.textContent.replace(/\\u200b/g, '').trim() : '';
  }
  function set(el, name, value) { if (el.getAttribute(name) !== value) { el.setAttribute(name, value); } }
  function nameAll(box) {
    box.querySelectorAll('.widget-slider').forEach(function (slider) {
      var text = labelOf(slider);
      var readout = slider.querySelector('.widget-readout');
      var value = readout ? readout.textContent.trim() : '';
      slider.querySelectorAll('[role="slider"]').forEach(function (handle) {
        if (text) { set(handle, 'aria-label', text); }
        if (value) { set(handle, 'aria-valuetext', value); }  // as shown, not 0.9699999999999993
      });
    });
    box.querySelectorAll('.widget-toggle-buttons').forEach(function (group) {
      var text = labelOf(group);
      set(group, 'role', 'group');
      if (text) { set(group, 'aria-label', text); }
      group.querySelectorAll('button').forEach(function (button) {
        set(button, 'aria-pressed', button.classList.contains('mod-active') ? 'true' : 'false');
      });
    });
  }
  // JupyterLab (and Notebook 7) take ArrowUp/ArrowDown and letters from a closed <select> in an
  // output for their own commands (ipywidgets#3912): keep plain keys for the select itself.
  // In a reveal.js deck (Voila's reveal template) the arrow keys turn the slide wherever they are
  // pressed: on a slider handle they move the slider only (the handle has seen them already).
  var SLIDER_KEYS = ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End', 'PageUp', 'PageDown'];
  function keepKeys(event) {
    var target = event.target;
    if (!target || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target.tagName === 'SELECT') {
      if (event.key !== 'Tab' && event.key !== 'Escape') { event.stopPropagation(); }
    } else if (SLIDER_KEYS.indexOf(event.key) >= 0 && target.closest
               && target.closest('[role="slider"]') && target.closest('.reveal')) {
      event.stopPropagation();
    }
  }
  function watch(box) {
    if (box.__bnlabAccessibility) { nameAll(box); return; }
    box.addEventListener('keydown', keepKeys);
    box.__bnlabAccessibility = new MutationObserver(function () { nameAll(box); });
    box.__bnlabAccessibility.observe(box, {subtree: true, childList: true, characterData: true,
                                         attributes: true, attributeFilter: ['class']});
    nameAll(box);
  }
  var start = (typeof element !== 'undefined' && element) ? (element.jquery ? element[0] : element) : null;
  var tries = 0;
  (function find() {
    var box = start && start.closest ? start.closest('.EXPLORER_CLASS') : null;
    if (box && box.isConnected) { watch(box); return; }
    document.querySelectorAll('.EXPLORER_CLASS').forEach(watch);
    if (++tries < 100) { setTimeout(find, 100); }
  })();
})();""".replace("EXPLORER_CLASS", EXPLORER_CLASS)


def accessibility_output():
    """An invisible ``Output`` showing :data:`ACCESSIBILITY_JS` (one per explorer box)."""
    from IPython.display import Javascript

    out = widgets.Output(layout=widgets.Layout(display="none"))
    out.append_display_data(Javascript(ACCESSIBILITY_JS))
    return out


def _no_null_titles(widget):
    """An empty tooltip for every widget in ``widget``'s tree that has none.

    ipywidgets 8 writes a description widget's ``tooltip`` into its label's ``title``, and a
    missing one (None) as the word "null": hovering over "eps" showed "null", and a screen
    reader may read it out.
    """
    todo = [widget]
    while todo:
        w = todo.pop()
        if "tooltip" in w.trait_names() and w.tooltip is None and not isinstance(w, widgets.Image):
            w.tooltip = ""
        todo.extend(getattr(w, "children", ()))


def numbers(values, fmt=".3g"):
    """``values`` written for a sentence: ``"1, 0.5 and 3.5"`` (rounding residue shows as 0)."""
    items = [format(tidy(v), fmt) for v in np.ravel(values)]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class Explorer:
    """Base class: controls, a figure rendered into an ``Image``, an error line.

    Subclasses implement

    - ``compute(self)``: read the controls, call bnlab's core and return a
      dict of new state (raise ``ValueError``/``TypeError`` on bad input);
    - ``draw(self)``: update the figure's artists from the state attributes
      (the renderer's dynamic artists);
    - ``describe(self)``: the figure in words, with its key numbers (its text
      alternative, put on the image after every render).

    :meth:`update` calls ``compute``; on success it stores every key of the
    returned dict as an attribute, redraws and re-renders; on a
    ``ValueError``/``TypeError`` it shows the message and keeps the previous
    state (attributes, figure and image unchanged).

    Attributes
    ----------
    widget : ipywidgets.Widget
        What the notebook displays.
    image : ipywidgets.Image
    message : ipywidgets.HTML
        Empty when all is well, the error otherwise.
    error : str or None
        The last error message (None after a successful update).
    renders : int
        How many times the image was rendered.
    """

    #: Title shown above the controls.
    title = ""

    def __init__(self):
        self.error = None
        self.renders = 0
        self.message = widgets.HTML(value="")
        self.image = FigureImage(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.renderer = None
        #: The figure in words (ipywidgets 7's stand-in for the image's title; see :meth:`describe`).
        self.figure_text = widgets.HTML(value="", layout=widgets.Layout(
            **({"height": "0px", "margin": "0px", "overflow": "hidden"} if _IPYWIDGETS_7 else {"display": "none"})))

    # -- wiring helpers for subclasses
    def observe(self, *controls, names="value"):
        """Call :meth:`update` whenever one of ``controls`` changes."""
        for control in controls:
            control.observe(self._on_change, names=names)

    def _on_change(self, _change=None):
        self.update()

    def set_renderer(self, fig, dynamic):
        """Use ``fig`` with these dynamic artists (see :class:`bnlab.plots.FastRenderer`)."""
        self.fig = fig
        self.renderer = FastRenderer(fig, dynamic)

    def layout(self, controls, extra=()):
        """The standard arrangement: title, controls, error line, figure, extra widgets."""
        size = ";font-size:1.6em" if projector() else ""
        heading = f"<h3 style='margin:4px 0{size}'>{html.escape(self.title)}</h3>" if self.title else ""
        parts = [widgets.HTML(DECK_CSS + heading), controls, self.message, self.image, *extra]
        parts.extend([self.figure_text, accessibility_output()])  # both invisible
        box = widgets.VBox(parts)
        box.add_class(EXPLORER_CLASS)
        _no_null_titles(box)
        return box

    # -- the cycle
    def compute(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def draw(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def compute_state(self):
        """Run :meth:`compute` and store its state; on bad input show the message, keep the state.

        Returns True on success (without drawing: :meth:`update` draws).
        """
        try:
            with np.errstate(over="raise"):  # an overflow is a message, never a warning
                state = self.compute()
        except FloatingPointError:
            return self.show_error("these numbers are too large to compute with in float64 (an "
                                   "intermediate result overflowed); try smaller values")
        except (ValueError, TypeError, ArithmeticError) as exc:
            return self.show_error(str(exc))
        for key, value in state.items():
            setattr(self, key, value)
        self.error = None
        self.message.value = ""
        return True

    def show_error(self, text):
        """Show ``text`` as the explorer's error message (the state stays as it was); returns False."""
        self.error = text
        self.message.value = message_html(text, "error")
        return False

    def update(self):
        """Recompute from the controls, redraw, re-render. Returns True on success."""
        if not self.compute_state():
            return False
        self.draw()
        self.render()
        return True

    def render(self, full=False):
        if self.renderer is not None:
            self.image.value = self.renderer.png(full=full)
            self.renders += 1
            self.describe_figure()

    # -- the figure in words
    def describe(self):
        """What the figure shows now, with its key numbers, in a sentence or two (its text alternative).

        Each explorer says it from its state; the base class puts it on the image after every render.
        """
        return self.title

    def describe_figure(self):
        """Put :meth:`describe` on the image (its title, ipywidgets 8) and in the hidden caption (7)."""
        text = " ".join(str(self.describe()).split())
        self.image.tooltip = text
        if _IPYWIDGETS_7:
            self.figure_text.value = (f"<div style='{_VISUALLY_HIDDEN}'>Figure: {html.escape(text)}</div>")
        return text


class RunExplorer(Explorer):
    """An explorer whose controls only choose settings; a Run button trains and redraws.

    For explorers whose update takes a second or more (training a network):
    moving a control only says that the settings changed, and :meth:`update`
    (what Run does) trains while a progress bar moves. Subclasses call
    :meth:`run_controls` once to make the button and the bar, implement
    :meth:`settings_changed` (True when the controls differ from the last
    run's settings) and call :meth:`start_progress` at the start of
    ``compute``, then move ``self.progress.value``.
    """

    #: Shown when the controls no longer match the picture.
    PENDING = "Settings changed: press Run to train with them (the figure still shows the last run)."

    def run_controls(self, tooltip="train with these settings"):
        """The Run button and the progress bar (as ``run_button`` and ``progress``), in one row."""
        self.pending = False
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play",
                                         tooltip=tooltip)
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="training", style=WIDE)
        self.run_button.on_click(lambda _button: self.update())
        return widgets.HBox([self.run_button, self.progress])

    def settings_changed(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_change(self, _change=None):
        self.pending = self.settings_changed()
        if self.pending:
            self.message.value = message_html(self.PENDING, "info")
        elif self.error is None:
            self.message.value = ""

    def start_progress(self, total):
        """Reset the progress bar for a run of ``total`` steps."""
        self.progress.bar_style = ""
        self.progress.max = total
        self.progress.value = 0

    def update(self):
        """Train with the current settings and redraw (what the Run button does). Returns True on success."""
        self.run_button.disabled = True
        try:
            ok = super().update()
        finally:
            self.run_button.disabled = False
        self.progress.bar_style = "success" if ok else "danger"
        if not ok:
            self.progress.value = 0
        return ok
