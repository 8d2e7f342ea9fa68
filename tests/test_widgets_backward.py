"""Explorer of notebook 06 (bnlab.widgets.backward), driven from Python."""

from __future__ import annotations

import ipywidgets
import numpy as np
import pytest

import bnlab
from bnlab import widgets


def _image(explorer):
    return bytes(explorer.image.value)


# ---------------------------------------------------------------- notebook 06: batch coupling

@pytest.fixture
def coupling():
    return widgets.BatchCouplingExplorer()


def test_coupling_defaults_are_the_seed_batch(coupling):
    e = coupling
    z, gamma, beta = (x.astype(np.float64) for x in bnlab.seed_batch())
    np.testing.assert_allclose(e.z, z)
    np.testing.assert_allclose(e.gamma, gamma)
    np.testing.assert_allclose(e.beta, beta)
    y, _ = bnlab.batchnorm_forward(z, gamma, beta, eps=1e-5)
    np.testing.assert_allclose(e.y_ref, y)
    assert (e.sample, e.feature, e.nudge, e.shift) == (1, 0, 1.0, 0.0)
    expected = z.copy()
    expected[1, 0] += 1.0
    np.testing.assert_allclose(e.z_now, expected)
    assert e.dy.shape == (4, 3) and np.std(e.dy) > 0.3  # random, not all ones
    np.testing.assert_allclose(e.sum_dz, 0, atol=1e-12)
    assert np.abs(e.sum_dz_z_hat).max() < 1e-3 * np.abs(e.dz).max()
    assert e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert e.error is None and e.message.value == ""
    assert isinstance(e.widget, ipywidgets.VBox)
    assert "<table" in e.table.value


def test_coupling_gradient_is_the_numerical_gradient_of_the_loss(coupling):
    e = coupling

    def output(z):
        return bnlab.batchnorm_forward(z, e.gamma, e.beta, eps=e.eps)[0]

    numeric = bnlab.numerical_gradient(output, e.z_now.copy(), e.dy)
    assert bnlab.rel_error(e.dz, numeric) < 1e-7
    assert e.loss == pytest.approx(float(np.sum(e.dy * output(e.z_now))))


def test_nudge_moves_every_sample(coupling):
    e = coupling
    e.nudge_slider.value = 0.0
    np.testing.assert_allclose(e.y, e.y_ref)
    assert e.max_other_change == 0.0
    before = _image(e)
    e.nudge_slider.value = -2.0
    assert e.nudge == -2.0
    changed = np.abs(e.z_now - e.z) > 0
    assert changed.sum() == 1 and changed[e.sample, e.feature]
    # every sample's output and gradient in that feature moved, the other features did not
    assert np.all(np.abs(e.y[:, 0] - e.y_ref[:, 0]) > 1e-3)
    assert np.all(np.abs(e.dz[:, 0] - e.dz_ref[:, 0]) > 1e-6)
    np.testing.assert_allclose(e.y[:, 1:], e.y_ref[:, 1:])
    assert e.max_other_change > 0.1
    np.testing.assert_allclose(e.sum_dz, 0, atol=1e-12)
    assert _image(e) != before
    assert "-2.00" in e.drawn["titles"][0].get_text()


def test_small_nudge_changes_the_loss_as_the_gradient_predicts(coupling):
    e = coupling
    e.nudge_slider.value = 0.05
    assert e.loss - e.loss_ref == pytest.approx(e.predicted_change, rel=0.1)
    assert e.predicted_change == pytest.approx(e.dz_ref[e.sample, e.feature] * 0.05)


def test_shift_of_every_sample_moves_nothing_after_bn(coupling):
    e = coupling
    e.nudge_slider.value = 0.0
    before = _image(e)
    e.shift_slider.value = 4.0
    np.testing.assert_allclose(e.z_now[:, 0], e.z[:, 0] + 4.0)
    np.testing.assert_allclose(e.y, e.y_ref, atol=1e-9)
    np.testing.assert_allclose(e.dz, e.dz_ref, atol=1e-9)
    assert e.loss == pytest.approx(e.loss_ref, abs=1e-10)
    assert _image(e) != before  # the input panel moved
    assert "+4.0" in e.drawn["titles"][0].get_text()


def test_sample_and_feature_sliders(coupling):
    e = coupling
    e.feature_slider.value = 2
    assert e.feature == 2
    assert "feature 2" in e.drawn["titles"][0].get_text()
    assert e.z_now[e.sample, 2] == e.z[e.sample, 2] + e.nudge
    before = _image(e)
    e.sample_slider.value = 3
    assert e.sample == 3
    assert e.z_now[3, 2] == e.z[3, 2] + e.nudge
    assert _image(e) != before


@pytest.mark.parametrize("text, words", [
    ("1, 2\n3, 4\n5, 6, 7", "different numbers of values"),
    ("1, 2\nthree, 4", "not a number"),
    ("1, 2, 3", "at least 2 samples"),
    ("1, nan\n2, 3", "finite"),
    ("\n".join(["1, 2"] * 17), "at most 16"),
])
def test_coupling_bad_batch_shows_message_keeps_state(coupling, text, words):
    e = coupling
    z, before = e.z.copy(), _image(e)
    e.batch_text.value = text
    assert e.error is not None and words in e.error
    assert words in e.message.value
    np.testing.assert_allclose(e.z, z)
    assert _image(e) == before
    e.batch_text.value = widgets.format_batch(z)  # a valid batch clears the message
    assert e.error is None and e.message.value == ""


def test_coupling_typed_batch_resizes_the_sliders(coupling):
    e = coupling
    e.sample_slider.value = 3
    e.feature_slider.value = 2
    e.batch_text.value = "0, 1\n2, 5\n4, 2"
    assert e.error is None
    assert e.z.shape == (3, 2) and e.dy.shape == (3, 2)
    assert e.sample_slider.max == 2 and e.feature_slider.max == 1
    assert (e.sample, e.feature) == (2, 1)  # clamped
    np.testing.assert_allclose(e.gamma, 1.0)
    np.testing.assert_allclose(e.beta, 0.0)
    np.testing.assert_allclose(e.sum_dz, 0, atol=1e-12)
    e.batch_text.value = "\n".join(f"{i}, {i * i}" for i in range(10))
    assert e.sample_slider.max == 9 and e.z.shape == (10, 2)
    assert len(e.drawn["dots"][0].get_offsets()) == 10


def test_coupling_custom_batch():
    rng = np.random.default_rng(3)
    e = widgets.BatchCouplingExplorer(z=rng.normal(size=(8, 4)), gamma=np.full(4, 2.0), beta=np.ones(4))
    assert e.z.shape == (8, 4) and e.feature_slider.max == 3 and e.sample_slider.max == 7
    np.testing.assert_allclose(e.gamma, 2.0)
    np.testing.assert_allclose(e.y_ref.mean(axis=0), 1.0, atol=1e-9)


def test_coupling_describes_its_figure_with_its_numbers():
    e = widgets.BatchCouplingExplorer()
    e.nudge_slider.value = -2.0
    text = e.describe()
    assert "Sample 1 is nudged by δ = -2.00" in text and f"at most {e.max_other_change:.3f}" in text
    assert e.image.tooltip == text
