"""bnlab after training (notebooks 10-11) against PyTorch and Keras 3: stored fixtures always, live where installed.

The same pattern as ``tests/test_reference.py`` (whose comparison helpers
this module uses): every comparison runs on ``source="fixture"``
(``tests/fixtures/reference_after_training_*.npz``, recorded by
``tests/make_reference_fixtures.py --only after-training``, NumPy only) and on
``source="live"`` (the same cases recomputed now by the same generation
functions; skipped without torch / keras, a failure under
``BNLAB_REQUIRE_ALL=1``).

PyTorch comparisons are float64 and held to ``rel_error <= 1e-10``
(element-wise, CS231n's); Keras computes in float32 (see
``make_reference_fixtures``) and is held to 1e-5 of the data's scale.

What is compared
----------------
- ``momentum=None`` (bnlab ``"cumulative"``), ``affine=False``,
  ``track_running_stats=False`` (train and eval, batch of one refused in
  eval), ``requires_grad_(False)`` on weight and bias in train mode (bnlab
  ``trainable=False``, pytorch convention; SGD updates nothing, running
  statistics still move), the unfrozen counterpart, ``reset_running_stats``:
  outputs, input gradients, running statistics, parameters after SGD.
- ``fuse_linear_bn_eval`` and ``fuse_conv_bn_eval`` (with and without bias,
  conv also without affine) against :func:`bnlab.fold_batchnorm` and
  :func:`bnlab.fold_model`.
- ``torch.optim.swa_utils.update_bn`` against :func:`bnlab.recalibrate_batchnorm`
  on the same MLP.
- Keras 3 ``trainable=False`` (inference mode inside ``training=True``,
  moving statistics unchanged) and ``center=False, scale=False``.
- Live only: :func:`bnlab.translate`'s claims, by building the frameworks'
  layers from the code :func:`bnlab.render_translation` prints.
"""

from __future__ import annotations

import copy
import functools

import make_reference_fixtures as ref
import numpy as np
import pytest
import test_reference as tr

import bnlab
from bnlab.layers import SGD, BatchNorm, Dense, ReLU, Sequential

pytestmark = pytest.mark.reference

TORCH_TOL = 1e-10
KERAS_TOL = tr.KERAS_TOL
SOURCES = tr.SOURCES
SHAPE_NAMES = tr.SHAPE_NAMES

def _behaviour(what):
    """The first word of ``what`` names the behaviour the worst errors are reported for."""
    return what.split()[0].split("(")[0]


def check_torch(actual, expected, source, what):
    tr.check(actual, expected, source=source, what=what, tol=TORCH_TOL,
             label=f"PyTorch after training: {_behaviour(what)}")


def check_keras(actual, expected, source, what):
    tr.check(actual, expected, source=source, what=what, tol=KERAS_TOL, float32=True,
             label=f"Keras after training: {_behaviour(what)}")


# --------------------------------------------------------------------------- data


@functools.cache
def stored_extra():
    return {k: v for k, v in tr._load(ref.AFTER_INPUTS_FILE).items() if not k.startswith("meta/")}


@functools.cache
def stored_torch_after():
    return tr._load(ref.AFTER_TORCH_FILE)


@functools.cache
def stored_keras_after():
    return tr._load(ref.AFTER_KERAS_FILE)


@functools.cache
def _live_torch_after():
    inputs, extra = ref.all_inputs(), ref.make_after_training_inputs()
    return inputs, extra, ref.after_training_torch_results(inputs, extra)


@functools.cache
def _live_keras_after():
    inputs = ref.all_inputs()
    return inputs, ref.after_training_keras_results(inputs)


def torch_after(source):
    """(BN inputs by shape, extra inputs, flat PyTorch results) from the fixture or recomputed now."""
    if source == "fixture":
        return tr.stored_inputs(), stored_extra(), stored_torch_after()
    tr.require_torch()
    return _live_torch_after()


def keras_after(source):
    if source == "fixture":
        return tr.stored_inputs(), stored_keras_after()
    tr.require_keras()
    return _live_keras_after()


