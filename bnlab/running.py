"""Running statistics over a stream of batches, in either convention.

Two small helpers for ``notebooks/05_running_statistics.ipynb`` and its
explorer: follow the running mean and variance batch after batch
(:func:`track_running_stats`), and translate a momentum from one
framework's meaning to the other's (:func:`convert_momentum`). Both read the
conventions from :mod:`bnlab.conventions`; nothing here writes ``1 - momentum``
by hand. After training (notebook 10), :func:`recalibrate_batchnorm`
re-estimates a trained network's running statistics with equal weights
("precise BN", and AdaBN on shifted inputs).
"""

from __future__ import annotations

import numpy as np

from . import _validate as v
from .conventions import get_convention
from .core import _running_update, batch_stats, update_running_stats
from .layers import BatchNorm, Sequential

__all__ = ["track_running_stats", "convert_momentum", "recalibrate_batchnorm"]


def track_running_stats(batches, convention="keras", momentum=None):
    """Running mean and variance after each batch of a stream.

    Parameters
    ----------
    batches : ndarray, shape (S, N, D)
        ``S`` batches of ``N`` samples with ``D`` features (for example
        ``bnlab.random_batch(rng, (S, N, D), loc=true_mean, scale=true_std)``).
    convention : {"keras", "pytorch"} or Convention, default "keras"
    momentum : float in [0, 1] or "cumulative", optional
        In the convention's own meaning; default: the convention's default
        (keras 0.99, pytorch 0.1). ``"cumulative"``: the k-th batch gets the
        weight 1/k (PyTorch's ``momentum=None``, bnlab's
        ``BatchNorm(momentum="cumulative")``), so the running values are the
        plain averages of the batch statistics so far.

    Returns
    -------
    trace : dict of ndarray
        ``"mean"``, ``"var"``: shape (S + 1, D), the running statistics
        before any batch (the convention's initial 0 and 1) and after each of
        the ``S`` batches; ``"batch_mean"``, ``"batch_var"``: shape (S, D),
        each batch's own mean and biased variance; ``"batch_weight"``: the
        weight a new batch gets (float; ``"1/k"`` for the cumulative
        average); ``"n"``: values per feature in a batch (int).

    Notes
    -----
    Each step is :func:`bnlab.update_running_stats` with the batch's
    statistics, exactly what :class:`bnlab.BatchNorm` does in training mode.

    Introduced in ``notebooks/05_running_statistics.ipynb``; ``"cumulative"``
    in notebook 11.
    """
    conv = get_convention(convention)
    cumulative = isinstance(momentum, str) and momentum == "cumulative"
    if isinstance(momentum, str) and not cumulative:
        raise ValueError(f"momentum must be a number in [0, 1], None (the convention's default) or "
                         f"\"cumulative\", got {momentum!r}")
    if not cumulative:
        momentum = v.check_momentum(conv.momentum if momentum is None else momentum)

    def momentum_at(step):
        """Momentum (the convention's meaning) of the update with the batch at index ``step``."""
        return conv.batch_weight(1.0 / (step + 1)) if cumulative else momentum

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
    mean[1], var[1] = update_running_stats(mean[0], var[0], batch_mean[0], batch_var[0], momentum_at(0),
                                           convention=conv, n=n)
    for step in range(1, steps):
        mean[step + 1], var[step + 1] = _running_update(
            conv, momentum_at(step), mean[step], var[step], batch_mean[step], batch_var[step], n)
    return {"mean": mean, "var": var, "batch_mean": batch_mean, "batch_var": batch_var,
            "batch_weight": "1/k" if cumulative else conv.batch_weight(momentum), "n": n}


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


def recalibrate_batchnorm(model, batches):
    """Precise BN: re-estimate every BatchNorm's running statistics with equal weights, in place.

    Each :class:`~bnlab.BatchNorm` of ``model`` (that tracks running
    statistics) is reset and then averages the statistics of ``batches``
    with equal weights in one pass (``momentum="cumulative"``), with the
    weights fixed. The same result as ``torch.optim.swa_utils.update_bn`` on
    the same network and batches. Fed a shifted data set (no labels needed),
    this is AdaBN.

    Parameters
    ----------
    model : Sequential
        Changed in place: only the BatchNorm layers' ``running_mean``,
        ``running_var`` and ``num_batches_tracked`` (the number of batches).
        Every BatchNorm's ``momentum`` and ``trainable`` are restored
        afterwards; gamma, beta and every other layer's parameters are not
        touched. Copy the model first (``copy.deepcopy``) to keep the old
        statistics.
    batches : iterable of ndarray, or ndarray of shape (S, N, ...)
        Input batches of the model, each with at least two samples (BN's
        training-mode statistics need two values per feature). Read once.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        ``model`` is not a :class:`~bnlab.layers.Sequential`.
    ValueError
        ``model`` has no BatchNorm with running statistics, ``batches`` is
        empty, or a batch is refused by a layer; the model is then left as
        it was.

    Notes
    -----
    After K batches with per-batch mean :math:`\\mu_k` and variance
    :math:`\\sigma^2_k` (biased in the keras convention, unbiased
    :math:`\\sigma^2_k\\, n / (n - 1)` in the pytorch one) at that layer,

    .. math:: \\mu_{run} = \\frac1K \\sum_{k=1}^K \\mu_k, \\qquad
              \\sigma^2_{run} = \\frac1K \\sum_{k=1}^K \\sigma^2_k

    while the exponential running average of training (Wu & Johnson 2021,
    Sec. 3) weights recent batches more and mixes statistics produced by
    past weights. The BatchNorm layers run in training mode (batch
    statistics, running ones updated) and every other layer in evaluation
    mode, so the statistics are those inference will see (``update_bn``
    puts the whole model in train mode, which differs only for layers that
    behave differently in training, such as noise or dropout).

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a bnlab Sequential, got {type(model).__name__}")
    norms = [layer for layer in model.layers if isinstance(layer, BatchNorm) and layer.track_running_stats]
    if not norms:
        raise ValueError(
            "model has no BatchNorm layer with running statistics (track_running_stats=True): "
            "there is nothing to recalibrate"
        )
    if isinstance(batches, np.ndarray):
        if batches.ndim < 3:
            raise ValueError(
                f"batches as one array must have shape (S, N, ...) (S batches of N samples), "
                f"got shape {batches.shape}"
            )
        batches = list(batches)
    else:
        try:
            batches = list(batches)
        except TypeError:
            raise TypeError(
                f"batches must be an iterable of input batches, got {type(batches).__name__}"
            ) from None
    if not batches:
        raise ValueError("batches is empty; recalibration needs at least one batch of inputs")
    saved = [(bn.running_mean, bn.running_var, bn.num_batches_tracked, bn.momentum, bn.trainable)
             for bn in norms]
    completed = False
    try:
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = "cumulative"
            bn.trainable = True  # a frozen keras-convention layer would not update in training mode
        for index, batch in enumerate(batches):
            x = batch
            try:
                for layer in model.layers:
                    x = layer.forward(x, training=isinstance(layer, BatchNorm))
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"batches[{index}]: {exc}") from None
        completed = True
    finally:
        for bn, (mean, var, tracked, momentum, trainable) in zip(norms, saved):
            bn.momentum = momentum
            bn.trainable = trainable
            if not completed:
                bn.running_mean, bn.running_var, bn.num_batches_tracked = mean, var, tracked
