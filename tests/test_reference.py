"""bnlab against PyTorch and Keras 3: stored fixtures always, live recomputation where installed.

Every comparison runs twice (``source`` parameter):

- ``fixture``: against ``tests/fixtures/reference_*.npz``, recorded by
  ``tests/make_reference_fixtures.py``; needs only NumPy.
- ``live``: the same seeded cases recomputed now with torch / keras (the
  generation functions are imported from ``make_reference_fixtures``, not
  duplicated); skipped when they are missing, a failure under
  ``BNLAB_REQUIRE_ALL=1`` (CI).

How closeness is measured
-------------------------
- PyTorch (float64): ``bnlab.rel_error`` (CS231n, element-wise
  ``|a - b| / (|a| + |b|)``) <= 1e-6. Element-wise relative error is honest
  here: float64 rounding leaves about 1e-16 of the data's scale, so even an
  element a million times smaller than the rest is held to 1e-6 relative.
- Keras: on the torch backend it casts the input (and gamma, beta, the moving
  statistics) to float32 and computes in float32, whatever the input's or
  the layer's dtype (see ``make_reference_fixtures``), so each element
  carries an absolute error of about 1e-7 of the data's scale. bnlab runs in
  float64 on the float64 inputs. An output element near 0 then shows a
  large element-wise relative error that says nothing about the formula
  (observed: -7.2981e-4 against Keras' -7.2974e-4, rel_error 4.8e-5, in an
  array whose values reach 6.9). So the check is
  ``|bnlab - keras| <= 1e-5 * (|keras| + max|keras|)`` element-wise, i.e.
  ``np.testing.assert_allclose(rtol=1e-5, atol=1e-5 * max|keras|)``: 1e-5
  relative to the values and to the scale of the array. The element-wise
  ``rel_error`` is still recorded, for information (``python
  tests/test_reference.py`` prints both).

A formula mistake (biased versus unbiased running variance, momentum on the
wrong side, wrong eps, wrong axes) moves results by 1e-3 or much more, far
above every tolerance here.
"""

from __future__ import annotations

import functools
import os

import make_reference_fixtures as ref
import numpy as np
import pytest
from _support import require_module, skip_or_fail

import bnlab

pytestmark = pytest.mark.reference

TORCH_TOL = 1e-6
KERAS_TOL = 1e-5  # relative to the data (float32 inside Keras)

SOURCES = ("fixture", "live")
SHAPE_NAMES = tuple(ref.SHAPES)

#: Worst error seen per (comparison label, source): (error, what).
WORST: dict[tuple[str, str], tuple[float, str]] = {}


# --------------------------------------------------------------------------- comparing


def scaled_rel_error(actual, expected):
    """``max |a - b| / (|b| + max|b|)``: relative to each value and to the array's scale."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    scale = np.max(np.abs(expected))
    return float(np.max(np.abs(actual - expected) / np.maximum(np.abs(expected) + scale, 1e-300)))


def _record(label, source, err, what):
    key = (label, source)
    if key not in WORST or err > WORST[key][0]:
        WORST[key] = (err, what)


def check(actual, expected, *, label, source, what, tol, float32=False):
    """Compare bnlab's ``actual`` with a framework's ``expected`` (see the module docstring)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    elementwise = bnlab.rel_error(actual, expected)
    if float32:
        err = scaled_rel_error(actual, expected)
        _record(label + " [element-wise rel_error, informational]", source, elementwise, what)
        _record(label, source, err, what)
        assert err <= tol, (
            f"{what}: bnlab differs from {label} by {err:.3g} relative to the data "
            f"(tolerance {tol:g}; element-wise rel_error {elementwise:.3g})"
        )
    else:
        _record(label, source, elementwise, what)
        assert elementwise <= tol, (
            f"{what}: rel_error(bnlab, {label}) = {elementwise:.3g} > {tol:g}"
        )


# --------------------------------------------------------------------------- data


def _load(path):
    if not path.exists():
        pytest.fail(f"{path} is missing: run `python tests/make_reference_fixtures.py`", pytrace=False)
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _nest(flat):
    nested = {}
    for key, value in flat.items():
        if key.startswith("meta/"):
            continue
        shape_name, name = key.split("/", 1)
        nested.setdefault(shape_name, {})[name] = value
    return nested