def results_under(results, prefix):
    return {key[len(prefix) + 1:]: value for key, value in results.items() if key.startswith(prefix + "/")}


# --------------------------------------------------------------------------- the fixtures themselves


def test_after_training_fixtures_record_versions_and_every_case():
    for flat, required in ((tr._load(ref.AFTER_INPUTS_FILE), ("numpy_version",)),
                           (stored_torch_after(), ("torch_version",)),
                           (stored_keras_after(), ("keras_version", "keras_backend"))):
        meta = tr._meta(flat)
        for key in required + ("python_version", "generated_by"):
            assert meta.get(key, "").strip(), key
    assert tr._meta(stored_keras_after())["keras_backend"] == "torch"
    torch_keys = {k for k in stored_torch_after() if not k.startswith("meta/")}
    for shape in SHAPE_NAMES:
        for variant in (*ref.TORCH_BN_VARIANTS, "reset"):
            assert f"{variant}/{shape}/train_y" in torch_keys or f"{variant}/{shape}/running_mean" in torch_keys
    for bias in (0, 1):
        assert f"fuse_linear/bias{bias}/W" in torch_keys
        for affine in (0, 1):
            assert f"fuse_conv/bias{bias}_affine{affine}/W" in torch_keys
    assert "update_bn/eval_y" in torch_keys
    keras_keys = {k for k in stored_keras_after() if not k.startswith("meta/")}
    assert {f"{case}/{s}/eval_y" for case in ("frozen", "no_affine") for s in SHAPE_NAMES} <= keras_keys


def test_stored_after_training_inputs_are_the_seeded_ones():
    fresh = ref.make_after_training_inputs()
    assert set(stored_extra()) == set(fresh)
    for key, value in fresh.items():
        np.testing.assert_array_equal(stored_extra()[key], value, err_msg=key)


# --------------------------------------------------------------------------- BatchNorm variants vs PyTorch


def bnlab_bn_run(inp, *, momentum=0.1, affine=True, track_running_stats=True, frozen=False):
    """bnlab's side of ``ref.torch_bn_run``: a one-layer Sequential, backward with dy, bnlab SGD."""
    axis = ref.BNLAB_AXIS["2d" if inp["z"].ndim == 2 else "4d"]
    bn = BatchNorm(inp["z"].shape[1], convention="pytorch", axis=axis,
                   momentum="cumulative" if momentum is None else momentum,
                   affine=affine, track_running_stats=track_running_stats)
    if affine:
        bn.gamma = inp["gamma"].copy()
        bn.beta = inp["beta"].copy()
    if frozen:
        bn.trainable = False
    model = Sequential([bn])
    optimizer = SGD(ref.AFTER_LEARNING_RATE)
    out = {"train_y": [], "dz": [], "running_mean": [], "running_var": [], "weight": [], "bias": []}
    for batch in inp["train"]:
        out["train_y"].append(model.forward(batch, training=True))
        out["dz"].append(model.backward(inp["dy"]))
        if frozen or not affine:
            assert bn.dgamma is None and bn.dbeta is None
            assert model.params_and_grads() == []  # SGD gets nothing to update
        optimizer.step(model)
        if track_running_stats:
            out["running_mean"].append(bn.running_mean.copy())
            out["running_var"].append(bn.running_var.copy())
        if affine:
            out["weight"].append(bn.gamma.copy())
            out["bias"].append(bn.beta.copy())
    out = {k: np.asarray(v) for k, v in out.items() if v}
    if track_running_stats:
        out["num_batches_tracked"] = np.asarray(bn.num_batches_tracked)
        out["eval_one_y"] = bn.forward(inp["eval_one"], training=False)
    out["eval_y"] = bn.forward(inp["eval"], training=False)
    return bn, out


