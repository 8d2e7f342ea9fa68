"""Figure builders of notebook 06 (bnlab.plots.backward)."""

from __future__ import annotations

import numpy as np

from bnlab import plots


def _image(explorer):
    return bytes(explorer.image.value)


# ---------------------------------------------------------------- notebook 06: plots

def test_plot_bn_graph_has_every_node_and_edge():
    drawn = plots.plot_bn_graph(highlight=("mu", "var"))
    assert set(drawn["boxes"]) == set(plots.BN_GRAPH_NODES)
    assert len(drawn["arrows"]) == len(plots.BN_GRAPH_EDGES)
    assert "computational graph" in drawn["ax"].get_title()
    assert "dmu" in drawn["backward"]["xmu"].get_text()
    assert drawn["boxes"]["mu"].get_linewidth() > drawn["boxes"]["sq"].get_linewidth()
    assert plots.render_png(drawn["fig"])[:4] == b"\x89PNG"
    forward_only = plots.plot_bn_graph(backward=False)
    assert forward_only["backward"] == {}


def test_plot_batch_coupling_titles_labels_and_update():
    z = np.array([1.0, 2.0, 0.0, 1.0])
    drawn = plots.plot_batch_coupling(z, z, z, z, z, z, sample=2, feature=1, subtitles=("a", "b", "Σ dz = 0"))
    titles = [ax.get_title() for ax in drawn["axes"]]
    assert titles[0].startswith("input z, feature 1") and "Σ dz = 0" in titles[2]
    assert [ax.get_ylabel() for ax in drawn["axes"]] == ["z", "y", "dL/dz"]
    assert all(ax.get_xlabel() == "sample" for ax in drawn["axes"])
    changed = plots.update_batch_coupling(drawn, z * 10, z, z, z, z, z, sample=0, feature=3)
    assert changed  # the data left the first panel's limits
    assert drawn["axes"][0].get_ylim()[1] >= 20
    assert "feature 3" in drawn["titles"][0].get_text()
    np.testing.assert_allclose(drawn["dots"][0].get_offsets()[:, 1], z * 10)
