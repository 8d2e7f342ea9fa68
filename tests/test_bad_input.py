"""Every bad input of DESIGN.md's "Bad input" list, for every public function.

Each refusal is a ``ValueError`` (``TypeError`` for a wrong kind of value)
whose message names the argument, what was expected and what came. Every
function is first called once with good arguments (``test_good_call``) so a
refusal below is due to the one bad argument. The last section checks that
the core functions never modify their inputs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from bnlab import (
    BatchNorm,
    affine,
    batch_stats,
    batchnorm_backward,
    batchnorm_backward_graph,
    batchnorm_forward,
    normalize,
    numerical_gradient,
    rel_error,
    update_running_stats,
)

RNG = np.random.default_rng(42)
Z = RNG.normal(2.0, 1.5, size=(4, 3))
DY = RNG.normal(size=(4, 3))
GAMMA = np.array([1.0, 0.5, 2.0])
BETA = np.array([0.0, 1.0, -1.0])


def _bn_backward(dy, training=True, z=None):
    bn = BatchNorm(3)
    bn.forward(Z.copy() if z is None else z, training=training)
    return bn.backward(dy)


# name -> (callable taking keywords, factory of good keyword arguments)
SPECS = {
    "batch_stats": (batch_stats, lambda: dict(z=Z.copy(), axis=0)),
    "normalize": (
        normalize,
        lambda: dict(z=Z.copy(), mean=Z.mean(0), var=Z.var(0), eps=1e-5, axis=0),
    ),
    "affine": (affine, lambda: dict(z_hat=Z.copy(), gamma=GAMMA.copy(), beta=BETA.copy(), axis=0)),
    "batchnorm_forward": (
        batchnorm_forward,
        lambda: dict(z=Z.copy(), gamma=GAMMA.copy(), beta=BETA.copy(), eps=1e-5, axis=0),
    ),
    "batchnorm_backward": (
        batchnorm_backward,
        lambda: dict(dy=DY.copy(), cache=batchnorm_forward(Z.copy(), GAMMA, BETA)[1]),
    ),
    "batchnorm_backward_graph": (
        batchnorm_backward_graph,
        lambda: dict(dy=DY.copy(), cache=batchnorm_forward(Z.copy(), GAMMA, BETA)[1]),
    ),
    "update_running_stats": (
        update_running_stats,
        lambda: dict(
            running_mean=np.zeros(3),
            running_var=np.ones(3),
            batch_mean=Z.mean(0),
            batch_var=Z.var(0),
            momentum=0.9,
            convention="keras",
            n=None,
        ),
    ),
    "BatchNorm": (
        BatchNorm,
        lambda: dict(num_features=3, convention="keras", eps=None, momentum=None, axis=0),
    ),
    "BatchNorm.forward": (
        lambda z, training: BatchNorm(3).forward(z, training=training),
        lambda: dict(z=Z.copy(), training=True),
    ),
    "BatchNorm.backward": (_bn_backward, lambda: dict(dy=DY.copy(), training=True)),
    "rel_error": (rel_error, lambda: dict(a=DY.copy(), b=DY + 1e-9)),
    "numerical_gradient": (
        numerical_gradient,
        lambda: dict(f=np.sin, x=Z.copy(), df=DY.copy(), h=1e-5),
    ),
}


def call(name, **override):
    func, good = SPECS[name]
    kwargs = good()
    kwargs.update(override)
    return func(**kwargs)


def refused(error, *fragments):
    """pytest.raises matching every fragment (plain text, in order) of the message."""
    return pytest.raises(error, match=".*".join(re.escape(f) for f in fragments))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_good_call(name):
    call(name)


# --- wrong kind of value: TypeError ---------------------------------------------------------------

ARRAY_ARGS = [
    ("batch_stats", "z"),
    ("normalize", "z"),
    ("normalize", "mean"),
    ("normalize", "var"),
    ("affine", "z_hat"),
    ("affine", "gamma"),
    ("affine", "beta"),
    ("batchnorm_forward", "z"),
    ("batchnorm_forward", "gamma"),
    ("batchnorm_forward", "beta"),
    ("batchnorm_backward", "dy"),
    ("batchnorm_backward_graph", "dy"),
    ("update_running_stats", "running_mean"),
    ("update_running_stats", "running_var"),
    ("update_running_stats", "batch_mean"),
    ("update_running_stats", "batch_var"),
    ("BatchNorm.forward", "z"),
    ("BatchNorm.backward", "dy"),
    ("rel_error", "a"),
    ("rel_error", "b"),
    ("numerical_gradient", "df"),
]


def shape_of(name, arg):
    return np.shape(SPECS[name][1]()[arg])


BAD_KINDS = {
    "strings": lambda shape: np.full(shape, "1.0"),
    "bools": lambda shape: np.ones(shape, dtype=bool),
    "complex": lambda shape: np.ones(shape, dtype=complex),
    "objects": lambda shape: np.full(shape, None, dtype=object),
    "datetimes": lambda shape: np.full(shape, np.datetime64("2015-02-11")),
}


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
@pytest.mark.parametrize(("name", "arg"), ARRAY_ARGS)
def test_wrong_dtype_is_a_type_error(name, arg, kind):
    bad = BAD_KINDS[kind](shape_of(name, arg))
    with refused(TypeError, f"{arg} must hold real numbers (float or int), got dtype"):
        call(name, **{arg: bad})


def test_bool_message_says_booleans_are_refused():
    with refused(TypeError, "z must hold real numbers", "bool", "booleans are not accepted"):
        batch_stats(np.array([[True, False], [False, True]]))


def test_training_layer_in_eval_backward_checks_dy_dtype():
    with refused(TypeError, "dy must hold real numbers"):
        _bn_backward(np.full((4, 3), "x"), training=False)


def test_python_lists_of_numbers_are_fine_but_ragged_ones_are_named():
    batch_stats([[1.0, 2.0], [3.0, 4.0]])
    with refused(ValueError, "z could not be read as an array of numbers"):
        batch_stats([[1.0, 2.0], [3.0]])
    with refused(ValueError, "gamma could not be read as an array of numbers"):
        batchnorm_forward(Z, [[1.0], [1.0, 2.0]], BETA)


def test_numerical_gradient_kinds():
    with refused(TypeError, "f must be callable, got int"):
        call("numerical_gradient", f=3)
    for x in ([1.0, 2.0], np.arange(3), np.ones(3, dtype=bool), 1.5):
        with refused(TypeError, "x must be a floating NumPy array"):
            call("numerical_gradient", x=x, df=np.ones(np.shape(x)))
    readonly = Z.copy()
    readonly.flags.writeable = False
    with refused(ValueError, "x must be writable"):
        call("numerical_gradient", x=readonly)
    for h in ("1e-5", True, None, [1e-5]):
        with refused(TypeError, "h must be a positive finite step", repr(h)):
            call("numerical_gradient", h=h)
    for h in (0, 0.0, -1e-5, float("nan"), float("inf")):
        with refused(ValueError, "h must be a positive finite step, got", repr(h)):
            call("numerical_gradient", h=h)


def test_backward_cache_must_come_from_forward():
    for cache in (None, {}, {"z": Z}, (Z, Z), "cache"):
        with refused(TypeError, "cache must be the dict returned by batchnorm_forward"):
            call("batchnorm_backward", cache=cache)
        with refused(TypeError, "cache must be the dict returned by batchnorm_forward"):
            call("batchnorm_backward_graph", cache=cache)


# --- shape mismatches -----------------------------------------------------------------------------

SHAPE_CASES = [
    ("normalize", "mean", (4,), "(3,)"),
    ("normalize", "var", (1, 3), "(3,)"),
    ("affine", "gamma", (2,), "(3,)"),
    ("affine", "beta", (3, 1), "(3,)"),
    ("batchnorm_forward", "gamma", (4,), "(3,)"),
    ("batchnorm_forward", "beta", (), "(3,)"),
    ("batchnorm_backward", "dy", (4, 2), "(4, 3)"),
    ("batchnorm_backward", "dy", (3, 3), "(4, 3)"),
    ("batchnorm_backward_graph", "dy", (12,), "(4, 3)"),
    ("update_running_stats", "running_var", (4,), "(3,)"),
    ("update_running_stats", "batch_mean", (2,), "(3,)"),
    ("update_running_stats", "batch_var", (3, 1), "(3,)"),
    ("BatchNorm.backward", "dy", (4, 2), "(4, 3)"),
]


@pytest.mark.parametrize(("name", "arg", "bad_shape", "expected"), SHAPE_CASES)
def test_shape_mismatch(name, arg, bad_shape, expected):
    with refused(ValueError, f"{arg} must have shape {expected}", f"got shape {bad_shape}"):
        call(name, **{arg: np.ones(bad_shape)})


def test_shape_mismatch_names_what_the_shape_should_match():
    with refused(ValueError, "gamma must have shape (3,) (the per-feature scale), got shape (4,)"):
        batchnorm_forward(Z, np.ones(4), BETA)
    with refused(ValueError, "dy must have shape (4, 3) (the shape of z), got shape (3, 4)"):
        batchnorm_backward(DY.T, batchnorm_forward(Z, GAMMA, BETA)[1])
    with refused(ValueError, "batch_var must have shape (3,) (the shape of running_mean)"):
        update_running_stats(np.zeros(3), np.ones(3), np.zeros(3), np.ones(5), 0.9)


def test_conv_parameters_have_channel_shape():
    z = RNG.normal(size=(2, 3, 4, 4))
    with refused(ValueError, "gamma must have shape (3,)", "got shape (4,)"):
        batchnorm_forward(z, np.ones(4), np.zeros(3), axis=(0, 2, 3))
    with refused(ValueError, "gamma must have shape (3, 4, 4)", "got shape (3,)"):
        batchnorm_forward(z, np.ones(3), np.zeros(3), axis=0)  # forgot the conv axes


def test_layer_input_of_the_wrong_feature_shape():
    bn = BatchNorm(3)
    for training in (True, False):
        with refused(
            ValueError,
            "z's feature dimensions must have shape (3,)",
            "num_features of this layer",
            "got shape (2,)",
        ):
            bn.forward(np.ones((4, 2)), training=training)
    conv = BatchNorm(3, axis=(0, 2, 3))
    with refused(ValueError, "must have shape (3,)", "got shape (5,)"):
        conv.forward(np.ones((2, 5, 4, 4)), training=True)


def test_layer_backward_checks_dy_after_eval_too():
    with refused(
        ValueError,
        "dy must have shape (4, 3)",
        "the shape of the last forward's z",
        "got shape (4, 2)",
    ):
        _bn_backward(np.ones((4, 2)), training=False)


def test_rel_error_and_numerical_gradient_shapes():
    with refused(ValueError, "a and b must have the same shape, got (3,) and (4,)"):
        rel_error(np.ones(3), np.ones(4))
    with refused(ValueError, "df must have the shape of f(x), (4, 3), got (3,)"):
        call("numerical_gradient", df=np.ones(3))


def test_scalar_input_is_not_a_batch():
    for name, arg in (("batch_stats", "z"), ("normalize", "z"), ("batchnorm_forward", "z")):
        with refused(ValueError, f"{arg} must have at least one dimension", "got a scalar"):
            call(name, **{arg: 3.0})
    with refused(ValueError, "z_hat must have at least one dimension"):
        call("affine", z_hat=np.float64(3.0))
    with refused(ValueError, "axis=0 is out of range for an input with 0 dimension(s)"):
        BatchNorm(3).forward(np.float64(1.0), training=False)


# --- axis -----------------------------------------------------------------------------------------

AXIS_FUNCS = ["batch_stats", "normalize", "affine", "batchnorm_forward"]


@pytest.mark.parametrize("name", AXIS_FUNCS)
@pytest.mark.parametrize("axis", [2, -3, (0, 2), (0, 5, 6)])
def test_axis_out_of_range(name, axis):
    with refused(
        ValueError,
        f"axis={axis!r} is out of range for an input with 2 dimension(s)",
        "valid axes: -2..1",
    ):
        call(name, axis=axis)


@pytest.mark.parametrize("name", AXIS_FUNCS)
def test_axis_named_twice(name):
    with refused(ValueError, "axis=(0, -2) names the same axis twice"):
        call(name, axis=(0, -2))


@pytest.mark.parametrize("name", AXIS_FUNCS)
@pytest.mark.parametrize("axis", [True, 0.0, "0", None, (), (0.0,), (True,)])
def test_axis_of_the_wrong_kind(name, axis):
    with refused(TypeError, "axis must be an int or a", repr(axis)):
        call(name, axis=axis)


def test_conv_axes_on_dense_input():
    with refused(ValueError, "axis=(0, 2, 3) is out of range for an input with 2 dimension(s)"):
        batchnorm_forward(Z, GAMMA, BETA, axis=(0, 2, 3))
    bn = BatchNorm(3, axis=(0, 2, 3))
    with refused(ValueError, "axis=(0, 2, 3) is out of range for an input with 2 dimension(s)"):
        bn.forward(Z, training=True)


@pytest.mark.parametrize("axis", [5, (0, 7), (0, 0)])
def test_layer_constructor_checks_axis_range(axis):
    with pytest.raises(ValueError, match=r"axis="):
        BatchNorm(3, axis=axis)


@pytest.mark.parametrize("axis", [True, False, 0.5, "0", None, {0}])
def test_layer_constructor_checks_axis_kind(axis):
    with refused(TypeError, "axis must be an int or a tuple of ints", repr(axis)):
        BatchNorm(3, axis=axis)


# --- empty batch, batch of one --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arg"),
    [
        ("batch_stats", "z"),
        ("normalize", "z"),
        ("affine", "z_hat"),
        ("batchnorm_forward", "z"),
        ("BatchNorm.forward", "z"),
    ],
)
@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 2, 2)])
def test_empty_batch(name, arg, shape):
    axis = 0 if len(shape) == 2 else (0, 2, 3)
    if name == "BatchNorm.forward":
        for training in (True, False):
            with refused(ValueError, f"{arg} is empty (shape {shape})"):
                BatchNorm(3, axis=axis).forward(np.ones(shape), training=training)
        return
    with refused(ValueError, f"{arg} is empty (shape {shape})", "at least one value per feature"):
        call(name, **{arg: np.ones(shape), "axis": axis})


def test_empty_spatial_map_is_empty_too():
    with refused(ValueError, "z is empty (shape (2, 3, 0, 4))"):
        batchnorm_forward(np.ones((2, 3, 0, 4)), np.ones(3), np.zeros(3), axis=(0, 2, 3))


def test_empty_comparison():
    with refused(ValueError, "a and b are empty"):
        rel_error(np.ones(0), np.ones(0))


ONE_VALUE = [((1, 3), 0), ((1, 3, 1, 1), (0, 2, 3))]


@pytest.mark.parametrize(("shape", "axis"), ONE_VALUE)
def test_batch_of_one_refused_in_training(shape, axis):
    """No variance to estimate: the message explains and suggests eval mode or a bigger batch."""
    z = np.ones(shape)
    fragments = (
        f"z of shape {shape} has only one value per feature",
        "no variance to estimate",
        "training mode",
        "batch of at least 2",
        "evaluation mode (training=False)",
    )
    with refused(ValueError, *fragments):
        batchnorm_forward(z, np.ones(3), np.zeros(3), axis=axis)
    bn = BatchNorm(3, axis=axis)
    with refused(ValueError, *fragments):
        bn.forward(z, training=True)
    # the refused call changed nothing
    assert bn.num_batches_tracked == 0
    np.testing.assert_array_equal(bn.running_mean, 0.0)
    np.testing.assert_array_equal(bn.running_var, 1.0)


@pytest.mark.parametrize(("shape", "axis"), ONE_VALUE)
def test_batch_of_one_accepted_in_eval_and_by_the_pieces(shape, axis):
    z = np.arange(3.0).reshape(shape) + 1.0
    bn = BatchNorm(3, axis=axis, convention="pytorch")
    y = bn.forward(z, training=False)
    np.testing.assert_allclose(y, z / np.sqrt(1 + 1e-5))  # running mean 0, variance 1
    mean, var = batch_stats(z, axis=axis)
    np.testing.assert_array_equal(var, 0.0)
    normalize(z, mean, var, axis=axis)
    affine(z, np.ones(3), np.zeros(3), axis=axis)


def test_spatial_values_count_as_samples_in_training():
    """One image but a 2x2 map: four values per channel, so training is fine."""
    batchnorm_forward(RNG.normal(size=(1, 3, 2, 2)), np.ones(3), np.zeros(3), axis=(0, 2, 3))


# --- NaN and infinity -----------------------------------------------------------------------------


def poisoned(shape, value):
    """Ones with ``value`` at the last index along every axis but... a fixed, recognisable spot."""
    array = np.ones(shape)
    where = tuple(min(1, s - 1) for s in shape)
    array[where] = value
    return array, (where if len(where) != 1 else where[0])


NONFINITE = [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "-inf")]


@pytest.mark.parametrize(("value", "shown"), NONFINITE)
@pytest.mark.parametrize(("name", "arg"), ARRAY_ARGS)
def test_non_finite_values_are_located(name, arg, value, shown):
    bad, where = poisoned(shape_of(name, arg), value)
    with np.errstate(all="raise"):  # the error comes first, not a RuntimeWarning
        with refused(
            ValueError, f"{arg} contains 1 non-finite value(s) ({shown} first at index {where})"
        ):
            call(name, **{arg: bad})


@pytest.mark.parametrize(
    "name", ["batchnorm_backward", "batchnorm_backward_graph", "BatchNorm.backward"]
)
def test_plus_and_minus_infinity_in_dy(name):
    dy = DY.copy()
    dy[0, 2], dy[3, 2] = np.inf, -np.inf
    with np.errstate(all="raise"):
        with refused(ValueError, "dy contains 2 non-finite value(s) (inf first at index (0, 2))"):
            call(name, dy=dy)


@pytest.mark.parametrize(("value", "shown"), NONFINITE)
def test_non_finite_in_eval_forward_and_backward(value, shown):
    bad, where = poisoned((4, 3), value)
    bn = BatchNorm(3)
    with refused(ValueError, f"z contains 1 non-finite value(s) ({shown} first at index {where})"):
        bn.forward(bad, training=False)
    with refused(ValueError, f"dy contains 1 non-finite value(s) ({shown} first at index {where})"):
        _bn_backward(bad, training=False)
    with refused(ValueError, f"x contains 1 non-finite value(s) ({shown} first at index {where})"):
        call("numerical_gradient", x=bad)


def test_non_finite_count_and_conv_location():
    z = np.ones((2, 3, 2, 2))
    z[1, 2, 0, 1] = np.nan
    z[1, 2, 1, 1] = np.inf
    with refused(ValueError, "z contains 2 non-finite value(s) (NaN first at index (1, 2, 0, 1))"):
        batchnorm_forward(z, np.ones(3), np.zeros(3), axis=(0, 2, 3))


def test_non_finite_refused_without_runtime_warnings():
    z, _ = poisoned((4, 3), np.inf)
    z[3, 1] = -np.inf  # inf - inf inside the statistics
    with np.errstate(all="raise"):  # any floating-point warning would raise FloatingPointError
        with refused(ValueError, "z contains 2 non-finite value(s)"):
            batch_stats(z)
        with refused(ValueError, "z contains 2 non-finite value(s)"):
            batchnorm_forward(z, GAMMA, BETA)


def test_overflow_in_float32_is_explained():
    z = np.array([[3e38, 1.0], [-3e38, 2.0]], dtype=np.float32)
    with np.errstate(all="raise"):
        with refused(ValueError, "statistics of z overflowed in float32", "use float64"):
            batch_stats(z)
        with refused(ValueError, "statistics of z overflowed in float32"):
            batchnorm_forward(z, np.ones(2), np.zeros(2))
    batch_stats(z.astype(np.float64))  # fine in float64


def test_gamma_that_overflows_when_cast_to_z_dtype():
    z32 = Z.astype(np.float32)
    with np.errstate(all="raise"):
        with refused(ValueError, "gamma contains 1 non-finite value(s) (inf first at index 0)"):
            batchnorm_forward(z32, np.array([1e300, 1.0, 1.0]), BETA)


def test_refused_input_leaves_the_layer_unchanged():
    bn = BatchNorm(3, convention="pytorch")
    bn.forward(Z, training=True)
    state = (bn.running_mean.copy(), bn.running_var.copy(), bn.num_batches_tracked)
    bad, _ = poisoned((4, 3), np.nan)
    for z in (bad, np.ones((1, 3)), np.ones((4, 2)), np.full((4, 3), "a")):
        with pytest.raises((ValueError, TypeError)):
            bn.forward(z, training=True)
    np.testing.assert_array_equal(bn.running_mean, state[0])
    np.testing.assert_array_equal(bn.running_var, state[1])
    assert bn.num_batches_tracked == state[2]


# --- eps, momentum, convention, n -----------------------------------------------------------------


@pytest.mark.parametrize("eps", [0, 0.0, -1e-5, float("nan"), float("inf"), -np.inf])
def test_eps_must_be_positive_and_finite(eps):
    for name in ("normalize", "batchnorm_forward", "BatchNorm"):
        with refused(ValueError, "eps must be positive and finite", f"got {eps!r}"):
            call(name, eps=eps)


@pytest.mark.parametrize("eps", ["1e-5", True, None, [1e-5], np.array([1e-5])])
def test_eps_of_the_wrong_kind(eps):
    for name in ("normalize", "batchnorm_forward"):
        with refused(TypeError, "eps must be a positive real number", f"got {eps!r}"):
            call(name, eps=eps)
    if eps is not None:  # None means the convention's default in the layer
        with refused(TypeError, "eps must be a positive real number"):
            BatchNorm(3, eps=eps)


def test_eps_accepts_numpy_scalars():
    call("batchnorm_forward", eps=np.float32(1e-3))
    BatchNorm(3, eps=np.float64(1e-3))


@pytest.mark.parametrize("momentum", [-0.1, 1.01, 2, -np.inf, float("nan")])
def test_momentum_must_be_in_0_1(momentum):
    with refused(ValueError, "momentum must be in [0, 1]", f"got {momentum!r}"):
        call("update_running_stats", momentum=momentum)
    with refused(ValueError, "momentum must be in [0, 1]"):
        BatchNorm(3, momentum=momentum)
    with refused(ValueError, "momentum must be in [0, 1]"):
        call("update_running_stats", momentum=momentum, convention="pytorch", n=4)


@pytest.mark.parametrize("momentum", ["0.9", True, None, [0.9]])
def test_momentum_of_the_wrong_kind(momentum):
    with refused(TypeError, "momentum must be a real number in [0, 1]", f"got {momentum!r}"):
        call("update_running_stats", momentum=momentum)


@pytest.mark.parametrize("convention", ["tensorflow", "", "torch", None, 3, "keras "])
def test_unknown_convention(convention):
    fragments = ("convention must be one of ['keras', 'pytorch']", f"got {convention!r}")
    with refused(ValueError, *fragments):
        call("update_running_stats", convention=convention)
    with refused(ValueError, *fragments):
        BatchNorm(3, convention=convention)


def test_pytorch_convention_needs_n():
    with refused(
        ValueError,
        "n (values per feature in the batch) is required by the pytorch convention",
        "batch_var * n / (n - 1)",
    ):
        call("update_running_stats", convention="pytorch")


@pytest.mark.parametrize("n", [1, 0, -3])
def test_pytorch_convention_needs_n_at_least_2(n):
    with refused(ValueError, "n must be at least 2 for the pytorch convention", f"got {n}"):
        call("update_running_stats", convention="pytorch", n=n)


@pytest.mark.parametrize("n", [4.0, True, "4", np.array(4.0)])
def test_n_must_be_an_int(n):
    with refused(TypeError, "n must be an int"):
        call("update_running_stats", convention="pytorch", n=n)


def test_keras_convention_n_optional_but_checked():
    call("update_running_stats", n=1)  # one value is fine for keras (nothing divides by n - 1)
    call("update_running_stats", n=np.int64(7))
    with refused(ValueError, "n must be positive, got 0"):
        call("update_running_stats", n=0)


@pytest.mark.parametrize("arg", ["running_var", "batch_var"])
def test_negative_variances(arg):
    with refused(ValueError, f"{arg} must be non-negative", "got minimum -0.5"):
        call("update_running_stats", **{arg: np.array([1.0, -0.5, 1.0])})


def test_negative_variance_in_normalize():
    with refused(ValueError, "var must be non-negative", "got minimum -2.0"):
        call("normalize", var=np.array([1.0, -2.0, 0.0]))


# --- the layer's own arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    "num_features", ["3", "12", 3.0, 3.5, [3.5], True, None, (3, "4"), np.float64(3)]
)
def test_layer_num_features_kind(num_features):
    with refused(
        TypeError, "num_features must be a positive int or a tuple of them", repr(num_features)
    ):
        BatchNorm(num_features)


@pytest.mark.parametrize("num_features", [0, -2, (), (3, 0)])
def test_layer_num_features_positive(num_features):
    with refused(ValueError, "num_features must be positive", repr(num_features)):
        BatchNorm(num_features)


def test_layer_dtype_must_be_floating():
    with refused(TypeError, "dtype must be a floating dtype, got int64"):
        BatchNorm(3, dtype=np.int64)


def test_layer_training_must_be_an_explicit_bool():
    bn = BatchNorm(3)
    with pytest.raises(TypeError, match="training"):
        bn.forward(Z)  # no default: training versus inference is always explicit
    for training in (1, 0, None, "True", "eval"):
        with refused(TypeError, "training must be True or False", f"got {training!r}"):
            bn.forward(Z, training=training)
    bn.forward(Z, training=np.bool_(True))


def test_layer_backward_before_forward():
    with refused(RuntimeError, "call forward(z, training=...) before backward"):
        BatchNorm(3).backward(DY)


# --- inputs are never mutated ---------------------------------------------------------------------


def frozen(array):
    array = np.array(array, copy=True)
    array.flags.writeable = False  # an in-place write raises
    return array


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, (0, 2, 3)])
def test_core_functions_do_not_mutate_their_inputs(dtype, axis):
    shape = (4, 3) if axis == 0 else (3, 2, 2, 2)
    fs = (3,) if axis == 0 else (2,)
    z = frozen(RNG.normal(5.0, 2.0, size=shape).astype(dtype))
    dy = frozen(RNG.normal(size=shape).astype(dtype))
    gamma = frozen(RNG.normal(1.0, 0.2, size=fs).astype(dtype))
    beta = frozen(RNG.normal(size=fs).astype(dtype))
    originals = [a.copy() for a in (z, dy, gamma, beta)]

    mean, var = batch_stats(z, axis=axis)
    mean, var = frozen(mean), frozen(var)
    z_hat = frozen(normalize(z, mean, var, eps=1e-5, axis=axis))
    affine(z_hat, gamma, beta, axis=axis)
    _, cache = batchnorm_forward(z, gamma, beta, eps=1e-5, axis=axis)
    cache_copy = {
        k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for k, v in cache.items()
    }
    for key, value in cache.items():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    first = batchnorm_backward(dy, cache)
    batchnorm_backward_graph(dy, cache)
    second = batchnorm_backward(dy, cache)  # the cache is reusable: nothing in it changed
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    for key, value in cache.items():
        np.testing.assert_array_equal(value, cache_copy[key])

    rm, rv = frozen(np.zeros(fs)), frozen(np.ones(fs))
    update_running_stats(rm, rv, mean, var, 0.9, convention="keras")
    update_running_stats(rm, rv, mean, var, 0.1, convention="pytorch", n=cache["n"])
    rel_error(z, frozen(z + 1))

    for before, after in zip(originals, (z, dy, gamma, beta)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(rm, 0.0)
    np.testing.assert_array_equal(rv, 1.0)


def test_layer_does_not_mutate_its_inputs():
    z, dy = frozen(Z), frozen(DY)
    bn = BatchNorm(3, convention="pytorch")
    for training in (True, False):
        bn.forward(z, training=training)
        bn.backward(dy)
    np.testing.assert_array_equal(z, Z)
    np.testing.assert_array_equal(dy, DY)


def test_lists_are_not_mutated_and_int_input_is_not_cast_in_place():
    z_list = [[1, 2], [3, 5], [4, 4]]
    z_int = np.array(z_list)
    batchnorm_forward(z_list, [1, 1], [0, 0])
    batchnorm_forward(z_int, [1, 1], [0, 0])
    assert z_list == [[1, 2], [3, 5], [4, 4]]
    assert z_int.dtype.kind == "i"


def test_numerical_gradient_does_not_mutate_df():
    df = frozen(DY)
    numerical_gradient(np.sin, Z.copy(), df)
    np.testing.assert_array_equal(df, DY)