@pytest.mark.parametrize("variant", sorted(ref.TORCH_BN_VARIANTS))
@pytest.mark.parametrize("shape_name", SHAPE_NAMES)
@pytest.mark.parametrize("source", SOURCES)
def test_batchnorm_variants_match_torch(source, shape_name, variant):
    inputs, _, results = torch_after(source)
    inp = inputs[shape_name]
    expected = results_under(results, f"{variant}/{shape_name}")
    bn, ours = bnlab_bn_run(inp, **ref.TORCH_BN_VARIANTS[variant])
    assert set(ours) == set(expected), (sorted(ours), sorted(expected))
    for key in sorted(expected):
        if key == "num_batches_tracked":
            assert int(ours[key]) == int(expected[key]) == ref.STEPS
            continue
        check_torch(ours[key], expected[key], source, f"{variant} {shape_name} {key}")
    if variant == "frozen":
        # requires_grad_(False): gamma and beta never move, the running statistics still do
        np.testing.assert_array_equal(expected["weight"], np.broadcast_to(inp["gamma"], expected["weight"].shape))
        assert np.abs(expected["running_mean"][-1]).min() > 1e-3
    if variant == "unfrozen":
        assert np.abs(expected["weight"][-1] - inp["gamma"]).min() > 1e-3  # SGD did move them
    if variant == "no_running_stats":
        assert bn.running_mean is None and bn.num_batches_tracked is None
        # eval uses the batch's own statistics: the same output as training mode on that batch
        np.testing.assert_allclose(ours["eval_y"], bn.forward(inp["eval"], training=True), rtol=1e-13)


@pytest.mark.parametrize("shape_name", SHAPE_NAMES)
def test_no_running_stats_refuses_a_batch_of_one_in_eval_like_torch(shape_name):
    inp = tr.stored_inputs()[shape_name]
    one = inp["eval_one"] if shape_name == "2d" else inp["eval_one"][:, :, :1, :1]  # one value per channel
    bn = BatchNorm(inp["z"].shape[1], convention="pytorch", axis=ref.BNLAB_AXIS[shape_name],
                   track_running_stats=False)
    with pytest.raises(ValueError, match="only one value per feature.*track_running_stats=False"):
        bn.forward(one, training=False)
    if shape_name == "4d":
        bn.forward(inp["eval_one"], training=False)  # one sample of a 5 x 6 map: 30 values per channel
    torch = tr.require_torch()
    module = (torch.nn.BatchNorm1d if shape_name == "2d" else torch.nn.BatchNorm2d)(
        inp["z"].shape[1], track_running_stats=False, dtype=torch.float64).eval()
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        module(torch.tensor(one))


@pytest.mark.parametrize("shape_name", SHAPE_NAMES)
@pytest.mark.parametrize("source", SOURCES)
def test_reset_running_stats_matches_torch(source, shape_name):
    inputs, _, results = torch_after(source)
    inp = inputs[shape_name]
    expected = results_under(results, f"reset/{shape_name}")
    bn = BatchNorm(inp["z"].shape[1], convention="pytorch", momentum="cumulative",
                   axis=ref.BNLAB_AXIS[shape_name])
    bn.gamma, bn.beta = inp["gamma"].copy(), inp["beta"].copy()
    for batch in inp["train"]:
        bn.forward(batch, training=True)
    bn.reset_running_stats()
    np.testing.assert_array_equal(bn.running_mean, expected["reset_mean"])
    np.testing.assert_array_equal(bn.running_var, expected["reset_var"])
    assert bn.num_batches_tracked == int(expected["reset_tracked"]) == 0
    for step, batch in enumerate(inp["train"][:2]):
        bn.forward(batch, training=True)
        for key in ("running_mean", "running_var"):
            check_torch(getattr(bn, key), expected[key][step], source, f"reset {shape_name} step {step} {key}")
    assert bn.num_batches_tracked == int(expected["num_batches_tracked"]) == 2
    check_torch(bn.forward(inp["eval"], training=False), expected["eval_y"], source, f"reset {shape_name} eval")


# --------------------------------------------------------------------------- folding vs fuse_*_bn_eval


def conv2d_nchw(x, W, b):
    """A plain 'valid' convolution (cross-correlation, as torch.nn.Conv2d), for checking folded weights."""
    kh, kw = W.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))  # (N, C_in, H', W', kh, kw)
    return np.einsum("nchwij,ocij->nohw", windows, W) + b[None, :, None, None]


