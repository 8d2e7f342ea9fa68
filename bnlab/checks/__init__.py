"""Exercise checkers: a learner's function or value in, friendly feedback out.

Every ``check_...`` function returns a :class:`Feedback`: what is right, what
is off, and a hint. It never raises at the learner: an exception inside the
learner's function is caught and reported as feedback.

``feedback`` holds what every checker shares (:class:`Feedback`,
:func:`call_safely`, :func:`compare_arrays`); each topic module holds the
checkers of the notebooks it is named after (``forward`` 01-03, ``invariance``
04, ``running`` 05, ``backward`` 06, ``training`` 07, ``conv`` 08, ``family``
09, ``inference`` 10, ``frameworks`` 11). Every public name is available here,
as ``bnlab.checks.<name>``.
"""

from . import (
    backward,
    conv,
    family,
    feedback,
    forward,
    frameworks,
    inference,
    invariance,
    running,
    training,
)
from .backward import *  # noqa: F403
from .conv import *  # noqa: F403
from .family import *  # noqa: F403
from .feedback import *  # noqa: F403
from .forward import *  # noqa: F403
from .frameworks import *  # noqa: F403
from .inference import *  # noqa: F403
from .invariance import *  # noqa: F403
from .running import *  # noqa: F403
from .training import *  # noqa: F403

__all__ = [name for module in (feedback, forward, invariance, running, backward, training, conv,
                               family, inference, frameworks)
           for name in module.__all__]