@functools.cache
def stored_inputs_flat():
    return _load(ref.INPUTS_FILE)


@functools.cache
def stored_torch():
    return _load(ref.TORCH_FILE)


@functools.cache
def stored_keras():
    return _load(ref.KERAS_FILE)


def stored_inputs():
    return _nest(stored_inputs_flat())


def require_torch():
    return require_module("torch", "pip install torch (CPU) to compare with PyTorch live")


def require_keras():
    """Keras 3 on the torch backend (KERAS_BACKEND is set before keras is imported)."""
    require_torch()
    os.environ["KERAS_BACKEND"] = "torch"
    keras = require_module("keras", "pip install keras (Keras 3; it runs on the torch backend)")
    if keras.backend.backend() != "torch":
        skip_or_fail(
            f"keras was imported with the {keras.backend.backend()!r} backend before this module "
            "could set KERAS_BACKEND=torch"
        )
    return keras


@functools.cache
def _live_torch():
    inputs = ref.all_inputs()
    return inputs, ref.torch_results(inputs)


@functools.cache
def _live_keras():
    inputs = ref.all_inputs()
    return inputs, ref.keras_results(inputs)


def torch_data(source):
    """(inputs by shape, flat PyTorch results) from the fixture or recomputed now."""
    if source == "fixture":
        return stored_inputs(), stored_torch()
    require_torch()
    return _live_torch()


def keras_data(source):
    """(inputs by shape, flat Keras results) from the fixture or recomputed now."""
    if source == "fixture":
        return stored_inputs(), stored_keras()
    require_keras()
    return _live_keras()


# --------------------------------------------------------------------------- comparisons


def compare_torch_functional(inputs, results, shape_name, source):
    """bnlab.batchnorm_forward / batchnorm_backward against torch.nn.functional.batch_norm + autograd."""
    inp = inputs[shape_name]
    expected = {k: results[f"functional/{shape_name}/{k}"] for k in ("y", "dz", "dgamma", "dbeta")}
    axis = ref.BNLAB_AXIS[shape_name]
    y, cache = bnlab.batchnorm_forward(inp["z"], inp["gamma"], inp["beta"], eps=ref.TORCH_EPS, axis=axis)
    dz, dgamma, dbeta = bnlab.batchnorm_backward(inp["dy"], cache)
    kw = {"label": "PyTorch", "source": source, "tol": TORCH_TOL}
    what = f"F.batch_norm {shape_name}"
    check(y, expected["y"], what=f"{what} y", **kw)
    check(dz, expected["dz"], what=f"{what} dz", **kw)
    check(dgamma, expected["dgamma"], what=f"{what} dgamma", **kw)
    check(dbeta, expected["dbeta"], what=f"{what} dbeta", **kw)
    # the step-by-step graph backward kept for teaching agrees as well
    gdz, gdgamma, gdbeta = bnlab.batchnorm_backward_graph(inp["dy"], cache)
    check(gdz, expected["dz"], what=f"{what} dz (graph backward)", **kw)
    check(gdgamma, expected["dgamma"], what=f"{what} dgamma (graph backward)", **kw)
    check(gdbeta, expected["dbeta"], what=f"{what} dbeta (graph backward)", **kw)


def bnlab_layer_run(inp, convention, momentum, axis, layout=lambda x: x):
    """Run bnlab.BatchNorm like the frameworks' layers; the defaults are bnlab's own.

    ``momentum=None`` leaves the convention's default (so a default case also
    checks bnlab's default momentum and eps). Returns the same keys as the
    framework functions (running stats as ``running_mean``/``running_var``).
    """
    channels = inp["z"].shape[1]
    bn = bnlab.BatchNorm(channels, convention=convention, momentum=momentum, axis=axis)
    bn.gamma = inp["gamma"].copy()
    bn.beta = inp["beta"].copy()
    out = {"train_y": [], "running_mean": [], "running_var": []}
    for batch in inp["train"]:
        out["train_y"].append(bn.forward(layout(batch), training=True))
        out["running_mean"].append(bn.running_mean.copy())
        out["running_var"].append(bn.running_var.copy())
    out["eval_y"] = bn.forward(layout(inp["eval"]), training=False)
    out["eval_one_y"] = bn.forward(layout(inp["eval_one"]), training=False)
    assert bn.num_batches_tracked == ref.STEPS
    return bn, {k: np.asarray(v) for k, v in out.items()}


