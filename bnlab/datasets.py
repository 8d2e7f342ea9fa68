"""Small real datasets that ship inside an installed package (no download).

``load_digits_split`` gives scikit-learn's 8x8 handwritten digits (1,797
images, 10 classes; the data file is inside scikit-learn's wheel), scaled to
[0, 1] and split into train and test sets with an explicit seed. It is the
scaled-down stand-in for MNIST in the BN paper's Figure 1 (see
:mod:`bnlab.train`). ``load_digits_images`` gives the same split as images,
``(N, 1, 8, 8)``, for convolutional networks.

``shift_digits`` makes deterministic distribution shifts of such images
(contrast, brightness, noise, inversion) for the AdaBN experiment of
notebook 10.

Introduced in ``notebooks/07_training_with_bn.ipynb``.
"""

from __future__ import annotations

import functools
import numbers
from typing import NamedTuple

import numpy as np

from . import _validate as v
from .layers import as_rng

__all__ = ["DigitsSplit", "load_digits_split", "load_digits_images", "DIGITS_MAX_PIXEL", "DIGITS_IMAGE_SHAPE",
           "SHIFT_KINDS", "shift_digits"]

#: load_digits' pixels are integers 0..16 (counts of set pixels in 4x4 blocks).
DIGITS_MAX_PIXEL = 16.0
#: One digit as an image, channels first: (channels, height, width).
DIGITS_IMAGE_SHAPE = (1, 8, 8)