def _conv_from(W, b):
    """bnlab.Conv2D holding ``W`` (C_out, C_in, kh, kw) and ``b`` (None: no bias), no padding."""
    conv = bnlab.Conv2D(W.shape[1], W.shape[0], W.shape[2:], bias=b is not None, rng=0)
    conv.W = W
    if b is not None:
        conv.b = b
    return conv


def _bn_from(extra, kind, width, affine=True, axis=0):
    bn = BatchNorm(width, convention="pytorch", axis=axis, affine=affine)
    bn.running_mean = extra[f"{kind}_running_mean"].copy()
    bn.running_var = extra[f"{kind}_running_var"].copy()
    if affine:
        bn.gamma, bn.beta = extra[f"{kind}_gamma"].copy(), extra[f"{kind}_beta"].copy()
    return bn


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("source", SOURCES)
def test_fold_linear_matches_fuse_linear_bn_eval(source, bias):
    _, extra, results = torch_after(source)
    expected = results_under(results, f"fuse_linear/bias{int(bias)}")
    stats = [extra[f"linear_{k}"] for k in ("running_mean", "running_var", "gamma", "beta")]
    b = extra["linear_b"] if bias else None
    what = f"fuse_linear_bn_eval bias={bias}"
    # torch.nn.Linear's (out, in) weight: out_axis=0
    W2, b2 = bnlab.fold_batchnorm(extra["linear_W"], b, *stats, ref.TORCH_EPS, out_axis=0)
    check_torch(W2, expected["W"], source, f"{what} W (out_axis=0)")
    check_torch(b2, expected["b"], source, f"{what} b")
    # bnlab's Dense (x @ W, W (in, out)): out_axis=-1, the same numbers transposed
    W3, b3 = bnlab.fold_batchnorm(extra["linear_W"].T, b, *stats, ref.TORCH_EPS)
    check_torch(W3.T, expected["W"], source, f"{what} W (Dense layout)")
    check_torch(b3, expected["b"], source, f"{what} b (Dense layout)")
    # and as a model: Dense -> BatchNorm folded by fold_model
    dense = Dense(ref.FOLD_LINEAR["in"], ref.FOLD_LINEAR["out"], bias=bias, rng=0)
    dense.W = extra["linear_W"].T.copy()
    if bias:
        dense.b = extra["linear_b"].copy()
    model = Sequential([dense, _bn_from(extra, "linear", ref.FOLD_LINEAR["out"])])
    folded = bnlab.fold_model(model)
    assert len(folded) == 1 and isinstance(folded[0], Dense)
    check_torch(model.forward(extra["linear_x"], training=False), expected["y"], source, f"{what} unfolded model")
    check_torch(folded.forward(extra["linear_x"], training=False), expected["fused_y"], source, f"{what} folded model")


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("source", SOURCES)
def test_fold_conv_matches_fuse_conv_bn_eval(source, bias, affine):
    _, extra, results = torch_after(source)
    expected = results_under(results, f"fuse_conv/bias{int(bias)}_affine{int(affine)}")
    b = extra["conv_b"] if bias else None
    gamma, beta = (extra["conv_gamma"], extra["conv_beta"]) if affine else (None, None)
    what = f"fuse_conv_bn_eval bias={bias} affine={affine}"
    W2, b2 = bnlab.fold_batchnorm(extra["conv_W"], b, extra["conv_running_mean"], extra["conv_running_var"],
                                  gamma, beta, ref.TORCH_EPS, out_axis=0)
    check_torch(W2, expected["W"], source, f"{what} W")
    check_torch(b2, expected["b"], source, f"{what} b")
    # the folded weights convolve to what conv -> BN(eval) gives
    check_torch(conv2d_nchw(extra["conv_x"], W2, b2), expected["y"], source, f"{what} folded conv output")
    # fold_model's Conv2D path
    conv = _conv_from(extra["conv_W"].copy(), extra["conv_b"].copy() if bias else None)
    bn = _bn_from(extra, "conv", ref.FOLD_CONV["out"], affine=affine, axis=(0, 2, 3))
    model = Sequential([conv, bn])
    folded = bnlab.fold_model(model)
    assert len(folded) == 1 and isinstance(folded[0], bnlab.Conv2D) and folded[0] is not conv
    check_torch(model.forward(extra["conv_x"], training=False), expected["y"], source, f"{what} unfolded model")
    check_torch(folded.forward(extra["conv_x"], training=False), expected["fused_y"], source,
                f"{what} fold_model output")
    assert conv.b is None if not bias else np.array_equal(conv.b, extra["conv_b"])  # the input model untouched


