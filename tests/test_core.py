"""The core API, function by function, against formulas written out in the test."""

from __future__ import annotations

import numpy as np
import pytest

import bnlab
from bnlab import (
    CONVENTIONS,
    affine,
    batch_stats,
    batchnorm_backward,
    batchnorm_backward_graph,
    batchnorm_forward,
    get_convention,
    normalize,
    numerical_gradient,
    rel_error,
    update_running_stats,
)


@pytest.fixture
def rng():
    return np.random.default_rng(20150211)


# --- public names ---------------------------------------------------------------------------------


def test_public_api_names():
    for name in (
        "batch_stats",
        "normalize",
        "affine",
        "batchnorm_forward",
        "batchnorm_backward",
        "update_running_stats",
        "BatchNorm",
        "rel_error",
        "numerical_gradient",
    ):
        assert name in bnlab.__all__
        assert callable(getattr(bnlab, name))


def test_public_functions_have_numpydoc_docstrings():
    for func in (
        batch_stats,
        normalize,
        affine,
        batchnorm_forward,
        batchnorm_backward,
        batchnorm_backward_graph,
        update_running_stats,
        rel_error,
        numerical_gradient,
    ):
        doc = func.__doc__ or ""
        assert "Parameters" in doc and "Returns" in doc, func.__name__


# --- batch_stats ----------------------------------------------------------------------------------


def test_batch_stats_dense(rng):
    z = rng.normal(3.0, 2.0, size=(50, 4))
    mean, var = batch_stats(z)
    assert mean.shape == var.shape == (4,)
    np.testing.assert_allclose(mean, z.sum(axis=0) / 50, rtol=1e-13)
    np.testing.assert_allclose(var, ((z - z.sum(axis=0) / 50) ** 2).sum(axis=0) / 50, rtol=1e-12)


def test_batch_stats_is_population_variance_not_unbiased():
    z = np.array([[0.0], [2.0]])
    mean, var = batch_stats(z)
    assert mean[0] == 1.0
    assert var[0] == 1.0  # ((0-1)^2 + (2-1)^2) / 2, not / 1


def test_batch_stats_conv_axes(rng):
    z = rng.normal(-1.0, 0.5, size=(3, 5, 4, 2))
    mean, var = batch_stats(z, axis=(0, 2, 3))
    assert mean.shape == var.shape == (5,)
    per_channel = z.transpose(1, 0, 2, 3).reshape(5, -1)  # every value of a channel, m = 3*4*2
    np.testing.assert_allclose(mean, per_channel.mean(axis=1), rtol=1e-13)
    np.testing.assert_allclose(var, per_channel.var(axis=1), rtol=1e-12)


def test_batch_stats_axis_forms_agree(rng):
    z = rng.normal(size=(6, 3, 2, 2))
    for axis in ((0, 2, 3), (3, 0, 2), (-4, -2, -1), [0, 2, 3], np.array([0, 2, 3])):
        mean, var = batch_stats(z, axis=axis)
        assert mean.shape == (3,)
        np.testing.assert_allclose(var, z.var(axis=(0, 2, 3)), rtol=1e-12)


def test_batch_stats_other_axis(rng):
    z = rng.normal(size=(4, 7))
    mean, var = batch_stats(z, axis=1)  # per-sample statistics (as layer norm would)
    assert mean.shape == (4,)
    np.testing.assert_allclose(var, z.var(axis=1), rtol=1e-12)


def test_batch_stats_batch_of_one_gives_variance_zero():
    mean, var = batch_stats(np.array([[1.5, -2.0, 7.0]]))
    np.testing.assert_array_equal(mean, [1.5, -2.0, 7.0])
    np.testing.assert_array_equal(var, [0.0, 0.0, 0.0])
    mean, var = batch_stats(np.ones((1, 2, 1, 1)), axis=(0, 2, 3))
    np.testing.assert_array_equal(var, [0.0, 0.0])


def test_batch_stats_constant_feature_is_exactly_zero_variance():
    z = np.full((37, 2), 0.1, dtype=np.float32)
    z[:, 1] = 1e6 + 0.5
    _, var = batch_stats(z)
    np.testing.assert_array_equal(var, [0.0, 0.0])  # never a negative rounding residue


def test_batch_stats_accepts_lists_and_ints():
    mean, var = batch_stats([[1, 2], [3, 6]])
    assert mean.dtype == np.float64
    np.testing.assert_array_equal(mean, [2.0, 4.0])
    np.testing.assert_array_equal(var, [1.0, 4.0])


