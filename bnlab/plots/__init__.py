"""Figure builders on ``matplotlib.figure.Figure`` (never pyplot's global state).

``theme`` holds the look every figure shares (the Okabe-Ito palette, the
projector-friendly style, figure making, axes helpers), ``render`` turns
figures into PNG bytes, and each topic module holds the figures of the
notebooks it is named after:

==============  =====================================================
``forward``     01-03: batch statistics, normalization, scale, shift
``invariance``  04: shift/scale invariance
``running``     05: running statistics, train versus eval
``backward``    06: the computational graph, batch coupling
``training``    07: the BN paper's Figure 1 on the digits
``conv``        08: feature maps, BN per channel, a small CNN
``family``      09: LN, GN, IN, RMSNorm; the batch-size experiment
``inference``   10: BN at inference time: precise BN, folding, AdaBN
``frameworks``  11: PyTorch and Keras, the translator, the classic bugs
==============  =====================================================

Builders take arrays and an optional ``ax``, draw, and return what they drew
(a dict of artists) so an explorer can update them in place. Every public
name is available here, as ``bnlab.plots.<name>``.
"""

from . import (
    backward, conv, family, forward, frameworks, inference, invariance, render, running, theme,
    training,
)
from .backward import *  # noqa: F403
from .conv import *  # noqa: F403
from .family import *  # noqa: F403
from .forward import *  # noqa: F403
from .frameworks import *  # noqa: F403
from .inference import *  # noqa: F403
from .invariance import *  # noqa: F403
from .render import *  # noqa: F403
from .running import *  # noqa: F403
from .theme import *  # noqa: F403
from .training import *  # noqa: F403

__all__ = [name for module in (theme, render, forward, invariance, running, backward, training, conv,
                               family, inference, frameworks)
           for name in module.__all__]
