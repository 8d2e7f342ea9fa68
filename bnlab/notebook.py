"""Notebook helpers: the one setup call at the top of every notebook, and figure display."""

from __future__ import annotations

import numpy as np

__all__ = ["setup_notebook", "show"]

#: Oldest versions the notebooks are written for.
MINIMUM_VERSIONS = {"numpy": "1.24", "matplotlib": "3.7", "ipywidgets": "7.7"}


def _version_tuple(text):
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def setup_notebook(projector=None):
    """Prepare a notebook: check library versions, reset NumPy's print options, choose the look.

    Prints nothing and changes no global plotting state (bnlab's figures
    carry their own style). NumPy's print options are reset to the defaults,
    so printed arrays look exactly like the seed walkthrough's, however the
    kernel was used before.

    Parameters
    ----------
    projector : bool or None
        True for projector mode, for teaching in a room: larger text,
        markers and explorer images, thicker lines, and colours that stand
        out from white (still colour-blind safe). None (the default) follows
        the environment variable ``BNLAB_PROJECTOR`` (``1`` or ``0``), so a
        class setup can switch it on without editing notebooks:
        ``BNLAB_PROJECTOR=1 jupyter lab``. Figures and explorers made after
        this call follow it.

    Raises
    ------
    ImportError
        When a library is older than the notebooks need, saying which and how to upgrade.
    ValueError
        When ``BNLAB_PROJECTOR`` holds something other than 1/0 (true/false, yes/no, on/off).
    """
    import ipywidgets
    import matplotlib

    found = {"numpy": np.__version__, "matplotlib": matplotlib.__version__, "ipywidgets": ipywidgets.__version__}
    for name, minimum in MINIMUM_VERSIONS.items():
        if _version_tuple(found[name]) < _version_tuple(minimum):
            raise ImportError(
                f"{name} {found[name]} is too old for these notebooks (need >= {minimum}); "
                "run: pip install -r requirements.txt"
            )
    from .plots import theme

    theme.set_projector(theme.projector_from_env() if projector is None else projector)
    np.set_printoptions()  # the defaults (only the arguments given change)
    np.set_printoptions(precision=8, threshold=1000, edgeitems=3, linewidth=75, suppress=False,
                        nanstr="nan", infstr="inf", sign="-", floatmode="maxprec", legacy=False)


def show(fig):
    """Display a bnlab figure in a notebook as a PNG (no pyplot needed).

    Returns an ``IPython.display.Image``; make it the last expression of a
    cell, or pass it to ``display``.
    """
    from IPython.display import Image

    from .plots import render_png

    return Image(data=render_png(fig), format="png")
