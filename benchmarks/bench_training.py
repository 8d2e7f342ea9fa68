"""Wall time of the training experiment (bnlab.train): one run with and without BN, and compare().

Run by hand::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_training.py [--steps 2000] [--repeats 5]

Prints the median (and min/max) over ``--repeats`` of one ``run_experiment``
of ``--steps`` steps per variant, a full ``compare()``, the test accuracies
they reached, and where one training step's time goes, layer by layer.
Single-threaded BLAS is faster for these small matrices (``OMP_NUM_THREADS=1``).
The scikit-learn import and the data loading happen once, before timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import timeit

import numpy as np

from bnlab.datasets import load_digits_split
from bnlab.layers import softmax_cross_entropy
from bnlab.train import build_mlp, compare, run_experiment

VARIANTS = [
    ("sigmoid, without BN", dict(batch_norm=False)),
    ("sigmoid, with BN", dict(batch_norm=True)),
    ("sigmoid, noisy BN", dict(batch_norm=True, noisy_bn=True)),
    ("relu/he lr 1, without BN", dict(batch_norm=False, activation="relu", init_scale="he", learning_rate=1.0)),
    ("relu/he lr 1, with BN", dict(batch_norm=True, activation="relu", init_scale="he", learning_rate=1.0)),
]


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def step_breakdown(data, batch_norm, number=500):
    """Microseconds per call of each layer's forward and backward on one batch of 60."""
    model = build_mlp(64, (100, 100, 100), 10, batch_norm=batch_norm, rng=0)
    x, labels = data.x_train[:60], data.y_train[:60]
    rows, out = [], x
    for layer in model:
        inp = out
        t = timeit.timeit(lambda layer=layer, inp=inp: layer.forward(inp, training=True), number=number)
        out = layer.forward(inp, training=True)
        rows.append([type(layer).__name__, t / number * 1e6, 0.0])
    _, grad = softmax_cross_entropy(out, labels)
    loss_us = timeit.timeit(lambda: softmax_cross_entropy(out, labels), number=number) / number * 1e6
    for row, layer in zip(reversed(rows), reversed(model.layers)):
        g = grad
        t = timeit.timeit(lambda layer=layer, g=g: layer.backward(g), number=number)
        grad = layer.backward(g)
        row[2] = t / number * 1e6
    totals = {}
    for name, fwd, bwd in rows:
        count, f, b = totals.get(name, (0, 0.0, 0.0))
        totals[name] = (count + 1, f + fwd, b + bwd)
    return totals, loss_us


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    data = load_digits_split(0)
    run_experiment(steps=20, data=data)  # warm-up
    common = dict(steps=args.steps, eval_every=args.eval_every, seed=0, data=data)
    print(f"bnlab training benchmark: 64-100-100-100-10 MLP, batch 60, {args.steps} steps, "
          f"evaluation every {args.eval_every}, median of {args.repeats} "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, numpy {np.__version__})\n")
    header = f"{'run':<34}{'median s':>9}{'min s':>8}{'max s':>8}{'acc@500':>9}{'final acc':>10}"
    print(header)
    print("-" * len(header))
    for label, kwargs in VARIANTS:
        times, history = timed(lambda kwargs=kwargs: run_experiment(**kwargs, **common), args.repeats)
        final = "diverged" if history.diverged else f"{history.final_test_accuracy:.3f}"
        print(f"{label:<34}{statistics.median(times):9.3f}{min(times):8.3f}{max(times):8.3f}"
              f"{history.accuracy_at(min(500, args.steps)):9.3f}{final:>10}")
    times, _ = timed(lambda: compare(**common), args.repeats)
    print(f"{'compare() (without + with BN)':<34}{statistics.median(times):9.3f}{min(times):8.3f}{max(times):8.3f}")
    times, _ = timed(lambda: compare(include_noisy=True, **common), args.repeats)
    print(f"{'compare(include_noisy=True)':<34}{statistics.median(times):9.3f}{min(times):8.3f}{max(times):8.3f}")

    for batch_norm in (False, True):
        totals, loss_us = step_breakdown(data, batch_norm)
        print(f"\none training step {'with' if batch_norm else 'without'} BN, microseconds (batch 60):")
        print(f"  {'layer':<18}{'count':>6}{'forward':>10}{'backward':>10}")
        grand = loss_us
        for name, (count, fwd, bwd) in totals.items():
            print(f"  {name:<18}{count:>6}{fwd:10.1f}{bwd:10.1f}")
            grand += fwd + bwd
        print(f"  {'loss':<18}{'':>6}{loss_us:10.1f}")
        print(f"  {'total (no SGD)':<18}{'':>6}{grand:10.1f}")


if __name__ == "__main__":
    main()