def test_fold_linear_without_affine_matches_torch_eval():
    """PyTorch 2.13's fuse_linear_bn_eval fails on BatchNorm1d(affine=False) (None * tensor); its eval output is the reference."""
    torch = tr.require_torch()
    extra = ref.make_after_training_inputs()
    linear = torch.nn.Linear(ref.FOLD_LINEAR["in"], ref.FOLD_LINEAR["out"], dtype=torch.float64)
    bn = torch.nn.BatchNorm1d(ref.FOLD_LINEAR["out"], affine=False, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(extra["linear_W"]))
        linear.bias.copy_(torch.tensor(extra["linear_b"]))
        bn.running_mean.copy_(torch.tensor(extra["linear_running_mean"]))
        bn.running_var.copy_(torch.tensor(extra["linear_running_var"]))
        expected = bn.eval()(linear.eval()(torch.tensor(extra["linear_x"]))).numpy()
    W2, b2 = bnlab.fold_batchnorm(extra["linear_W"].T, extra["linear_b"], extra["linear_running_mean"],
                                  extra["linear_running_var"], None, None, ref.TORCH_EPS)
    check_torch(extra["linear_x"] @ W2 + b2, expected, "live", "Linear + BatchNorm1d(affine=False) folded")


# --------------------------------------------------------------------------- recalibration vs update_bn


def bnlab_mlp(extra):
    s = ref.MLP_SIZES
    layers = [Dense(s[0], s[1], bias=False, rng=0), BatchNorm(s[1], convention="pytorch"), ReLU(),
              Dense(s[1], s[2], bias=False, rng=0), BatchNorm(s[2], convention="pytorch"), ReLU(),
              Dense(s[2], s[3], rng=0)]
    layers[0].W = extra["mlp_W0"].T.copy()
    layers[3].W = extra["mlp_W1"].T.copy()
    layers[6].W = extra["mlp_W2"].T.copy()
    layers[6].b = extra["mlp_b2"].copy()
    return Sequential(layers)


@pytest.mark.parametrize("source", SOURCES)
def test_recalibrate_matches_update_bn(source):
    _, extra, results = torch_after(source)
    expected = results_under(results, "update_bn")
    model = bnlab_mlp(extra)
    for batch in extra["mlp_warmup"]:
        model.forward(batch, training=True)
    params = copy.deepcopy([p for p, _ in model.params_and_grads()])
    bnlab.recalibrate_batchnorm(model, extra["mlp_batches"])
    for i, bn in enumerate((model[1], model[4])):
        for key in ("running_mean", "running_var"):
            check_torch(getattr(bn, key), expected[f"bn{i}_{key}"], source, f"update_bn BN {i} {key}")
        assert bn.num_batches_tracked == int(expected[f"bn{i}_num_batches_tracked"]) == len(extra["mlp_batches"])
        assert bn.momentum == float(expected[f"bn{i}_momentum"]) == 0.1  # restored
    assert not bool(expected["training"])  # update_bn restores the mode too
    for before, (after, _) in zip(params, model.params_and_grads()):
        np.testing.assert_array_equal(before, after)  # no other parameter changed
    check_torch(model.forward(extra["mlp_eval"], training=False), expected["eval_y"], source, "update_bn eval output")


# --------------------------------------------------------------------------- Keras 3