# --- normalize and affine -------------------------------------------------------------------------


def test_normalize_formula(rng):
    z = rng.normal(size=(8, 3))
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([0.25, 4.0, 0.0])
    z_hat = normalize(z, mean, var, eps=1e-3)
    np.testing.assert_allclose(z_hat, (z - mean) / np.sqrt(var + 1e-3), rtol=1e-14)


def test_normalize_default_eps_is_1e_5():
    z_hat = normalize(np.array([[1.0], [3.0]]), np.array([2.0]), np.array([1.0]))
    np.testing.assert_allclose(
        z_hat[:, 0], [-1 / np.sqrt(1 + 1e-5), 1 / np.sqrt(1 + 1e-5)], rtol=1e-15
    )


def test_normalize_conv_broadcasts_per_channel(rng):
    z = rng.normal(size=(2, 3, 4, 4))
    mean, var = np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0, 9.0])
    z_hat = normalize(z, mean, var, eps=1e-5, axis=(0, 2, 3))
    expected = (z - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(z_hat, expected, rtol=1e-14)


def test_normalize_accepts_a_batch_of_one():
    z_hat = normalize(np.array([[3.0, 4.0]]), np.array([1.0, 2.0]), np.array([4.0, 1.0]), eps=1e-8)
    np.testing.assert_allclose(z_hat, [[1.0, 2.0]], rtol=1e-7)


def test_affine_formula_and_identity_recovery(rng):
    z = rng.normal(5.0, 3.0, size=(16, 3))
    gamma, beta = np.array([2.0, -1.0, 0.5]), np.array([0.0, 1.0, -3.0])
    z_hat = rng.normal(size=(16, 3))
    np.testing.assert_allclose(affine(z_hat, gamma, beta), gamma * z_hat + beta, rtol=1e-15)
    # gamma = sqrt(var + eps), beta = mean gives back the input (Ioffe & Szegedy)
    mean, var = batch_stats(z)
    eps = 1e-5
    y = affine(normalize(z, mean, var, eps=eps), np.sqrt(var + eps), mean)
    np.testing.assert_allclose(y, z, rtol=1e-12)


def test_affine_conv(rng):
    z_hat = rng.normal(size=(2, 3, 2, 2))
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.0, 1.0])
    y = affine(z_hat, gamma, beta, axis=(0, 2, 3))
    np.testing.assert_allclose(y, z_hat * gamma[:, None, None] + beta[:, None, None], rtol=1e-15)


# --- batchnorm_forward / backward -----------------------------------------------------------------


def test_forward_is_the_composition(rng):
    z = rng.normal(2.0, 3.0, size=(10, 4))
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    y, _ = batchnorm_forward(z, gamma, beta, eps=1e-4)
    mean, var = batch_stats(z)
    np.testing.assert_allclose(
        y, affine(normalize(z, mean, var, eps=1e-4), gamma, beta), rtol=1e-12, atol=1e-12
    )
    by_hand = gamma * (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-4) + beta
    np.testing.assert_allclose(y, by_hand, rtol=1e-12, atol=1e-12)


def test_forward_cache_contents(rng):
    z = rng.normal(size=(6, 3))
    gamma, beta = np.ones(3), np.zeros(3)
    y, cache = batchnorm_forward(z, gamma, beta, eps=1e-5)
    for key in ("z", "z_hat", "mean", "var", "inv_std", "gamma", "eps", "axis"):
        assert key in cache
    assert cache["z"] is z  # a reference, no copy (documented)
    assert cache["eps"] == 1e-5 and cache["axis"] == (0,)
    np.testing.assert_allclose(cache["z_hat"], y)  # gamma 1, beta 0
    np.testing.assert_allclose(np.ravel(cache["inv_std"]), 1 / np.sqrt(z.var(0) + 1e-5), rtol=1e-13)
    assert "reference" in batchnorm_forward.__doc__ and "in place" in batchnorm_forward.__doc__


def test_changing_z_in_place_changes_the_graph_gradients(rng):
    """The documented consequence of the cache holding a reference to z."""
    z = rng.normal(size=(6, 3))
    dy = rng.normal(size=(6, 3))
    _, cache = batchnorm_forward(z, np.ones(3), np.zeros(3))
    before = batchnorm_backward_graph(dy, cache)[0]
    z *= 3.0
    z += 1.0
    after = batchnorm_backward_graph(dy, cache)[0]
    assert rel_error(before, after) > 1e-3


