"""Figures behind notebook 04: BN's output under z' = a·z + b, and where eps breaks the invariance."""

from __future__ import annotations

import numpy as np

from .theme import (
    PALETTE,
    feature_axis,
    feature_scatter_offsets,
    figure_for,
    finish_axes,
    fit_limits,
    padded_limits,
    style,
)

__all__ = ["plot_shift_scale", "update_shift_scale", "plot_invariance_gap"]


def plot_shift_scale(z, z_shifted, y, y_shifted, axes=None, scale=None, shift=None):
    """Three panels: ``z``, ``z' = a z + b`` and the BN outputs ``y`` (of z) and ``y'`` (of z').

    Parameters
    ----------
    z, z_shifted : ndarray, shape (N, D)
        The batch and its shifted/scaled copy.
    y, y_shifted : ndarray, shape (N, D)
        BN of ``z`` (drawn as open circles) and of ``z_shifted`` (dots): when
        the dots sit inside the circles, the output did not move.
    axes : sequence of 3 Axes, optional
        Default: a new figure (:func:`new_figure` with three columns).
    scale, shift : float, optional
        ``a`` and ``b``, written in the middle panel's title.

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, the scatter collections ``"z"``,
        ``"z_shifted"``, ``"y"``, ``"y_shifted"``, the middle title
        ``"shift_title"`` and the text ``"gap_text"`` (max |y' - y|).

    Introduced in ``notebooks/04_shift_scale_invariance.ipynb``.
    """
    fig, axes = figure_for(axes, 3, width=13.5, height=4.2)
    ax_z, ax_s, ax_y = axes
    drawn = {"fig": fig, "axes": list(axes)}
    with style():
        for key, ax, values in (("z", ax_z, z), ("z_shifted", ax_s, z_shifted)):
            offsets, colors = feature_scatter_offsets(values)
            drawn[key] = ax.scatter(offsets[:, 0], offsets[:, 1], c=colors, s=70, zorder=3)
        offsets, colors = feature_scatter_offsets(y)
        drawn["y"] = ax_y.scatter(offsets[:, 0], offsets[:, 1], s=260, facecolors="none",
                                  edgecolors=colors, linewidths=2.0, zorder=2, label="y = BN(z)")
        offsets, colors = feature_scatter_offsets(y_shifted)
        drawn["y_shifted"] = ax_y.scatter(offsets[:, 0], offsets[:, 1], c=colors, s=60, zorder=3,
                                          label="y' = BN(z')")
        d = np.shape(z)[1]
        for ax in axes:
            feature_axis(ax, d)
        finish_axes(ax_z, "input z", "feature", "value")
        finish_axes(ax_s, _shift_title(scale, shift), "feature", "value")
        # z' spans decades as a moves: the label keeps room for six-character ticks (10.002)
        # whatever the first ones were, so the layout (frozen after the first draw) holds them
        ax_s.yaxis.set_label_coords(-0.21, 0.5)
        finish_axes(ax_y, "BN output: y (○) and y' (●)", "feature", "value")
        drawn["shift_title"] = ax_s.title
        ax_z.set_ylim(*padded_limits(z))
        ax_s.set_ylim(*padded_limits(z_shifted))
        flipped = 2 * np.mean(y, axis=0) - np.asarray(y)  # where y' lands for a negative a
        ax_y.set_ylim(*padded_limits(np.concatenate([np.ravel(y), np.ravel(flipped)]), pad=0.3))
        drawn["gap_text"] = ax_y.text(
            0.02, 0.02, _gap_text(y, y_shifted), transform=ax_y.transAxes, va="bottom", ha="left",
            fontsize=12, bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85,
                               "edgecolor": PALETTE["grey"]}, zorder=5)
    return drawn


def _shift_title(scale, shift):
    if scale is None or shift is None:
        return "shifted and scaled z' = a·z + b"
    return f"z' = {scale:.4g}·z {'+' if shift >= 0 else '−'} {abs(shift):.4g}"


