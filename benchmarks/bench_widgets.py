"""Slider latency of every explorer in bnlab.widgets (run by hand).

    OMP_NUM_THREADS=1 python benchmarks/bench_widgets.py [--moves 30] [--only ShiftScale]

For each subclass of :class:`bnlab.widgets.Explorer` defined in
``bnlab.widgets``, constructed with no arguments, every slider (attributes
that are ``FloatSlider``, ``IntSlider``, ``FloatLogSlider`` or
``SelectionSlider``, plus any such slider found by walking ``.widget``'s
children) is moved ``--moves`` times. One move is timed from setting
``slider.value`` to the assignment returning, i.e. after the explorer's
observer ran ``update()`` (compute, draw, render the PNG). Two patterns per
slider (valid values only, on the slider's steps):

- ``steps``: 1 to 5 steps either side of the initial value, back and forth
  (what the arrow keys and a drag send: the everyday case);
- ``sweep``: jumps across the slider's whole range, up and down (the worst
  case: data leaving the axes, i.e. full redraws).

One untimed move warms each pattern up; the slider is put back to its initial
value afterwards.

The goal (see the brief for explorers): median <= 50 ms and worst <= 100 ms per
slider move. Rows over the goal are flagged. Also listed: sliders whose initial
value is off their step grid (the browser snaps it on display and the kernel's
state changes without the learner touching anything), and FloatLogSliders with
continuous_update=True (noted, not flagged: the browser sends their value back
on every display). The exit status is 1 if anything is flagged.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import ipywidgets as ipw
import numpy as np

import bnlab
from bnlab import widgets as bw

GOAL_MEDIAN_MS = 50.0
GOAL_WORST_MS = 100.0
#: "steps": 1-5 slider steps around the initial value (arrow keys, drags); "sweep": the whole range.
PATTERNS = ("steps", "sweep")
SLIDER_TYPES = (ipw.FloatSlider, ipw.IntSlider, ipw.FloatLogSlider, ipw.SelectionSlider)


def explorer_classes():
    """The explorers bnlab.widgets exports, in the order of the notebooks."""
    return [cls for cls in (getattr(bw, name) for name in bw.__all__)
            if inspect.isclass(cls) and issubclass(cls, bw.Explorer) and cls.__module__ != bw.base.__name__]


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from _walk(child)


def find_sliders(explorer):
    """``[(name, slider)]``: slider attributes first, then sliders only reachable from ``.widget``."""
    sliders, seen = [], set()
    for name, value in vars(explorer).items():
        if isinstance(value, SLIDER_TYPES) and id(value) not in seen:
            seen.add(id(value))
            sliders.append((name, value))
    for widget in _walk(getattr(explorer, "widget", None)):
        if isinstance(widget, SLIDER_TYPES) and id(widget) not in seen:
            seen.add(id(widget))
            sliders.append((f"<{widget.description or type(widget).__name__}>", widget))
    return sliders


def browser_value(slider):
    """The value the browser's slider snaps ``slider.value`` to (None: it needs no snapping).

    ipywidgets' front end puts a slider on its step grid as soon as it is
    displayed and sends the snapped value back to the kernel: an explorer
    whose initial value is off the grid changes state on display (e.g. a
    ``FloatLogSlider`` with step 0.01 turns 2.0 into 10**0.30 = 1.9953).
    """
    if isinstance(slider, ipw.SelectionSlider):
        return None
    step = slider.step or 1
    if isinstance(slider, ipw.FloatLogSlider):
        exponent = np.log(slider.value) / np.log(slider.base)
        snapped = float(slider.base ** (slider.min + round((exponent - slider.min) / step) * step))
    else:
        snapped = slider.min + round((slider.value - slider.min) / step) * step
    if abs(snapped - slider.value) <= 1e-9 * max(1.0, abs(slider.value)):
        return None
    return snapped


class Positions:
    """A slider's valid values as integer positions 0 .. n-1 (its steps), and back."""

    def __init__(self, slider):
        self.slider = slider
        if isinstance(slider, ipw.SelectionSlider):
            self.n = len(slider.options)
            self.initial = slider.index
        else:
            step = slider.step or 1
            self.n = round((slider.max - slider.min) / step) + 1
            here = (
                np.log(slider.value) / np.log(slider.base)
                if isinstance(slider, ipw.FloatLogSlider)
                else slider.value
            )
            self.initial = int(np.clip(round((here - slider.min) / step), 0, self.n - 1))
        if self.n < 2:
            raise ValueError("a slider with fewer than two values cannot be moved")

    def get(self):
        s = self.slider
        return s.index if isinstance(s, ipw.SelectionSlider) else s.value

    def set(self, pos):
        """Move the slider to position ``pos`` (returns after the observers ran)."""
        s = self.slider
        if isinstance(s, ipw.SelectionSlider):
            s.index = int(pos)
        elif isinstance(s, ipw.FloatLogSlider):
            s.value = float(s.base ** (s.min + pos * s.step))
        elif isinstance(s, ipw.IntSlider):
            s.value = int(s.min + pos * (s.step or 1))
        else:
            s.value = float(s.min + pos * s.step)

    def restore(self, value):
        if isinstance(self.slider, ipw.SelectionSlider):
            self.slider.index = value
        else:
            self.slider.value = value


