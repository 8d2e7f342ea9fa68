"""Speed of the normalization family against single-threaded PyTorch, and of the family's experiments.

Run by hand::

    OMP_NUM_THREADS=1 python benchmarks/bench_norms.py [--repeats 21] [--warmup 2] [--quick]

1. Forward, backward and forward + backward at (256, 64, 16, 16) float32
   (a batch of conv feature maps): ``layer_norm`` over (64, 16, 16) with
   element-wise gamma and beta, ``group_norm`` with 32 groups, the
   ``GroupNorm`` layer, and for information ``instance_norm`` and
   ``rms_norm``; PyTorch runs ``torch.nn.functional``'s functions (and
   ``nn.GroupNorm``) with autograd on one thread. Timed as
   ``bench_core.py`` does: medians (and fastest) of alternating blocks.
   Goal: forward + backward of layer and group norm within 2.5x of PyTorch
   (as batch norm is, see ``bench_core.py``). Layer norm meets it; group norm
   does not (about 3.5-4x): PyTorch's CPU group norm is one fused kernel of
   about two passes over the data (faster than its own batch norm), while
   NumPy needs about ten, half of them broadcasting one value per (sample,
   channel) row of 256 values, which NumPy runs at half its plain speed.
2. One small CNN run on the 8x8 digits (``bnlab.train.run_cnn``) with and
   without BN: wall time and test accuracy.
3. The Group Norm paper's batch-size experiment at digits scale
   (``bnlab.train.batch_size_experiment``, defaults): wall time, the
   accuracy table, and whether it still matches the grid stored for
   notebook 09 (``bnlab.widgets.full_batch_size_grid``).

``--quick`` skips parts 2 and 3.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy / torch start their thread pools

import argparse
import platform
import time

import numpy as np
from bench_core import keep_freed_memory, time_ms

import bnlab

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the benchmark still reports bnlab's own figures
    torch = None

SHAPE = (256, 64, 16, 16)
GROUPS = 32
EPS = 1e-5
GOAL_CASES, GOAL_RATIO = ("layer_norm", "group_norm"), 2.5


def make_inputs(rng):
    x = rng.normal(3.0, 2.0, size=SHAPE).astype(np.float32)
    dy = rng.normal(size=SHAPE).astype(np.float32)
    channels = SHAPE[1]
    per_channel = (rng.normal(1.0, 0.2, size=channels).astype(np.float32),
                   rng.normal(size=channels).astype(np.float32))
    per_element = (rng.normal(1.0, 0.2, size=SHAPE[1:]).astype(np.float32),
                   rng.normal(size=SHAPE[1:]).astype(np.float32))
    return x, dy, per_channel, per_element


def bnlab_cases(x, dy, per_channel, per_element):
    """name -> (forward() returning a cache-holder, backward(state), fwd+bwd())."""
    gamma_c, beta_c = per_channel
    gamma_e, beta_e = per_element
    pairs = {
        "layer_norm": (lambda: bnlab.layer_norm_forward(x, SHAPE[1:], gamma_e, beta_e, EPS),
                       lambda c: bnlab.layer_norm_backward(dy, c)),
        "group_norm": (lambda: bnlab.group_norm_forward(x, GROUPS, gamma_c, beta_c, EPS),
                       lambda c: bnlab.group_norm_backward(dy, c)),
        "instance_norm": (lambda: bnlab.instance_norm_forward(x, gamma_c, beta_c, EPS),
                          lambda c: bnlab.instance_norm_backward(dy, c)),
        "rms_norm": (lambda: bnlab.rms_norm_forward(x, SHAPE[1:], gamma_e),
                     lambda c: bnlab.rms_norm_backward(dy, c)),
    }
    cases = {}
    for name, (fwd, bwd) in pairs.items():
        cache = fwd()[1]
        cases[name] = {
            "forward": fwd,
            "backward": lambda bwd=bwd, cache=cache: bwd(cache),
            "fwd+bwd": lambda fwd=fwd, bwd=bwd: bwd(fwd()[1]),
        }
    layer = bnlab.GroupNorm(GROUPS, SHAPE[1], eps=EPS, dtype=np.float32)
    layer.gamma[:], layer.beta[:] = gamma_c, beta_c
    layer.forward(x, training=True)

    def layer_both():
        layer.forward(x, training=True)
        return layer.backward(dy)

    cases["GroupNorm layer"] = {
        "forward": lambda: layer.forward(x, training=True),
        "backward": lambda: layer.backward(dy),
        "fwd+bwd": layer_both,
    }
    return cases


def torch_cases(x, dy, per_channel, per_element):
    xt = torch.from_numpy(x).requires_grad_(True)
    dyt = torch.from_numpy(dy)
    gc, bc = (torch.from_numpy(a).requires_grad_(True) for a in per_channel)
    ge, be = (torch.from_numpy(a).requires_grad_(True) for a in per_element)
    module = torch.nn.GroupNorm(GROUPS, SHAPE[1], eps=EPS)
    with torch.no_grad():
        module.weight.copy_(gc)
        module.bias.copy_(bc)
    functions = {
        "layer_norm": (lambda: F.layer_norm(xt, SHAPE[1:], ge, be, EPS), (xt, ge, be)),
        "group_norm": (lambda: F.group_norm(xt, GROUPS, gc, bc, EPS), (xt, gc, bc)),
        "instance_norm": (lambda: F.instance_norm(xt, weight=gc, bias=bc, eps=EPS), (xt, gc, bc)),
        "rms_norm": (lambda: F.rms_norm(xt, SHAPE[1:], ge), (xt, ge)),
        "GroupNorm layer": (lambda: module(xt), (xt, module.weight, module.bias)),
    }
    cases = {}
    for name, (fwd, inputs) in functions.items():
        y = fwd()  # with autograd recording, as in training
        cases[name] = {
            "forward": fwd,
            "backward": lambda y=y, inputs=inputs: torch.autograd.grad(y, inputs, dyt, retain_graph=True),
            "fwd+bwd": lambda fwd=fwd, inputs=inputs: torch.autograd.grad(fwd(), inputs, dyt),
        }
    return cases


def agreement(x, dy, per_channel, per_element):
    """Largest difference of dx from torch's, relative to the largest |dx| (float32), per case."""
    ours = bnlab_cases(x, dy, per_channel, per_element)
    theirs = torch_cases(x, dy, per_channel, per_element)
    out = {}
    for name in ours:
        dx = ours[name]["fwd+bwd"]()
        dx = dx[0] if isinstance(dx, tuple) else dx
        dx_torch = theirs[name]["fwd+bwd"]()[0].numpy()
        out[name] = float(np.abs(dx - dx_torch).max() / np.abs(dx_torch).max())
    return out


