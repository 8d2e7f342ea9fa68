"""Figures behind notebook 06: BN's computational graph and how one sample moves the batch's gradients."""

from __future__ import annotations

import numpy as np

from .theme import PALETTE, figure_for, finish_axes, fit_limits, padded_limits, style

__all__ = [
    "BN_GRAPH_NODES", "BN_GRAPH_EDGES", "plot_bn_graph", "COUPLING_TITLES",
    "plot_batch_coupling", "update_batch_coupling",
]


#: BN's computational graph, node by node: name -> (x, y, label, forward formula, backward rule).
#: The backward rule says what the node sends back to its inputs (Σ sums over the batch).
BN_GRAPH_NODES = {
    "z": (0.0, 1.0, "z", "input, (N, D)", "dz = dxmu + dmu / N"),
    "mu": (2.75, 2.7, "mu", "mean(z)", "dz += dmu / N"),
    "xmu": (5.5, 1.0, "xmu", "z − mu", "dz = dxmu\ndmu = −Σ dxmu"),
    "sq": (5.5, -0.75, "sq", "xmu²", "dxmu += 2·xmu·dsq"),
    "var": (8.25, -0.75, "var", "mean(sq)", "dsq = dvar / N"),
    "std": (11.0, -0.75, "std", "√(var + ε)", "dvar = dstd / (2·std)"),
    "inv_std": (13.75, -0.75, "inv_std", "1 / std", "dstd = −dinv_std / std²"),
    "z_hat": (13.75, 1.0, "z_hat", "xmu · inv_std", "dxmu = dz_hat·inv_std\ndinv_std = Σ dz_hat·xmu"),
    "gamma": (16.5, 2.7, "gamma", "scale, (D,)", "dgamma = Σ dy·z_hat"),
    "beta": (19.25, 2.7, "beta", "shift, (D,)", "dbeta = Σ dy"),
    "y": (17.9, 1.0, "y", "gamma·z_hat + beta", "dz_hat = dy·gamma"),
}
#: Edges of :data:`BN_GRAPH_NODES` (from, to), in forward order.
BN_GRAPH_EDGES = [("z", "mu"), ("z", "xmu"), ("mu", "xmu"), ("xmu", "sq"), ("sq", "var"), ("var", "std"),
                  ("std", "inv_std"), ("inv_std", "z_hat"), ("xmu", "z_hat"), ("z_hat", "y"),
                  ("gamma", "y"), ("beta", "y")]