def bnlab_keras_run(inp, shape_name, *, frozen, layout_axis, layout):
    """bnlab's side of ``ref.keras_frozen_run`` (frozen=True) or ``ref.keras_no_affine_run``."""
    if frozen:
        bn = BatchNorm(inp["z"].shape[1], convention="keras", axis=layout_axis)
        bn.gamma, bn.beta = inp["gamma"].copy(), inp["beta"].copy()
    else:
        bn = BatchNorm(inp["z"].shape[1], convention="keras", momentum=ref.KERAS_MOMENTA[1], axis=layout_axis,
                       affine=False)
    out = {"train_y": [], "moving_mean": [], "moving_var": [], "frozen_inference_y": []}
    for step, batch in enumerate(inp["train"]):
        if frozen and step == ref.KERAS_STEPS_BEFORE_FREEZING:
            bn.trainable = False
        x = layout(batch)
        out["train_y"].append(bn.forward(x, training=True))
        out["moving_mean"].append(bn.running_mean.copy())
        out["moving_var"].append(bn.running_var.copy())
        if frozen and step >= ref.KERAS_STEPS_BEFORE_FREEZING:
            out["frozen_inference_y"].append(bn.forward(x, training=False))
    out = {k: np.asarray(v) for k, v in out.items() if v}
    out["eval_y"] = bn.forward(layout(inp["eval"]), training=False)
    return bn, out


@pytest.mark.parametrize("case", ["frozen", "no_affine"])
@pytest.mark.parametrize("shape_name", SHAPE_NAMES)
@pytest.mark.parametrize("source", SOURCES)
def test_keras_trainable_false_and_no_affine(source, shape_name, case):
    inputs, results = keras_after(source)
    inp = inputs[shape_name]
    expected = results_under(results, f"{case}/{shape_name}")
    bn, ours = bnlab_keras_run(inp, shape_name, frozen=case == "frozen",
                               layout_axis=ref.KERAS_LAYOUT_AXIS[shape_name], layout=ref.to_keras_layout)
    assert set(ours) == set(expected)
    for key in sorted(expected):
        check_keras(ours[key], expected[key], source, f"Keras_{case} {shape_name} {key}")
    if case == "frozen":
        k = ref.KERAS_STEPS_BEFORE_FREEZING
        # Keras 3: training=True on a frozen layer is inference mode, and the moving statistics stay put
        np.testing.assert_array_equal(expected["train_y"][k:], expected["frozen_inference_y"])
        for key in ("moving_mean", "moving_var"):
            np.testing.assert_array_equal(expected[key][k:], np.broadcast_to(expected[key][k - 1],
                                                                              expected[key][k:].shape))
            np.testing.assert_array_equal(ours[key][k:], np.broadcast_to(ours[key][k - 1], ours[key][k:].shape))
        assert bn.num_batches_tracked == k  # the frozen calls did not count


# --------------------------------------------------------------------------- translate's claims (live)

TRANSLATION_CASES = [
    dict(framework="pytorch", ndim=2),
    dict(framework="pytorch", momentum=0.3, eps=1e-3, ndim=4),
    dict(framework="pytorch", momentum="cumulative", ndim=4),
    dict(framework="pytorch", ndim=3, affine=False),
    dict(framework="keras", ndim=4),
    dict(framework="keras", momentum=0.9, eps=1e-4, ndim=2),
    dict(framework="keras", momentum=0.95, ndim=4, axis=1),
]


