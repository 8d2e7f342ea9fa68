"""Running statistics over a stream of batches, in either convention.

Two small helpers for ``notebooks/05_running_statistics.ipynb`` and its
explorer: follow the running mean and variance batch after batch
(:func:`track_running_stats`), and translate a momentum from one
framework's meaning to the other's (:func:`convert_momentum`). Both read the
conventions from :mod:`bnlab.conventions`; nothing here writes ``1 - momentum``
by hand.
"""

from __future__ import annotations

import numpy as np

from . import _validate as v
from .conventions import get_convention
from .core import _running_update, batch_stats, update_running_stats

__all__ = ["track_running_stats", "convert_momentum"]


def track_running_stats(batches, convention="keras", momentum=None):
    """Running mean and variance after each batch of a stream.

    Parameters
    ----------
    batches : ndarray, shape (S, N, D)
        ``S`` batches of ``N`` samples with ``D`` features (for example
        ``bnlab.random_batch(rng, (S, N, D), loc=true_mean, scale=true_std)``).
    convention : {"keras", "pytorch"} or Convention, default "keras"
    momentum : float in [0, 1], optional
        In the convention's own meaning; default: the convention's default
        (keras 0.99, pytorch 0.1).

    Returns
    -------
    trace : dict of ndarray
        ``"mean"``, ``"var"``: shape (S + 1, D), the running statistics
        before any batch (the convention's initial 0 and 1) and after each of
        the ``S`` batches; ``"batch_mean"``, ``"batch_var"``: shape (S, D),
        each batch's own mean and biased variance; ``"batch_weight"``: the
        weight a new batch gets (float); ``"n"``: values per feature in a
        batch (int).

    Notes
    -----
    Each step is :func:`bnlab.update_running_stats` with the batch's
    statistics, exactly what :class:`bnlab.BatchNorm` does in training mode.

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """
    conv = get_convention(convention)
    momentum = v.check_momentum(conv.momentum if momentum is None else momentum)
    batches = v.as_float_array("batches", batches)
    if batches.ndim != 3:
        raise ValueError(f"batches must have shape (S, N, D) (S batches of N samples), got shape {batches.shape}")
    steps, n, features = batches.shape
    if steps == 0 or features == 0:
        raise ValueError(f"batches is empty (shape {batches.shape})")
    if n < 2:
        raise ValueError(
            f"each batch has {n} sample(s); training-mode batch statistics need at least 2"
        )
    batch_mean, batch_var = batch_stats(batches, axis=1)  # (S, D) each
    mean = np.empty((steps + 1, features), batches.dtype)
    var = np.empty((steps + 1, features), batches.dtype)
    mean[0], var[0] = conv.initial_mean, conv.initial_var
    # The first step through update_running_stats, which also validates; the rest
    # through the same formulas without re-checking arrays already checked.
    mean[1], var[1] = update_running_stats(mean[0], var[0], batch_mean[0], batch_var[0], momentum,
                                           convention=conv, n=n)
    for step in range(1, steps):
        mean[step + 1], var[step + 1] = _running_update(
            conv, momentum, mean[step], var[step], batch_mean[step], batch_var[step], n)
    return {"mean": mean, "var": var, "batch_mean": batch_mean, "batch_var": batch_var,
            "batch_weight": conv.batch_weight(momentum), "n": n}


def convert_momentum(momentum, source, target):
    """The momentum that gives a new batch the same weight in ``target`` as ``momentum`` in ``source``.

    Parameters
    ----------
    momentum : float in [0, 1]
        In ``source``'s meaning.
    source, target : {"keras", "pytorch"} or Convention

    Returns
    -------
    float
        For example ``convert_momentum(0.9, "keras", "pytorch") == 0.1`` (up to
        rounding) and ``convert_momentum(0.1, "pytorch", "keras") == 0.9``.

    Notes
    -----
    A convention's :meth:`~bnlab.Convention.batch_weight` maps a momentum to
    the batch's weight and is its own inverse, so the answer is
    ``target.batch_weight(source.batch_weight(momentum))``. The running
    variance still differs (biased in keras, unbiased in pytorch).

    Introduced in ``notebooks/05_running_statistics.ipynb``.
    """
    momentum = v.check_momentum(momentum)
    return float(get_convention(target).batch_weight(get_convention(source).batch_weight(momentum)))