def plot_bn_graph(ax=None, backward=True, highlight=()):
    """BN's computational graph: one box per node, forward formula in black, backward rule in colour.

    Parameters
    ----------
    ax : Axes, optional
        Default: a new wide figure.
    backward : bool, default True
        Write each node's backward rule (what it sends back to its inputs)
        under its forward formula.
    highlight : iterable of str
        Nodes drawn with a thicker, coloured border (e.g. ``("mu", "var")``,
        the two nodes that couple the samples of a batch).

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"ax"``, ``"boxes"`` (node name -> FancyBboxPatch),
        ``"forward"`` and ``"backward"`` (node name -> Text) and ``"arrows"``
        (list of FancyArrowPatch, in :data:`BN_GRAPH_EDGES` order).

    Notes
    -----
    Forward, node by node: ``mu = mean(z)``, ``xmu = z - mu``, ``sq = xmu**2``,
    ``var = mean(sq)``, ``std = sqrt(var + eps)``, ``inv_std = 1 / std``,
    ``z_hat = xmu * inv_std``, ``y = gamma * z_hat + beta``. A node with two
    outgoing edges (``z``, ``xmu``) adds up the gradients coming back along
    both. :func:`bnlab.batchnorm_backward_graph` runs exactly these steps.

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = figure_for(ax, 1, width=14.5, height=5.6)
    highlight = set(highlight)
    width, height = 2.5, 1.35
    drawn = {"fig": fig, "ax": ax, "boxes": {}, "forward": {}, "backward": {}, "arrows": []}
    with style():
        for name, (x, y, label, formula, rule) in BN_GRAPH_NODES.items():
            is_input = name in ("z", "gamma", "beta")
            edge = PALETTE["vermillion"] if name in highlight else PALETTE["black"]
            box = FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                 boxstyle="round,pad=0.02,rounding_size=0.15",
                                 facecolor="#EAF3FA" if is_input else "white", edgecolor=edge,
                                 linewidth=3.0 if name in highlight else 1.4, zorder=2)
            ax.add_patch(box)
            drawn["boxes"][name] = box
            top = y + (0.38 if backward else 0.15)
            ax.text(x, top, label, ha="center", va="center", fontsize=12, fontweight="bold", zorder=3)
            drawn["forward"][name] = ax.text(x, top - 0.32, formula, ha="center", va="center",
                                             fontsize=10.5, zorder=3)
            if backward:
                drawn["backward"][name] = ax.text(x, y - 0.36, rule, ha="center", va="center",
                                                  fontsize=9, color=PALETTE["vermillion"], zorder=3,
                                                  linespacing=1.15)
        for start, end in BN_GRAPH_EDGES:
            arrow = FancyArrowPatch(posA=BN_GRAPH_NODES[start][:2], posB=BN_GRAPH_NODES[end][:2],
                                    patchA=drawn["boxes"][start], patchB=drawn["boxes"][end],
                                    arrowstyle="-|>", mutation_scale=16, linewidth=1.6,
                                    color=PALETTE["blue"], zorder=1, shrinkA=2, shrinkB=2)
            ax.add_patch(arrow)
            drawn["arrows"].append(arrow)
        ax.set_xlim(-1.4, 20.65)
        ax.set_ylim(-1.55, 3.5)
        ax.set_aspect("auto")
        finish_axes(ax, "BN's computational graph: forward (blue arrows, black formulas) and "
                        "backward (vermillion)" if backward else "BN's computational graph", "", "")
        ax.set_axis_off()
        ax.text(-1.2, -0.1, "Σ: sum over the N samples\nof the batch (per feature)", fontsize=10,
                color=PALETTE["grey"], va="top")
    return drawn


def _lollipop_segments(values):
    values = np.asarray(values, dtype=np.float64)
    x = np.arange(values.shape[0], dtype=np.float64)
    return np.stack([np.column_stack([x, np.zeros_like(values)]), np.column_stack([x, values])], axis=1)


def _coupling_colors(n, sample):
    return [PALETTE["vermillion"] if i == sample else PALETTE["blue"] for i in range(n)]


#: Titles of the three panels of :func:`plot_batch_coupling` (``{feature}`` is filled in).
COUPLING_TITLES = ("input z, feature {feature}", "output y = BN(z)", "gradient dL/dz")


def _coupling_title(i, feature, subtitle):
    title = COUPLING_TITLES[i].format(feature=feature)
    return f"{title}\n{subtitle}" if subtitle else title


def plot_batch_coupling(z, y, dz, z_ref, y_ref, dz_ref, sample=0, feature=0, axes=None,
                        subtitles=("", "", "")):
    """One feature of a batch before and after nudging one sample: its input, BN output and gradient.

    Each panel is a lollipop chart with one stem per sample: the nudged
    sample in vermillion, the others in blue, and the values before the
    nudge as open black circles. A nudge of one sample's ``z`` moves the
    batch mean and variance, so every sample's ``y`` and ``dL/dz`` move.

    Parameters
    ----------
    z, y, dz : ndarray, shape (N,)
        The feature's input, BN output and input gradient now.
    z_ref, y_ref, dz_ref : ndarray, shape (N,)
        The same before the nudge.
    sample : int
        The nudged sample (highlighted).
    feature : int
        Written in the first panel's title.
    axes : sequence of 3 Axes, optional
        Default: a new figure with three columns.
    subtitles : tuple of 3 str
        Second lines of the panels' titles (e.g. ``"Σ dz = 0"``).

    Returns
    -------
    drawn : dict
        ``"fig"``, ``"axes"``, and per panel (lists of 3): ``"stems"``
        (LineCollection), ``"dots"`` and ``"refs"`` (PathCollection) and
        ``"titles"`` (Text).

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    from matplotlib.collections import LineCollection

    fig, axes = figure_for(axes, 3, width=13.5, height=4.3)
    n = np.shape(z)[0]
    colors = _coupling_colors(n, sample)
    drawn = {"fig": fig, "axes": list(axes), "stems": [], "dots": [], "refs": [], "titles": []}
    ylabels = ("z", "y", "dL/dz")
    with style():
        for i, (ax, now, ref, ylabel) in enumerate(zip(axes, (z, y, dz), (z_ref, y_ref, dz_ref), ylabels)):
            stems = LineCollection(_lollipop_segments(now), colors=colors, linewidths=3.0, zorder=2)
            ax.add_collection(stems)
            x = np.arange(n)
            dots = ax.scatter(x, now, c=colors, s=70, zorder=3)
            refs = ax.scatter(x, ref, s=150, facecolors="none", edgecolors=PALETTE["black"],
                              linewidths=1.5, zorder=4)
            ax.axhline(0.0, color=PALETTE["grey"], linewidth=1.0, zorder=1)
            ax.set_xlim(-0.6, n - 0.4)
            ax.set_xticks(range(n))
            ax.grid(False, axis="x")
            ax.set_ylim(*padded_limits(np.concatenate([np.ravel(now), np.ravel(ref), [0.0]]), pad=0.35))
            finish_axes(ax, _coupling_title(i, feature, subtitles[i] or " "), "sample", ylabel)
            ax.yaxis.set_label_coords(-0.15, 0.5)  # room for wider tick labels when the limits change
            drawn["stems"].append(stems)
            drawn["dots"].append(dots)
            drawn["refs"].append(refs)
            drawn["titles"].append(ax.title)
    return drawn