def test_backward_formula(rng):
    z = rng.normal(size=(7, 3))
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    dy = rng.normal(size=(7, 3))
    _, cache = batchnorm_forward(z, gamma, beta, eps=1e-5)
    dz, dgamma, dbeta = batchnorm_backward(dy, cache)
    z_hat = (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)
    np.testing.assert_allclose(dbeta, dy.sum(0), rtol=1e-13)
    np.testing.assert_allclose(dgamma, (dy * z_hat).sum(0), rtol=1e-12)
    dz_hat = dy * gamma
    m = 7
    expected = (m * dz_hat - dz_hat.sum(0) - z_hat * (dz_hat * z_hat).sum(0)) / (
        m * np.sqrt(z.var(0) + 1e-5)
    )
    np.testing.assert_allclose(dz, expected, rtol=1e-11, atol=1e-13)


def test_backward_graph_matches_closed_form_conv(rng):
    z = rng.normal(1.0, 2.0, size=(3, 4, 3, 2))
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    dy = rng.normal(size=z.shape)
    _, cache = batchnorm_forward(z, gamma, beta, axis=(0, 2, 3))
    closed = batchnorm_backward(dy, cache)
    graph = batchnorm_backward_graph(dy, cache)
    for a, b in zip(closed, graph):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert closed[1].shape == closed[2].shape == (4,)


def test_backward_against_numerical_gradient_conv(rng):
    z = rng.normal(size=(2, 3, 2, 2))
    gamma, beta = rng.normal(1.0, 0.3, size=3), rng.normal(size=3)
    dy = rng.normal(size=z.shape)
    _, cache = batchnorm_forward(z, gamma, beta, axis=(0, 2, 3))
    dz, dgamma, dbeta = batchnorm_backward(dy, cache)

    def forward(z_=z, gamma_=gamma, beta_=beta):
        return batchnorm_forward(z_, gamma_, beta_, axis=(0, 2, 3))[0]

    assert rel_error(dz, numerical_gradient(forward, z.copy(), dy)) < 1e-7
    num_dgamma = numerical_gradient(lambda g_: forward(gamma_=g_), gamma.copy(), dy)
    assert rel_error(dgamma, num_dgamma) < 1e-7
    num_dbeta = numerical_gradient(lambda b_: forward(beta_=b_), beta.copy(), dy)
    assert rel_error(dbeta, num_dbeta) < 1e-7


def test_forward_with_int_input():
    y, _ = batchnorm_forward(np.array([[1, 2], [3, 6]]), [1, 1], [0, 0], eps=1e-8)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, [[-1, -1], [1, 1]], rtol=1e-7)


# --- update_running_stats -------------------------------------------------------------------------


def test_update_running_stats_keras_formula():
    rm, rv = np.array([0.0, 1.0]), np.array([1.0, 2.0])
    bm, bv = np.array([4.0, -2.0]), np.array([9.0, 0.5])
    new_mean, new_var = update_running_stats(rm, rv, bm, bv, 0.9, convention="keras")
    np.testing.assert_allclose(new_mean, 0.9 * rm + 0.1 * bm, rtol=1e-15)
    np.testing.assert_allclose(new_var, 0.9 * rv + 0.1 * bv, rtol=1e-15)  # biased batch variance
    np.testing.assert_allclose(new_mean, [0.4, 0.7], rtol=1e-15)
    np.testing.assert_allclose(new_var, [1.8, 1.85], rtol=1e-15)


def test_update_running_stats_default_convention_is_keras():
    args = (np.zeros(2), np.ones(2), np.ones(2), np.full(2, 3.0), 0.75)
    default = update_running_stats(*args)
    keras = update_running_stats(*args, convention="keras")
    for a, b in zip(default, keras):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(default[0], 0.25)


def test_update_running_stats_keras_ignores_n():
    args = (np.zeros(2), np.ones(2), np.ones(2), np.full(2, 3.0), 0.9)
    for a, b in zip(update_running_stats(*args, n=5), update_running_stats(*args)):
        np.testing.assert_array_equal(a, b)