def _run_translation(t, batches, eval_batch):
    """Build the three frameworks' layers by executing the code render_translation prints; run them."""
    torch = tr.require_torch()
    tr.require_keras()  # the Keras snippet imports keras itself, on the torch backend
    code = t.code()
    layers = {}
    for name in code:
        namespace = {}
        exec(code[name], namespace)  # noqa: S102 - the printed code is what a learner copies: it must run
        layers[name] = namespace
    torch_bn = layers["PyTorch"]["bn"]
    assert type(torch_bn).__name__ == t.pytorch["layer"]
    assert (torch_bn.momentum, torch_bn.eps, torch_bn.affine) == (t.pytorch["momentum"], t.pytorch["eps"],
                                                                 t.pytorch["affine"])
    torch_bn.double()
    ours = {name: layers["bnlab"][f"bn_{name}"] for name in ("pytorch", "keras")}
    for bn in ours.values():
        assert bn.eps == t.pytorch["eps"]
    if t.pytorch["affine"]:
        gamma = np.linspace(0.5, 2.0, batches.shape[2])
        beta = np.linspace(-1.0, 1.0, batches.shape[2])
        with torch.no_grad():
            torch_bn.weight.copy_(torch.tensor(gamma))
            torch_bn.bias.copy_(torch.tensor(beta))
        for bn in ours.values():
            bn.gamma, bn.beta = gamma.copy(), beta.copy()
    keras_bn = layers["Keras 3"].get("bn")
    keras_axis = -1 if t.keras is None else t.keras["axis"]  # bnlab's keras layer: Keras' layout

    def to_keras(x):
        return np.moveaxis(x, 1, keras_axis)

    if keras_bn is not None:
        assert keras_bn.momentum == t.keras["momentum"] and keras_bn.epsilon == t.keras["epsilon"]
        keras_bn.build(to_keras(batches[0]).shape)
        if t.pytorch["affine"]:
            keras_bn.gamma.assign(gamma.astype(np.float32))
            keras_bn.beta.assign(beta.astype(np.float32))
    out = {key: [] for key in ("torch_y", "torch_mean", "torch_var", "keras_y", "keras_mean", "keras_var",
                               "bnlab_torch_y", "bnlab_keras_y", "bnlab_torch_mean", "bnlab_torch_var",
                               "bnlab_keras_mean", "bnlab_keras_var")}
    torch_bn.train()
    for batch in batches:
        with torch.no_grad():
            out["torch_y"].append(torch_bn(torch.tensor(batch)).numpy().copy())
        out["torch_mean"].append(torch_bn.running_mean.numpy().copy())
        out["torch_var"].append(torch_bn.running_var.numpy().copy())
        out["bnlab_torch_y"].append(ours["pytorch"].forward(batch, training=True))
        out["bnlab_torch_mean"].append(ours["pytorch"].running_mean.copy())
        out["bnlab_torch_var"].append(ours["pytorch"].running_var.copy())
        out["bnlab_keras_y"].append(np.moveaxis(ours["keras"].forward(to_keras(batch), training=True),
                                                keras_axis, 1))
        out["bnlab_keras_mean"].append(ours["keras"].running_mean.copy())
        out["bnlab_keras_var"].append(ours["keras"].running_var.copy())
        if keras_bn is not None:
            out["keras_y"].append(np.moveaxis(ref.keras_to_numpy(keras_bn(to_keras(batch), training=True)),
                                              keras_axis, 1))
            out["keras_mean"].append(ref.keras_to_numpy(keras_bn.moving_mean))
            out["keras_var"].append(ref.keras_to_numpy(keras_bn.moving_variance))
    torch_bn.eval()
    with torch.no_grad():
        out["torch_eval"] = torch_bn(torch.tensor(eval_batch)).numpy().copy()
    out["bnlab_torch_eval"] = ours["pytorch"].forward(eval_batch, training=False)
    if keras_bn is not None:
        out["keras_eval"] = np.moveaxis(ref.keras_to_numpy(keras_bn(to_keras(eval_batch), training=False)),
                                        keras_axis, 1)
        out["bnlab_keras_eval"] = np.moveaxis(ours["keras"].forward(to_keras(eval_batch), training=False),
                                              keras_axis, 1)
    return {k: np.asarray(v) for k, v in out.items() if not isinstance(v, list) or v}