def update_batch_coupling(drawn, z, y, dz, z_ref, y_ref, dz_ref, sample=0, feature=0, subtitles=("", "", ""),
                          fit=None):
    """Update a :func:`plot_batch_coupling` figure in place.

    Limits change only when the data leave them (or the batch size changed).
    ``fit``, a tuple of three arrays of any shape, gives more values each
    panel's limits must hold (e.g. every feature's, so that switching the
    feature keeps the limits and the redraw fast). Returns True when some
    axes' limits changed.

    Introduced in ``notebooks/06_backward_pass.ipynb``.
    """
    n = np.shape(z)[0]
    colors = _coupling_colors(n, sample)
    changed = False
    x = np.arange(n, dtype=np.float64)
    for i, (now, ref) in enumerate(((z, z_ref), (y, y_ref), (dz, dz_ref))):
        ax = drawn["axes"][i]
        drawn["stems"][i].set_segments(_lollipop_segments(now))
        drawn["stems"][i].set_colors(colors)
        drawn["dots"][i].set_offsets(np.column_stack([x, now]))
        drawn["dots"][i].set_facecolors(colors)
        drawn["refs"][i].set_offsets(np.column_stack([x, ref]))
        if ax.get_xlim() != (-0.6, n - 0.4):
            ax.set_xlim(-0.6, n - 0.4)
            ax.set_xticks(range(n))
            changed = True
        extra = np.ravel(fit[i]) if fit is not None else np.empty(0)
        changed |= fit_limits(ax, np.concatenate([np.ravel(now), np.ravel(ref), extra, [0.0]]), pad=0.35,
                              shrink=0.2)
        drawn["titles"][i].set_text(_coupling_title(i, feature, subtitles[i] or " "))
    return changed
