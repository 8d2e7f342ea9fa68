"""The normalization family and the convolution against PyTorch and Keras 3: fixtures always, live where installed.

As ``test_reference.py`` for batch norm: every comparison runs on the
stored fixtures (``tests/fixtures/reference_family_*.npz``, written by
``tests/make_reference_fixtures.py --only family``) and, where torch / keras
are installed, on the same seeded cases recomputed now (a skip, or a failure
under ``BNLAB_REQUIRE_ALL=1``).

How closeness is measured
-------------------------
- PyTorch, float64: ``bnlab.rel_error`` (element-wise ``|a - b| / (|a| + |b|)``)
  <= 1e-10, for the output and every gradient autograd gives (dx, dgamma,
  dbeta; dW, db) with a random upstream gradient. Observed: 7e-14 at worst.
- PyTorch, float32 (both sides compute in float32 on the same inputs): each
  element carries a rounding error of about 1e-7 of the array's scale, so an
  element near 0 shows a large element-wise relative error that says nothing
  about the formula (observed: rel_error 7.9e-5 for group norm's dx with 6
  groups, where the worst difference is 4e-7 of the array's scale). The
  check is the one ``test_reference.py`` uses for Keras:
  ``|bnlab - torch| <= 1e-5 * (|torch| + max|torch|)`` element-wise; the
  element-wise ``rel_error`` is recorded for information.
- Keras 3 (torch backend) computes in float32 whatever the input's dtype;
  bnlab runs in float64 on the float64 inputs; same check, 1e-5 relative to
  the data. Keras' default epsilons differ from PyTorch's (1e-3 for layer
  and group normalization, 1e-6 for RMS), so eps is passed explicitly, and
  ``test_the_tolerances_see_a_wrong_eps_or_grouping`` shows that a wrong eps
  or a wrong grouping is caught.
"""

from __future__ import annotations

import functools

import make_reference_fixtures as ref
import numpy as np
import pytest
from test_reference import (
    WORST,
    _load,
    _meta,
    check,
    require_keras,
    require_torch,
    scaled_rel_error,
)

import bnlab

pytestmark = pytest.mark.reference

TORCH_TOL = {"float64": 1e-10, "float32": 1e-5}  # float32: relative to the data, see above
KERAS_TOL = 1e-5  # relative to the data (float32 inside Keras)
SOURCES = ("fixture", "live")
TORCH_CASES = tuple(ref.FAMILY_CASES) + tuple(ref.CONV_CASES)
EPS = ref.FAMILY_EPS


# --------------------------------------------------------------------------- data


@functools.cache
def stored_inputs_flat():
    return _load(ref.FAMILY_INPUTS_FILE)


@functools.cache
def stored_torch():
    return _load(ref.FAMILY_TORCH_FILE)


@functools.cache
def stored_keras():
    return _load(ref.FAMILY_KERAS_FILE)


def stored_inputs():
    """``{case: {name: array}}``; the Keras cases are under ``"keras/<layer>/<case>"``."""
    flat = stored_inputs_flat()
    nested = {}
    for key, value in flat.items():
        if not key.startswith("meta/"):
            case, name = key.rsplit("/", 1)
            nested.setdefault(case, {})[name] = value
    return nested


@functools.cache
def _live_inputs():
    return ref.make_family_inputs()


@functools.cache
def _live_torch():
    return ref.torch_family_results(_live_inputs())


@functools.cache
def _live_keras():
    return ref.keras_family_results(_live_inputs())


def torch_data(source):
    if source == "fixture":
        return stored_inputs(), stored_torch()
    require_torch()
    return _live_inputs(), _live_torch()


def keras_data(source):
    if source == "fixture":
        return stored_inputs(), stored_keras()
    require_keras()
    return _live_inputs(), _live_keras()


# --------------------------------------------------------------------------- bnlab's side


