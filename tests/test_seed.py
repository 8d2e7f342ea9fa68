"""``python -m bnlab`` reproduces the original seed walkthrough, and its numbers are right.

The fixture ``tests/fixtures/seed_output.txt`` is the original seed's stdout.
The comparison is exact: every label character for character, every number
exactly as a float. Only whitespace inside printed arrays may differ (the
seed prints ``-0.`` where bnlab prints ``0.``: the same number, but NumPy
then pads the whole array differently).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bnlab
from bnlab.walkthrough import walkthrough_steps, walkthrough_text

FIXTURE = Path(__file__).parent / "fixtures" / "seed_output.txt"

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse(text):
    """Split ``text`` into per-line (skeleton, numbers).

    The skeleton is the line with each number replaced by ``#`` and with the
    whitespace inside square brackets removed (bracket depth is tracked
    across lines, since a 2-D array spans several); outside brackets every
    character is kept.
    """
    depth = 0
    lines = []
    for line in text.split("\n"):
        numbers = [float(m) for m in NUMBER.findall(line)]
        skeleton = []
        for piece in re.split(f"({NUMBER.pattern})", line):
            if NUMBER.fullmatch(piece):
                skeleton.append("#")
                continue
            for ch in piece:
                if ch == "[":
                    depth += 1
                elif ch == "]":
                    depth -= 1
                elif ch.isspace() and depth > 0:
                    continue
                skeleton.append(ch)
        lines.append(("".join(skeleton), numbers))
    assert depth == 0, "unbalanced brackets"
    return lines


def assert_same_printout(actual, expected):
    got, want = parse(actual), parse(expected)
    assert len(got) == len(want), f"{len(got)} lines printed, the seed printed {len(want)}"
    for number, ((g_skel, g_nums), (w_skel, w_nums)) in enumerate(zip(got, want), start=1):
        assert g_skel == w_skel, (
            f"line {number}: text differs:\n  got  {g_skel!r}\n  want {w_skel!r}"
        )
        assert g_nums == w_nums, f"line {number}: numbers differ:\n  got  {g_nums}\n  want {w_nums}"


@pytest.fixture(scope="module")
def seed_text():
    return FIXTURE.read_text(encoding="utf-8")


def test_python_m_bnlab_reproduces_the_seed(seed_text):
    env = dict(os.environ, PYTHONIOENCODING="utf-8", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "bnlab"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert_same_printout(proc.stdout, seed_text)


def test_walkthrough_text_is_what_python_m_prints(seed_text):
    assert_same_printout(walkthrough_text(), seed_text)


def test_the_comparison_can_fail(seed_text):
    """The comparison catches a changed digit, a changed label and a missing line."""
    for broken in (
        seed_text.replace("0.999992", "0.999993", 1),
        seed_text.replace("Batch mean", "Batch  mean", 1),
        seed_text.replace("running_var :", "running_var:", 1),
        seed_text.replace("[0.1  0.05 0.35]", "[0.1  0.05 0.35 0.]", 1),
        "\n".join(seed_text.split("\n")[:-3]),
    ):
        assert broken != seed_text
        with pytest.raises(AssertionError):
            assert_same_printout(broken, seed_text)
    # but -0. and 0. are the same number, and array padding may follow the sign
    assert_same_printout(seed_text.replace("[ 0. -0.  0.]", "[0. 0. 0.]"), seed_text)


# --- the walkthrough's arrays against float64 values computed by hand -------------------------

Z = np.array([[1, 2, 3], [2, 0, 4], [0, -1, 2], [1, 1, 5]], dtype=np.float64)
GAMMA = np.array([1.0, 0.5, 2.0])
BETA = np.array([0.0, 1.0, -1.0])
EPS = 1e-5
# per feature, by hand: means (1+2+0+1)/4, (2+0-1+1)/4, (3+4+2+5)/4
MEAN = np.array([1.0, 0.5, 3.5])
# squared deviations: (0+1+1+0)/4, (2.25+0.25+2.25+0.25)/4, (0.25+0.25+2.25+2.25)/4
VAR = np.array([0.5, 1.25, 1.25])
Z_HAT = (Z - MEAN) / np.sqrt(VAR + EPS)


@pytest.fixture(scope="module")
def steps():
    return walkthrough_steps()


def close32(actual, expected):
    """float32 results against float64 hand values: a few float32 ulps."""
    actual = np.asarray(actual)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=4e-7, atol=1e-6)


def test_walkthrough_inputs_are_the_seed(steps):
    np.testing.assert_array_equal(steps["z"], Z)
    np.testing.assert_array_equal(steps["gamma"], GAMMA)
    np.testing.assert_array_equal(steps["beta"], BETA)
    assert steps["eps"] == EPS and steps["momentum"] == 0.9


def test_walkthrough_batch_statistics(steps):
    close32(steps["mean"], MEAN)
    close32(steps["var"], VAR)
    np.testing.assert_array_equal(steps["mean"], MEAN)  # exact in float32 too
    np.testing.assert_array_equal(steps["var"], VAR)


def test_walkthrough_normalized_and_output(steps):
    # 1 / sqrt(0.5 + 1e-5) and 1 / sqrt(1.25 + 1e-5), written out
    np.testing.assert_allclose(Z_HAT[1, 0], 1 / np.sqrt(0.50001), rtol=1e-15)
    np.testing.assert_allclose(Z_HAT[0, 1], 1.5 / np.sqrt(1.25001), rtol=1e-15)
    close32(steps["z_hat"], Z_HAT)
    close32(steps["y"], GAMMA * Z_HAT + BETA)
    close32(steps["z_hat_mean"], np.zeros(3))
    close32(steps["z_hat_var"], VAR / (VAR + EPS))  # a little under 1: eps


def test_walkthrough_shift_and_scale(steps):
    close32(steps["z_shifted"], 2 * Z + 10)
    np.testing.assert_array_equal(steps["mean_shifted"], [12.0, 11.0, 17.0])  # 2 * mean + 10
    np.testing.assert_array_equal(steps["var_shifted"], [2.0, 5.0, 5.0])  # 4 * var
    z_hat_shifted = (2 * Z + 10 - (2 * MEAN + 10)) / np.sqrt(4 * VAR + EPS)
    close32(steps["z_hat_shifted"], z_hat_shifted)
    close32(steps["y_shifted"], GAMMA * z_hat_shifted + BETA)
    close32(steps["z_hat_shifted_var"], 4 * VAR / (4 * VAR + EPS))
    # eps matters less for the larger variance: z_hat' is not exactly z_hat
    assert not np.array_equal(z_hat_shifted, Z_HAT)


def test_walkthrough_running_stats(steps):
    # keras-style, momentum 0.9, from mean 0 and variance 1
    close32(steps["running_mean"], 0.9 * 0 + 0.1 * MEAN)
    close32(steps["running_mean"], [0.1, 0.05, 0.35])
    close32(steps["running_var"], 0.9 * 1 + 0.1 * VAR)
    close32(steps["running_var"], [0.95, 1.025, 1.025])


def test_walkthrough_does_not_depend_on_the_seed_batch_being_mutated():
    seed = bnlab.seed_batch()
    seed.z[:] = 0  # seed_batch returns fresh arrays
    np.testing.assert_array_equal(walkthrough_steps()["z"], Z)
