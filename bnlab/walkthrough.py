"""The seed walkthrough, computed with bnlab's functions.

``python -m bnlab`` prints it; ``walkthrough_text()`` returns the same text.
Each step's numbers are those the original NumPy walkthrough prints, with the
same rounding (``-0.`` from rounding a tiny negative mean prints as ``0.``:
the same number).
"""

from __future__ import annotations

import numpy as np

from .core import affine, batch_stats, normalize, update_running_stats
from .data import SEED_SCALE, SEED_SHIFT, seed_batch

__all__ = ["walkthrough_steps", "walkthrough_text"]


def _r(x, decimals):
    """Round for display; ``+ 0.0`` turns ``-0.`` into ``0.``."""
    return np.round(x, decimals) + 0.0


def walkthrough_steps():
    """All the arrays of the seed's five steps, computed with bnlab, as a dict."""
    seed = seed_batch()
    z, gamma, beta, eps = seed.z, seed.gamma, seed.beta, seed.eps
    mean, var = batch_stats(z)
    z_hat = normalize(z, mean, var, eps=eps)
    y = affine(z_hat, gamma, beta)
    z_hat_mean, z_hat_var = batch_stats(z_hat)

    z_shifted = (SEED_SCALE * z + SEED_SHIFT).astype(z.dtype)
    mean_s, var_s = batch_stats(z_shifted)
    z_hat_s = normalize(z_shifted, mean_s, var_s, eps=eps)
    y_s = affine(z_hat_s, gamma, beta)
    z_hat_s_mean, z_hat_s_var = batch_stats(z_hat_s)

    running_mean, running_var = update_running_stats(
        np.zeros_like(mean), np.ones_like(var), mean, var, seed.momentum, convention="keras"
    )
    return {
        "z": z, "gamma": gamma, "beta": beta, "eps": eps, "momentum": seed.momentum,
        "mean": mean, "var": var, "z_hat": z_hat, "y": y,
        "z_hat_mean": z_hat_mean, "z_hat_var": z_hat_var,
        "z_shifted": z_shifted, "mean_shifted": mean_s, "var_shifted": var_s,
        "z_hat_shifted": z_hat_s, "y_shifted": y_s,
        "z_hat_shifted_mean": z_hat_s_mean, "z_hat_shifted_var": z_hat_s_var,
        "running_mean": running_mean, "running_var": running_var,
    }


def walkthrough_text():
    """The seed's printout, line for line, from :func:`walkthrough_steps`."""
    s = walkthrough_steps()
    lines = [
        f"Pre-activation z (shape batch=4, features=3):\n {s['z']} \n",
        f"Batch mean (mu_B): {s['mean']}",
        f"Batch variance (var_B): {s['var']} \n",
        f"Normalized z (z_hat):\n {_r(s['z_hat'], 4)} \n",
        f"Mean(z_hat) per feature (≈0): {_r(s['z_hat_mean'], 6)}",
        f"Var(z_hat)  per feature (≈1): {_r(s['z_hat_var'], 6)} \n",
        f"gamma: {s['gamma']} beta: {s['beta']}",
        f"BatchNorm output y = gamma*z_hat + beta:\n {_r(s['y'], 4)} \n",
        f"After strong shift/scale (z' = {SEED_SCALE:g}*z + {SEED_SHIFT:g}):",
        f"mu_B': {s['mean_shifted']} var_B': {s['var_shifted']}",
        f"Normalized z' (z_hat'):\n {_r(s['z_hat_shifted'], 4)}",
        f"Mean(z_hat') per feature (≈0): {_r(s['z_hat_shifted_mean'], 6)}",
        f"Var(z_hat')  per feature (≈1): {_r(s['z_hat_shifted_var'], 6)}",
        f"Output y' with same gamma,beta:\n {_r(s['y_shifted'], 4)} \n",
        f"One-step running stats update (momentum={s['momentum']}):",
        f"running_mean: {_r(s['running_mean'], 6)}",
        f"running_var : {_r(s['running_var'], 6)}",
    ]
    return "\n".join(lines) + "\n"
