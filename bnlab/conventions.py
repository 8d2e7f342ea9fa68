"""The Keras and PyTorch batch-norm conventions, written once, as data.

Introduced in ``notebooks/05_running_statistics.ipynb``.

============================  ======================================  =========================================
                              ``"keras"`` (Keras 3, CS231n, the seed)  ``"pytorch"`` (``torch.nn.BatchNorm1d/2d``)
============================  ======================================  =========================================
update                        ``m * running + (1 - m) * batch``        ``(1 - m) * running + m * batch``
stored running variance       biased (``ddof=0``)                      unbiased (``var * n / (n - 1)``)
default momentum              0.99                                    0.1
default eps                   1e-3                                    1e-5
initial running mean / var    0 / 1                                   0 / 1
feature axis                  -1 (channels last)                      1 (channels first)
frozen layer                  ``trainable=False``: inference mode     ``requires_grad_(False)``: gamma, beta
                              even when training                      frozen, running statistics still update
cumulative average            none                                    ``momentum=None``
============================  ======================================  =========================================

Converting: ``torch_momentum = 1 - keras_momentum``. Both normalize the batch
itself with the biased variance; they differ only in what they remember.
:func:`translate` turns one framework's settings into the other's (and
bnlab's), and :func:`render_translation` prints the three side by side
(notebook 10).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


@dataclass(frozen=True)
class Convention:
    """One framework's batch-norm bookkeeping.

    Attributes
    ----------
    name : str
        ``"keras"`` or ``"pytorch"``.
    framework : str
        Where the convention comes from, for display.
    momentum : float
        Default momentum.
    eps : float
        Default eps.
    momentum_weights_running : bool
        True when momentum multiplies the running value (Keras:
        ``m * running + (1 - m) * batch``), False when it multiplies the batch
        value (PyTorch: ``(1 - m) * running + m * batch``).
    unbiased_running_var : bool
        True when the running variance stores the unbiased batch variance
        ``var * n / (n - 1)``.
    initial_mean, initial_var : float
        Initial running statistics.
    frozen_layer_runs_in_inference : bool
        What ``trainable=False`` means for a :class:`bnlab.BatchNorm`. True
        (Keras 3): a frozen layer runs in inference mode even when called
        with ``training=True`` (running statistics used, never updated).
        False (PyTorch's ``requires_grad_(False)``): only gamma and beta stop
        learning; a training-mode forward still normalizes with the batch
        statistics and updates the running ones.
    """

    name: str
    framework: str
    momentum: float
    eps: float
    momentum_weights_running: bool
    unbiased_running_var: bool
    initial_mean: float = 0.0
    initial_var: float = 1.0
    frozen_layer_runs_in_inference: bool = False

    def batch_weight(self, momentum):
        """The weight a new batch statistic gets in the running average."""
        return 1.0 - momentum if self.momentum_weights_running else momentum

    @property
    def update_formula(self):
        if self.momentum_weights_running:
            return "running = momentum * running + (1 - momentum) * batch"
        return "running = (1 - momentum) * running + momentum * batch"


CONVENTIONS = {
    "keras": Convention(
        name="keras",
        framework="Keras 3 keras.layers.BatchNormalization (also CS231n and the seed walkthrough)",
        momentum=0.99,
        eps=1e-3,
        momentum_weights_running=True,
        unbiased_running_var=False,
        frozen_layer_runs_in_inference=True,
    ),
    "pytorch": Convention(
        name="pytorch",
        framework="PyTorch torch.nn.BatchNorm1d / BatchNorm2d",
        momentum=0.1,
        eps=1e-5,
        momentum_weights_running=False,
        unbiased_running_var=True,
        frozen_layer_runs_in_inference=False,
    ),
}


def get_convention(convention):
    """Return the :class:`Convention` named ``convention`` (``"keras"`` or ``"pytorch"``)."""
    if isinstance(convention, Convention):
        return convention
    if not isinstance(convention, str) or convention.lower() not in CONVENTIONS:
        raise ValueError(
            f"convention must be one of {sorted(CONVENTIONS)}, got {convention!r}"
        )
    return CONVENTIONS[convention.lower()]


# ---------------------------------------------------------------------------
# Translating one framework's BN settings into the other's (notebook 10).
# ---------------------------------------------------------------------------

#: PyTorch's BatchNorm class for each input rank.
_TORCH_LAYERS = {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"}
#: Names of the spatial dimensions for each input rank, for the layout strings.
_SPATIAL = {2: (), 3: ("L",), 4: ("H", "W"), 5: ("D", "H", "W")}


def _round(value):
    """A momentum as a person writes it: 1 - 0.99 is 0.01, not 0.010000000000000009."""
    return float(f"{value:.12g}")


def _layout(ndim, feature_axis):
    """``"(N, C, H, W)"``-style string with the channels at ``feature_axis``."""
    dims = ["N", *_SPATIAL[ndim]]
    dims.insert(feature_axis, "C")
    return "(" + ", ".join(dims) + ")"


def _reduce_axes(ndim, feature_axis):
    """bnlab's ``axis`` argument: every axis but the feature axis."""
    axes = tuple(a for a in range(ndim) if a != feature_axis)
    return axes[0] if len(axes) == 1 else axes


@dataclass(frozen=True)
class Translation:
    """One batch-norm layer's settings in PyTorch, Keras 3 and bnlab, from :func:`translate`.

    Attributes
    ----------
    source : str
        ``"pytorch"`` or ``"keras"``: whose settings were given.
    ndim : int
        Rank of the layer's input (2 for ``(N, C)``, 4 for ``(N, C, H, W)``).
    num_features : int or None
        Channels, for the code (None renders as ``C``).
    pytorch : dict
        ``torch.nn.<layer>(num_features, **rest)`` arguments: ``layer``
        (``"BatchNorm1d"``, ...), ``momentum`` (in PyTorch's meaning: None is
        its cumulative average), ``eps``, ``affine``.
    keras : dict or None
        ``keras.layers.BatchNormalization(**keras)`` arguments: ``axis``,
        ``momentum``, ``epsilon``, ``center``, ``scale``. None when Keras has
        no equivalent (PyTorch's cumulative ``momentum=None``).
    bnlab : dict
        ``{"pytorch": kwargs, "keras": kwargs}``: ``bnlab.BatchNorm(num_features,
        **kwargs)`` reproducing each framework (``convention``, ``momentum``,
        ``eps``, ``axis`` in that framework's layout, ``affine``).
    layouts : dict
        The input layout each framework sees, e.g. ``{"pytorch": "(N, C, H, W)",
        "keras": "(N, H, W, C)"}``.
    keras_axis_same_layout : int
        Keras' ``axis`` for the array PyTorch sees (channels first: 1), for
        when the data is not transposed.
    batch_weight : float or str
        Weight of a new batch in the running average, the same in both
        (``"1/k"`` for the cumulative average).
    stored_variance : dict
        Which batch variance each framework's running variance averages.
    same_training_output, same_running_mean, same_running_var, same_eval_output : bool
        The claims: training-mode outputs and running means agree (to float
        rounding), running variances and therefore evaluation-mode outputs
        do not (PyTorch stores ``var * n / (n - 1)``, Keras ``var``).
        All False when ``keras`` is None.
    notes : tuple of str
        What differs and what to watch, in sentences.

    Introduced in notebook 10 (after training: inference, freezing, folding).
    """

    source: str
    ndim: int
    num_features: int | None
    pytorch: dict
    keras: dict | None
    bnlab: dict
    layouts: dict
    keras_axis_same_layout: int
    batch_weight: float | str
    stored_variance: dict
    same_training_output: bool
    same_running_mean: bool
    same_running_var: bool
    same_eval_output: bool
    notes: tuple

    def code(self):
        """``{"PyTorch": code, "Keras 3": code, "bnlab": code}``: runnable snippets, one argument a line."""
        return _translation_code(self)


def translate(framework, momentum=None, eps=None, *, ndim=2, axis=None, affine=True, num_features=None):
    """Translate one framework's batch-norm settings into the other's (and into bnlab's).

    Parameters
    ----------
    framework : {"pytorch", "keras"}
        Whose settings these are.
    momentum : float in [0, 1], "cumulative" or None, optional
        In ``framework``'s own meaning. None: its default (PyTorch 0.1, Keras
        0.99). ``"cumulative"``: PyTorch's ``momentum=None`` (equal weights,
        the k-th batch weighted ``1 / k``); PyTorch only.
    eps : float > 0, optional
        Default: ``framework``'s (PyTorch 1e-5, Keras 1e-3).
    ndim : {2, 3, 4, 5}, default 2
        Rank of the input: ``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)``,
        ``(N, C, D, H, W)`` in PyTorch's channels-first layout.
    axis : int, optional
        Keras only: the feature axis (default -1, channels last). PyTorch's
        is always 1 (None or 1 are accepted).
    affine : bool, default True
        Learnable gamma and beta (PyTorch ``affine``, Keras ``center`` and ``scale``).
    num_features : int, optional
        Channels, used in the generated code (None shows ``C``).

    Returns
    -------
    Translation
        Both frameworks' constructor arguments, bnlab's for each, the
        layouts, and the claims (``same_running_mean``, ...) with notes.

    Notes
    -----
    A new batch gets weight ``m_torch`` in PyTorch and ``1 - m_keras`` in
    Keras, so the same running average needs

    .. math:: m_{keras} = 1 - m_{torch}

    eps is copied explicitly (the defaults differ, 1e-5 and 1e-3). What no
    setting can match: PyTorch's running variance averages unbiased batch
    variances (``var * n / (n - 1)``), Keras' biased ones, so after the same
    batches the running means agree and the running variances differ; and
    PyTorch's cumulative average (``momentum=None``) has no Keras equivalent.
    The feature axis is 1 in PyTorch (channels first) and -1 in Keras by
    default (channels last): the data is transposed between them, or Keras
    is given ``axis=1``.

    Introduced in notebook 10 (after training: inference, freezing, folding).
    """
    if not isinstance(framework, str) or framework.lower() not in CONVENTIONS:
        raise ValueError(f"framework must be one of {sorted(CONVENTIONS)} (whose settings these are), "
                         f"got {framework!r}")
    source = framework.lower()
    if isinstance(ndim, bool) or not isinstance(ndim, numbers.Integral) or ndim not in _TORCH_LAYERS:
        raise ValueError(f"ndim must be 2, 3, 4 or 5 (the rank of the layer's input), got {ndim!r}")
    if not isinstance(affine, bool):
        raise TypeError(f"affine must be True or False, got {affine!r}")
    if num_features is not None and (isinstance(num_features, bool)
                                     or not isinstance(num_features, numbers.Integral) or num_features < 1):
        raise ValueError(f"num_features must be a positive int or None, got {num_features!r}")
    conv = CONVENTIONS[source]
    other = CONVENTIONS["keras" if source == "pytorch" else "pytorch"]
    # momentum, in the source's meaning, then as a batch weight
    if isinstance(momentum, str):
        if momentum != "cumulative":
            raise ValueError(f"momentum must be a number in [0, 1], None (the default) or \"cumulative\", "
                             f"got {momentum!r}")
        if source == "keras":
            raise ValueError(
                "momentum=\"cumulative\" is PyTorch's momentum=None; Keras has no cumulative average "
                "(its momentum is a fixed number), so there are no Keras settings to translate"
            )
        cumulative = True
    else:
        cumulative = False
        if momentum is None:
            momentum = conv.momentum
        if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
            raise TypeError(f"momentum must be a real number in [0, 1], got {momentum!r}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        momentum = float(momentum)
    if eps is None:
        eps = conv.eps
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a positive real number, got {eps!r}")
    if not eps > 0 or math.isinf(eps):
        raise ValueError(f"eps must be positive and finite, got {eps!r}")
    eps = float(eps)
    # feature axes
    if source == "pytorch":
        if axis not in (None, 1) or isinstance(axis, bool):
            raise ValueError(f"axis: PyTorch's BatchNorm always normalizes per channel on axis 1, got {axis!r}")
        keras_axis = -1
    else:
        keras_axis = -1 if axis is None else axis
        if isinstance(keras_axis, bool) or not isinstance(keras_axis, numbers.Integral):
            raise TypeError(f"axis must be an int (Keras' feature axis), got {axis!r}")
        if not -ndim <= keras_axis < ndim or keras_axis % ndim == 0:
            raise ValueError(f"axis={axis!r} must name a feature axis of a rank-{ndim} input: "
                             f"1..{ndim - 1} or -{ndim - 1}..-1 (axis 0 is the batch)")
    keras_feature = keras_axis % ndim
    layouts = {"pytorch": _layout(ndim, 1), "keras": _layout(ndim, keras_feature)}

    if cumulative:
        torch_momentum, keras_momentum, weight = None, None, "1/k"
    else:
        weight = _round(conv.batch_weight(momentum))
        own = momentum
        translated = _round(other.batch_weight(conv.batch_weight(momentum)))
        torch_momentum, keras_momentum = (own, translated) if source == "pytorch" else (translated, own)
    pytorch = {"layer": _TORCH_LAYERS[ndim], "momentum": torch_momentum, "eps": eps, "affine": affine}
    keras = None if cumulative else {"axis": keras_axis, "momentum": keras_momentum, "epsilon": eps,
                                      "center": affine, "scale": affine}
    bnlab = {
        "pytorch": {"convention": "pytorch", "momentum": "cumulative" if cumulative else torch_momentum,
                    "eps": eps, "axis": _reduce_axes(ndim, 1), "affine": affine},
        "keras": {"convention": "keras", "momentum": "cumulative" if cumulative else keras_momentum,
                  "eps": eps, "axis": _reduce_axes(ndim, keras_feature), "affine": affine},
    }
    notes = []
    if cumulative:
        notes.append(
            "PyTorch's momentum=None keeps a cumulative average (the k-th batch weighted 1/k). Keras has "
            "no equivalent: its momentum is a fixed number. bnlab has momentum=\"cumulative\" in both "
            "conventions.")
    else:
        notes.append(
            f"momentum: PyTorch's is the new batch's weight, Keras' the old running value's: "
            f"keras = 1 - torch (torch {torch_momentum:g} <-> keras {keras_momentum:g}); each new batch "
            f"gets weight {weight:g}.")
    notes.append(
        f"eps: the defaults differ (PyTorch 1e-5, Keras 1e-3), so eps={eps:g} is written out for both.")
    notes.append(
        "running variance: PyTorch stores the unbiased batch variance var * n / (n - 1) (n values per "
        "channel), Keras the biased var. Training outputs and running means agree; running variances, "
        "and so evaluation outputs, differ a little (most for small batches).")
    if ndim > 2 and keras_feature != 1:
        torch_dims, keras_dims = (layouts[k][1:-1].split(", ") for k in ("pytorch", "keras"))
        to_keras = tuple(torch_dims.index(d) for d in keras_dims)
        to_torch = tuple(keras_dims.index(d) for d in torch_dims)
        notes.append(
            f"layout: PyTorch normalizes axis 1, channels first {layouts['pytorch']}; Keras' axis={keras_axis} "
            f"expects {layouts['keras']}. Transpose x.transpose{to_keras} for Keras, x.transpose{to_torch} "
            "for PyTorch (NumPy; permute in PyTorch), or keep PyTorch's layout and give Keras axis=1.")
    elif ndim > 2:
        notes.append(f"layout: both see channels first {layouts['pytorch']} (Keras with axis=1).")
    if not affine:
        notes.append("affine=False in PyTorch is center=False, scale=False in Keras (no gamma, no beta).")
    notes.append(
        "a batch with one value per channel: PyTorch refuses it in training mode, Keras accepts it "
        "(output = beta), bnlab refuses it.")
    same = keras is not None
    return Translation(
        source=source, ndim=ndim, num_features=num_features, pytorch=pytorch, keras=keras, bnlab=bnlab,
        layouts=layouts, keras_axis_same_layout=1, batch_weight=weight,
        stored_variance={"pytorch": "unbiased: var * n / (n - 1)", "keras": "biased: var",
                         "bnlab": "the convention's: pytorch unbiased, keras biased"},
        same_training_output=same, same_running_mean=same, same_running_var=False, same_eval_output=False,
        notes=tuple(notes),
    )


def _literal(value):
    """Python source for a setting: strings in double quotes, numbers and tuples as repr."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _call(head, args):
    """``head(`` then one argument per line, then ``)``."""
    return [f"{head}("] + [f"    {arg}," for arg in args] + [")"]


def _translation_code(t):
    features = "C" if t.num_features is None else str(t.num_features)
    torch_args = [features, f"momentum={_literal(t.pytorch['momentum'])}", f"eps={_literal(t.pytorch['eps'])}"]
    if not t.pytorch["affine"]:
        torch_args.append("affine=False")
    torch_lines = ["import torch", *_call(f"bn = torch.nn.{t.pytorch['layer']}", torch_args),
                   f"# input {t.layouts['pytorch']}"]
    if t.pytorch["momentum"] is None:
        torch_lines.insert(-1, "# momentum=None: cumulative average")
    if t.keras is None:
        keras_lines = ["import keras", "# no equivalent: Keras' momentum", "# is a fixed number; it has no",
                       "# cumulative average"]
    else:
        keras_args = [f"{key}={_literal(t.keras[key])}" for key in ("axis", "momentum", "epsilon")]
        if not t.keras["center"]:
            keras_args += ["center=False", "scale=False"]
        keras_lines = ["import keras", *_call("bn = keras.layers.BatchNormalization", keras_args),
                       f"# input {t.layouts['keras']}"]
    bnlab_lines = ["import bnlab"]
    for name, label in (("pytorch", "PyTorch's"), ("keras", "Keras'")):
        kwargs = t.bnlab[name]
        args = [features] + [f"{key}={_literal(kwargs[key])}" for key in ("convention", "momentum", "eps", "axis")]
        if not kwargs["affine"]:
            args.append("affine=False")
        bnlab_lines += _call(f"bn_{name} = bnlab.BatchNorm", args)
        bnlab_lines.append(f"# {label} bookkeeping, input {t.layouts[name]}")
    return {"PyTorch": "\n".join(torch_lines), "Keras 3": "\n".join(keras_lines),
            "bnlab": "\n".join(bnlab_lines)}


def render_translation(translation, *, columns=True, gap=4):
    """PyTorch, Keras 3 and bnlab code for the same layer, side by side, as text.

    Parameters
    ----------
    translation : Translation
        From :func:`translate`.
    columns : bool, default True
        True: three columns under their headers. False: one block after the
        other (narrow screens).
    gap : int, default 4
        Spaces between columns.

    Returns
    -------
    str
        Plain text (print it); each snippet runs as it stands where its
        framework is installed, and the notes follow.

    Notes
    -----
    The numbers come from :func:`translate`, which applies
    ``m_keras = 1 - m_torch`` and copies eps explicitly; nothing is converted by hand.

    Introduced in notebook 10 (after training: inference, freezing, folding).
    """
    if not isinstance(translation, Translation):
        raise TypeError(f"translation must come from bnlab.conventions.translate, got "
                        f"{type(translation).__name__}")
    if isinstance(gap, bool) or not isinstance(gap, int) or gap < 1:
        raise ValueError(f"gap must be a positive int (spaces between columns), got {gap!r}")
    code = translation.code()
    blocks = [[f"# {name}", *text.splitlines()] for name, text in code.items()]
    notes = "\n".join(f"- {note}" for note in translation.notes)
    if not columns:
        return "\n\n".join("\n".join(block) for block in blocks) + "\n\nNotes\n" + notes
    widths = [max(len(line) for line in block) for block in blocks]
    height = max(len(block) for block in blocks)
    rows = []
    for i in range(height):
        cells = [(block[i] if i < len(block) else "").ljust(width) for block, width in zip(blocks, widths)]
        rows.append((" " * gap).join(cells).rstrip())
    return "\n".join(rows) + "\n\nNotes\n" + notes