def compare_torch_module(inputs, results, shape_name, momentum, source):
    """bnlab.BatchNorm(convention='pytorch') against torch.nn.BatchNorm1d/2d, step by step."""
    inp = inputs[shape_name]
    prefix = f"module/{shape_name}/m{momentum:g}"
    default = momentum == bnlab.CONVENTIONS["pytorch"].momentum
    bn, ours = bnlab_layer_run(inp, "pytorch", None if default else momentum, ref.BNLAB_AXIS[shape_name])
    assert bn.eps == ref.TORCH_EPS
    kw = {"label": "PyTorch", "source": source, "tol": TORCH_TOL}
    what = f"BatchNorm{'1d' if shape_name == '2d' else '2d'} momentum={momentum:g}"
    for step in range(ref.STEPS):
        for key in ("train_y", "running_mean", "running_var"):
            check(ours[key][step], results[f"{prefix}/{key}"][step],
                  what=f"{what} step {step + 1} {key}", **kw)
    check(ours["eval_y"], results[f"{prefix}/eval_y"], what=f"{what} eval", **kw)
    check(ours["eval_one_y"], results[f"{prefix}/eval_one_y"], what=f"{what} eval, batch of one", **kw)


def compare_keras_layer(inputs, results, shape_name, momentum, source):
    """bnlab.BatchNorm(convention='keras') against keras.layers.BatchNormalization, step by step.

    Keras is channels last: its 4-D outputs are NHWC. bnlab runs twice: on
    the NHWC batches with ``axis=(0, 1, 2)`` (compared directly), and on the
    NCHW batches with ``axis=(0, 2, 3)`` (compared after transposing Keras'
    outputs back to NCHW). For (N, D) both are ``axis=0``.
    """
    inp = inputs[shape_name]
    prefix = f"layer/{shape_name}/m{momentum:g}"
    expected = {
        "train_y": results[f"{prefix}/train_y"],
        "running_mean": results[f"{prefix}/moving_mean"],
        "running_var": results[f"{prefix}/moving_var"],
        "eval_y": results[f"{prefix}/eval_y"],
        "eval_one_y": results[f"{prefix}/eval_one_y"],
    }
    momentum_arg = None if momentum == bnlab.CONVENTIONS["keras"].momentum else momentum
    # (layout name, bnlab's results, Keras' results in that layout)
    runs = [(
        "NHWC axis=(0, 1, 2)" if shape_name == "4d" else "axis=0",
        bnlab_layer_run(inp, "keras", momentum_arg, ref.KERAS_LAYOUT_AXIS[shape_name],
                        layout=ref.to_keras_layout),
        expected,
    )]
    if shape_name == "4d":
        runs.append((
            "NCHW axis=(0, 2, 3)",
            bnlab_layer_run(inp, "keras", momentum_arg, ref.BNLAB_AXIS[shape_name]),
            dict(
                expected,
                train_y=np.stack([ref.from_keras_layout(y) for y in expected["train_y"]]),
                eval_y=ref.from_keras_layout(expected["eval_y"]),
                eval_one_y=ref.from_keras_layout(expected["eval_one_y"]),
            ),
        ))
    kw = {"label": "Keras", "source": source, "tol": KERAS_TOL, "float32": True}
    for layout_name, (bn, ours), expected_here in runs:
        assert bn.eps == ref.KERAS_EPS
        what = f"BatchNormalization {shape_name} momentum={momentum:g} bnlab {layout_name}"
        for step in range(ref.STEPS):
            for key in ("train_y", "running_mean", "running_var"):
                check(ours[key][step], expected_here[key][step],
                      what=f"{what} step {step + 1} {key}", **kw)
        check(ours["eval_y"], expected_here["eval_y"], what=f"{what} eval", **kw)
        check(ours["eval_one_y"], expected_here["eval_one_y"], what=f"{what} eval, batch of one", **kw)