def bench_functions(args):
    rng = np.random.default_rng(0)
    inputs = make_inputs(rng)
    ours = bnlab_cases(*inputs)
    theirs = torch_cases(*inputs) if torch is not None else None
    close = agreement(*inputs) if torch is not None else {}
    print(f"1. forward and backward at {SHAPE} float32 (layer norm over {SHAPE[1:]}, "
          f"{GROUPS} groups), milliseconds")
    header = f"{'case':<16} {'pass':<9} {'bnlab ms':>9}"
    if theirs is not None:
        header += f" {'torch ms':>9} {'bnlab/torch':>12}   {'fastest: bnlab':>14} {'torch':>6} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    goals = {}
    for name, passes in ours.items():
        for pass_name, func in passes.items():
            funcs = [func] + ([theirs[name][pass_name]] if theirs is not None else [])
            (ms, best), *rest = time_ms(funcs, args.repeats, args.warmup)
            line = f"{name:<16} {pass_name:<9} {ms:>9.2f}"
            if theirs is not None:
                ms_torch, best_torch = rest[0]
                line += (f" {ms_torch:>9.2f} {ms / ms_torch:>11.2f}x   {best:>14.2f} {best_torch:>6.2f}"
                         f" {best / best_torch:>5.2f}x")
                if name in GOAL_CASES and pass_name == "fwd+bwd":
                    goals[name] = (ms / ms_torch, best / best_torch)
            print(line)
        if name in close:
            print(f"{'':<16} (dx agrees with torch to {close[name]:.1e} of its largest value)")
    for name, (median, fastest) in goals.items():
        verdict = "met" if median <= GOAL_RATIO else "NOT met"
        print(f"Goal: {name} fwd+bwd within {GOAL_RATIO}x of PyTorch: {median:.2f}x (medians), "
              f"{verdict}; fastest runs {fastest:.2f}x.")


def bench_experiments():
    from bnlab.train import NORM_LABELS, batch_size_experiment, run_cnn

    from bnlab.datasets import load_digits_images, load_digits_split

    images, flat = load_digits_images(0), load_digits_split(0)  # scikit-learn's import, before timing
    print("\n2. one CNN run on the 8x8 digits (bnlab.train.run_cnn defaults); wall and CPU seconds")
    for norm in ("batch", None, "group"):
        cpu = time.process_time()
        history = run_cnn(norm=norm, data=images)
        cpu = time.process_time() - cpu
        acc = ", ".join(f"{a:.3f}" for a in history.test_accuracy[1:])
        print(f"   {NORM_LABELS[norm]:<8} {history.wall_time:6.2f} s ({cpu:5.2f} s CPU)   "
              f"test accuracy after each epoch: {acc}")

    print("\n3. batch-size experiment (bnlab.train.batch_size_experiment defaults)")
    start, cpu = time.perf_counter(), time.process_time()
    result = batch_size_experiment(data=flat)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"   {elapsed:.1f} s ({cpu:.1f} s CPU) for {result.accuracy.size} runs; test accuracy "
          f"(mean over seeds {result.seeds}):")
    print("   " + f"{'B':<10}" + "".join(f"{b:>8d}" for b in result.batch_sizes))
    for method in result.methods:
        row = result.mean_accuracy(method)
        print("   " + f"{NORM_LABELS[method]:<10}" + "".join(f"{a:>8.3f}" for a in row))
    from bnlab.widgets import full_batch_size_grid

    stored = full_batch_size_grid()  # what notebook 09's explorer draws
    same = stored.accuracy.shape == result.accuracy.shape and np.array_equal(stored.accuracy, result.accuracy)
    print("   the grid stored in bnlab.widgets.full_batch_size_grid() "
          + ("matches this run exactly" if same else "DIFFERS from this run: update _FULL_GRID_CORRECT"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=21, help="timed runs per figure (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before each block")
    parser.add_argument("--quick", action="store_true", help="only the function timings")
    args = parser.parse_args(argv)
    reuse = keep_freed_memory()
    if torch is not None:
        torch.set_num_threads(1)
    print(
        f"bnlab {bnlab.__version__}, NumPy {np.__version__}, "
        + (f"PyTorch {torch.__version__} ({torch.get_num_threads()} thread)" if torch is not None
           else "PyTorch not installed: bnlab only")
        + f", Python {platform.python_version()}, {platform.machine()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; freed memory "
        + ("reused (mallopt)" if reuse else "returned to the OS")
        + "\n"
    )
    bench_functions(args)
    if not args.quick:
        bench_experiments()
    print("Figures vary with machine load (medians most): rerun if they look noisy. CPU seconds "
          "(time.process_time) are less sensitive to other processes than wall seconds.")


if __name__ == "__main__":
    main()
