"""Speed of bnlab's batch-norm forward and backward against single-threaded PyTorch.

Run by hand::

    python benchmarks/bench_core.py [--repeats 31] [--warmup 2] [--os-memory]

float32, three shapes: a dense layer (256, 512), a big dense layer
(4096, 1024) and a convolution's (64, 64, 32, 32) reduced over (0, 2, 3).
For each: forward, backward (from a cache made beforehand) and
forward + backward, median (and fastest) of ``--repeats`` runs, timed in blocks that
alternate between bnlab and PyTorch (each block after ``--warmup`` untimed
runs) so that both see the same machine load.
PyTorch runs on one thread (``torch.set_num_threads(1)``, OMP_NUM_THREADS=1)
with ``torch.nn.functional.batch_norm(training=True)`` and autograd for its
backward, so both sides do the same work on the same core. Without torch the
script prints bnlab's figures alone.

By default freed memory is kept for reuse (see ``keep_freed_memory``);
``--os-memory`` measures with glibc's default instead.

Goal: bnlab's forward + backward within 2.5x of PyTorch at (4096, 1024).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy / torch start their thread pools

import argparse
import gc
import platform
import time

import numpy as np

import bnlab

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the benchmark still reports bnlab's own figures
    torch = None

CASES = [
    ("(256, 512)", (256, 512), 0),
    ("(4096, 1024)", (4096, 1024), 0),
    ("(64, 64, 32, 32)", (64, 64, 32, 32), (0, 2, 3)),
]
GOAL_CASE, GOAL_RATIO = "(4096, 1024)", 2.5
EPS = 1e-5


def keep_freed_memory():
    """Ask glibc to reuse freed blocks instead of returning them to the OS (Linux only).

    By default a block of 16 MB is usually handed back to the OS when freed and
    the next one comes as fresh pages, each costing a page fault when first
    written: in a virtual machine that can cost more than the arithmetic, and
    whether it happens depends on the allocation history, so figures jump by
    a factor of 3 or more between runs. With large thresholds both NumPy and
    PyTorch reuse their memory, as in a steady training loop. Returns True
    when the setting took effect.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30))