class DigitsSplit(NamedTuple):
    """Train/test split of the digits; unpacks as ``x_train, y_train, x_test, y_test``.

    Attributes
    ----------
    x_train : ndarray, shape (N_train, 64), float64 in [0, 1]
        (N_train, 1, 8, 8) from :func:`load_digits_images`.
    y_train : ndarray, shape (N_train,), int64 in 0..9
    x_test : ndarray, shape (N_test, 64), float64 in [0, 1]
        (N_test, 1, 8, 8) from :func:`load_digits_images`.
    y_test : ndarray, shape (N_test,), int64 in 0..9
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_features(self):
        """Values per sample: 64 (an image's pixels, whatever its layout)."""
        return int(np.prod(self.x_train.shape[1:], dtype=np.int64))

    @property
    def num_classes(self):
        return int(max(self.y_train.max(), self.y_test.max())) + 1


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    """The raw digits (read once per process; callers get copies)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "load_digits_split needs scikit-learn (it ships the digits data, no download): "
            "pip install scikit-learn  (or pip install 'bnlab[train]')"
        ) from exc
    digits = load_digits()
    x = np.asarray(digits.data, dtype=np.float64)
    y = np.asarray(digits.target, dtype=np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def load_digits_split(rng=0, test_fraction=0.2):
    """scikit-learn's digits, scaled to [0, 1], with a seeded stratified train/test split.

    Parameters
    ----------
    rng : int or numpy.random.Generator, default 0
        Seed (or generator) of the split. The same seed always gives the same
        split.
    test_fraction : float in (0, 1), default 0.2
        Share of each class held out for testing (rounded per class, so the
        classes keep their proportions: 0.2 gives 1,438 train and 359 test
        images).

    Returns
    -------
    DigitsSplit
        ``x_train`` (N_train, 64), ``y_train`` (N_train,), ``x_test``
        (N_test, 64), ``y_test`` (N_test,); float64 features ``pixel / 16``,
        int64 labels. Fresh arrays each call. Each part is in random order.

    Raises
    ------
    ImportError
        If scikit-learn is not installed (it holds the data file).

    Introduced in ``notebooks/07_training_with_bn.ipynb``.
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real):
        raise TypeError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction!r}")
    rng = as_rng(rng)
    x, y = _digits_arrays()
    train_idx, test_idx = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = round(test_fraction * len(members))
        if n_test == 0 or n_test == len(members):
            raise ValueError(
                f"test_fraction={test_fraction!r} leaves class {label} with an empty train or test part; "
                "use a value nearer 0.5"
            )
        test_idx.append(members[:n_test])
        train_idx.append(members[n_test:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    scale = 1.0 / DIGITS_MAX_PIXEL
    return DigitsSplit(x[train_idx] * scale, y[train_idx].copy(), x[test_idx] * scale, y[test_idx].copy())


#: The distribution shifts :func:`shift_digits` makes: kind -> (formula, default strength).
SHIFT_KINDS = {
    "contrast": ("a * x (a > 0; a < 1 lowers the contrast)", 0.5),
    "brightness": ("x + b", 0.3),
    "contrast_brightness": ("a * x + b, strength (a, b) with a > 0", (0.5, 0.3)),
    "noise": ("x + N(0, s^2) per pixel, s >= 0", 0.3),
    "invert": ("(1 - s) * x + s * (1 - x), s in [0, 1]; s = 1 is the negative 1 - x", 1.0),
}


def _finite_real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def shift_digits(x, kind, strength=None, rng=0):
    """A deterministic distribution shift of digit images (the test set of another "domain").

    Parameters
    ----------
    x : ndarray, shape (N, 64) or any
        Images with pixels in [0, 1], as from :func:`load_digits_split`.
        Not modified.
    kind : {"contrast", "brightness", "contrast_brightness", "noise", "invert"}
        See Notes and :data:`SHIFT_KINDS`.
    strength : float, or (a, b) for "contrast_brightness", optional
        Default: the kind's (contrast 0.5, brightness 0.3, contrast_brightness
        (0.5, 0.3), noise 0.3, invert 1.0).
    rng : int or numpy.random.Generator, default 0
        Source of the noise (the other kinds draw nothing); the same seed
        gives the same noisy images.

    Returns
    -------
    x_shifted : ndarray, same shape as ``x``
        Same dtype for float input (float64 for int). Not clipped to
        [0, 1]: a contrast or brightness change stays an exact affine map of
        the pixels, which is what BN's statistics can undo.

    Notes
    -----
    .. math::
        \\text{contrast: } a x \\qquad \\text{brightness: } x + b \\qquad
        \\text{contrast\\_brightness: } a x + b \\qquad
        \\text{noise: } x + s\\,\\varepsilon,\\ \\varepsilon \\sim N(0, 1) \\qquad
        \\text{invert: } (1 - s)\\, x + s\\,(1 - x)

    Contrast and brightness move each pixel's mean and variance (the first
    two moments, which re-estimated BN statistics absorb: AdaBN); noise adds
    variance and destroys detail; inversion swaps ink and paper, a change of
    structure that no per-feature statistic repairs.

    Introduced in notebook 10 (``notebooks/10_inference.ipynb``).
    """
    x = v.as_float_array("x", x)
    if x.size == 0:
        raise ValueError(f"x is empty (shape {x.shape}); there is nothing to shift")
    v.check_finite("x", x)
    if not isinstance(kind, str) or kind not in SHIFT_KINDS:
        raise ValueError(f"kind must be one of {sorted(SHIFT_KINDS)}, got {kind!r}")
    rng = as_rng(rng)
    if strength is None:
        strength = SHIFT_KINDS[kind][1]
    if kind == "contrast_brightness":
        try:
            a, b = strength
        except (TypeError, ValueError):
            raise TypeError(
                f"strength for kind 'contrast_brightness' must be a pair (a, b) giving a * x + b, "
                f"got {strength!r}"
            ) from None
        a, b = _finite_real("strength's a", a), _finite_real("strength's b", b)
    else:
        a = b = _finite_real(f"strength for kind {kind!r}", strength)
    if kind in ("contrast", "contrast_brightness") and a <= 0:
        raise ValueError(
            f"the contrast factor a must be positive (a <= 0 erases or inverts the image; "
            f"use kind='invert'), got {a!r}"
        )
    if kind == "noise" and b < 0:
        raise ValueError(f"strength for kind 'noise' is a standard deviation and must be >= 0, got {b!r}")
    if kind == "invert" and not 0 <= b <= 1:
        raise ValueError(
            f"strength for kind 'invert' must be in [0, 1] (1 is the full negative 1 - x), got {b!r}"
        )
    if kind == "contrast":
        return x * x.dtype.type(a)
    if kind == "brightness":
        return x + x.dtype.type(b)
    if kind == "contrast_brightness":
        return x * x.dtype.type(a) + x.dtype.type(b)
    if kind == "noise":
        return x + (b * rng.standard_normal(x.shape)).astype(x.dtype)
    return x + x.dtype.type(b) * (1 - 2 * x)  # invert
def load_digits_images(rng=0, test_fraction=0.2):
    """The digits split of :func:`load_digits_split` as images, channels first.

    Parameters
    ----------
    rng : int or numpy.random.Generator, default 0
        Seed (or generator) of the split; the same seed gives the same split
        as :func:`load_digits_split` (the same images in the same order).
    test_fraction : float in (0, 1), default 0.2

    Returns
    -------
    DigitsSplit
        ``x_train`` (N_train, 1, 8, 8), ``y_train`` (N_train,), ``x_test``
        (N_test, 1, 8, 8), ``y_test`` (N_test,); float64 pixels / 16, int64
        labels. Row ``i`` of an image is pixels ``8 i .. 8 i + 7`` of the
        flat split.

    Introduced in notebook 08 (BN in convolutional networks).
    """
    x_train, y_train, x_test, y_test = load_digits_split(rng, test_fraction)
    return DigitsSplit(x_train.reshape((-1,) + DIGITS_IMAGE_SHAPE), y_train,
                       x_test.reshape((-1,) + DIGITS_IMAGE_SHAPE), y_test)