def _gap_text(y, y_shifted, extra=""):
    gap = float(np.max(np.abs(np.asarray(y_shifted, np.float64) - np.asarray(y, np.float64))))
    return f"max |y' − y| = {gap:.2g}" + (f"\n{extra}" if extra else "")


def update_shift_scale(drawn, z, z_shifted, y, y_shifted, scale=None, shift=None, extra=""):
    """Update a :func:`plot_shift_scale` figure in place (limits change only when data leave them).

    Returns True when some axes' limits changed (then the whole figure needs a redraw).

    Introduced in ``notebooks/04_shift_scale_invariance.ipynb``.
    """
    for key, values in (("z", z), ("z_shifted", z_shifted), ("y", y), ("y_shifted", y_shifted)):
        offsets, colors = feature_scatter_offsets(values)
        collection = drawn[key]
        collection.set_offsets(offsets)
        if key == "y":
            collection.set_edgecolors(colors)
        else:
            collection.set_facecolors(colors)
    ax_z, ax_s, ax_y = drawn["axes"]
    changed = False
    d = np.shape(z)[1]
    if ax_z.get_xlim() != (-0.6, d - 0.4):
        for ax in drawn["axes"]:
            feature_axis(ax, d)
        changed = True
    changed |= fit_limits(ax_z, z)
    changed |= fit_limits(ax_s, z_shifted, pad=0.4, shrink=0.1)  # generous: |a| spans decades
    flipped = 2 * np.mean(y, axis=0) - np.asarray(y)
    changed |= fit_limits(ax_y, np.concatenate([np.ravel(y), np.ravel(flipped), np.ravel(y_shifted)]),
                          pad=0.3, shrink=0.3)
    drawn["shift_title"].set_text(_shift_title(scale, shift))
    drawn["gap_text"].set_text(_gap_text(y, y_shifted, extra))
    return changed


def plot_invariance_gap(scales, gaps, ax=None, eps=None, var=None):
    """How far BN's output moves when its input is scaled by ``a``: max |y' - y| against ``|a|``.

    Parameters
    ----------
    scales : ndarray, shape (K,)
        Positive scales ``a`` (log axis).
    gaps : ndarray, shape (K,)
        ``max |BN(a z + b) - BN(z)|`` for each scale.
    ax : Axes, optional
    eps, var : float, optional
        When given, a vertical line marks the scale where ``a**2 * var == eps``
        (below it eps dominates and the output collapses towards beta).

    Returns
    -------
    drawn : dict with ``"fig"``, ``"ax"``, ``"line"`` (and ``"marker"`` when eps and var are given)

    Introduced in ``notebooks/04_shift_scale_invariance.ipynb``.
    """
    fig, ax = figure_for(ax, 1, width=7.5, height=4.4)
    scales = np.asarray(scales, dtype=np.float64)
    gaps = np.asarray(gaps, dtype=np.float64)
    drawn = {"fig": fig, "ax": ax}
    with style():
        # a gap of exactly 0 (a = 1) cannot be drawn on a log axis: leave it out
        (drawn["line"],) = ax.loglog(scales, np.where(gaps > 0, gaps, np.nan), marker="o",
                                     color=PALETTE["blue"],
                                     label="max |y' − y|")
        ax.axvline(1.0, color=PALETTE["grey"], linestyle=":", linewidth=1.5, label="a = 1 (only a shift)")
        if eps is not None and var is not None:
            critical = float(np.sqrt(eps / var))
            drawn["marker"] = ax.axvline(critical, color=PALETTE["vermillion"], linestyle="--",
                                         label=f"a² · var = eps (a ≈ {critical:.1g})")
        finish_axes(ax, "BN ignores a, until a² · var comes near eps",
                    "scale a (z' = a·z + b)", "max |y' − y|", legend=True)
    return drawn
