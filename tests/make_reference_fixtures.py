"""Record what PyTorch and Keras 3 compute for batch normalization, as small .npz fixtures.

Run by hand from the repository root (needs torch and keras; TensorFlow is not needed)::

    python tests/make_reference_fixtures.py                             # every file
    python tests/make_reference_fixtures.py --only family               # only reference_family_*.npz
    python tests/make_reference_fixtures.py --only after-training       # only reference_after_training_*.npz

It writes

- ``tests/fixtures/reference_inputs.npz``: the seeded inputs (so the fixture
  tests do not depend on NumPy's random streams staying the same);
- ``tests/fixtures/reference_torch.npz``: ``torch.nn.functional.batch_norm``
  (training forward and autograd gradients) and ``torch.nn.BatchNorm1d/2d``
  (training steps, running statistics after each, eval outputs), in float64;
- ``tests/fixtures/reference_after_training_*.npz`` (inputs, torch, keras):
  the after-training behaviours of notebooks 10-11 (PyTorch's
  ``momentum=None``, ``affine=False``, ``track_running_stats=False``,
  ``reset_running_stats``, ``requires_grad_(False)``, ``fuse_linear_bn_eval``,
  ``fuse_conv_bn_eval``, ``update_bn``; Keras' ``trainable=False`` and
  ``center=scale=False``), see :func:`after_training_files`;
- ``tests/fixtures/reference_keras.npz``: ``keras.layers.BatchNormalization``
  on the torch backend (training steps, moving statistics after each,
  inference outputs). Keras computes this in float32 whatever the input or
  layer dtype: on its non-TensorFlow backends ``keras.backend.result_type``
  maps float64 to float32 (to match JAX's default), and the layer's ``call``
  casts its input, gamma, beta and moving statistics to
  ``result_type(input.dtype, "float32")``. Even ``dtype="float64"`` only casts
  the float32 result back to float64, so it is not recorded separately.

and, for the rest of the normalization family and the convolution,
``reference_family_inputs.npz``, ``reference_family_torch.npz`` and
``reference_family_keras.npz`` (see the section "the normalization family"
below).

Every file carries ``meta/*`` entries: the framework, NumPy and Python
versions and the generator's name.

``tests/test_reference.py`` compares bnlab with these files, and (where torch
and keras are installed) imports the functions below to recompute the same
cases live, so the generation logic exists once. Importing this module needs
only NumPy: torch and keras are imported inside the functions that use them.

Layouts
-------
Every input is stored in bnlab's / PyTorch's layout: ``(N, D)`` or
``(N, C, H, W)`` (channels first). Keras normalizes the last axis
(``axis=-1``, channels last), so :func:`keras_layer` feeds it the 4-D batches
transposed to ``(N, H, W, C)`` and records its outputs **in that NHWC layout**
(compare with bnlab ``axis=(0, 1, 2)`` on ``to_keras_layout(x)``, or transpose
back with ``from_keras_layout``). For ``(N, D)`` the two layouts coincide.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures"
INPUTS_FILE = FIXTURE_DIR / "reference_inputs.npz"
TORCH_FILE = FIXTURE_DIR / "reference_torch.npz"
KERAS_FILE = FIXTURE_DIR / "reference_keras.npz"

#: The two layouts every case is run on: a dense layer's (N, D) and a convolution's (N, C, H, W).
SHAPES = {"2d": (8, 5), "4d": (4, 3, 5, 6)}
#: One seed per layout (np.random.default_rng); 1502.03167 is the BN paper's arXiv number.
SEEDS = {"2d": 150203167, "4d": 150203168}
#: Axes bnlab reduces over, in bnlab's / PyTorch's channels-first layout.
BNLAB_AXIS = {"2d": 0, "4d": (0, 2, 3)}
#: Axes bnlab reduces over for Keras' channels-last layout (what Keras' axis=-1 leaves out).
KERAS_LAYOUT_AXIS = {"2d": 0, "4d": (0, 1, 2)}

#: Training steps of the stateful layers (a different batch each step).
STEPS = 5
TORCH_EPS = 1e-5  # torch default
TORCH_MOMENTA = (0.1, 0.3)  # torch default, and a non-default one
KERAS_EPS = 1e-3  # keras default
KERAS_MOMENTA = (0.99, 0.9)  # keras default, and a non-default one (= torch's 0.1 converted)


# --------------------------------------------------------------------------- inputs


def make_inputs(shape_name):
    """The seeded inputs of one layout, all float64, channels first.

    Returns a dict:

    - ``z``, ``gamma``, ``beta``, ``dy``: one batch, a random scale and shift
      (feature shape), and a random upstream gradient (never all ones: that
      would make BN's input gradient vanish and prove nothing);
    - ``train``: ``STEPS`` batches stacked, shape ``(STEPS, *shape)``, each
      with its own random per-feature offset and scale;
    - ``eval``: a fresh batch for evaluation; ``eval_one``: a batch of one sample.

    Offsets stay within [-2, 2] and scales within [0.5, 3]: Keras' torch
    backend computes the variance as E[x^2] - E[x]^2 in float32, which would
    lose digits (beyond the 1e-5 tolerance) far from zero. That is Keras'
    limitation, not the reference's, so the inputs stay where it is accurate.
    """
    shape = SHAPES[shape_name]
    rng = np.random.default_rng(SEEDS[shape_name])
    channels = shape[1]
    bshape = (1, channels) + (1,) * (len(shape) - 2)

    def batch(n):
        offset = rng.uniform(-2.0, 2.0, size=channels).reshape(bshape)
        scale = rng.uniform(0.5, 3.0, size=channels).reshape(bshape)
        return rng.standard_normal((n,) + shape[1:]) * scale + offset

    return {
        "z": batch(shape[0]),
        "gamma": rng.uniform(0.5, 2.0, size=channels),
        "beta": rng.normal(0.0, 1.0, size=channels),
        "dy": rng.standard_normal(shape),
        "train": np.stack([batch(shape[0]) for _ in range(STEPS)]),
        "eval": batch(shape[0]),
        "eval_one": batch(1),
    }


def all_inputs():
    """``{shape_name: make_inputs(shape_name)}`` for every layout."""
    return {name: make_inputs(name) for name in SHAPES}


def to_keras_layout(x):
    """(N, C, H, W) -> (N, H, W, C); (N, D) unchanged."""
    return np.moveaxis(x, 1, -1) if x.ndim > 2 else x


def from_keras_layout(x):
    """(N, H, W, C) -> (N, C, H, W); (N, D) unchanged."""
    return np.moveaxis(x, -1, 1) if x.ndim > 2 else x


# --------------------------------------------------------------------------- framework imports


def import_torch():
    import torch

    return torch


def import_keras():
    """Import Keras 3 on the torch backend (KERAS_BACKEND is set before the import)."""
    os.environ["KERAS_BACKEND"] = "torch"
    import keras

    backend = keras.backend.backend()
    if backend != "torch":
        raise RuntimeError(
            f"keras was already imported with the {backend!r} backend; the reference needs "
            "KERAS_BACKEND=torch set before keras is first imported"
        )
    return keras


# --------------------------------------------------------------------------- PyTorch


def torch_functional(inputs, eps=TORCH_EPS):
    """``torch.nn.functional.batch_norm`` in training mode, float64, and its autograd gradients.

    Returns ``{"y", "dz", "dgamma", "dbeta"}`` (NumPy, float64) for ``inputs["z"]``
    with ``inputs["gamma"]``, ``inputs["beta"]`` and upstream gradient ``inputs["dy"]``.
    """
    torch = import_torch()
    z = torch.tensor(inputs["z"], dtype=torch.float64, requires_grad=True)
    gamma = torch.tensor(inputs["gamma"], dtype=torch.float64, requires_grad=True)
    beta = torch.tensor(inputs["beta"], dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.batch_norm(
        z, running_mean=None, running_var=None, weight=gamma, bias=beta, training=True, eps=eps
    )
    y.backward(torch.tensor(inputs["dy"], dtype=torch.float64))
    return {
        "y": y.detach().numpy().copy(),
        "dz": z.grad.numpy().copy(),
        "dgamma": gamma.grad.numpy().copy(),
        "dbeta": beta.grad.numpy().copy(),
    }


def torch_module(inputs, momentum):
    """``torch.nn.BatchNorm1d`` / ``BatchNorm2d`` (float64, eps 1e-5) over ``STEPS`` training batches.

    weight and bias are set to ``inputs["gamma"]`` / ``inputs["beta"]``. Returns
    ``train_y`` (``(STEPS, *shape)``, the training outputs), ``running_mean`` and
    ``running_var`` (``(STEPS, C)``, after each step), then in ``eval()`` mode
    ``eval_y`` and ``eval_one_y`` (the batch of one sample).
    """
    torch = import_torch()
    ndim = inputs["z"].ndim
    cls = torch.nn.BatchNorm1d if ndim == 2 else torch.nn.BatchNorm2d
    channels = inputs["z"].shape[1]
    bn = cls(channels, eps=TORCH_EPS, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(inputs["gamma"]))
        bn.bias.copy_(torch.tensor(inputs["beta"]))
    out = {"train_y": [], "running_mean": [], "running_var": []}
    bn.train()
    with torch.no_grad():
        for batch in inputs["train"]:
            out["train_y"].append(bn(torch.tensor(batch)).numpy().copy())
            out["running_mean"].append(bn.running_mean.numpy().copy())
            out["running_var"].append(bn.running_var.numpy().copy())
        bn.eval()
        out["eval_y"] = bn(torch.tensor(inputs["eval"])).numpy().copy()
        out["eval_one_y"] = bn(torch.tensor(inputs["eval_one"])).numpy().copy()
    return {k: np.asarray(v) for k, v in out.items()}


def torch_results(inputs_by_shape):
    """Every PyTorch case, as the flat dict stored in ``reference_torch.npz`` (without metadata).

    Keys: ``functional/<shape>/<y|dz|dgamma|dbeta>`` and
    ``module/<shape>/m<momentum>/<train_y|running_mean|running_var|eval_y|eval_one_y>``.
    """
    results = {}
    for shape_name, inputs in inputs_by_shape.items():
        for key, value in torch_functional(inputs).items():
            results[f"functional/{shape_name}/{key}"] = value
        for momentum in TORCH_MOMENTA:
            for key, value in torch_module(inputs, momentum).items():
                results[f"module/{shape_name}/m{momentum:g}/{key}"] = value
    return results


def torch_metadata():
    torch = import_torch()
    return {"torch_version": torch.__version__}


# --------------------------------------------------------------------------- Keras


def keras_to_numpy(x):
    """A Keras tensor or variable on the torch backend as a NumPy copy.

    (``keras.ops.convert_to_numpy`` works too but warns under NumPy 2 about
    ``__array__``'s ``copy`` keyword.)
    """
    value = getattr(x, "value", x)  # a keras Variable holds a torch tensor
    return value.detach().cpu().numpy().copy()


def keras_layer(inputs, momentum):
    """``keras.layers.BatchNormalization`` (axis=-1, eps 1e-3, default dtype policy) on the torch backend.

    The float64 input is cast to float32 by the layer, and everything is
    computed in float32 (see the module docstring). gamma and beta are set to
    ``inputs["gamma"]`` / ``inputs["beta"]``. The 4-D batches are fed channels
    last (:func:`to_keras_layout`), and the outputs are returned in that NHWC
    layout.

    Returns ``train_y`` (``layer(x, training=True)`` for each of the ``STEPS``
    batches), ``moving_mean`` and ``moving_var`` (``(STEPS, C)``, after each
    step), and ``eval_y`` / ``eval_one_y`` (``layer(x, training=False)``), all
    float32 as Keras returns them.
    """
    keras = import_keras()
    shape = to_keras_layout(inputs["z"]).shape
    layer = keras.layers.BatchNormalization(axis=-1, momentum=momentum, epsilon=KERAS_EPS)
    layer.build(shape)
    layer.gamma.assign(inputs["gamma"].astype(np.float32))
    layer.beta.assign(inputs["beta"].astype(np.float32))

    out = {"train_y": [], "moving_mean": [], "moving_var": []}
    for batch in inputs["train"]:
        out["train_y"].append(keras_to_numpy(layer(to_keras_layout(batch), training=True)))
        out["moving_mean"].append(keras_to_numpy(layer.moving_mean))
        out["moving_var"].append(keras_to_numpy(layer.moving_variance))
    out["eval_y"] = keras_to_numpy(layer(to_keras_layout(inputs["eval"]), training=False))
    out["eval_one_y"] = keras_to_numpy(layer(to_keras_layout(inputs["eval_one"]), training=False))
    return {k: np.asarray(v) for k, v in out.items()}


def keras_results(inputs_by_shape):
    """Every Keras case, as the flat dict stored in ``reference_keras.npz`` (without metadata).

    Keys: ``layer/<shape>/m<momentum>/<train_y|moving_mean|moving_var|eval_y|eval_one_y>``;
    the 4-D outputs are NHWC.
    """
    results = {}
    for shape_name, inputs in inputs_by_shape.items():
        for momentum in KERAS_MOMENTA:
            for key, value in keras_layer(inputs, momentum).items():
                results[f"layer/{shape_name}/m{momentum:g}/{key}"] = value
    return results


def keras_metadata():
    keras = import_keras()
    torch = import_torch()
    return {
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "torch_version": torch.__version__,
    }


# --------------------------------------------------------------------------- the normalization family
#
# Layer, group, instance and RMS normalization and the convolution (notebooks
# 08-09), in their own files so that the batch-norm fixtures above stay as
# they are:
#
# - ``reference_family_inputs.npz``: the seeded inputs of every case below;
# - ``reference_family_torch.npz``: ``torch.nn.functional``'s layer_norm,
#   group_norm, instance_norm, rms_norm and conv2d, forward and autograd
#   gradients for a random upstream gradient, in float64 and float32 (torch
#   computing in float32 on the float32-rounded inputs);
# - ``reference_family_keras.npz``: Keras 3's LayerNormalization,
#   GroupNormalization (also ``groups=-1``, instance norm) and
#   RMSNormalization on the torch backend, forward only, float32.

FAMILY_INPUTS_FILE = FIXTURE_DIR / "reference_family_inputs.npz"
FAMILY_TORCH_FILE = FIXTURE_DIR / "reference_family_torch.npz"
FAMILY_KERAS_FILE = FIXTURE_DIR / "reference_family_keras.npz"

#: 1803.08494 is the Group Normalization paper's arXiv number.
FAMILY_SEED = 180308494
#: Input layouts: a dense batch, tokens (N, T, D) or a 1-D signal (N, C, L), and conv maps.
FAMILY_SHAPES = {"2d": (8, 5), "3d": (3, 4, 6), "4d": (4, 6, 3, 5)}
FAMILY_DTYPES = ("float64", "float32")
#: eps passed to every framework explicitly (their defaults differ: Keras 1e-3 for LN and GN, 1e-6 for RMS).
FAMILY_EPS = 1e-5

#: case name -> (function, input layout, arguments). ``affine=False`` leaves gamma and beta out.
FAMILY_CASES = {
    "layer_norm/2d": ("layer_norm", "2d", {"normalized_shape": (5,)}),
    "layer_norm/tokens": ("layer_norm", "3d", {"normalized_shape": (6,)}),
    "layer_norm/4d": ("layer_norm", "4d", {"normalized_shape": (6, 3, 5)}),
    "layer_norm/4d_no_affine": ("layer_norm", "4d", {"normalized_shape": (6, 3, 5), "affine": False}),
    "group_norm/G1": ("group_norm", "4d", {"num_groups": 1}),
    "group_norm/G2": ("group_norm", "4d", {"num_groups": 2}),
    "group_norm/G6": ("group_norm", "4d", {"num_groups": 6}),
    "group_norm/G3_no_affine": ("group_norm", "4d", {"num_groups": 3, "affine": False}),
    "group_norm/3d_G2": ("group_norm", "3d", {"num_groups": 2}),
    "instance_norm/4d": ("instance_norm", "4d", {}),
    "instance_norm/3d": ("instance_norm", "3d", {}),
    "instance_norm/4d_no_affine": ("instance_norm", "4d", {"affine": False}),
    "rms_norm/eps_none": ("rms_norm", "3d", {"normalized_shape": (6,), "eps": None}),
    "rms_norm/eps_1e-3": ("rms_norm", "3d", {"normalized_shape": (6,), "eps": 1e-3}),
    "rms_norm/two_dims": ("rms_norm", "3d", {"normalized_shape": (4, 6), "eps": None}),
    "rms_norm/no_affine": ("rms_norm", "2d", {"normalized_shape": (5,), "eps": 1e-6, "affine": False}),
}
#: conv case -> (kernel (kh, kw), padding, bias); input (3, 2, 6, 7), 4 output channels.
CONV_INPUT_SHAPE, CONV_OUT_CHANNELS = (3, 2, 6, 7), 4
CONV_CASES = {
    "conv2d/k3_p0": ((3, 3), 0, True),
    "conv2d/k3_p1": ((3, 3), 1, True),
    "conv2d/k23_p0": ((2, 3), 0, True),
    "conv2d/k23_p1": ((2, 3), 1, True),
    "conv2d/k3_p1_no_bias": ((3, 3), 1, False),
}
#: Keras case -> (layer, input layout, arguments); 4-D inputs go in channels last for GroupNormalization.
KERAS_FAMILY_CASES = {
    "LayerNormalization/2d": ("LayerNormalization", "2d", {"axis": -1}),
    "LayerNormalization/tokens": ("LayerNormalization", "3d", {"axis": -1}),
    "LayerNormalization/4d": ("LayerNormalization", "4d", {"axis": [1, 2, 3]}),
    "GroupNormalization/G1": ("GroupNormalization", "4d", {"groups": 1}),
    "GroupNormalization/G2": ("GroupNormalization", "4d", {"groups": 2}),
    "GroupNormalization/G6": ("GroupNormalization", "4d", {"groups": 6}),
    "GroupNormalization/instance": ("GroupNormalization", "4d", {"groups": -1}),
    "RMSNormalization/tokens": ("RMSNormalization", "3d", {"axis": -1}),
    "RMSNormalization/2d": ("RMSNormalization", "2d", {"axis": -1}),
}


def _param_shape(function, shape, kwargs):
    if function in ("layer_norm", "rms_norm"):
        return tuple(kwargs["normalized_shape"])
    return (shape[1],)


def make_family_inputs():
    """The seeded inputs of every family and conv case, float64, channels first.

    Returns ``{case: {"x", "dy", "gamma", "beta"}}`` (``"W"``, ``"b"`` for the
    conv cases; gamma and beta absent without affine; ``rms_norm`` has no
    beta). Each input has per-channel offsets in [-2, 2] and scales in
    [0.5, 3] (where Keras' float32 E[x^2] - E[x]^2 stays accurate, see
    :func:`make_inputs`); upstream gradients are random, never all ones.
    """
    rng = np.random.default_rng(FAMILY_SEED)

    def batch(shape):
        bshape = (1, shape[1]) + (1,) * (len(shape) - 2)
        offset = rng.uniform(-2.0, 2.0, size=shape[1]).reshape(bshape)
        scale = rng.uniform(0.5, 3.0, size=shape[1]).reshape(bshape)
        return rng.standard_normal(shape) * scale + offset

    inputs = {}
    for case, (function, layout, kwargs) in FAMILY_CASES.items():
        shape = FAMILY_SHAPES[layout]
        arrays = {"x": batch(shape), "dy": rng.standard_normal(shape)}
        if kwargs.get("affine", True):
            pshape = _param_shape(function, shape, kwargs)
            arrays["gamma"] = rng.uniform(0.5, 2.0, size=pshape)
            if function != "rms_norm":
                arrays["beta"] = rng.normal(0.0, 1.0, size=pshape)
        inputs[case] = arrays
    for case, ((kh, kw), padding, bias) in CONV_CASES.items():
        n, c, h, w = CONV_INPUT_SHAPE
        out_shape = (n, CONV_OUT_CHANNELS, h + 2 * padding - kh + 1, w + 2 * padding - kw + 1)
        arrays = {"x": batch(CONV_INPUT_SHAPE),
                  "W": rng.normal(0.0, 0.5, size=(CONV_OUT_CHANNELS, c, kh, kw)),
                  "dy": rng.standard_normal(out_shape)}
        if bias:
            arrays["b"] = rng.normal(0.0, 1.0, size=CONV_OUT_CHANNELS)
        inputs[case] = arrays
    for case, (layer, layout, kwargs) in KERAS_FAMILY_CASES.items():
        shape = FAMILY_SHAPES[layout]
        arrays = {"x": batch(shape)}
        if layer == "LayerNormalization":
            pshape = tuple(shape[a] for a in np.atleast_1d(kwargs["axis"]))
        elif layer == "RMSNormalization":
            pshape = (shape[-1],)
        else:
            pshape = (shape[1],)
        arrays["gamma"] = rng.uniform(0.5, 2.0, size=pshape)
        if layer != "RMSNormalization":
            arrays["beta"] = rng.normal(0.0, 1.0, size=pshape)
        inputs["keras/" + case] = arrays
    return inputs


def torch_family_case(case, inputs, dtype):
    """One ``torch.nn.functional`` case with autograd, in ``dtype``: ``{"y", "dx", "dgamma", "dbeta"}``
    (``"dW"``, ``"db"`` for conv; parameter gradients absent where the parameter is)."""
    torch = import_torch()
    F = torch.nn.functional
    tdtype = getattr(torch, dtype)

    def leaf(name):
        if name not in inputs:
            return None
        return torch.tensor(inputs[name].astype(dtype), dtype=tdtype, requires_grad=True)

    x = leaf("x")
    if case in CONV_CASES:
        _, padding, _ = CONV_CASES[case]
        params = {"W": leaf("W"), "b": leaf("b")}
        y = F.conv2d(x, params["W"], params["b"], padding=padding)
        grads = {"dW": "W", "db": "b"}
    else:
        function, _, kwargs = FAMILY_CASES[case]
        params = {"gamma": leaf("gamma"), "beta": leaf("beta")}
        gamma, beta = params["gamma"], params["beta"]
        if function == "layer_norm":
            y = F.layer_norm(x, kwargs["normalized_shape"], gamma, beta, eps=FAMILY_EPS)
        elif function == "group_norm":
            y = F.group_norm(x, kwargs["num_groups"], gamma, beta, eps=FAMILY_EPS)
        elif function == "instance_norm":
            y = F.instance_norm(x, weight=gamma, bias=beta, eps=FAMILY_EPS)
        else:
            y = F.rms_norm(x, kwargs["normalized_shape"], gamma, eps=kwargs["eps"])
        grads = {"dgamma": "gamma", "dbeta": "beta"}
    y.backward(torch.tensor(inputs["dy"].astype(dtype), dtype=tdtype))
    out = {"y": y.detach().numpy().copy(), "dx": x.grad.numpy().copy()}
    for grad_name, param_name in grads.items():
        if params[param_name] is not None:
            out[grad_name] = params[param_name].grad.numpy().copy()
    return out


def torch_family_results(family_inputs):
    """Every torch family and conv case in both dtypes, as the flat dict stored in
    ``reference_family_torch.npz``: keys ``<case>/<dtype>/<y|dx|dgamma|dbeta|dW|db>``."""
    results = {}
    for case in list(FAMILY_CASES) + list(CONV_CASES):
        for dtype in FAMILY_DTYPES:
            for key, value in torch_family_case(case, family_inputs[case], dtype).items():
                results[f"{case}/{dtype}/{key}"] = value
    return results


def keras_family_case(case, inputs):
    """One Keras layer, forward, float32 (as Keras computes on the torch backend), eps ``FAMILY_EPS``.

    GroupNormalization gets the 4-D input channels last and its output is
    transposed back to channels first; the other layers take the input as is.
    """
    keras = import_keras()
    layer_name, _, kwargs = KERAS_FAMILY_CASES[case]
    layer = getattr(keras.layers, layer_name)(epsilon=FAMILY_EPS, **kwargs)
    x = inputs["x"]
    channels_last = layer_name == "GroupNormalization"
    feed = to_keras_layout(x) if channels_last else x
    layer.build(feed.shape)
    if layer_name == "RMSNormalization":
        layer.scale.assign(inputs["gamma"].astype(np.float32))
    else:
        layer.gamma.assign(inputs["gamma"].astype(np.float32))
        layer.beta.assign(inputs["beta"].astype(np.float32))
    y = keras_to_numpy(layer(feed))
    return {"y": from_keras_layout(y) if channels_last else y}


def keras_family_results(family_inputs):
    """Every Keras family case: keys ``<layer>/<case>/y`` (channels first), float32."""
    return {f"{case}/y": keras_family_case(case, family_inputs["keras/" + case])["y"]
            for case in KERAS_FAMILY_CASES}


# --------------------------------------------------------------------------- writing


def common_metadata():
    return {
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "generated_by": "tests/make_reference_fixtures.py",
    }


def _with_meta(results, meta):
    out = dict(results)
    for key, value in meta.items():
        out[f"meta/{key}"] = np.array(str(value))
    return out


def _flatten(nested):
    return {f"{outer}/{key}": value for outer, d in nested.items() for key, value in d.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("batchnorm", "family", "after-training"),
                        help="write only one group of files (default: all)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    files = {}
    inputs = all_inputs() if args.only in (None, "batchnorm", "after-training") else None
    if args.only in (None, "batchnorm"):
        files[INPUTS_FILE] = _with_meta(_flatten(inputs), common_metadata())
        files[TORCH_FILE] = _with_meta(torch_results(inputs), {**common_metadata(), **torch_metadata()})
        files[KERAS_FILE] = _with_meta(keras_results(inputs), {**common_metadata(), **keras_metadata()})
    if args.only in (None, "family"):
        family = make_family_inputs()
        files[FAMILY_INPUTS_FILE] = _with_meta(_flatten(family), common_metadata())
        files[FAMILY_TORCH_FILE] = _with_meta(torch_family_results(family),
                                              {**common_metadata(), **torch_metadata()})
        files[FAMILY_KERAS_FILE] = _with_meta(keras_family_results(family),
                                              {**common_metadata(), **keras_metadata()})
    if args.only in (None, "after-training"):
        files.update(after_training_files(inputs))
    return _write(files)


def _write(files):
    for path, arrays in files.items():
        np.savez_compressed(path, **arrays)
        meta = {k[5:]: str(v) for k, v in arrays.items() if k.startswith("meta/")}
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: "
              f"{len(arrays) - len(meta)} arrays, {path.stat().st_size / 1024:.1f} KB, {meta}")
    return 0




# --------------------------------------------------------------------------- after training (notebooks 10-11)

AFTER_INPUTS_FILE = FIXTURE_DIR / "reference_after_training_inputs.npz"
AFTER_TORCH_FILE = FIXTURE_DIR / "reference_after_training_torch.npz"
AFTER_KERAS_FILE = FIXTURE_DIR / "reference_after_training_keras.npz"
AFTER_SEED = 150203169
#: torch.nn.Linear(in, out) folded with BatchNorm1d(out).
FOLD_LINEAR = {"in": 6, "out": 5}
#: torch.nn.Conv2d(C_in, C_out, k) folded with BatchNorm2d(C_out).
FOLD_CONV = {"in": 3, "out": 4, "kernel": 3}
#: The MLP update_bn re-estimates: Linear(no bias) -> BN -> ReLU, twice, then Linear.
MLP_SIZES = (8, 6, 5, 3)
#: SGD's learning rate in the frozen / unfrozen layer runs (it must move gamma and beta visibly).
AFTER_LEARNING_RATE = 0.5
#: Keras trainable=False: this many training steps first, then the rest of the batches frozen.
KERAS_STEPS_BEFORE_FREEZING = 3


def make_after_training_inputs():
    """The seeded inputs of the folding and update_bn cases (float64, PyTorch layouts).

    - ``linear_W`` (out, in), ``linear_b`` (out,), ``linear_x`` (7, in);
    - ``conv_W`` (C_out, C_in, k, k), ``conv_b`` (C_out,), ``conv_x`` (2, C_in, 6, 6);
    - for each of ``linear`` and ``conv``: ``<kind>_running_mean``,
      ``<kind>_running_var`` (in [0.2, 3]), ``<kind>_gamma``, ``<kind>_beta``
      (the BN layer to fold);
    - the MLP: ``mlp_W0`` (6, 8), ``mlp_W1`` (5, 6), ``mlp_W2`` (3, 5),
      ``mlp_b2`` (3,) (torch.nn.Linear's (out, in) layout), ``mlp_warmup``
      (3, 10, 8) training batches run before (so the statistics update_bn
      resets are not the initial ones), ``mlp_batches`` (6, 10, 8) the batches
      update_bn averages, ``mlp_eval`` (12, 8).
    """
    rng = np.random.default_rng(AFTER_SEED)
    out = {}

    def bn_state(kind, width):
        out[f"{kind}_running_mean"] = rng.uniform(-2.0, 2.0, width)
        out[f"{kind}_running_var"] = rng.uniform(0.2, 3.0, width)
        out[f"{kind}_gamma"] = rng.uniform(0.5, 2.0, width) * rng.choice([-1.0, 1.0], width)
        out[f"{kind}_beta"] = rng.normal(0.0, 1.0, width)

    n_in, n_out = FOLD_LINEAR["in"], FOLD_LINEAR["out"]
    out["linear_W"] = rng.normal(0.0, 0.5, (n_out, n_in))
    out["linear_b"] = rng.normal(0.0, 1.0, n_out)
    out["linear_x"] = rng.normal(1.0, 2.0, (7, n_in))
    bn_state("linear", n_out)
    c_in, c_out, k = FOLD_CONV["in"], FOLD_CONV["out"], FOLD_CONV["kernel"]
    out["conv_W"] = rng.normal(0.0, 0.3, (c_out, c_in, k, k))
    out["conv_b"] = rng.normal(0.0, 1.0, c_out)
    out["conv_x"] = rng.normal(0.5, 1.5, (2, c_in, 6, 6))
    bn_state("conv", c_out)
    sizes = MLP_SIZES
    for i in range(3):
        out[f"mlp_W{i}"] = rng.normal(0.0, np.sqrt(2.0 / sizes[i]), (sizes[i + 1], sizes[i]))
    out["mlp_b2"] = rng.normal(0.0, 0.1, sizes[3])
    offset = rng.uniform(-1.0, 1.0, sizes[0])
    out["mlp_warmup"] = rng.normal(0.0, 1.0, (3, 10, sizes[0])) * 2.0 + offset
    out["mlp_batches"] = rng.normal(0.0, 1.0, (6, 10, sizes[0])) + offset
    out["mlp_eval"] = rng.normal(0.0, 1.0, (12, sizes[0])) + offset
    return out


def torch_bn_run(inputs, *, momentum=0.1, affine=True, track_running_stats=True, frozen=False):
    """``torch.nn.BatchNorm1d/2d`` in train mode over the ``STEPS`` batches, with autograd and SGD.

    Each step: ``y = bn(z)``, ``(y * dy).sum().backward()`` (``dy = inputs["dy"]``),
    then ``torch.optim.SGD(lr=AFTER_LEARNING_RATE).step()`` on weight and bias
    (when ``affine``). ``frozen``: ``weight.requires_grad_(False)`` and
    ``bias.requires_grad_(False)`` first, the module staying in train mode.

    Returns ``train_y``, ``dz`` (``z.grad``) per step; with
    ``track_running_stats`` also ``running_mean``, ``running_var`` per step
    and ``num_batches_tracked``; with ``affine`` ``weight`` and ``bias`` after
    each step; then in eval mode ``eval_y`` (and ``eval_one_y`` when running
    statistics are tracked: without them a batch of one fails in eval too).
    """
    torch = import_torch()
    cls = torch.nn.BatchNorm1d if inputs["z"].ndim == 2 else torch.nn.BatchNorm2d
    bn = cls(inputs["z"].shape[1], eps=TORCH_EPS, momentum=momentum, affine=affine,
             track_running_stats=track_running_stats, dtype=torch.float64)
    optimizer = None
    if affine:
        with torch.no_grad():
            bn.weight.copy_(torch.tensor(inputs["gamma"]))
            bn.bias.copy_(torch.tensor(inputs["beta"]))
        if frozen:
            bn.weight.requires_grad_(False)
            bn.bias.requires_grad_(False)
        optimizer = torch.optim.SGD(bn.parameters(), lr=AFTER_LEARNING_RATE)
    dy = torch.tensor(inputs["dy"])
    keys = ["train_y", "dz"]
    if track_running_stats:
        keys += ["running_mean", "running_var"]
    if affine:
        keys += ["weight", "bias"]
    out = {key: [] for key in keys}
    bn.train()
    for batch in inputs["train"]:
        z = torch.tensor(batch, requires_grad=True)
        y = bn(z)
        (y * dy).sum().backward()
        out["train_y"].append(y.detach().numpy().copy())
        out["dz"].append(z.grad.numpy().copy())
        if track_running_stats:
            out["running_mean"].append(bn.running_mean.numpy().copy())
            out["running_var"].append(bn.running_var.numpy().copy())
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad()
            out["weight"].append(bn.weight.detach().numpy().copy())
            out["bias"].append(bn.bias.detach().numpy().copy())
    out = {k: np.asarray(v) for k, v in out.items()}
    if track_running_stats:
        out["num_batches_tracked"] = np.asarray(int(bn.num_batches_tracked))
    bn.eval()
    with torch.no_grad():
        out["eval_y"] = bn(torch.tensor(inputs["eval"])).numpy().copy()
        if track_running_stats:
            out["eval_one_y"] = bn(torch.tensor(inputs["eval_one"])).numpy().copy()
    return out


def torch_reset_run(inputs):
    """``momentum=None`` over the ``STEPS`` batches, ``reset_running_stats()``, then two batches again.

    Returns ``reset_mean``, ``reset_var`` and ``reset_tracked`` right after the
    reset, then ``running_mean``, ``running_var`` after each of ``train[0]``
    and ``train[1]`` (the cumulative average restarts: the first replaces),
    ``num_batches_tracked`` and ``eval_y``.
    """
    torch = import_torch()
    cls = torch.nn.BatchNorm1d if inputs["z"].ndim == 2 else torch.nn.BatchNorm2d
    bn = cls(inputs["z"].shape[1], eps=TORCH_EPS, momentum=None, dtype=torch.float64)
    out = {"running_mean": [], "running_var": []}
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(inputs["gamma"]))
        bn.bias.copy_(torch.tensor(inputs["beta"]))
        bn.train()
        for batch in inputs["train"]:
            bn(torch.tensor(batch))
        bn.reset_running_stats()
        out["reset_mean"] = bn.running_mean.numpy().copy()
        out["reset_var"] = bn.running_var.numpy().copy()
        out["reset_tracked"] = np.asarray(int(bn.num_batches_tracked))
        for batch in inputs["train"][:2]:
            bn(torch.tensor(batch))
            out["running_mean"].append(bn.running_mean.numpy().copy())
            out["running_var"].append(bn.running_var.numpy().copy())
        out["num_batches_tracked"] = np.asarray(int(bn.num_batches_tracked))
        bn.eval()
        out["eval_y"] = bn(torch.tensor(inputs["eval"])).numpy().copy()
    return {k: np.asarray(v) for k, v in out.items()}


def _torch_bn_state(bn, extra, kind):
    torch = import_torch()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor(extra[f"{kind}_running_mean"]))
        bn.running_var.copy_(torch.tensor(extra[f"{kind}_running_var"]))
        if bn.affine:
            bn.weight.copy_(torch.tensor(extra[f"{kind}_gamma"]))
            bn.bias.copy_(torch.tensor(extra[f"{kind}_beta"]))


def torch_fuse_linear(extra, bias):
    """``fuse_linear_bn_eval(Linear, BatchNorm1d)`` (eval mode, eps 1e-5): ``W``, ``b`` and both outputs.

    ``W`` is torch.nn.Linear's (out, in) weight of the fused layer, ``b`` its
    bias; ``y`` is ``bn(linear(x))`` in eval mode and ``fused_y`` the fused
    layer's output on ``linear_x``. (``fuse_linear_bn_eval`` fails on a
    BatchNorm without affine, so only ``affine=True`` is recorded.)
    """
    torch = import_torch()
    from torch.nn.utils.fusion import fuse_linear_bn_eval

    linear = torch.nn.Linear(FOLD_LINEAR["in"], FOLD_LINEAR["out"], bias=bias, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(extra["linear_W"]))
        if bias:
            linear.bias.copy_(torch.tensor(extra["linear_b"]))
    bn = torch.nn.BatchNorm1d(FOLD_LINEAR["out"], dtype=torch.float64)
    _torch_bn_state(bn, extra, "linear")
    linear.eval()
    bn.eval()
    fused = fuse_linear_bn_eval(linear, bn)
    x = torch.tensor(extra["linear_x"])
    with torch.no_grad():
        return {"W": fused.weight.numpy().copy(), "b": fused.bias.numpy().copy(),
                "y": bn(linear(x)).numpy().copy(), "fused_y": fused(x).numpy().copy()}


def torch_fuse_conv(extra, bias, affine):
    """``fuse_conv_bn_eval(Conv2d, BatchNorm2d)`` (eval mode): ``W`` (C_out, C_in, k, k), ``b``, outputs."""
    torch = import_torch()
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    conv = torch.nn.Conv2d(FOLD_CONV["in"], FOLD_CONV["out"], FOLD_CONV["kernel"], bias=bias,
                           dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(extra["conv_W"]))
        if bias:
            conv.bias.copy_(torch.tensor(extra["conv_b"]))
    bn = torch.nn.BatchNorm2d(FOLD_CONV["out"], affine=affine, dtype=torch.float64)
    _torch_bn_state(bn, extra, "conv")
    conv.eval()
    bn.eval()
    fused = fuse_conv_bn_eval(conv, bn)
    x = torch.tensor(extra["conv_x"])
    with torch.no_grad():
        return {"W": fused.weight.numpy().copy(), "b": fused.bias.numpy().copy(),
                "y": bn(conv(x)).numpy().copy(), "fused_y": fused(x).numpy().copy()}


def torch_update_bn(extra):
    """``torch.optim.swa_utils.update_bn`` on an MLP (float64, BatchNorm1d momentum 0.1).

    ``Linear(8, 6, bias=False) -> BatchNorm1d(6) -> ReLU -> Linear(6, 5, bias=False) ->
    BatchNorm1d(5) -> ReLU -> Linear(5, 3)``, weights from ``extra``. The
    ``mlp_warmup`` batches run in train mode first (so there is something to
    reset), then ``update_bn(mlp_batches, model)`` with the model in eval
    mode. Returns each BN's ``bn<i>_running_mean``, ``bn<i>_running_var`` and
    ``bn<i>_num_batches_tracked`` (i = 0, 1), ``bn<i>_momentum`` (restored),
    ``training`` (the mode after update_bn) and ``eval_y`` on ``mlp_eval``.
    """
    torch = import_torch()
    from torch.optim.swa_utils import update_bn

    s = MLP_SIZES
    f64 = {"dtype": torch.float64}
    model = torch.nn.Sequential(
        torch.nn.Linear(s[0], s[1], bias=False, **f64), torch.nn.BatchNorm1d(s[1], **f64), torch.nn.ReLU(),
        torch.nn.Linear(s[1], s[2], bias=False, **f64), torch.nn.BatchNorm1d(s[2], **f64), torch.nn.ReLU(),
        torch.nn.Linear(s[2], s[3], **f64),
    )
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(extra["mlp_W0"]))
        model[3].weight.copy_(torch.tensor(extra["mlp_W1"]))
        model[6].weight.copy_(torch.tensor(extra["mlp_W2"]))
        model[6].bias.copy_(torch.tensor(extra["mlp_b2"]))
        model.train()
        for batch in extra["mlp_warmup"]:
            model(torch.tensor(batch))
    model.eval()
    update_bn([torch.tensor(batch) for batch in extra["mlp_batches"]], model)
    out = {"training": np.asarray(model.training)}
    for i, bn in enumerate((model[1], model[4])):
        out[f"bn{i}_running_mean"] = bn.running_mean.numpy().copy()
        out[f"bn{i}_running_var"] = bn.running_var.numpy().copy()
        out[f"bn{i}_num_batches_tracked"] = np.asarray(int(bn.num_batches_tracked))
        out[f"bn{i}_momentum"] = np.asarray(bn.momentum)
    with torch.no_grad():
        out["eval_y"] = model(torch.tensor(extra["mlp_eval"])).numpy().copy()
    return out


#: The BatchNorm variants torch_bn_run records: name -> keyword arguments.
TORCH_BN_VARIANTS = {
    "cumulative": {"momentum": None},
    "no_affine": {"affine": False},
    "no_running_stats": {"track_running_stats": False},
    "frozen": {"frozen": True},
    "unfrozen": {},
}


def after_training_torch_results(inputs_by_shape, extra):
    """Every PyTorch after-training case, flat: ``<case>/<shape>/<key>``, ``fuse_*/.../<key>``, ``update_bn/<key>``."""
    results = {}
    for shape_name, inputs in inputs_by_shape.items():
        for name, kwargs in TORCH_BN_VARIANTS.items():
            for key, value in torch_bn_run(inputs, **kwargs).items():
                results[f"{name}/{shape_name}/{key}"] = value
        for key, value in torch_reset_run(inputs).items():
            results[f"reset/{shape_name}/{key}"] = value
    for bias in (True, False):
        for key, value in torch_fuse_linear(extra, bias).items():
            results[f"fuse_linear/bias{int(bias)}/{key}"] = value
        for affine in (True, False):
            for key, value in torch_fuse_conv(extra, bias, affine).items():
                results[f"fuse_conv/bias{int(bias)}_affine{int(affine)}/{key}"] = value
    for key, value in torch_update_bn(extra).items():
        results[f"update_bn/{key}"] = value
    return results


def keras_frozen_run(inputs, momentum=KERAS_MOMENTA[0]):
    """``BatchNormalization`` trained ``KERAS_STEPS_BEFORE_FREEZING`` steps, then ``trainable = False``.

    The remaining training batches are then called with ``training=True``:
    Keras 3 runs a frozen BN in inference mode. Returns ``train_y`` and
    ``moving_mean``/``moving_var`` after every step (frozen ones included),
    ``frozen_inference_y`` (the frozen batches called with ``training=False``,
    for comparison) and ``eval_y``; outputs NHWC for 4-D, float32.
    """
    keras = import_keras()
    layer = keras.layers.BatchNormalization(axis=-1, momentum=momentum, epsilon=KERAS_EPS)
    layer.build(to_keras_layout(inputs["z"]).shape)
    layer.gamma.assign(inputs["gamma"].astype(np.float32))
    layer.beta.assign(inputs["beta"].astype(np.float32))
    out = {"train_y": [], "moving_mean": [], "moving_var": [], "frozen_inference_y": []}
    for step, batch in enumerate(inputs["train"]):
        if step == KERAS_STEPS_BEFORE_FREEZING:
            layer.trainable = False
        x = to_keras_layout(batch)
        out["train_y"].append(keras_to_numpy(layer(x, training=True)))
        out["moving_mean"].append(keras_to_numpy(layer.moving_mean))
        out["moving_var"].append(keras_to_numpy(layer.moving_variance))
        if step >= KERAS_STEPS_BEFORE_FREEZING:
            out["frozen_inference_y"].append(keras_to_numpy(layer(x, training=False)))
    out["eval_y"] = keras_to_numpy(layer(to_keras_layout(inputs["eval"]), training=False))
    return {k: np.asarray(v) for k, v in out.items()}


def keras_no_affine_run(inputs, momentum=KERAS_MOMENTA[1]):
    """``BatchNormalization(center=False, scale=False)``: ``train_y``, moving statistics per step, ``eval_y``."""
    keras = import_keras()
    layer = keras.layers.BatchNormalization(axis=-1, momentum=momentum, epsilon=KERAS_EPS,
                                            center=False, scale=False)
    layer.build(to_keras_layout(inputs["z"]).shape)
    out = {"train_y": [], "moving_mean": [], "moving_var": []}
    for batch in inputs["train"]:
        out["train_y"].append(keras_to_numpy(layer(to_keras_layout(batch), training=True)))
        out["moving_mean"].append(keras_to_numpy(layer.moving_mean))
        out["moving_var"].append(keras_to_numpy(layer.moving_variance))
    out["eval_y"] = keras_to_numpy(layer(to_keras_layout(inputs["eval"]), training=False))
    return {k: np.asarray(v) for k, v in out.items()}


def after_training_keras_results(inputs_by_shape):
    """Every Keras after-training case, flat: ``frozen/<shape>/<key>``, ``no_affine/<shape>/<key>``."""
    results = {}
    for shape_name, inputs in inputs_by_shape.items():
        for key, value in keras_frozen_run(inputs).items():
            results[f"frozen/{shape_name}/{key}"] = value
        for key, value in keras_no_affine_run(inputs).items():
            results[f"no_affine/{shape_name}/{key}"] = value
    return results


def after_training_files(inputs):
    """``{path: arrays}`` of the three after-training fixture files (for :func:`main`)."""
    extra = make_after_training_inputs()
    return {
        AFTER_INPUTS_FILE: _with_meta(extra, common_metadata()),
        AFTER_TORCH_FILE: _with_meta(after_training_torch_results(inputs, extra),
                                     {**common_metadata(), **torch_metadata()}),
        AFTER_KERAS_FILE: _with_meta(after_training_keras_results(inputs),
                                     {**common_metadata(), **keras_metadata()}),
    }


if __name__ == "__main__":
    sys.exit(main())