def time_ms(funcs, repeats, warmup, rounds=5):
    """(median, fastest) milliseconds of each function in ``funcs`` over ``repeats`` timed runs.

    The runs are split into ``rounds`` blocks, alternating between the
    functions block by block (bnlab x k, torch x k, bnlab x k, ...): both
    see the same machine load over time, and each block runs warm.
    """
    times = [[] for _ in funcs]
    per_block = max(1, -(-repeats // rounds))
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for func, bucket in zip(funcs, times):
                for _ in range(warmup):
                    func()
                for _ in range(per_block):
                    start = time.perf_counter()
                    func()
                    bucket.append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return [(1e3 * float(np.median(bucket)), 1e3 * min(bucket)) for bucket in times]


def bnlab_ops(z, gamma, beta, dy, axis):
    _, cache = bnlab.batchnorm_forward(z, gamma, beta, eps=EPS, axis=axis)

    def forward():
        return bnlab.batchnorm_forward(z, gamma, beta, eps=EPS, axis=axis)

    def backward():
        return bnlab.batchnorm_backward(dy, cache)

    def both():
        _, c = bnlab.batchnorm_forward(z, gamma, beta, eps=EPS, axis=axis)
        return bnlab.batchnorm_backward(dy, c)

    return {"forward": forward, "backward": backward, "fwd+bwd": both}


def torch_ops(z, gamma, beta, dy, axis):
    # torch's batch_norm normalizes over every axis but 1: (N, D) or (N, C, H, W), as bnlab here
    assert axis in (0, (0, 2, 3))
    zt = torch.from_numpy(z).requires_grad_(True)
    gt = torch.from_numpy(gamma).requires_grad_(True)
    bt = torch.from_numpy(beta).requires_grad_(True)
    dyt = torch.from_numpy(dy)
    inputs = (zt, gt, bt)

    def forward():  # with autograd recording, as in training (it saves mean and inv_std)
        return F.batch_norm(zt, None, None, gt, bt, training=True, eps=EPS)

    y = forward()

    def backward():
        return torch.autograd.grad(y, inputs, dyt, retain_graph=True)

    def both():
        return torch.autograd.grad(forward(), inputs, dyt)

    return {"forward": forward, "backward": backward, "fwd+bwd": both}


def check_agreement(z, gamma, beta, dy, axis):
    """Largest difference between bnlab's and torch's dz, relative to the largest |dz| (float32)."""
    _, cache = bnlab.batchnorm_forward(z, gamma, beta, eps=EPS, axis=axis)
    dz = bnlab.batchnorm_backward(dy, cache)[0]
    dz_torch = torch_ops(z, gamma, beta, dy, axis)["fwd+bwd"]()[0].numpy()
    return float(np.abs(dz - dz_torch).max() / np.abs(dz_torch).max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=31, help="timed runs per figure (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before each block")
    parser.add_argument(
        "--os-memory",
        action="store_true",
        help="leave glibc's default of returning large freed blocks to the OS (page faults)",
    )
    args = parser.parse_args(argv)
    reuse = False if args.os_memory else keep_freed_memory()

    if torch is not None:
        torch.set_num_threads(1)
    print(
        f"bnlab {bnlab.__version__}, NumPy {np.__version__}, "
        + (
            f"PyTorch {torch.__version__} ({torch.get_num_threads()} thread)"
            if torch is not None
            else "PyTorch not installed: bnlab only"
        )
        + f", Python {platform.python_version()}, {platform.machine()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    print(
        f"float32, median and fastest of {args.repeats} runs in alternating blocks "
        f"(warm-up {args.warmup} runs per block), milliseconds; freed memory "
        + ("reused (mallopt)" if reuse else "returned to the OS (glibc default)")
        + "\n"
    )

    header = f"{'shape':<18} {'pass':<9} {'bnlab ms':>9}"
    if torch is not None:
        header += f" {'torch ms':>9} {'bnlab/torch':>12}   {'fastest: bnlab':>14} {'torch':>6}"
        header += f" {'ratio':>6}"
    print(header)
    print("-" * len(header))

    rng = np.random.default_rng(0)
    goal = None
    for label, shape, axis in CASES:
        features = shape[1]
        z = rng.normal(3.0, 2.0, size=shape).astype(np.float32)
        dy = rng.normal(size=shape).astype(np.float32)
        gamma = rng.normal(1.0, 0.2, size=features).astype(np.float32)
        beta = rng.normal(size=features).astype(np.float32)
        ours = bnlab_ops(z, gamma, beta, dy, axis)
        theirs = torch_ops(z, gamma, beta, dy, axis) if torch is not None else None
        for name in ("forward", "backward", "fwd+bwd"):
            funcs = [ours[name]] + ([theirs[name]] if theirs is not None else [])
            (ms, best), *rest = time_ms(funcs, args.repeats, args.warmup)
            line = f"{label:<18} {name:<9} {ms:>9.2f}"
            if theirs is not None:
                ms_torch, best_torch = rest[0]
                ratio = ms / ms_torch
                line += (
                    f" {ms_torch:>9.2f} {ratio:>11.2f}x   {best:>14.2f} {best_torch:>6.2f}"
                    f" {best / best_torch:>5.2f}x"
                )
                if label == GOAL_CASE and name == "fwd+bwd":
                    goal = ratio, best / best_torch
            print(line)
        if theirs is not None:
            print(
                f"{'':<18} (dz agrees with torch to "
                f"{check_agreement(z, gamma, beta, dy, axis):.1e} "
                "of its largest value)"
            )

    if goal is not None:
        verdict = "met" if goal[0] <= GOAL_RATIO else "NOT met"
        print(
            f"\nGoal: fwd+bwd at {GOAL_CASE} within {GOAL_RATIO}x of PyTorch: "
            f"{goal[0]:.2f}x (medians), {verdict}; fastest runs {goal[1]:.2f}x."
        )
    print(
        "Figures vary with machine load (medians most): rerun if they look noisy; the fastest "
        "runs show the unloaded speed."
    )


if __name__ == "__main__":
    main()