# --------------------------------------------------------------------------- tests: fixtures themselves


def _meta(flat):
    return {key[len("meta/"):]: str(value) for key, value in flat.items() if key.startswith("meta/")}


def test_fixture_metadata_records_versions():
    for name, flat, required in (
        ("inputs", stored_inputs_flat(), ("numpy_version", "python_version", "generated_by")),
        ("torch", stored_torch(), ("torch_version", "numpy_version", "python_version", "generated_by")),
        ("keras", stored_keras(), ("keras_version", "keras_backend", "torch_version", "numpy_version",
                                   "python_version", "generated_by")),
    ):
        meta = _meta(flat)
        for key in required:
            assert meta.get(key, "").strip(), f"reference_{name}.npz has no meta/{key}"
            assert meta[key][0].isdigit() or key in ("generated_by", "keras_backend"), (name, key, meta[key])
    keras_meta = _meta(stored_keras())
    assert keras_meta["keras_backend"] == "torch"
    assert keras_meta["keras_version"].startswith("3."), keras_meta["keras_version"]


def test_fixtures_hold_every_case():
    expected_torch = set()
    for s in SHAPE_NAMES:
        expected_torch |= {f"functional/{s}/{k}" for k in ("y", "dz", "dgamma", "dbeta")}
        for m in ref.TORCH_MOMENTA:
            expected_torch |= {f"module/{s}/m{m:g}/{k}"
                               for k in ("train_y", "running_mean", "running_var", "eval_y", "eval_one_y")}
    expected_keras = {
        f"layer/{s}/m{m:g}/{k}"
        for s in SHAPE_NAMES for m in ref.KERAS_MOMENTA
        for k in ("train_y", "moving_mean", "moving_var", "eval_y", "eval_one_y")
    }
    assert {k for k in stored_torch() if not k.startswith("meta/")} == expected_torch
    assert {k for k in stored_keras() if not k.startswith("meta/")} == expected_keras
    for key, value in stored_torch().items():
        if not key.startswith("meta/"):
            assert value.dtype == np.float64, key
    for key, value in stored_keras().items():
        if not key.startswith("meta/"):
            assert value.dtype == np.float32, key  # what Keras computes in, on the torch backend


def test_stored_inputs_are_the_seeded_ones():
    fresh = ref.all_inputs()
    stored = stored_inputs()
    assert set(stored) == set(fresh)
    for shape_name, arrays in fresh.items():
        assert set(stored[shape_name]) == set(arrays)
        for key, value in arrays.items():
            np.testing.assert_array_equal(
                stored[shape_name][key], value,
                err_msg=f"stored input {shape_name}/{key} is not what make_inputs() gives now "
                        "(NumPy's random stream changed?): rerun tests/make_reference_fixtures.py",
            )
        assert not np.all(arrays["dy"] == 1.0)  # an all-ones upstream gradient proves nothing for BN


# --------------------------------------------------------------------------- tests: PyTorch


@pytest.mark.parametrize("shape_name", SHAPE_NAMES)
@pytest.mark.parametrize("source", SOURCES)
def test_functional_matches_torch(source, shape_name):
    inputs, results = torch_data(source)
    compare_torch_functional(inputs, results, shape_name, source)


@pytest.mark.parametrize("momentum", ref.TORCH_MOMENTA)
@pytest.mark.parametrize("shape_name", SHAPE_NAMES)
@pytest.mark.parametrize("source", SOURCES)
def test_layer_matches_torch_module(source, shape_name, momentum):
    inputs, results = torch_data(source)
    compare_torch_module(inputs, results, shape_name, momentum, source)


