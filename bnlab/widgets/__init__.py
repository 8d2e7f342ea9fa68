"""Interactive explorers: ipywidgets controls wired to bnlab's core and plots.

Every explorer is a class constructible with no arguments (defaults: the seed
batch), exposing ``.widget`` (what a notebook displays) and ``.update()`` (a
plain method a test calls without a browser or a kernel). All state is
readable as attributes. Bad input never raises out of a widget: the message is
shown in ``.message`` (and kept in ``.error``) and the last valid state stays.

``base`` holds what every explorer shares (:class:`Explorer`, typed-batch
parsing); each topic module holds the explorers of the notebooks it is named
after (``forward`` 01-03, ``invariance`` 04, ``running`` 05, ``backward`` 06,
``training`` 07, ``conv`` 08, ``family`` 09, ``inference`` 10, ``frameworks``
11), with the figures of the same name in :mod:`bnlab.plots`; ``gallery`` puts
every explorer in one tabbed page (``explorer_gallery``, for
``notebooks/explorers.ipynb``). Every public name is available here, as
``bnlab.widgets.<name>``.
"""

from . import (
    backward, base, conv, family, forward, frameworks, gallery, inference, invariance, running, training,
)
from .backward import *  # noqa: F403
from .base import *  # noqa: F403
from .conv import *  # noqa: F403
from .family import *  # noqa: F403
from .forward import *  # noqa: F403
from .frameworks import *  # noqa: F403
from .gallery import *  # noqa: F403
from .inference import *  # noqa: F403
from .invariance import *  # noqa: F403
from .running import *  # noqa: F403
from .training import *  # noqa: F403

__all__ = [name for module in (base, forward, invariance, running, backward, training, conv, family,
                               inference, frameworks, gallery)
           for name in module.__all__]
