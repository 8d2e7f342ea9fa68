"""Layers: :class:`BatchNorm` (train/eval, Keras or PyTorch bookkeeping), the rest of the
normalization family (:class:`LayerNorm`, :class:`GroupNorm`, :class:`RMSNorm`) and what a
small network needs (:class:`Dense`, :class:`Conv2D`, activations, pooling, a loss,
:class:`Sequential`, :class:`SGD`).

Each layer has ``forward(x, training=...)`` and ``backward(dout)``; training
versus inference is always an explicit argument.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np

from . import _validate as v
from .conventions import get_convention
from . import core
from .core import batchnorm_backward

__all__ = [
    "BatchNorm",
    "LayerNorm",
    "GroupNorm",
    "RMSNorm",
    "Conv2D",
    "GlobalAvgPool2D",
    "Flatten",
    "Dense",
    "Sigmoid",
    "ReLU",
    "ShiftScaleNoise",
    "softmax_cross_entropy",
    "SoftmaxCrossEntropy",
    "Sequential",
    "SGD",
    "layer_params",
    "as_rng",
    "INIT_SCALES",
    "fold_model",
]


class BatchNorm:
    """Batch normalization layer with running statistics.

    Parameters
    ----------
    num_features : int or tuple of int
        Feature shape: ``D`` for ``(N, D)`` input, ``C`` for ``(N, C, H, W)``.
    convention : {"keras", "pytorch"}, default "keras"
        How running statistics are kept (see :mod:`bnlab.conventions`).
    eps : float, optional
        Default: the convention's (keras 1e-3, pytorch 1e-5).
    momentum : float in [0, 1], "cumulative" or None, optional
        None: the convention's default (keras 0.99, pytorch 0.1). A number:
        in the convention's meaning. ``"cumulative"``: an equal-weight average
        of every training batch so far, PyTorch's ``momentum=None``: the
        k-th training batch gets weight ``1 / k`` (the first one replaces the
        initial values), in either convention; the stored variance still
        follows the convention (keras biased, pytorch unbiased).
    axis : int or tuple of int, default 0
        Axes reduced over: 0 for (N, D), (0, 2, 3) for (N, C, H, W).
    dtype : numpy dtype, default float64
        dtype of gamma, beta and the running statistics.
    affine : bool, default True
        False: no learnable scale and shift (``gamma``, ``beta``, ``dgamma``
        and ``dbeta`` are None), as PyTorch's ``affine=False`` and Keras'
        ``center=False, scale=False``.
    track_running_stats : bool, default True
        False: no running statistics (``running_mean``, ``running_var`` and
        ``num_batches_tracked`` are None) and evaluation normalizes with the
        batch's own statistics too, as PyTorch's ``track_running_stats=False``;
        so a batch of one value per feature is refused in evaluation as well.

    Attributes
    ----------
    gamma, beta : ndarray, shape ``num_features``, or None
        Learnable scale (starts at 1) and shift (starts at 0); None without affine.
    running_mean, running_var : ndarray, shape ``num_features``, or None
        Start at the convention's initial values (0 and 1); None without
        ``track_running_stats``.
    dgamma, dbeta : ndarray or None
        Set by :meth:`backward` (they stay None without affine, or while the
        layer is frozen).
    num_batches_tracked : int or None
        Training forward passes that updated the running statistics.
    trainable : bool
        Default True. False freezes the layer, with the convention's meaning
        (:attr:`Convention.frozen_layer_runs_in_inference`): keras (Keras 3's
        ``trainable=False``) runs ``forward(z, training=True)`` in inference
        mode and leaves the running statistics alone; pytorch
        (``requires_grad_(False)`` on weight and bias) keeps normalizing with
        the batch and updating the running statistics in training mode, only
        gamma and beta stop learning. Either way :func:`layer_params` lists
        nothing for a frozen layer, so :class:`SGD` changes nothing in it.

    Notes
    -----
    ``forward(z, training=True)`` normalizes with the batch statistics and
    updates the running ones, like ``torch.nn.BatchNorm1d/2d`` in ``train()``
    mode and ``keras.layers.BatchNormalization`` called with ``training=True``.
    ``forward(z, training=False)`` normalizes with the running statistics and
    changes nothing, like ``eval()`` / ``training=False``:

    .. math:: y = \\gamma \\frac{z - \\mu_{run}}{\\sqrt{\\sigma^2_{run} + \\epsilon}} + \\beta

    With ``momentum="cumulative"`` the k-th update is
    ``running = (1 - 1/k) * running + (1/k) * batch``, so after K batches
    ``running`` is the plain average of the K batch statistics.

    Introduced in ``notebooks/05_running_statistics.ipynb``; ``momentum="cumulative"``,
    ``affine``, ``track_running_stats``, :meth:`reset_running_stats` and
    ``trainable`` in notebook 10 (after training: inference, freezing, folding).
    """

    def __init__(self, num_features, convention="keras", eps=None, momentum=None, axis=0,
                 dtype=np.float64, affine=True, track_running_stats=True):
        self.convention = get_convention(convention)
        def _is_int(value):
            return isinstance(value, numbers.Integral) and not isinstance(value, bool)

        if _is_int(num_features):
            shape = (int(num_features),)
        else:
            # a string is iterable ("12" would become (1, 2)) and int(3.5) is 3: refuse both
            try:
                shape = None if isinstance(num_features, (str, bytes)) else tuple(num_features)
            except TypeError:
                shape = None
            if shape is None or not all(_is_int(s) for s in shape):
                raise TypeError(f"num_features must be a positive int or a tuple of them, got {num_features!r}")
            shape = tuple(int(s) for s in shape)
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"num_features must be positive, got {num_features!r}")
        self.feature_shape = shape
        self.eps = v.check_eps(self.convention.eps if eps is None else eps)
        self.momentum = self._check_momentum(momentum)
        if _is_int(axis):
            self.axis = int(axis)
        elif isinstance(axis, (tuple, list, np.ndarray)):
            self.axis = tuple(axis)  # normalize_axis below checks the elements
        else:  # a bool (True would silently mean axis 1), a float, a string, ...
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
        v.normalize_axis(self.axis, len(shape) + (1 if isinstance(self.axis, int) else len(self.axis)))
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"dtype must be a floating dtype, got {self.dtype}")
        for name, value in (("affine", affine), ("track_running_stats", track_running_stats)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {value!r}")
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.gamma = np.ones(shape, self.dtype) if self.affine else None
        self.beta = np.zeros(shape, self.dtype) if self.affine else None
        self.running_mean = self.running_var = self.num_batches_tracked = None
        self.reset_running_stats()
        self.dgamma = None
        self.dbeta = None
        self._trainable = True
        self._cache = None

    def _check_momentum(self, momentum):
        if momentum is None:
            return self.convention.momentum
        if isinstance(momentum, str):
            if momentum != "cumulative":
                raise ValueError(
                    f"momentum must be a number in [0, 1], None (the convention's default, "
                    f"{self.convention.momentum:g}) or \"cumulative\" (equal weights for every batch, "
                    f"PyTorch's momentum=None), got {momentum!r}"
                )
            return momentum
        return v.check_momentum(momentum)

    @property
    def trainable(self):
        """Whether gamma and beta learn (see the class docstring for what False means per convention)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"trainable must be True or False, got {value!r}")
        self._trainable = bool(value)

    @property
    def param_attrs(self):
        """``(param, grad)`` attribute names :func:`layer_params` lists: none while frozen."""
        return (("gamma", "dgamma"), ("beta", "dbeta")) if self._trainable else ()

    def reset_running_stats(self):
        """Running statistics back to the convention's initial values, ``num_batches_tracked`` to 0.

        Like PyTorch's ``reset_running_stats``: gamma and beta are kept, and a
        layer without ``track_running_stats`` has nothing to reset. With
        ``momentum="cumulative"`` the next training batch then replaces the
        running statistics.

        Introduced in notebook 10 (after training: inference, freezing, folding).
        """
        if not self.track_running_stats:
            return
        self.running_mean = np.full(self.feature_shape, self.convention.initial_mean, self.dtype)
        self.running_var = np.full(self.feature_shape, self.convention.initial_var, self.dtype)
        self.num_batches_tracked = 0

    def __repr__(self):
        momentum = repr(self.momentum) if isinstance(self.momentum, str) else f"{self.momentum:g}"
        extras = "".join(f", {name}=False" for name, value in (
            ("affine", self.affine), ("track_running_stats", self.track_running_stats),
            ("trainable", self._trainable)) if not value)
        return (f"BatchNorm({self.feature_shape if len(self.feature_shape) > 1 else self.feature_shape[0]}, "
                f"convention={self.convention.name!r}, eps={self.eps:g}, momentum={momentum}, "
                f"axis={self.axis!r}{extras})")

    def _batch_weight(self):
        """Momentum (in the convention's meaning) of the update about to happen."""
        if self.momentum == "cumulative":
            # the k-th batch gets weight 1 / k (num_batches_tracked already counts it)
            return self.convention.batch_weight(1.0 / self.num_batches_tracked)
        return self.momentum

    def forward(self, z, *, training):
        """Normalize ``z``.

        Parameters
        ----------
        z : ndarray, shape (N, *num_features) or (N, C, H, W)
        training : bool
            True: batch statistics, running statistics updated (needs at least
            two values per feature). False: running statistics, nothing updated.
            A frozen keras-convention layer (``trainable=False``) treats True
            as False; a layer without ``track_running_stats`` uses the batch
            statistics in both modes and updates nothing.

        Returns
        -------
        y : ndarray, same shape and dtype as ``z``
        """
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be True or False, got {training!r}")
        z = v.as_float_array("z", z)
        axes = v.normalize_axis(self.axis, z.ndim)
        features = v.feature_shape(z.shape, axes)
        if features != self.feature_shape:
            raise ValueError(f"z's feature dimensions must have shape {self.feature_shape} (num_features of "
                             f"this layer, with axis={self.axis!r}), got shape {features}")
        if training and not self._trainable and self.convention.frozen_layer_runs_in_inference:
            training = False  # Keras 3: a frozen BN layer runs in inference mode
        if training or not self.track_running_stats:
            # z is checked above and the layer's own settings when it was built: only the
            # parameters (which training or a learner may have changed) are checked here.
            if training:
                n = v.check_batch("z", z, axes, training=True)
            else:
                n = v.check_batch("z", z, axes, training=False)
                if n < 2:
                    raise ValueError(
                        f"z of shape {z.shape} has only one value per feature over axis {axes}: this "
                        "layer has track_running_stats=False, so evaluation normalizes with the batch's "
                        "own statistics too (as PyTorch does) and there is no variance to estimate. "
                        "Use a batch of at least 2, or a layer that tracks running statistics"
                    )
            bshape = v.broadcast_shape(z.shape, axes)
            if self.affine:
                gamma = self._parameter("gamma", self.gamma, z.dtype).reshape(bshape)
                beta = self._parameter("beta", self.beta, z.dtype).reshape(bshape)
            else:
                gamma, beta = np.ones((), z.dtype), np.zeros((), z.dtype)
            y, cache = core._forward(z, gamma, beta, self.eps, axes, n)
            if training and self.track_running_stats:
                self.num_batches_tracked += 1
                self.running_mean, self.running_var = core._running_update(
                    self.convention, self._batch_weight(), self.running_mean, self.running_var,
                    cache["mean"].reshape(self.feature_shape), cache["var"].reshape(self.feature_shape), n,
                )
            self._cache = ("train", cache)
            return y
        v.check_batch("z", z, axes, training=False)
        v.check_finite("z", z)
        bshape = v.broadcast_shape(z.shape, axes)
        inv_std = (1.0 / np.sqrt(self.running_var + self.eps)).astype(z.dtype).reshape(bshape)
        z_hat = (z - self.running_mean.astype(z.dtype).reshape(bshape)) * inv_std
        if not self.affine:
            self._cache = ("eval", {"z_hat": z_hat, "gamma": np.ones((), z.dtype), "inv_std": inv_std,
                                    "axis": axes})
            return z_hat
        gamma = self.gamma.astype(z.dtype).reshape(bshape)
        self._cache = ("eval", {"z_hat": z_hat, "gamma": gamma, "inv_std": inv_std, "axis": axes})
        return z_hat * gamma + self.beta.astype(z.dtype).reshape(bshape)

    def _parameter(self, name, value, dtype):
        array = v.as_float_array(name, value, dtype=dtype)
        v.check_shape(name, array, self.feature_shape, "num_features of this layer")
        v.check_finite(name, array)
        return array

    def backward(self, dy):
        """Gradient with respect to the last forward's input; sets ``dgamma`` and ``dbeta``.

        After a training forward this is the closed-form batch-norm backward
        (every sample's gradient depends on the whole batch). After an
        evaluation forward BN is a fixed per-feature affine map, so
        ``dz = dy * gamma / sqrt(running_var + eps)``. ``dgamma`` and
        ``dbeta`` stay None without affine and are set to None while the
        layer is frozen (``trainable=False``).

        Parameters
        ----------
        dy : ndarray, same shape as the last forward's ``z``

        Returns
        -------
        dz : ndarray, same shape as ``dy``
        """
        if self._cache is None:
            raise RuntimeError("call forward(z, training=...) before backward")
        mode, cache = self._cache
        if mode == "train":
            dz, dgamma, dbeta = batchnorm_backward(dy, cache)
        else:
            z_hat, axes = cache["z_hat"], cache["axis"]
            dy = v.as_float_array("dy", dy, dtype=z_hat.dtype)
            v.check_shape("dy", dy, z_hat.shape, "the shape of the last forward's z")
            v.check_finite("dy", dy)
            dz = dy * (cache["gamma"] * cache["inv_std"])
            if not (self.affine and self._trainable):
                dgamma = dbeta = None
            else:
                dgamma = (dy * z_hat).sum(axis=axes)
                dbeta = dy.sum(axis=axes)
        if self.affine and self._trainable:
            self.dgamma = dgamma.reshape(self.feature_shape).astype(self.dtype)
            self.dbeta = dbeta.reshape(self.feature_shape).astype(self.dtype)
        else:
            self.dgamma = self.dbeta = None
        return dz


