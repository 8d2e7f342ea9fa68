"""Layers with state: :class:`BatchNorm` (train/eval, Keras or PyTorch bookkeeping).

Each layer has ``forward(x, training=...)`` and ``backward(dout)``; training
versus inference is always an explicit argument.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _validate as v
from .conventions import get_convention
from .core import batchnorm_backward, batchnorm_forward, update_running_stats

__all__ = ["BatchNorm"]


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
    momentum : float in [0, 1], optional
        Default: the convention's (keras 0.99, pytorch 0.1).
    axis : int or tuple of int, default 0
        Axes reduced over: 0 for (N, D), (0, 2, 3) for (N, C, H, W).
    dtype : numpy dtype, default float64
        dtype of gamma, beta and the running statistics.

    Attributes
    ----------
    gamma, beta : ndarray, shape ``num_features``
        Learnable scale (starts at 1) and shift (starts at 0).
    running_mean, running_var : ndarray, shape ``num_features``
        Start at the convention's initial values (0 and 1).
    dgamma, dbeta : ndarray or None
        Set by :meth:`backward`.
    num_batches_tracked : int
        Training forward passes so far.

    Notes
    -----
    ``forward(z, training=True)`` normalizes with the batch statistics and
    updates the running ones, like ``torch.nn.BatchNorm1d/2d`` in ``train()``
    mode and ``keras.layers.BatchNormalization`` called with ``training=True``.
    ``forward(z, training=False)`` normalizes with the running statistics and
    changes nothing, like ``eval()`` / ``training=False``.

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """

    def __init__(self, num_features, convention="keras", eps=None, momentum=None, axis=0,
                 dtype=np.float64):
        self.convention = get_convention(convention)
        if isinstance(num_features, numbers.Integral) and not isinstance(num_features, bool):
            shape = (int(num_features),)
        else:
            try:
                shape = tuple(int(s) for s in num_features)
            except (TypeError, ValueError):
                raise TypeError(f"num_features must be a positive int or a tuple of them, got {num_features!r}") from None
        if not shape or any(s < 1 for s in shape):
            raise ValueError(f"num_features must be positive, got {num_features!r}")
        self.feature_shape = shape
        self.eps = v.check_eps(self.convention.eps if eps is None else eps)
        self.momentum = v.check_momentum(self.convention.momentum if momentum is None else momentum)
        if isinstance(axis, numbers.Integral):
            self.axis = int(axis)
        else:
            self.axis = tuple(axis)
        v.normalize_axis(self.axis, len(shape) + (1 if isinstance(self.axis, int) else len(self.axis)))
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"dtype must be a floating dtype, got {self.dtype}")
        self.gamma = np.ones(shape, self.dtype)
        self.beta = np.zeros(shape, self.dtype)
        self.running_mean = np.full(shape, self.convention.initial_mean, self.dtype)
        self.running_var = np.full(shape, self.convention.initial_var, self.dtype)
        self.dgamma = None
        self.dbeta = None
        self.num_batches_tracked = 0
        self._cache = None

    def __repr__(self):
        return (f"BatchNorm({self.feature_shape if len(self.feature_shape) > 1 else self.feature_shape[0]}, "
                f"convention={self.convention.name!r}, eps={self.eps:g}, momentum={self.momentum:g}, "
                f"axis={self.axis!r})")

    def forward(self, z, *, training):
        """Normalize ``z``.

        Parameters
        ----------
        z : ndarray, shape (N, *num_features) or (N, C, H, W)
        training : bool
            True: batch statistics, running statistics updated (needs at least
            two values per feature). False: running statistics, nothing updated.

        Returns
        -------
        y : ndarray, same shape and dtype as ``z``
        """
        if not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be True or False, got {training!r}")
        z = v.as_float_array("z", z)
        axes = v.normalize_axis(self.axis, z.ndim)
        v.check_shape("z's feature dimensions", np.empty(v.feature_shape(z.shape, axes), dtype=bool),
                      self.feature_shape, f"num_features of this layer, with axis={self.axis!r}")
        if training:
            y, cache = batchnorm_forward(z, self.gamma, self.beta, eps=self.eps, axis=axes)
            self.running_mean, self.running_var = update_running_stats(
                self.running_mean, self.running_var,
                cache["mean"].reshape(self.feature_shape), cache["var"].reshape(self.feature_shape),
                self.momentum, convention=self.convention, n=cache["n"],
            )
            self.num_batches_tracked += 1
            self._cache = ("train", cache)
            return y
        v.check_batch("z", z, axes, training=False)
        v.check_finite("z", z)
        bshape = v.broadcast_shape(z.shape, axes)
        inv_std = (1.0 / np.sqrt(self.running_var + self.eps)).astype(z.dtype).reshape(bshape)
        z_hat = (z - self.running_mean.astype(z.dtype).reshape(bshape)) * inv_std
        gamma = self.gamma.astype(z.dtype).reshape(bshape)
        self._cache = ("eval", {"z_hat": z_hat, "gamma": gamma, "inv_std": inv_std, "axis": axes})
        return z_hat * gamma + self.beta.astype(z.dtype).reshape(bshape)

    def backward(self, dy):
        """Gradient with respect to the last forward's input; sets ``dgamma`` and ``dbeta``.

        After a training forward this is the closed-form batch-norm backward
        (every sample's gradient depends on the whole batch). After an
        evaluation forward BN is a fixed per-feature affine map, so
        ``dz = dy * gamma / sqrt(running_var + eps)``.

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
            dgamma = (dy * z_hat).sum(axis=axes)
            dbeta = dy.sum(axis=axes)
        self.dgamma = dgamma.reshape(self.feature_shape).astype(self.dtype)
        self.dbeta = dbeta.reshape(self.feature_shape).astype(self.dtype)
        return dz