def test_batch_of_one_refused_in_training_accepted_in_eval():
    """bnlab side of the batch-of-one rule (needs no framework): as PyTorch in train()/eval()."""
    for shape in ((1, 5), (1, 3, 1, 1)):
        axis = 0 if len(shape) == 2 else (0, 2, 3)
        z = np.random.default_rng(0).standard_normal(shape)
        bn = bnlab.BatchNorm(shape[1], convention="pytorch", axis=axis)
        with pytest.raises(ValueError, match="one value per feature"):
            bn.forward(z, training=True)
        with pytest.raises(ValueError, match="one value per feature"):
            bnlab.batchnorm_forward(z, np.ones(shape[1]), np.zeros(shape[1]), axis=axis)
        assert bn.num_batches_tracked == 0
        np.testing.assert_array_equal(bn.running_mean, 0.0)  # the refused call left no trace
        y = bn.forward(z, training=False)
        np.testing.assert_allclose(y, z / np.sqrt(1.0 + bn.eps), rtol=1e-15)


def test_torch_batch_of_one_training_raises_like_bnlab():
    torch = require_torch()
    rng = np.random.default_rng(1)
    for shape in ((1, 5), (1, 3, 1, 1)):
        axis = 0 if len(shape) == 2 else (0, 2, 3)
        z = rng.standard_normal(shape)
        # functional
        with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
            torch.nn.functional.batch_norm(torch.tensor(z), None, None, training=True)
        # module in train(); then eval() accepts it, and so does bnlab, with the same output
        module = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(
            shape[1], dtype=torch.float64)
        with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
            module(torch.tensor(z))
        bn = bnlab.BatchNorm(shape[1], convention="pytorch", axis=axis)
        with pytest.raises(ValueError):
            bn.forward(z, training=True)
        module.eval()
        with torch.no_grad():
            expected = module(torch.tensor(z)).numpy()
        check(bn.forward(z, training=False), expected, label="PyTorch", source="live",
              what=f"eval on a batch of one {shape}", tol=TORCH_TOL)
    # one sample but a 5x6 map is 30 values per channel: both train on it
    z = rng.standard_normal((1, 3, 5, 6))
    module = torch.nn.BatchNorm2d(3, dtype=torch.float64)
    bn = bnlab.BatchNorm(3, convention="pytorch", axis=(0, 2, 3))
    with torch.no_grad():
        expected = module(torch.tensor(z)).numpy()
    kw = {"label": "PyTorch", "source": "live", "tol": TORCH_TOL}
    check(bn.forward(z, training=True), expected, what="train on (1, 3, 5, 6)", **kw)
    check(bn.running_var, module.running_var.numpy(), what="running_var after (1, 3, 5, 6)", **kw)


# --------------------------------------------------------------------------- tests: Keras


@pytest.mark.parametrize("momentum", ref.KERAS_MOMENTA)
@pytest.mark.parametrize("shape_name", SHAPE_NAMES)
@pytest.mark.parametrize("source", SOURCES)
def test_layer_matches_keras(source, shape_name, momentum):
    inputs, results = keras_data(source)
    compare_keras_layer(inputs, results, shape_name, momentum, source)


def test_keras_batch_of_one_training_does_not_raise():
    """Keras trains on a batch of one without complaint (output = beta); bnlab refuses, by design."""
    keras = require_keras()
    beta = np.array([0.5, -1.0, 2.0])
    layer = keras.layers.BatchNormalization()
    layer.build((1, 3))
    layer.beta.assign(beta.astype(np.float32))
    z = np.array([[1.0, 2.0, 3.0]])
    y = ref.keras_to_numpy(layer(z, training=True))
    np.testing.assert_array_equal(y, beta[None, :])  # (z - mean) is exactly 0, so y = beta
    np.testing.assert_allclose(ref.keras_to_numpy(layer.moving_variance), 0.99)  # var 0 was learnt
    with pytest.raises(ValueError, match="one value per feature"):
        bnlab.BatchNorm(3, convention="keras").forward(z, training=True)


# --------------------------------------------------------------------------- tests: the conventions diverge alike


