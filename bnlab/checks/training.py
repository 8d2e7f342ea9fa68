"""Exercise checkers of notebook 07: where BN goes, the percentiles, the noisy-BN conclusion."""

from __future__ import annotations

import numpy as np

from .feedback import (
    NOT_NUMBERS,
    Feedback,
    call_safely,
    compare_arrays,
    missing_return,
    read_choice,
)

__all__ = [
    "check_bn_placement", "check_percentiles", "check_noisy_bn_conclusion", "NOISY_BN_CHOICES",
]


NOISY_BN_CHOICES = {
    "a": "Noisy BN trains much worse than BN: BN helps because it removes internal covariate shift.",
    "b": ("The distributions of the layer inputs keep moving under noisy BN, yet it trains about as fast "
          "as BN: reducing internal covariate shift is not what makes BN help."),
    "c": "The noise is what makes BN work, so BN trains better the more noise is added.",
    "d": "Under noisy BN the percentiles of the sigmoid inputs stay fixed, as the paper's Figure 1(c) shows.",
}
_NOISY_BN_WHY = {
    "a": ("the accuracy curves say otherwise: noisy BN is about as fast as BN and far ahead of no BN, "
          "although its layer inputs shift at every step"),
    "c": ("the experiment does not show that: noisy BN is a little behind plain BN; it shows BN's benefit "
          "survives the noise"),
    "d": "look at the noisy BN panel: its percentiles jump at every evaluation, far more than with plain BN",
}


def check_noisy_bn_conclusion(answer):
    """Exercise (notebook 07): what Santurkar et al.'s noisy BN experiment tells us.

    Parameters
    ----------
    answer : str
        One letter of :data:`NOISY_BN_CHOICES`.

    Returns
    -------
    Feedback

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    feedback = Feedback("Exercise: what noisy BN tells us")
    hint = "compare panel (a) (accuracy) with the noisy BN percentile panel"
    letter = read_choice(feedback, answer, NOISY_BN_CHOICES, hint)
    if letter is None:
        return feedback
    if letter != "b":
        return feedback.fail(f"({letter}): {_NOISY_BN_WHY[letter]}", hint)
    return feedback.ok("(b): the inputs' distributions wander, training does not suffer: Santurkar et al. "
                       "(2018) conclude that BN helps by making the loss landscape smoother, not by "
                       "fixing the distributions")


_LAYER_NAMES = {
    "dense": ("dense", "linear", "fc", "fullyconnected", "matmul", "affine", "wx", "wxb", "weights"),
    "batchnorm": ("bn", "batchnorm", "batchnormalization", "batchnormalisation", "normalization", "norm"),
    "nonlinearity": ("sigmoid", "relu", "tanh", "activation", "nonlinearity", "act"),
}


def _layer(name):
    key = "".join(ch for ch in str(name).lower() if ch.isalnum())
    for canonical, aliases in _LAYER_NAMES.items():
        if key in aliases:
            return canonical
    return None


def check_bn_placement(block):
    """Exercise (notebook 07): the order of the layers in one hidden block of the paper's network.

    Parameters
    ----------
    block : sequence of str
        Layer names in forward order, e.g. ``["dense", "batchnorm", "sigmoid"]``
        (aliases such as ``"linear"``, ``"BN"``, ``"activation"`` are understood).

    Returns
    -------
    Feedback
        Recognises BN after the nonlinearity (later practice varies; the
        paper puts it before), BN before the dense layer, and a block without BN.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    feedback = Feedback("Exercise: where BN goes")
    hint = ("the paper normalizes x = Wu (+ b), the input of the nonlinearity: "
            "z = g(BN(Wu)), so the order is dense → BN → sigmoid")
    if isinstance(block, str) or not isinstance(block, (list, tuple)):
        return feedback.fail("give the block as a list of layer names, e.g. ['dense', 'batchnorm', 'sigmoid']",
                             hint)
    layers = [_layer(name) for name in block]
    unknown = [name for name, layer in zip(block, layers) if layer is None]
    if unknown:
        return feedback.fail(f"unknown layer name(s) {unknown}: use 'dense', 'batchnorm' and 'sigmoid'", hint)
    if "batchnorm" not in layers:
        return feedback.fail("there is no BN in this block: each hidden block of the BN network has one", hint)
    if len(layers) != 3 or sorted(layers) != sorted(_LAYER_NAMES):
        return feedback.fail("a hidden block has exactly three layers: a dense layer, BN and the "
                             "nonlinearity", hint)
    if layers == ["dense", "batchnorm", "nonlinearity"]:
        return feedback.ok("dense → BN → sigmoid: BN before the nonlinearity, as in the paper "
                           "(and the dense layer needs no bias: BN's beta replaces it)")
    if layers == ["dense", "nonlinearity", "batchnorm"]:
        return feedback.fail("BN after the nonlinearity: some later practice does this and it can work, but "
                             "the paper puts BN before it, where the sigmoid's input is (roughly) symmetric "
                             "and non-sparse, so normalizing it gives a stable distribution", hint)
    if layers.index("batchnorm") < layers.index("dense"):
        return feedback.fail("BN before the dense layer normalizes u, the previous layer's output; the paper "
                             "normalizes Wu, which the dense layer computes", hint)
    return feedback.fail("the nonlinearity comes last in the block: it turns the normalized values into the "
                         "block's output", hint)