def plan(positions, pattern, moves):
    """``moves + 1`` positions (the first one is an untimed warm-up), each differing from the last.

    ``"steps"``: 1 to 5 steps either side of the initial position (what the
    arrow keys and a drag send); ``"sweep"``: across the whole range, up and
    down (jumps that change axis limits: a full redraw).
    """
    n = positions.n
    if pattern == "steps":
        reach = min(5, (n - 1) // 2)
        base = int(np.clip(positions.initial, reach, n - 1 - reach))
        if reach == 0:
            cycle = [0, 1]
        else:
            up = (
                list(range(1, reach + 1))
                + list(range(reach - 1, -reach - 1, -1))
                + list(range(-reach + 1, 1))
            )
            cycle = [base + k for k in up]
    else:
        half = max(2, (moves + 2) // 2)
        up = sorted({round(x) for x in np.linspace(0, n - 1, min(n, half))})
        cycle = up + up[-2:0:-1]
    out, previous = [], positions.initial
    while len(out) < moves + 1:
        for pos in cycle:
            if pos != previous and len(out) < moves + 1:
                out.append(pos)
                previous = pos
    return out


def time_slider(explorer, slider, moves, pattern):
    """Milliseconds per move (``moves`` of them), moves that showed an error, moves that did not render."""
    positions = Positions(slider)
    initial = positions.get()
    times, errors, no_render = [], 0, 0
    try:
        for i, pos in enumerate(plan(positions, pattern, moves)):
            renders = explorer.renders
            start = time.perf_counter()
            positions.set(pos)
            elapsed = (time.perf_counter() - start) * 1000.0
            if explorer.error is not None:
                errors += 1
            elif explorer.renders == renders:
                no_render += 1
            if i > 0:  # the first move is the warm-up
                times.append(elapsed)
    finally:
        positions.restore(initial)
    return times, errors, no_render


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=30, help="timed moves per slider (default 30)")
    parser.add_argument("--only", default="", help="only explorers whose class name contains this")
    args = parser.parse_args(argv)

    print(
        f"bnlab {bnlab.__version__}, Python {platform.python_version()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {os.cpu_count()} CPUs, "
        f"{args.moves} moves per slider"
    )
    print(f"goal: median <= {GOAL_MEDIAN_MS:g} ms, worst <= {GOAL_WORST_MS:g} ms per move\n")
    header = (
        f"{'explorer':24s} {'slider':20s} {'moves':6s} {'median ms':>9s} {'worst ms':>9s}  flag"
    )
    print(header)
    print("-" * len(header))
    over, off_grid, resent = [], [], []
    for cls in explorer_classes():
        if args.only and args.only not in cls.__name__:
            continue
        start = time.perf_counter()
        try:
            explorer = cls()
        except Exception as exc:  # noqa: BLE001 - report and carry on
            print(f"{cls.__name__:24s} CONSTRUCTION FAILED: {type(exc).__name__}: {exc}")
            over.append(cls.__name__)
            continue
        build_ms = (time.perf_counter() - start) * 1000.0
        sliders = find_sliders(explorer)
        if not sliders:
            print(f"{cls.__name__:24s} (no slider found)")
            continue
        for name, slider in sliders:
            if isinstance(slider, ipw.FloatLogSlider) and slider.continuous_update:
                resent.append(f"{cls.__name__}.{name}")
            snapped = browser_value(slider)
            if snapped is not None:
                off_grid.append(
                    f"{cls.__name__}.{name}: value {slider.value!r} is off its step grid "
                    f"(step {slider.step}); the browser snaps it to {snapped:.6g} and the "
                    "kernel follows"
                )
            for pattern in PATTERNS:
                try:
                    times, errors, no_render = time_slider(explorer, slider, args.moves, pattern)
                except Exception as exc:  # noqa: BLE001
                    print(
                        f"{cls.__name__:24s} {name:20s} {pattern:6s} FAILED: {type(exc).__name__}: {exc}"
                    )
                    over.append(f"{cls.__name__}.{name} ({pattern})")
                    continue
                median, worst = statistics.median(times), max(times)
                flags = []
                if median > GOAL_MEDIAN_MS or worst > GOAL_WORST_MS:
                    flags.append("OVER GOAL")
                    over.append(f"{cls.__name__}.{name} ({pattern})")
                if errors:
                    flags.append(f"{errors} moves showed an error")
                if no_render > args.moves:  # every move, warm-up included
                    flags.append(
                        "no move re-rendered (the slider only records a setting, "
                        "e.g. for a Run button)"
                    )
                elif no_render:
                    flags.append(f"{no_render} moves did not re-render")
                print(
                    f"{cls.__name__:24s} {name:20s} {pattern:6s} {median:9.1f} {worst:9.1f}  "
                    f"{', '.join(flags) or 'ok'}"
                )
        print(f"{cls.__name__:24s} {'(construction)':20s} {'':6s} {build_ms:9.1f}")
    print()
    if off_grid:
        print("initial values the browser will change on display:")
        for line in off_grid:
            print("  " + line)
    if resent:
        print(
            "FloatLogSliders with continuous_update=True (the browser sends 10**position back "
            "each time one is displayed, with float noise; during Run All this undoes a later "
            "cell's `slider.value = ...`; continuous_update=False avoids it, the arrow keys "
            "still work): " + ", ".join(resent)
        )
    if over:
        print("over the goal: " + ", ".join(over))
    else:
        print("every slider meets the goal")
    return 1 if over or off_grid else 0


if __name__ == "__main__":
    sys.exit(main())