@pytest.mark.parametrize("case", TRANSLATION_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_translation_claims_hold_in_the_frameworks(case):
    channels = 3
    t = bnlab.translate(**case, num_features=channels)
    rng = np.random.default_rng(150203170)
    spatial = {2: (), 3: (7,), 4: (3, 4)}[t.ndim]
    shape = (6, channels, *spatial)
    bshape = (1, channels) + (1,) * len(spatial)
    batches = np.stack([rng.standard_normal(shape) * rng.uniform(0.5, 2.0, channels).reshape(bshape)
                        + rng.uniform(-2.0, 2.0, channels).reshape(bshape) for _ in range(5)])
    eval_batch = rng.standard_normal(shape) + 0.5
    out = _run_translation(t, batches, eval_batch)
    what = f"translate({case})"
    # bnlab reproduces each framework it names
    for ours, theirs in (("bnlab_torch_y", "torch_y"), ("bnlab_torch_mean", "torch_mean"),
                         ("bnlab_torch_var", "torch_var"), ("bnlab_torch_eval", "torch_eval")):
        check_torch(out[ours], out[theirs], "live", f"{what} bnlab vs PyTorch {theirs}")
    if t.keras is None:
        assert "cumulative" in " ".join(t.notes) and "no equivalent" in t.code()["Keras 3"]
        return
    for ours, theirs in (("bnlab_keras_y", "keras_y"), ("bnlab_keras_mean", "keras_mean"),
                         ("bnlab_keras_var", "keras_var"), ("bnlab_keras_eval", "keras_eval")):
        check_keras(out[ours], out[theirs], "live", f"{what} bnlab vs Keras {theirs}")
    # the claims about PyTorch versus Keras, with the translated settings ("differ": by more
    # than ten times Keras' float32 noise; the gap is small when the batch weight is small)
    tol = KERAS_TOL
    assert t.same_training_output and tr.scaled_rel_error(out["keras_y"], out["torch_y"]) <= tol
    assert t.same_running_mean and tr.scaled_rel_error(out["keras_mean"], out["torch_mean"]) <= tol
    assert not t.same_running_var and tr.scaled_rel_error(out["keras_var"], out["torch_var"]) > 10 * tol
    assert not t.same_eval_output and tr.scaled_rel_error(out["keras_eval"], out["torch_eval"]) > 10 * tol
    # the variance gap is exactly the Bessel correction: the bnlab keras layer, rescaled step by step
    n = batches[0].size // channels
    torch_var = keras_var = 1.0
    weight = t.batch_weight
    for step, batch in enumerate(batches):
        _, var = bnlab.batch_stats(batch, axis=tuple(a for a in range(batch.ndim) if a != 1))
        torch_var = (1 - weight) * torch_var + weight * var * n / (n - 1)
        keras_var = (1 - weight) * keras_var + weight * var
        np.testing.assert_allclose(out["torch_var"][step] - out["bnlab_keras_var"][step], torch_var - keras_var,
                                   rtol=1e-9, atol=1e-14)


# --------------------------------------------------------------------------- report


def report(sources=("fixture", "live")):
    """Worst errors per comparison (``python tests/test_reference_after_training.py``)."""
    tr.WORST.clear()
    for source in sources:
        try:
            torch_after(source)  # skips the source here if the framework is missing
            for shape in SHAPE_NAMES:
                for variant in ref.TORCH_BN_VARIANTS:
                    test_batchnorm_variants_match_torch(source, shape, variant)
                test_reset_running_stats_matches_torch(source, shape)
            for bias in (True, False):
                test_fold_linear_matches_fuse_linear_bn_eval(source, bias)
                for affine in (True, False):
                    test_fold_conv_matches_fuse_conv_bn_eval(source, bias, affine)
            test_recalibrate_matches_update_bn(source)
            for shape in SHAPE_NAMES:
                for case in ("frozen", "no_affine"):
                    test_keras_trainable_false_and_no_affine(source, shape, case)
        except pytest.skip.Exception as exc:
            print(f"[{source}] skipped: {exc}")
    for case in TRANSLATION_CASES:
        test_translation_claims_hold_in_the_frameworks(case)
    return dict(tr.WORST)


if __name__ == "__main__":
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for (label, source), (err, what) in sorted(report().items()):
        print(f"{source:8s} {label:60s} worst {err:.3e}  ({what})")