@pytest.mark.parametrize("shape_name", SHAPE_NAMES)
@pytest.mark.parametrize("source", SOURCES)
def test_conventions_diverge_as_the_frameworks_do(source, shape_name):
    """Same batches through PyTorch's and Keras' bookkeeping; bnlab's two conventions part the same way.

    The gap (torch running statistic - keras moving statistic, after each
    step) is compared with the gap between bnlab's ``"pytorch"`` and
    ``"keras"`` layers on the same batches. Keras' statistics are float32, so
    the gaps must agree within 1e-5 of the statistics' scale.

    - torch momentum 0.1 against keras 0.9 (the same weight 0.1 on each new
      batch): the running means coincide, the running variances differ by
      PyTorch's unbiased n/(n-1) correction only.
    - the defaults, torch 0.1 against keras 0.99: both statistics part.
    """
    inputs, torch_res = torch_data(source)
    _, keras_res = keras_data(source)
    inp = inputs[shape_name]
    axis = ref.BNLAB_AXIS[shape_name]
    _, ours_torch = bnlab_layer_run(inp, "pytorch", 0.1, axis)
    n = inp["z"].size // inp["z"].shape[1]  # values per channel
    for keras_momentum in ref.KERAS_MOMENTA:
        _, ours_keras = bnlab_layer_run(inp, "keras", keras_momentum, axis)
        tprefix = f"module/{shape_name}/m0.1"
        kprefix = f"layer/{shape_name}/m{keras_momentum:g}"
        gaps, atols = {}, {}
        for ours_key, keras_key in (("running_mean", "moving_mean"), ("running_var", "moving_var")):
            torch_stat = torch_res[f"{tprefix}/{ours_key}"]
            keras_stat = keras_res[f"{kprefix}/{keras_key}"].astype(np.float64)
            theirs = torch_stat - keras_stat
            ours = ours_torch[ours_key] - ours_keras[ours_key]
            atol = KERAS_TOL * max(np.max(np.abs(torch_stat)), np.max(np.abs(keras_stat)))
            what = f"{ours_key} gap, torch momentum 0.1 vs keras {keras_momentum:g}"
            _record("Keras vs PyTorch gap [|diff| / stat scale]", source,
                    float(np.max(np.abs(ours - theirs))) * KERAS_TOL / atol, what)
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=atol, err_msg=what)
            gaps[ours_key], atols[ours_key] = ours, atol
        if keras_momentum == 0.9:
            # equivalent momenta: the means coincide (exactly, in bnlab) ...
            assert np.max(np.abs(gaps["running_mean"])) <= 1e-12 * atols["running_mean"] / KERAS_TOL
            # ... the variances part visibly (well above Keras' float32 noise) ...
            assert np.max(np.abs(gaps["running_var"])) > 10 * atols["running_var"]
            # ... by exactly the Bessel correction, accumulated with weight 0.1
            corrected = np.empty_like(gaps["running_var"])
            torch_var = keras_var = 1.0
            for step, batch in enumerate(inp["train"]):
                _, var = bnlab.batch_stats(batch, axis=axis)
                torch_var = 0.9 * torch_var + 0.1 * var * n / (n - 1)
                keras_var = 0.9 * keras_var + 0.1 * var
                corrected[step] = torch_var - keras_var
            np.testing.assert_allclose(gaps["running_var"], corrected, rtol=1e-12, atol=1e-15)
        else:
            # the defaults: torch weighs each batch 0.1, keras 0.01; both statistics part
            for key in ("running_mean", "running_var"):
                assert np.max(np.abs(gaps[key][-1])) > 100 * atols[key], key


# --------------------------------------------------------------------------- report


def report(sources=("fixture", "live")):
    """Run every comparison and return the worst errors per framework (for ``python tests/test_reference.py``)."""
    WORST.clear()
    for source in sources:
        try:
            inputs, res = torch_data(source)
            for s in SHAPE_NAMES:
                compare_torch_functional(inputs, res, s, source)
                for m in ref.TORCH_MOMENTA:
                    compare_torch_module(inputs, res, s, m, source)
        except pytest.skip.Exception as exc:
            print(f"[{source}] PyTorch skipped: {exc}")
        try:
            inputs, res = keras_data(source)
            for s in SHAPE_NAMES:
                for m in ref.KERAS_MOMENTA:
                    compare_keras_layer(inputs, res, s, m, source)
        except pytest.skip.Exception as exc:
            print(f"[{source}] Keras skipped: {exc}")
    return dict(WORST)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for (label, source), (err, what) in sorted(report().items()):
        print(f"{source:8s} {label:58s} worst {err:.3e}  ({what})")