def bnlab_case(case, inputs, dtype, eps=EPS):
    """bnlab's output and gradients for one torch case, in ``dtype``: the keys torch_family_case gives."""
    x = inputs["x"].astype(dtype)
    dy = inputs["dy"].astype(dtype)
    if case in ref.CONV_CASES:
        kernel, padding, bias = ref.CONV_CASES[case]
        conv = bnlab.Conv2D(x.shape[1], ref.CONV_OUT_CHANNELS, kernel, padding=padding, bias=bias,
                            dtype=dtype)
        conv.W[...] = inputs["W"]
        if bias:
            conv.b[...] = inputs["b"]
        y = conv.forward(x, training=True)
        dx = conv.backward(dy)
        return {"y": y, "dx": dx, "dW": conv.dW, "db": conv.db}
    function, _, kwargs = ref.FAMILY_CASES[case]
    gamma, beta = inputs.get("gamma"), inputs.get("beta")
    if function == "layer_norm":
        y, cache = bnlab.layer_norm_forward(x, kwargs["normalized_shape"], gamma, beta, eps)
        dx, dgamma, dbeta = bnlab.layer_norm_backward(dy, cache)
    elif function == "group_norm":
        y, cache = bnlab.group_norm_forward(x, kwargs["num_groups"], gamma, beta, eps)
        dx, dgamma, dbeta = bnlab.group_norm_backward(dy, cache)
    elif function == "instance_norm":
        y, cache = bnlab.instance_norm_forward(x, gamma, beta, eps)
        dx, dgamma, dbeta = bnlab.instance_norm_backward(dy, cache)
    else:
        y, cache = bnlab.rms_norm_forward(x, kwargs["normalized_shape"], gamma, kwargs["eps"])
        dx, dgamma = bnlab.rms_norm_backward(dy, cache)
        dbeta = None
    return {"y": y, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def bnlab_keras_case(case, inputs, eps=EPS, groups=None):
    """bnlab's float64 forward for one Keras case (channels first)."""
    layer, _, kwargs = ref.KERAS_FAMILY_CASES[case]
    x, gamma, beta = inputs["x"], inputs["gamma"], inputs.get("beta")
    if layer == "LayerNormalization":
        return bnlab.layer_norm(x, gamma.shape, gamma, beta, eps)
    if layer == "RMSNormalization":
        return bnlab.rms_norm(x, gamma.shape, gamma, eps)
    groups = kwargs["groups"] if groups is None else groups
    if groups == -1:  # Keras' instance normalization
        return bnlab.instance_norm(x, gamma, beta, eps)
    return bnlab.group_norm(x, groups, gamma, beta, eps)


def compare_torch(case, dtype, source):
    inputs, results = torch_data(source)
    ours = bnlab_case(case, inputs[case], dtype)
    float32 = dtype == "float32"
    label = f"PyTorch {dtype}"
    compared = 0
    for key, value in ours.items():
        stored = f"{case}/{dtype}/{key}"
        if value is None:
            assert stored not in results, f"bnlab gave no {key} but torch did ({stored})"
            continue
        assert value.dtype == np.dtype(dtype), (stored, value.dtype)
        check(value, results[stored], label=label, source=source, what=stored,
              tol=TORCH_TOL[dtype], float32=float32)
        compared += 1
    assert compared >= 2  # the output and at least dx


# --------------------------------------------------------------------------- tests: the fixtures themselves


def test_family_fixture_metadata_records_versions():
    for name, flat, required in (
        ("inputs", stored_inputs_flat(), ("numpy_version", "python_version", "generated_by")),
        ("torch", stored_torch(), ("torch_version", "numpy_version", "python_version")),
        ("keras", stored_keras(), ("keras_version", "keras_backend", "torch_version")),
    ):
        meta = _meta(flat)
        for key in required:
            assert meta.get(key, "").strip(), f"reference_family_{name}.npz has no meta/{key}"
    assert _meta(stored_keras())["keras_backend"] == "torch"
    assert _meta(stored_keras())["keras_version"].startswith("3.")


def test_family_fixtures_hold_every_case():
    torch_keys = {k for k in stored_torch() if not k.startswith("meta/")}
    expected = set()
    for case, arrays in stored_inputs().items():
        if case.startswith("keras/"):
            continue
        grads = ({"dW": "W", "db": "b"} if case in ref.CONV_CASES else {"dgamma": "gamma", "dbeta": "beta"})
        names = {"y", "dx"} | {g for g, p in grads.items() if p in arrays}
        expected |= {f"{case}/{dtype}/{n}" for dtype in ref.FAMILY_DTYPES for n in names}
    assert torch_keys == expected
    assert {case for case in stored_inputs() if not case.startswith("keras/")} == set(TORCH_CASES)
    for key, value in stored_torch().items():
        if not key.startswith("meta/"):
            assert value.dtype == np.dtype(key.split("/")[2]), key
    keras_keys = {k for k in stored_keras() if not k.startswith("meta/")}
    assert keras_keys == {f"{case}/y" for case in ref.KERAS_FAMILY_CASES}
    for key in keras_keys:
        assert stored_keras()[key].dtype == np.float32, key  # what Keras computes in


def test_family_stored_inputs_are_the_seeded_ones():
    fresh = ref.make_family_inputs()
    stored = stored_inputs()
    assert set(stored) == set(fresh)
    for case, arrays in fresh.items():
        assert set(stored[case]) == set(arrays), case
        for key, value in arrays.items():
            np.testing.assert_array_equal(
                stored[case][key], value,
                err_msg=f"stored input {case}/{key} is not what make_family_inputs() gives now: "
                        "rerun tests/make_reference_fixtures.py --only family")
        if "dy" in arrays:
            assert not np.all(arrays["dy"] == 1.0)  # an all-ones upstream gradient proves little


def test_cases_cover_what_the_family_needs():
    groups = {kw["num_groups"] for f, _, kw in ref.FAMILY_CASES.values() if f == "group_norm"}
    channels = ref.FAMILY_SHAPES["4d"][1]
    assert {1, 2, channels} <= groups  # G = 1 (layer norm), 2, C (instance norm)
    eps = {kw["eps"] for f, _, kw in ref.FAMILY_CASES.values() if f == "rms_norm"}
    assert None in eps and len(eps) > 1  # eps None (finfo) and given
    assert {(k, p) for k, p, _ in ref.CONV_CASES.values()} >= {((3, 3), 0), ((3, 3), 1), ((2, 3), 0),
                                                                ((2, 3), 1)}


# --------------------------------------------------------------------------- tests: PyTorch


@pytest.mark.parametrize("dtype", ref.FAMILY_DTYPES)
@pytest.mark.parametrize("case", TORCH_CASES)
@pytest.mark.parametrize("source", SOURCES)
def test_matches_torch(source, case, dtype):
    compare_torch(case, dtype, source)


def test_layers_match_torch_modules():
    """bnlab's layers against torch.nn's modules (float64, live): outputs, dx and parameter gradients."""
    torch = require_torch()
    rng = np.random.default_rng(7)
    x = rng.normal(1.0, 2.0, size=(4, 6, 5, 5))
    pairs = [
        (bnlab.LayerNorm((6, 5, 5)), torch.nn.LayerNorm((6, 5, 5), dtype=torch.float64), ("gamma", "beta")),
        (bnlab.GroupNorm(3, 6), torch.nn.GroupNorm(3, 6, dtype=torch.float64), ("gamma", "beta")),
        (bnlab.RMSNorm(5), torch.nn.RMSNorm(5, dtype=torch.float64), ("gamma",)),
        (bnlab.Conv2D(6, 4, 3, padding=1, rng=0), torch.nn.Conv2d(6, 4, 3, padding=1, dtype=torch.float64),
         ("W", "b")),
    ]
    for ours, theirs, names in pairs:
        params = [p for p in theirs.parameters()]
        for name, param in zip(names, params):
            value = rng.normal(1.0, 0.3, size=getattr(ours, name).shape)
            getattr(ours, name)[...] = value
            with torch.no_grad():
                param.copy_(torch.tensor(value))
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        dy = rng.standard_normal(tuple(yt.shape))  # random upstream gradient
        yt.backward(torch.tensor(dy))
        y = ours.forward(x, training=True)
        dx = ours.backward(dy)
        kw = {"label": "PyTorch float64", "source": "live", "tol": TORCH_TOL["float64"]}
        what = type(ours).__name__
        check(y, yt.detach().numpy(), what=f"{what} y", **kw)
        check(dx, xt.grad.numpy(), what=f"{what} dx", **kw)
        for name, param in zip(names, params):
            check(getattr(ours, "d" + name), param.grad.numpy(), what=f"{what} d{name}", **kw)


def test_instance_norm_refuses_one_position_like_torch():
    torch = require_torch()
    x = np.random.default_rng(0).standard_normal((2, 3, 1))
    with pytest.raises(ValueError, match="Expected more than 1 spatial element"):
        torch.nn.functional.instance_norm(torch.tensor(x))
    with pytest.raises(ValueError, match="only one position per channel"):
        bnlab.instance_norm(x)


# --------------------------------------------------------------------------- tests: Keras


@pytest.mark.parametrize("case", tuple(ref.KERAS_FAMILY_CASES))
@pytest.mark.parametrize("source", SOURCES)
def test_matches_keras(source, case):
    inputs, results = keras_data(source)
    ours = bnlab_keras_case(case, inputs["keras/" + case])
    check(ours, results[f"{case}/y"], label="Keras", source=source, what=f"{case} y", tol=KERAS_TOL,
          float32=True)


def test_the_tolerances_see_a_wrong_eps_or_grouping():
    """Each comparison can fail: Keras' default epsilons, the wrong grouping, RMS eps None for 1e-3."""
    inputs, keras_results = stored_inputs(), stored_keras()
    for case, keras_default_eps in (("LayerNormalization/4d", 1e-3), ("GroupNormalization/G2", 1e-3)):
        ours = bnlab_keras_case(case, inputs["keras/" + case], eps=keras_default_eps)
        assert scaled_rel_error(ours, keras_results[f"{case}/y"]) > 3 * KERAS_TOL, case
    wrong_groups = bnlab_keras_case("GroupNormalization/G2", inputs["keras/GroupNormalization/G2"],
                                    groups=3)
    assert scaled_rel_error(wrong_groups, keras_results["GroupNormalization/G2/y"]) > 100 * KERAS_TOL
    torch_results = stored_torch()
    case = "rms_norm/eps_1e-3"
    x, gamma = inputs[case]["x"], inputs[case]["gamma"]
    y_default_eps = bnlab.rms_norm(x, (6,), gamma)  # finfo eps instead of 1e-3
    assert bnlab.rel_error(y_default_eps, torch_results[f"{case}/float64/y"]) > 1e4 * TORCH_TOL["float64"]
    # a torch float32 output is not a float64 one: the float64 tolerance sees the difference
    assert bnlab.rel_error(torch_results[f"{case}/float32/y"],
                           torch_results[f"{case}/float64/y"]) > 100 * TORCH_TOL["float64"]


# --------------------------------------------------------------------------- report


def report(sources=SOURCES):
    """Every comparison; the worst error per (framework, source) (for ``python tests/test_reference_family.py``)."""
    WORST.clear()
    for source in sources:
        try:
            for case in TORCH_CASES:
                for dtype in ref.FAMILY_DTYPES:
                    compare_torch(case, dtype, source)
        except pytest.skip.Exception as exc:
            print(f"[{source}] PyTorch skipped: {exc}")
        try:
            inputs, results = keras_data(source)
            for case in ref.KERAS_FAMILY_CASES:
                check(bnlab_keras_case(case, inputs["keras/" + case]), results[f"{case}/y"],
                      label="Keras", source=source, what=f"{case} y", tol=KERAS_TOL, float32=True)
        except pytest.skip.Exception as exc:
            print(f"[{source}] Keras skipped: {exc}")
    return dict(WORST)


if __name__ == "__main__":
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for (label, source), (err, what) in sorted(report().items()):
        print(f"{source:8s} {label:62s} worst {err:.3e}  ({what})")
