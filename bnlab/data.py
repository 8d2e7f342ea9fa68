"""Data for the notebooks: the seed batch and seeded random batches.

Nothing here downloads anything; randomness comes from an explicit
``np.random.default_rng`` generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SeedBatch", "seed_batch", "random_batch", "SEED_EPS", "SEED_MOMENTUM", "SEED_SHIFT", "SEED_SCALE"]

#: The seed walkthrough's eps and momentum (keras-style update).
SEED_EPS = 1e-5
SEED_MOMENTUM = 0.9
#: The seed's "strong shift/scale": z' = SEED_SCALE * z + SEED_SHIFT.
SEED_SCALE = 2.0
SEED_SHIFT = 10.0


@dataclass(frozen=True)
class SeedBatch:
    """The seed walkthrough's batch: 4 samples x 3 features, float32."""

    z: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    eps: float = SEED_EPS
    momentum: float = SEED_MOMENTUM

    def __iter__(self):
        # allows ``z, gamma, beta = seed_batch()``
        return iter((self.z, self.gamma, self.beta))


def seed_batch():
    """The seed's pre-activations ``z`` (4, 3) with its ``gamma`` and ``beta`` (3,), float32.

    Returns fresh arrays each call, so a notebook may modify them freely.
    Unpacks as ``z, gamma, beta = seed_batch()``; ``.eps`` and ``.momentum``
    hold the seed's 1e-5 and 0.9.

    Introduced in ``notebooks/01_batch_statistics.ipynb``.
    """
    z = np.array(
        [
            [1.0, 2.0, 3.0],
            [2.0, 0.0, 4.0],
            [0.0, -1.0, 2.0],
            [1.0, 1.0, 5.0],
        ],
        dtype=np.float32,
    )
    gamma = np.array([1.0, 0.5, 2.0], dtype=np.float32)
    beta = np.array([0.0, 1.0, -1.0], dtype=np.float32)
    return SeedBatch(z, gamma, beta)


def random_batch(rng, shape=(64, 3), loc=0.0, scale=1.0, dtype=np.float64):
    """A Gaussian batch ``loc + scale * N(0, 1)`` of the given shape.

    Parameters
    ----------
    rng : numpy.random.Generator
        Pass ``np.random.default_rng(seed)``; no global randomness.
    shape : tuple of int
    loc, scale : float or array broadcasting against ``shape`` (per-feature offsets and spreads)
    dtype : numpy dtype, default float64

    Returns
    -------
    z : ndarray of ``shape`` and ``dtype``
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator, e.g. np.random.default_rng(0)")
    return (np.asarray(loc) + np.asarray(scale) * rng.standard_normal(shape)).astype(dtype)