def test_update_running_stats_pytorch_formula():
    rm, rv = np.array([0.0, 1.0]), np.array([1.0, 2.0])
    bm, bv = np.array([4.0, -2.0]), np.array([9.0, 0.5])
    new_mean, new_var = update_running_stats(rm, rv, bm, bv, 0.1, convention="pytorch", n=4)
    np.testing.assert_allclose(new_mean, 0.9 * rm + 0.1 * bm, rtol=1e-15)
    unbiased = bv * 4 / 3
    np.testing.assert_allclose(new_var, 0.9 * rv + 0.1 * unbiased, rtol=1e-15)
    np.testing.assert_allclose(new_var, [0.9 + 0.1 * 12.0, 1.8 + 0.1 * 2 / 3], rtol=1e-15)


def test_the_two_conventions_agree_when_momenta_are_converted():
    args = (np.array([0.3]), np.array([1.2]), np.array([2.0]), np.array([0.7]))
    keras = update_running_stats(*args, 0.99, convention="keras")
    torch_style = update_running_stats(*args, 0.01, convention="pytorch", n=10**12)
    np.testing.assert_allclose(keras[0], torch_style[0], rtol=1e-15)
    np.testing.assert_allclose(keras[1], torch_style[1], rtol=1e-10)  # n/(n-1) ~ 1
    # and the same number means opposite things
    keras_01 = update_running_stats(*args, 0.1, convention="keras")
    torch_01 = update_running_stats(*args, 0.1, convention="pytorch", n=10**12)
    assert abs(keras_01[0][0] - 2.0) < abs(torch_01[0][0] - 2.0)


def test_update_running_stats_momentum_edges():
    args = (np.array([1.0]), np.array([2.0]), np.array([5.0]), np.array([7.0]))
    assert update_running_stats(*args, 1.0, convention="keras")[0][0] == 1.0  # frozen
    assert update_running_stats(*args, 0.0, convention="keras")[0][0] == 5.0  # last batch only
    assert update_running_stats(*args, 1.0, convention="pytorch", n=2)[1][0] == 14.0
    assert update_running_stats(*args, 0.0, convention="pytorch", n=2)[1][0] == 2.0


def test_update_running_stats_accepts_convention_objects_and_any_case():
    args = (np.zeros(1), np.ones(1), np.ones(1), np.ones(1), 0.5)
    a = update_running_stats(*args, convention=CONVENTIONS["pytorch"], n=3)
    b = update_running_stats(*args, convention="PyTorch", n=3)
    np.testing.assert_array_equal(a[1], b[1])


def test_update_running_stats_returns_new_arrays():
    rm, rv = np.zeros(2), np.ones(2)
    new_mean, new_var = update_running_stats(rm, rv, np.ones(2), np.ones(2), 0.5)
    assert new_mean is not rm and new_var is not rv
    np.testing.assert_array_equal(rm, 0.0)
    np.testing.assert_array_equal(rv, 1.0)


# --- conventions as data --------------------------------------------------------------------------


def test_conventions_data():
    keras, torch_ = CONVENTIONS["keras"], CONVENTIONS["pytorch"]
    assert (keras.momentum, keras.eps) == (0.99, 1e-3)
    assert (torch_.momentum, torch_.eps) == (0.1, 1e-5)
    assert keras.momentum_weights_running and not torch_.momentum_weights_running
    assert not keras.unbiased_running_var and torch_.unbiased_running_var
    for conv in (keras, torch_):
        assert (conv.initial_mean, conv.initial_var) == (0.0, 1.0)  # never a zero running variance
    assert keras.batch_weight(0.99) == pytest.approx(0.01)
    assert torch_.batch_weight(0.1) == 0.1
    assert keras.update_formula == "running = momentum * running + (1 - momentum) * batch"
    assert torch_.update_formula == "running = (1 - momentum) * running + momentum * batch"
    assert set(CONVENTIONS) == {"keras", "pytorch"}


def test_get_convention():
    assert get_convention("keras") is CONVENTIONS["keras"]
    assert get_convention("PYTORCH") is CONVENTIONS["pytorch"]
    assert get_convention(CONVENTIONS["keras"]) is CONVENTIONS["keras"]
    with pytest.raises(
        ValueError, match=r"convention must be one of \['keras', 'pytorch'\], got 'tensorflow'"
    ):
        get_convention("tensorflow")


def test_conventions_are_immutable():
    with pytest.raises(AttributeError):
        CONVENTIONS["keras"].momentum = 0.9


# --- rel_error and numerical_gradient -------------------------------------------------------------