def check_percentiles(percentiles):
    """Exercise (notebook 07): the 15th, 50th and 85th percentiles of one unit's input over a set of samples.

    Parameters
    ----------
    percentiles : callable
        ``percentiles(pre_activations, unit) -> ndarray of shape (3,)``:
        with ``pre_activations`` of shape (N, units), the percentiles of
        column ``unit`` (what :func:`bnlab.train.run_experiment` records).

    Returns
    -------
    Feedback
        Recognises percentiles over all units, over a row instead of a
        column, fractions passed to ``np.percentile`` (0.15 instead of 15),
        the mean and ±1 std in their place, and the wrong order.

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    feedback = Feedback("Exercise: tracking the percentiles")
    hint = "np.percentile(pre_activations[:, unit], [15, 50, 85]): the column of one unit, levels in percent"
    rng = np.random.default_rng(7)
    x = rng.exponential(scale=rng.uniform(0.5, 3.0, 5), size=(200, 5)) + rng.uniform(-2, 2, 5)  # skewed
    unit = 3
    ok, got = call_safely(feedback, percentiles, x.copy(), unit, what="percentiles")
    if not ok or missing_return(feedback, got, "percentiles"):
        return feedback
    column = x[:, unit]
    levels = [15, 50, 85]
    expected = np.percentile(column, levels)
    tolerance = 0.02 * column.std()  # other interpolation methods are fine
    wrong = [
        (np.percentile(x, levels), "these are the percentiles over all units: take the column x[:, unit]"),
        (np.percentile(x[unit], levels), "x[unit] is one sample (a row); one unit's values are the column x[:, unit]"),
        (np.percentile(column, [0.15, 0.5, 0.85]), "np.percentile takes levels in percent: 15, 50, 85 "
                                                   "(np.quantile takes 0.15, 0.5, 0.85)"),
        (np.array([column.mean() - column.std(), column.mean(), column.mean() + column.std()]),
         "these are the mean and mean ± std: they match the percentiles only for a normal distribution"),
        (expected[::-1], "the order is 15th, 50th, 85th (from low to high)"),
    ]
    try:
        got_array = np.asarray(got, dtype=np.float64)
    except NOT_NUMBERS:
        return feedback.fail(f"percentiles should return three numbers, got {type(got).__name__}", hint)
    if got_array.shape == (3,) and np.allclose(got_array, expected, rtol=0, atol=tolerance):
        return feedback.ok("the 15th, 50th and 85th percentiles of the unit's column are right")
    for value, why in wrong:
        if got_array.shape == np.shape(value) and np.allclose(got_array, value, rtol=0, atol=1e-9):
            return feedback.fail(why, hint)
    compare_arrays(feedback, "the percentiles", got_array, expected, rtol=0, atol=tolerance, hint=hint)
    return feedback