# ---------------------------------------------------------------------------
# The few pieces a small network needs for the training experiments
# (bnlab.train): a dense layer, activations, a noise layer, a loss, a
# container and plain SGD. Same conventions as BatchNorm: ``forward(x,
# training=...)`` caches what ``backward(dout)`` needs, ``backward`` returns
# the input gradient and stores the parameter gradients on the layer.
#
# Unlike the batch-norm functions these layers do not reject NaN or infinity
# in the activations: a diverging training run must be able to produce a NaN
# loss, which bnlab.train detects and reports.
# ---------------------------------------------------------------------------

#: Initialisations ``Dense`` accepts by name, as functions of fan-in: the std of N(0, std^2).
INIT_SCALES = {
    "he": lambda fan_in: np.sqrt(2.0 / fan_in),      # He et al. 2015, for ReLU
    "xavier": lambda fan_in: np.sqrt(1.0 / fan_in),  # LeCun / Glorot-style, for sigmoid and tanh
}


def _check_training(training):
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be True or False, got {training!r}")


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    return dtype


def as_rng(rng, name="rng"):
    """Return ``rng`` as a ``numpy.random.Generator``.

    A Generator is returned as is (so draws continue its stream), an int
    seeds a new one, ``None`` gives an unseeded one. Anything else is a
    ``TypeError``.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"{name} as a seed must be a non-negative int, got {rng!r}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{name} must be a numpy.random.Generator or an int seed, e.g. np.random.default_rng(0), "
        f"got {type(rng).__name__}"
    )


def _check_input(name, x, features, dtype, what):
    """``x`` as a 2-D array of ``dtype`` with ``features`` columns."""
    x = v.as_float_array(name, x).astype(dtype, copy=False)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D, shape (N, {features}), got shape {x.shape}")
    if x.shape[1] != features:
        raise ValueError(f"{name} must have {features} columns ({what}), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); a batch needs at least one sample")
    return x


def _check_dout(dout, shape, dtype):
    dout = v.as_float_array("dout", dout).astype(dtype, copy=False)
    v.check_shape("dout", dout, shape, "the shape of the last forward's output")
    return dout


class Dense:
    """Fully connected layer ``out = x @ W + b``.

    Parameters
    ----------
    in_features, out_features : int
        ``D`` and ``M``.
    init_scale : float or {"he", "xavier"}, default 0.1
        Standard deviation ``s`` of the initial weights, ``W ~ N(0, s^2)``.
        ``"he"`` is ``sqrt(2 / D)`` (for ReLU), ``"xavier"`` ``sqrt(1 / D)``.
    bias : bool, default True
        Whether the layer has a bias. A bias right before batch normalization
        is redundant (BN subtracts the mean; its beta takes the bias's role),
        so :func:`bnlab.train.build_mlp` leaves it out there.
    rng : numpy.random.Generator or int, optional
        Source of the initial weights (an int seeds a new generator; ``None``
        is unseeded).
    dtype : numpy dtype, default float64

    Attributes
    ----------
    W : ndarray, shape (D, M)
    b : ndarray, shape (M,), or None without bias
        Starts at 0.
    dW, db : ndarray or None
        Set by :meth:`backward`.

    Notes
    -----
    .. math:: \\text{out} = x W + b, \\qquad
              dx = d\\text{out}\\, W^T, \\quad dW = x^T d\\text{out}, \\quad
              db = \\sum_i d\\text{out}_i

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """

    def __init__(self, in_features, out_features, init_scale=0.1, *, bias=True, rng=None,
                 dtype=np.float64):
        self.in_features = _check_positive_int("in_features", in_features)
        self.out_features = _check_positive_int("out_features", out_features)
        self.dtype = _check_dtype(dtype)
        self.init_scale = init_scale
        std = self._init_std(init_scale, self.in_features)
        rng = as_rng(rng)
        self.W = (std * rng.standard_normal((self.in_features, self.out_features))).astype(self.dtype)
        self.b = np.zeros(self.out_features, self.dtype) if bias else None
        self.dW = None
        self.db = None
        self._x = None

    @staticmethod
    def _init_std(init_scale, fan_in):
        if isinstance(init_scale, str):
            if init_scale not in INIT_SCALES:
                raise ValueError(
                    f"init_scale must be a positive number or one of {sorted(INIT_SCALES)}, "
                    f"got {init_scale!r}"
                )
            return float(INIT_SCALES[init_scale](fan_in))
        if isinstance(init_scale, bool) or not isinstance(init_scale, numbers.Real):
            raise TypeError(
                f"init_scale must be a positive number or one of {sorted(INIT_SCALES)}, got {init_scale!r}"
            )
        if not np.isfinite(init_scale) or init_scale <= 0:
            raise ValueError(f"init_scale (std of the initial weights) must be positive, got {init_scale!r}")
        return float(init_scale)

    def __repr__(self):
        return (f"Dense({self.in_features}, {self.out_features}, init_scale={self.init_scale!r}, "
                f"bias={self.b is not None})")

    param_attrs = (("W", "dW"), ("b", "db"))

    def forward(self, x, *, training):
        """Affine map of a batch.

        Parameters
        ----------
        x : ndarray, shape (N, D)
            Cast to the layer's dtype; kept by reference for the backward pass.
        training : bool
            Accepted for a uniform interface; a dense layer behaves the same.

        Returns
        -------
        out : ndarray, shape (N, M)
        """
        _check_training(training)
        x = _check_input("x", x, self.in_features, self.dtype, "in_features of this layer")
        self._x = x
        out = x @ self.W
        if self.b is not None:
            out += self.b
        return out

    def backward(self, dout):
        """Gradient with respect to the last forward's ``x``; sets ``dW`` and ``db``.

        Parameters
        ----------
        dout : ndarray, shape (N, M)

        Returns
        -------
        dx : ndarray, shape (N, D)
        """
        if self._x is None:
            raise RuntimeError("call forward(x, training=...) before backward")
        x = self._x
        dout = _check_dout(dout, (x.shape[0], self.out_features), self.dtype)
        self.dW = x.T @ dout
        if self.b is not None:
            self.db = dout.sum(axis=0)
        return dout @ self.W.T


class Sigmoid:
    """Logistic sigmoid, element-wise.

    Notes
    -----
    .. math:: \\sigma(x) = \\frac{1}{1 + e^{-x}} = \\tfrac12\\big(1 + \\tanh(x/2)\\big),
              \\qquad \\frac{d\\sigma}{dx} = \\sigma(x)\\,(1 - \\sigma(x))

    Computed with the tanh form, which never overflows (no warnings for
    large ``|x|``). The sigmoid saturates for ``|x|`` beyond about 5: its
    derivative is then below 0.007, the vanishing gradient BN was designed
    to avoid.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """

    param_attrs = ()

    def __init__(self):
        self._out = None

    def __repr__(self):
        return "Sigmoid()"

    def forward(self, x, *, training):
        """``x`` : ndarray, any shape -> ``out`` : same shape. ``training`` changes nothing."""
        _check_training(training)
        x = v.as_float_array("x", x)
        out = np.tanh(0.5 * x)
        out *= 0.5
        out += 0.5
        self._out = out
        return out

    def backward(self, dout):
        """``dout`` : ndarray, shape of the last output -> ``dx`` : same shape."""
        if self._out is None:
            raise RuntimeError("call forward(x, training=...) before backward")
        out = self._out
        dout = _check_dout(dout, out.shape, out.dtype)
        return dout * out * (1.0 - out)


class ReLU:
    """Rectified linear unit, element-wise.

    Notes
    -----
    .. math:: \\text{relu}(x) = \\max(x, 0), \\qquad
              \\frac{d\\,\\text{relu}}{dx} = [x > 0]

    (the derivative at exactly 0 is taken as 0).

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """

    param_attrs = ()

    def __init__(self):
        self._mask = None

    def __repr__(self):
        return "ReLU()"

    def forward(self, x, *, training):
        """``x`` : ndarray, any shape -> ``out`` : same shape. ``training`` changes nothing."""
        _check_training(training)
        x = v.as_float_array("x", x)
        self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, dout):
        """``dout`` : ndarray, shape of the last output -> ``dx`` : same shape."""
        if self._mask is None:
            raise RuntimeError("call forward(x, training=...) before backward")
        dout = v.as_float_array("dout", dout)
        v.check_shape("dout", dout, self._mask.shape, "the shape of the last forward's output")
        return dout * self._mask


class ShiftScaleNoise:
    """Random per-unit scale and shift, drawn afresh at every training forward.

    Put after a :class:`BatchNorm` layer it gives Santurkar et al.'s (2018)
    "noisy BatchNorm": each step the layer's output distribution gets a
    random non-zero mean and non-unit variance, so the next layer's input
    distribution keeps moving (deliberate internal covariate shift). Their
    finding, which this layer lets a learner reproduce: training stays about
    as fast as with plain BN.

    Parameters
    ----------
    num_features : int
        ``D``.
    shift : float, default 1.0
        Per-unit shifts are drawn from ``U(-shift, shift)``. 0 disables them.
    scale : float >= 1, default 2.0
        Per-unit scales are drawn log-uniformly from ``[1 / scale, scale]``
        (median 1). 1 disables them.
    rng : numpy.random.Generator or int, optional
        Source of the draws.

    Attributes
    ----------
    last_scale, last_shift : ndarray, shape (D,) or None
        The draws of the last training forward.

    Notes
    -----
    In training, with fresh draws each call,

    .. math:: y_{ij} = x_{ij}\\, s_j + m_j, \\qquad
              m_j \\sim U(-\\text{shift}, \\text{shift}), \\quad
              \\log s_j \\sim U(-\\log\\text{scale}, \\log\\text{scale}),
              \\qquad dx = dy\\, s

    In evaluation the layer is the identity (the noise is centred: median
    scale 1, mean shift 0). Santurkar et al. perturb each sample with i.i.d.
    noise whose non-zero mean and non-unit variance change every step; this
    layer keeps the part that matters for the argument, a per-unit
    distribution shift that changes every step, and is deterministic given
    its generator.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """

    param_attrs = ()

    def __init__(self, num_features, shift=1.0, scale=2.0, *, rng=None):
        self.num_features = _check_positive_int("num_features", num_features)
        for name, value in (("shift", shift), ("scale", scale)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise TypeError(f"{name} must be a finite real number, got {value!r}")
        if shift < 0:
            raise ValueError(f"shift (half-width of the uniform shift) must be >= 0, got {shift!r}")
        if scale < 1:
            raise ValueError(f"scale (scales are drawn in [1/scale, scale]) must be >= 1, got {scale!r}")
        self.shift = float(shift)
        self.scale = float(scale)
        self.rng = as_rng(rng)
        self.last_scale = None
        self.last_shift = None
        self._s = None
        self._forwarded = False

    def __repr__(self):
        return f"ShiftScaleNoise({self.num_features}, shift={self.shift:g}, scale={self.scale:g})"

    def forward(self, x, *, training):
        """``x`` : ndarray, shape (N, D) -> ``y`` : same shape; noisy in training, identity in evaluation."""
        _check_training(training)
        x = v.as_float_array("x", x)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"x must have shape (N, {self.num_features}), got shape {x.shape}")
        self._forwarded = True
        if not training:
            self._s = None
            return x
        log_scale = np.log(self.scale)
        s = np.exp(self.rng.uniform(-log_scale, log_scale, self.num_features))
        m = self.rng.uniform(-self.shift, self.shift, self.num_features)
        self.last_scale, self.last_shift = s, m
        self._s = s.astype(x.dtype)
        return x * self._s + m.astype(x.dtype)

    def backward(self, dout):
        """``dout`` : ndarray, shape (N, D) -> ``dx`` : same shape."""
        if not self._forwarded:
            raise RuntimeError("call forward(x, training=...) before backward")
        dout = v.as_float_array("dout", dout)
        if dout.ndim != 2 or dout.shape[1] != self.num_features:
            raise ValueError(f"dout must have shape (N, {self.num_features}), got shape {dout.shape}")
        return dout if self._s is None else dout * self._s


def _check_labels(labels, n, num_classes):
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) (one class index per row of scores), got shape {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must be class indices in 0..{num_classes - 1}, got values from {labels.min()} to {labels.max()}"
        )
    return labels


def softmax_cross_entropy(scores, labels):
    """Mean softmax cross-entropy loss and its gradient (CS231n's ``softmax_loss``).

    Parameters
    ----------
    scores : ndarray, shape (N, C)
        Unnormalised class scores (logits).
    labels : ndarray of int, shape (N,)
        Class indices in ``0..C-1``.

    Returns
    -------
    loss : float
        NaN if ``scores`` holds NaN or infinity (a diverged network).
    dscores : ndarray, shape (N, C)

    Notes
    -----
    With :math:`p = \\mathrm{softmax}(s)`, computed stably by subtracting each
    row's maximum (:math:`\\log p_{ik} = s_{ik} - \\max_k s_{ik} - \\log\\sum_k
    e^{s_{ik} - \\max_k s_{ik}}`):

    .. math:: L = -\\frac1N \\sum_i \\log p_{i, y_i}, \\qquad
              \\frac{\\partial L}{\\partial s} = \\frac1N\\,(p - \\text{onehot}(y))

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    scores = v.as_float_array("scores", scores)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"scores must be 2-D, shape (N, C), got shape {scores.shape}")
    n, num_classes = scores.shape
    if n == 0:
        raise ValueError("scores is empty; the loss needs at least one sample")
    labels = _check_labels(labels, n, num_classes)
    rows = np.arange(n)
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1)
    loss = float(np.log(sum_exp).mean() - shifted[rows, labels].mean())
    dscores = exp
    dscores /= sum_exp[:, None]
    dscores[rows, labels] -= 1.0
    dscores /= n
    return loss, dscores


class SoftmaxCrossEntropy:
    """The loss as a layer: ``forward(scores, labels) -> loss``, ``backward() -> dscores``.

    See :func:`softmax_cross_entropy` for the equations; ``loss`` holds the
    last forward's value.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """

    def __init__(self):
        self._dscores = None
        self.loss = None

    def __repr__(self):
        return "SoftmaxCrossEntropy()"

    def forward(self, scores, labels):
        """Mean cross-entropy of ``scores`` (N, C) against ``labels`` (N,); returns a float."""
        self.loss, self._dscores = softmax_cross_entropy(scores, labels)
        return self.loss

    def backward(self):
        """Gradient of the last loss with respect to ``scores``, shape (N, C)."""
        if self._dscores is None:
            raise RuntimeError("call forward(scores, labels) before backward")
        return self._dscores.copy()


def layer_params(layer):
    """The ``(name, param, grad)`` triples of one layer (``grad`` is None before backward).

    Layers declare them in ``param_attrs`` (pairs of attribute names);
    :class:`BatchNorm` contributes ``gamma``/``dgamma`` and ``beta``/``dbeta``.
    """
    attrs = getattr(layer, "param_attrs", None)
    if attrs is None and isinstance(layer, BatchNorm):
        attrs = (("gamma", "dgamma"), ("beta", "dbeta"))
    triples = []
    for param_name, grad_name in attrs or ():
        param = getattr(layer, param_name)
        if param is not None:
            triples.append((param_name, param, getattr(layer, grad_name)))
    return triples


class Sequential:
    """A list of layers applied in order.

    Parameters
    ----------
    layers : iterable of layers
        Each with ``forward(x, training=...)`` and ``backward(dout)``
        (:class:`Dense`, :class:`Conv2D`, :class:`BatchNorm`, :class:`LayerNorm`,
        :class:`GroupNorm`, :class:`RMSNorm`, :class:`Sigmoid`, :class:`ReLU`,
        :class:`GlobalAvgPool2D`, :class:`Flatten`, :class:`ShiftScaleNoise`, or your own).

    Notes
    -----
    ``forward`` composes the layers, ``backward`` applies the chain rule in
    reverse order, each layer storing its parameter gradients; then
    :meth:`params_and_grads` lists ``(param, grad)`` pairs for :class:`SGD`.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """

    def __init__(self, layers):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("layers is empty; a Sequential model needs at least one layer")
        for i, layer in enumerate(self.layers):
            if not (callable(getattr(layer, "forward", None)) and callable(getattr(layer, "backward", None))):
                raise TypeError(
                    f"layers[{i}] ({type(layer).__name__}) must have forward(x, training=...) and backward(dout)"
                )

    def __repr__(self):
        inner = ",\n".join(f"  {layer!r}" for layer in self.layers)
        return f"Sequential([\n{inner},\n])"

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def forward(self, x, *, training):
        """Run ``x`` through every layer; ``training`` is passed to each.

        Returns
        -------
        out : ndarray, the last layer's output (class scores for a classifier)
        """
        _check_training(training)
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, dout):
        """Backpropagate ``dout`` (gradient of the loss w.r.t. the output); returns ``dx``."""
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def named_params_and_grads(self):
        """``(name, param, grad)`` triples, names like ``"0.W"`` or ``"1.gamma"``."""
        return [(f"{i}.{name}", param, grad)
                for i, layer in enumerate(self.layers)
                for name, param, grad in layer_params(layer)]

    def params_and_grads(self):
        """``(param, grad)`` pairs of every layer, read afresh (``grad`` is None before backward)."""
        return [(param, grad) for _, param, grad in self.named_params_and_grads()]


class SGD:
    """Plain stochastic gradient descent: ``param -= learning_rate * grad``, in place.

    Parameters
    ----------
    learning_rate : float > 0

    Notes
    -----
    .. math:: \\theta \\leftarrow \\theta - \\eta\\, \\nabla_\\theta L

    Updating in place keeps every layer's reference to its parameter array
    valid (``BatchNorm.gamma`` is the array SGD changes).

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """

    def __init__(self, learning_rate):
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
            raise TypeError(f"learning_rate must be a positive number, got {learning_rate!r}")
        if not np.isfinite(learning_rate) or learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive and finite, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)

    def __repr__(self):
        return f"SGD(learning_rate={self.learning_rate:g})"

    def step(self, params_and_grads):
        """Update every parameter in place.

        Parameters
        ----------
        params_and_grads : Sequential or iterable of (param, grad)
            A model (its :meth:`Sequential.params_and_grads` is used) or the
            pairs themselves; ``param`` must be a writable float ndarray and
            ``grad`` of its shape.
        """
        if hasattr(params_and_grads, "params_and_grads"):
            params_and_grads = params_and_grads.params_and_grads()
        for i, pair in enumerate(params_and_grads):
            try:
                param, grad = pair
            except (TypeError, ValueError):
                raise TypeError(f"params_and_grads[{i}] must be a (param, grad) pair") from None
            if grad is None:
                raise RuntimeError(
                    f"params_and_grads[{i}] has no gradient yet: call backward before step"
                )
            if not isinstance(param, np.ndarray) or param.dtype.kind != "f":
                raise TypeError(f"params_and_grads[{i}]: param must be a float ndarray (updated in place)")
            if np.shape(grad) != param.shape:
                raise ValueError(
                    f"params_and_grads[{i}]: grad has shape {np.shape(grad)}, param has shape {param.shape}"
                )
            param -= self.learning_rate * grad


# ---------------------------------------------------------------------------
# After training: folding BN into the layer before it (notebook 10).
# ---------------------------------------------------------------------------


def _foldable_out_axis(layer):
    """The output-feature axis of ``layer``'s ``W`` if BN can fold into it, else None.

    :class:`Dense` (``x @ W``, ``W`` of shape ``(D, M)``): -1;
    :class:`Conv2D` (``W`` of shape ``(C_out, C_in, kh, kw)``): 0.
    """
    if isinstance(layer, Dense):
        return -1
    if isinstance(layer, Conv2D):
        return 0
    return None


def fold_model(model):
    """A copy of ``model`` with every linear layer + BatchNorm pair folded into one layer.

    Parameters
    ----------
    model : Sequential
        Left untouched: the result is built from a deep copy.

    Returns
    -------
    Sequential
        Each :class:`Dense` (or ``Conv2D``) directly followed by a
        :class:`BatchNorm` becomes one layer of the same class whose ``W``
        and ``b`` are :func:`bnlab.fold_batchnorm` of the pair (it gets a
        bias even if it had none); the BatchNorm disappears. Every other
        layer is a copy. ``folded.forward(x, training=False)`` equals
        ``model.forward(x, training=False)`` up to rounding (about 1e-15
        relative in float64).

    Raises
    ------
    TypeError
        ``model`` is not a :class:`Sequential`.
    ValueError
        A BatchNorm after a linear layer does not normalize that layer's
        output features (its ``num_features`` is not the layer's output
        width, or after a ``Conv2D`` it does not reduce over ``(0, 2, 3)``).

    Notes
    -----
    Folding uses the evaluation-mode map, so the folded model reproduces
    ``training=False`` only (training mode normalizes with batch statistics,
    which no fixed layer can). A BatchNorm without running statistics
    (``track_running_stats=False``) normalizes with the batch even in
    evaluation, so it is left in place unfolded, as PyTorch's
    ``torch.fx.experimental.optimization.fuse`` does. For each pair, with
    :math:`s = \\gamma / \\sqrt{\\sigma^2_{run} + \\epsilon}`:
    :math:`W' = W\\,\\mathrm{diag}(s)`, :math:`b' = (b - \\mu_{run})\\,s + \\beta`.

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a bnlab Sequential, got {type(model).__name__}")
    layers = copy.deepcopy(model.layers)  # one copy: layers sharing a generator keep sharing it
    folded = []
    i = 0
    while i < len(layers):
        layer = layers[i]
        out_axis = _foldable_out_axis(layer)
        following = layers[i + 1] if i + 1 < len(layers) else None
        if out_axis is None or not isinstance(following, BatchNorm) or not following.track_running_stats:
            folded.append(layer)
            i += 1
            continue
        bn = following
        width = np.shape(layer.W)[out_axis]
        if bn.feature_shape != (width,):
            raise ValueError(
                f"layers[{i + 1}] (BatchNorm with num_features {bn.feature_shape}) cannot fold into "
                f"layers[{i}] ({type(layer).__name__} with {width} output features): it must normalize "
                f"each of them, num_features ({width},)"
            )
        if out_axis == 0 and v.normalize_axis(bn.axis, 4) != (0, 2, 3):
            raise ValueError(
                f"layers[{i + 1}] (BatchNorm with axis={bn.axis!r}) cannot fold into layers[{i}] "
                f"({type(layer).__name__}): after a convolution it must reduce over axis (0, 2, 3), "
                "one statistic per channel"
            )
        layer.W, layer.b = core.fold_batchnorm(
            layer.W, layer.b, bn.running_mean, bn.running_var, bn.gamma, bn.beta, bn.eps,
            out_axis=out_axis)
        for cache in ("dW", "db"):
            if hasattr(layer, cache):
                setattr(layer, cache, None)
        if hasattr(layer, "_x"):
            layer._x = None
        folded.append(layer)
        i += 2
    return Sequential(folded)
# Convolutional networks and the normalization family (notebooks 08-09):
# LayerNorm, GroupNorm and RMSNorm (same interface as BatchNorm; no running
# statistics: training and evaluation compute the same thing), Conv2D,
# GlobalAvgPool2D and Flatten.
# ---------------------------------------------------------------------------


def _shape_repr(shape):
    return shape[0] if len(shape) == 1 else shape


class _FamilyNorm:
    """What LayerNorm, GroupNorm and RMSNorm share: parameters, their checks, backward bookkeeping."""

    def _init_params(self, shape, dtype, *, shift=True):
        self.dtype = _check_dtype(dtype)
        self.gamma = np.ones(shape, self.dtype)
        self.beta = np.zeros(shape, self.dtype) if shift else None
        self.dgamma = None
        self.dbeta = None
        self._cache = None

    def _params(self, x, shape, what):
        """x as a float array; gamma and beta in x's dtype, checked (training or a learner may
        have changed them)."""
        x = v.as_float_array("x", x)
        if x.size == 0:
            raise ValueError(f"x is empty (shape {x.shape}); there is nothing to normalize")
        out = []
        for name in ("gamma", "beta"):
            value = getattr(self, name, None)
            if value is None:
                out.append(None)
                continue
            array = v.as_float_array(name, value, dtype=x.dtype)
            v.check_shape(name, array, shape, what)
            v.check_finite(name, array)
            out.append(array)
        return x, out[0], out[1]

    def _store_grads(self, dgamma, dbeta=None):
        self.dgamma = None if dgamma is None else dgamma.astype(self.dtype)
        self.dbeta = None if dbeta is None else dbeta.astype(self.dtype)

    def backward(self, dy):
        """Gradient with respect to the last forward's ``x``; sets ``dgamma`` (and ``dbeta``).

        Parameters
        ----------
        dy : ndarray, same shape as the last forward's ``x``

        Returns
        -------
        dx : ndarray, same shape as ``dy``
        """
        if self._cache is None:
            raise RuntimeError("call forward(x, training=...) before backward")
        dx, *grads = self._core_backward(dy, self._cache)
        self._store_grads(*grads)
        return dx


class LayerNorm(_FamilyNorm):
    """Layer normalization layer, as ``torch.nn.LayerNorm(normalized_shape, eps)``.

    Parameters
    ----------
    normalized_shape : int or tuple of int
        Trailing dimensions each sample is normalized over: ``D`` for (N, D)
        or tokens (N, T, D); ``(C, H, W)`` for the GN paper's LN on images.
    eps : float, default 1e-5
    dtype : numpy dtype, default float64
        dtype of gamma and beta.

    Attributes
    ----------
    gamma, beta : ndarray, shape normalized_shape
        Element-wise scale (starts at 1) and shift (starts at 0).
    dgamma, dbeta : ndarray or None
        Set by :meth:`backward`.

    Notes
    -----
    .. math:: y = \\gamma \\odot \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} + \\beta,
              \\quad \\mu, \\sigma^2 \\text{ per sample over normalized\\_shape}

    The same computation in training and evaluation, for any batch size
    (even one sample). See :func:`bnlab.core.layer_norm_forward`.

    Introduced in notebook 09 (the normalization family).
    """

    _core_backward = staticmethod(core.layer_norm_backward)

    param_attrs = (("gamma", "dgamma"), ("beta", "dbeta"))

    def __init__(self, normalized_shape, eps=1e-5, *, dtype=np.float64):
        self.normalized_shape = v.check_shape_arg("normalized_shape", normalized_shape)
        self.eps = v.check_eps(eps)
        self._init_params(self.normalized_shape, dtype)

    def __repr__(self):
        return f"LayerNorm({_shape_repr(self.normalized_shape)}, eps={self.eps:g})"

    def forward(self, x, *, training):
        """Normalize each sample of ``x`` (shape ``(*, *normalized_shape)``); same in both modes.

        Returns
        -------
        y : ndarray, same shape and dtype as ``x``
        """
        _check_training(training)
        x, gamma, beta = self._params(x, self.normalized_shape, "normalized_shape of this layer")
        shape = self.normalized_shape
        if x.shape[x.ndim - len(shape):] != shape:
            core._trailing(x, shape)  # raises, naming normalized_shape
        y, self._cache = core._layer_norm_forward(x, shape, self.gamma.size, gamma, beta, self.eps)
        return y


class GroupNorm(_FamilyNorm):
    """Group normalization layer, as ``torch.nn.GroupNorm(num_groups, num_channels, eps)``.

    Parameters
    ----------
    num_groups : int
        ``G``; must divide ``num_channels``. 1: layer norm over (C, H, W)
        with per-channel gamma and beta (the GN paper's LN); ``num_channels``:
        instance norm.
    num_channels : int
        ``C``.
    eps : float, default 1e-5
    dtype : numpy dtype, default float64

    Attributes
    ----------
    gamma, beta : ndarray, shape (C,)
    dgamma, dbeta : ndarray or None
        Set by :meth:`backward`.

    Notes
    -----
    .. math:: y = \\gamma_c \\frac{x - \\mu_{ng}}{\\sqrt{\\sigma^2_{ng} + \\epsilon}} + \\beta_c

    with the statistics of sample ``n`` over the C/G channels of group
    ``g`` and all positions. Input (N, C, *spatial) or (N, C). See
    :func:`bnlab.core.group_norm_forward`.

    Introduced in notebook 09 (the normalization family).
    """

    _core_backward = staticmethod(core.group_norm_backward)

    param_attrs = (("gamma", "dgamma"), ("beta", "dbeta"))

    def __init__(self, num_groups, num_channels, eps=1e-5, *, dtype=np.float64):
        self.num_groups = v.check_positive_int("num_groups", num_groups)
        self.num_channels = v.check_positive_int("num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise ValueError(
                f"num_groups={self.num_groups} must divide num_channels={self.num_channels}"
            )
        self.eps = v.check_eps(eps)
        self._init_params((self.num_channels,), dtype)

    def __repr__(self):
        return f"GroupNorm({self.num_groups}, {self.num_channels}, eps={self.eps:g})"

    def forward(self, x, *, training):
        """Normalize ``x`` (shape (N, C, *spatial)) per sample and group; same in both modes.

        Returns
        -------
        y : ndarray, same shape and dtype as ``x``
        """
        _check_training(training)
        x, gamma, beta = self._params(x, (self.num_channels,), "num_channels of this layer")
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"x must have shape (N, {self.num_channels}, *spatial) (num_channels of this layer), "
                f"got shape {x.shape}"
            )
        y, self._cache = core._group_norm_forward(x, self.num_groups, gamma, beta, self.eps)
        return y


class RMSNorm(_FamilyNorm):
    """RMS normalization layer, as ``torch.nn.RMSNorm(normalized_shape, eps)``.

    Parameters
    ----------
    normalized_shape : int or tuple of int
    eps : float, optional
        Inside the square root. None: ``np.finfo(x.dtype).eps`` of each
        input (as PyTorch).
    dtype : numpy dtype, default float64
        dtype of gamma.

    Attributes
    ----------
    gamma : ndarray, shape normalized_shape
        Starts at 1. There is no shift (``beta`` is None).
    dgamma : ndarray or None
        Set by :meth:`backward`.

    Notes
    -----
    .. math:: y = \\frac{x}{\\sqrt{\\frac{1}{m}\\sum x^2 + \\epsilon}} \\odot \\gamma

    See :func:`bnlab.core.rms_norm_forward`.

    Introduced in notebook 09 (the normalization family).
    """

    _core_backward = staticmethod(core.rms_norm_backward)

    param_attrs = (("gamma", "dgamma"),)

    def __init__(self, normalized_shape, eps=None, *, dtype=np.float64):
        self.normalized_shape = v.check_shape_arg("normalized_shape", normalized_shape)
        self.eps = None if eps is None else v.check_eps(eps)
        self._init_params(self.normalized_shape, dtype, shift=False)

    def __repr__(self):
        eps = "None" if self.eps is None else f"{self.eps:g}"
        return f"RMSNorm({_shape_repr(self.normalized_shape)}, eps={eps})"

    def forward(self, x, *, training):
        """Scale each sample of ``x`` (shape ``(*, *normalized_shape)``) to unit RMS; same in both modes.

        Returns
        -------
        y : ndarray, same shape and dtype as ``x``
        """
        _check_training(training)
        x, gamma, _ = self._params(x, self.normalized_shape, "normalized_shape of this layer")
        shape = self.normalized_shape
        if x.shape[x.ndim - len(shape):] != shape:
            core._trailing(x, shape)  # raises, naming normalized_shape
        eps = core._rms_eps(self.eps, x.dtype)
        y, self._cache = core._rms_norm_forward(x, shape, self.gamma.size, gamma, eps)
        return y


def _pair(name, value, minimum):
    """An int or a pair of ints, each >= minimum, as a pair."""
    pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    if len(pair) != 2 or any(isinstance(p, bool) or not isinstance(p, numbers.Integral) for p in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(p < minimum for p in pair):
        raise ValueError(f"{name} must be >= {minimum} (an int or a pair of them), got {value!r}")
    return int(pair[0]), int(pair[1])


class Conv2D:
    """2-D convolution (cross-correlation, stride 1), as ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C_in`` and ``C_out``.
    kernel_size : int or (int, int)
        ``(kh, kw)``.
    padding : int or (int, int), default 0
        Zeros added on each side of the height and the width; ``padding=1``
        with a 3x3 kernel keeps the spatial size.
    init_scale : float or {"he", "xavier"}, default "he"
        Std of the initial weights ``N(0, s^2)``; the named ones are
        functions of the fan-in ``C_in * kh * kw`` (see :class:`Dense`).
    bias : bool, default True
        Redundant right before batch normalization (BN's beta takes its role).
    rng : numpy.random.Generator or int, optional
    dtype : numpy dtype, default float64

    Attributes
    ----------
    W : ndarray, shape (C_out, C_in, kh, kw)
    b : ndarray, shape (C_out,), or None without bias
    dW, db : ndarray or None
        Set by :meth:`backward`.

    Notes
    -----
    With :math:`x` padded,

    .. math:: \\text{out}_{n o i j} = b_o + \\sum_{c, u, v} W_{o c u v}\\, x_{n c, i+u, j+v}

    computed as one matrix product on the unfolded patches (im2col through
    ``numpy.lib.stride_tricks.sliding_window_view``). Backward:
    :math:`dW = \\sum_{n,i,j} d\\text{out}_{noij}\\, \\text{patch}_{nij}`,
    :math:`db_o = \\sum_{n,i,j} d\\text{out}_{noij}`, and ``dx`` folds
    :math:`W^T d\\text{out}` back onto the positions each patch came from.

    Introduced in notebook 08 (BN in convolutional networks).
    """

    param_attrs = (("W", "dW"), ("b", "db"))

    def __init__(self, in_channels, out_channels, kernel_size, padding=0, init_scale="he", *,
                 bias=True, rng=None, dtype=np.float64):
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.out_channels = _check_positive_int("out_channels", out_channels)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.padding = _pair("padding", padding, 0)
        self.dtype = _check_dtype(dtype)
        self.init_scale = init_scale
        kh, kw = self.kernel_size
        std = Dense._init_std(init_scale, self.in_channels * kh * kw)
        rng = as_rng(rng)
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.W = (std * rng.standard_normal(shape)).astype(self.dtype)
        self.b = np.zeros(self.out_channels, self.dtype) if bias else None
        self.dW = None
        self.db = None
        self._cache = None

    def __repr__(self):
        ks = self.kernel_size[0] if self.kernel_size[0] == self.kernel_size[1] else self.kernel_size
        pad = self.padding[0] if self.padding[0] == self.padding[1] else self.padding
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={ks!r}, padding={pad!r}, "
                f"init_scale={self.init_scale!r}, bias={self.b is not None})")

    def forward(self, x, *, training):
        """Convolve a batch of feature maps.

        Parameters
        ----------
        x : ndarray, shape (N, C_in, H, W)
            Cast to the layer's dtype.
        training : bool
            Accepted for a uniform interface; a convolution behaves the same.

        Returns
        -------
        out : ndarray, shape (N, C_out, H + 2 ph - kh + 1, W + 2 pw - kw + 1)
        """
        _check_training(training)
        x = v.as_float_array("x", x).astype(self.dtype, copy=False)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (N, {self.in_channels}, H, W) (in_channels of this "
                             f"layer), got shape {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"x is empty (shape {x.shape}); a batch needs at least one sample")
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        height, width = x.shape[2] + 2 * ph, x.shape[3] + 2 * pw
        if height < kh or width < kw:
            raise ValueError(f"x's padded spatial size ({height}, {width}) is smaller than the kernel "
                             f"{self.kernel_size}: got shape {x.shape} with padding {self.padding}")
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        n = x.shape[0]
        out_h, out_w = height - kh + 1, width - kw + 1
        # patches (N, C_in, out_h, out_w, kh, kw) -> columns (N, C_in*kh*kw, out_h*out_w): im2col
        patches = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
        cols = patches.transpose(0, 1, 4, 5, 2, 3).reshape(n, -1, out_h * out_w)
        out = np.matmul(self.W.reshape(self.out_channels, -1), cols)  # (N, C_out, out_h*out_w)
        if self.b is not None:
            out += self.b[:, None]
        self._cache = (cols, x.shape)
        return out.reshape(n, self.out_channels, out_h, out_w)

    def backward(self, dout):
        """Gradient with respect to the last forward's ``x``; sets ``dW`` and ``db``.

        Parameters
        ----------
        dout : ndarray, shape of the last output (N, C_out, out_h, out_w)

        Returns
        -------
        dx : ndarray, shape (N, C_in, H, W)
        """
        if self._cache is None:
            raise RuntimeError("call forward(x, training=...) before backward")
        cols, padded_shape = self._cache
        n, _, height, width = padded_shape
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        out_h, out_w = height - kh + 1, width - kw + 1
        dout = _check_dout(dout, (n, self.out_channels, out_h, out_w), self.dtype)
        dout3 = dout.reshape(n, self.out_channels, out_h * out_w)
        # dW = sum over samples of dout_n @ cols_n^T (BLAS reads cols transposed, no copy)
        self.dW = np.matmul(dout3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(self.W.shape)
        if self.b is not None:
            self.db = dout3.sum(axis=(0, 2))
        dcols = np.matmul(self.W.reshape(self.out_channels, -1).T, dout3)  # (N, C_in*kh*kw, positions)
        dcols = dcols.reshape(n, self.in_channels, kh, kw, out_h, out_w)
        dx = np.zeros(padded_shape, self.dtype)
        for u in range(kh):  # col2im: each kernel offset's patch values go back to their positions
            for w in range(kw):
                dx[:, :, u:u + out_h, w:w + out_w] += dcols[:, :, u, w]
        return dx[:, :, ph:height - ph, pw:width - pw]


class GlobalAvgPool2D:
    """Mean of each feature map: (N, C, H, W) -> (N, C).

    Notes
    -----
    .. math:: \\text{out}_{nc} = \\frac{1}{HW}\\sum_{i,j} x_{ncij}, \\qquad
              dx_{ncij} = \\frac{d\\text{out}_{nc}}{HW}

    Introduced in notebook 08 (BN in convolutional networks).
    """

    param_attrs = ()

    def __init__(self):
        self._shape = None

    def __repr__(self):
        return "GlobalAvgPool2D()"

    def forward(self, x, *, training):
        """``x`` : ndarray, shape (N, C, H, W) -> ``out`` : (N, C). ``training`` changes nothing."""
        _check_training(training)
        x = v.as_float_array("x", x)
        if x.ndim != 4 or x.shape[2] * x.shape[3] == 0:
            raise ValueError(f"x must have shape (N, C, H, W) with H, W >= 1, got shape {x.shape}")
        self._shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout):
        """``dout`` : ndarray, shape (N, C) -> ``dx`` : (N, C, H, W)."""
        if self._shape is None:
            raise RuntimeError("call forward(x, training=...) before backward")
        shape = self._shape
        dout = v.as_float_array("dout", dout)
        v.check_shape("dout", dout, shape[:2], "the shape of the last forward's output")
        dx = np.empty(shape, dout.dtype)
        dx[...] = (dout / (shape[2] * shape[3]))[:, :, None, None]
        return dx


class Flatten:
    """Keep the batch axis, flatten the rest: (N, d1, d2, ...) -> (N, d1 * d2 * ...).

    Introduced in notebook 08 (BN in convolutional networks).
    """

    param_attrs = ()

    def __init__(self):
        self._shape = None

    def __repr__(self):
        return "Flatten()"

    def forward(self, x, *, training):
        """``x`` : ndarray, shape (N, ...) -> ``out`` : (N, prod(...)). ``training`` changes nothing."""
        _check_training(training)
        x = v.as_float_array("x", x)
        if x.ndim < 1:
            raise ValueError("x must have a batch axis, got a scalar")
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        """``dout`` : ndarray, shape (N, prod(...)) -> ``dx`` : the last forward's input shape."""
        if self._shape is None:
            raise RuntimeError("call forward(x, training=...) before backward")
        shape = self._shape
        dout = v.as_float_array("dout", dout)
        v.check_shape("dout", dout, (shape[0], int(np.prod(shape[1:], dtype=np.int64))),
                      "the shape of the last forward's output")
        return dout.reshape(shape)