def test_rel_error_definition():
    a = np.array([1.0, 2.0, 0.0, -3.0])
    b = np.array([1.0, 2.5, 0.0, -3.3])
    expected = max(0.0, 0.5 / 4.5, 0.0, 0.3 / 6.3)
    assert rel_error(a, b) == pytest.approx(expected, rel=1e-15)
    assert rel_error(a, a) == 0.0
    assert rel_error(b, a) == rel_error(a, b)
    assert isinstance(rel_error(a, b), float)


def test_rel_error_floor_for_tiny_values():
    # |a| + |b| below 1e-12 is replaced by 1e-12
    assert rel_error(np.array([1e-14]), np.array([-1e-14])) == pytest.approx(2e-14 / 1e-12)
    assert rel_error(0.0, 0.0) == 0.0
    assert rel_error(1.0, -1.0) == 1.0


def test_rel_error_is_elementwise_max_not_global():
    big = np.array([1e6, 1.0])
    other = np.array([1e6, 1.1])
    assert rel_error(big, other) == pytest.approx(0.1 / 2.1)


def test_rel_error_float32_is_computed_in_float64():
    a = np.array([1.0], np.float32)
    b = np.array([1.0 + 2**-23], np.float32)
    assert rel_error(a, b) == pytest.approx(2**-23 / (2 + 2**-23), rel=1e-12)


def test_numerical_gradient_of_known_functions(rng):
    x = rng.normal(size=(3, 4))
    df = rng.normal(size=(3, 4))
    grad = numerical_gradient(lambda x_: x_**2, x, df)
    np.testing.assert_allclose(grad, 2 * x * df, rtol=1e-8, atol=1e-10)
    # a function whose output has another shape than x
    w = rng.normal(size=(4, 2))
    df2 = rng.normal(size=(3, 2))
    grad = numerical_gradient(lambda x_: x_ @ w, x, df2)
    np.testing.assert_allclose(grad, df2 @ w.T, rtol=1e-8, atol=1e-10)


def test_numerical_gradient_leaves_x_unchanged(rng):
    x = rng.normal(size=(5, 3)) * 1e3 + 0.1  # values where x + h - h != x in general
    before = x.copy()
    calls = []

    def f(x_):
        assert x_ is x  # perturbed in place
        calls.append(1)
        return np.sin(x_)

    numerical_gradient(f, x, rng.normal(size=(5, 3)))
    assert len(calls) == 2 * x.size
    np.testing.assert_array_equal(x, before)
    assert x.tobytes() == before.tobytes()


def test_numerical_gradient_restores_x_when_f_raises():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    before = x.copy()

    def f(x_):
        if x_[1, 1] != 4.0:
            raise RuntimeError("f failed")
        return x_

    with pytest.raises(RuntimeError, match="f failed"):
        numerical_gradient(f, x, np.ones((2, 3)))
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_step(rng):
    x = np.array([1.0])
    # centred differences of x^3 with step h: 3x^2 + h^2
    grad = numerical_gradient(lambda x_: x_**3, x, np.ones(1), h=1e-2)
    assert grad[0] == pytest.approx(3.0 + 1e-4, rel=1e-10)
    grad = numerical_gradient(lambda x_: x_**3, x, np.ones(1), h=np.float32(1e-2))
    assert grad[0] == pytest.approx(3.0 + 1e-4, rel=1e-6)


def test_numerical_gradient_float32_keeps_dtype():
    x = np.array([1.0, 2.0], np.float32)
    grad = numerical_gradient(lambda x_: 3 * x_, x, np.ones(2), h=1e-2)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, [3.0, 3.0], rtol=1e-4)


# --- data helpers the tests rely on ---------------------------------------------------------------


def test_seed_batch():
    z, gamma, beta = bnlab.seed_batch()
    assert z.shape == (4, 3) and z.dtype == np.float32
    assert gamma.dtype == beta.dtype == np.float32
    seed = bnlab.seed_batch()
    assert (seed.eps, seed.momentum) == (1e-5, 0.9)
    assert seed.z is not bnlab.seed_batch().z


def test_random_batch_is_seeded():
    a = bnlab.random_batch(
        np.random.default_rng(3), shape=(5, 2), loc=[10.0, -10.0], scale=[1.0, 2.0]
    )
    b = bnlab.random_batch(
        np.random.default_rng(3), shape=(5, 2), loc=[10.0, -10.0], scale=[1.0, 2.0]
    )
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 2) and a.dtype == np.float64
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        bnlab.random_batch(0)
