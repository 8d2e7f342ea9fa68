"""Size and time of a fresh learner install, with and without Voila (run by hand; needs PyPI).

    python benchmarks/bench_install.py [--json benchmarks/results/install.json] [--only base]
    python benchmarks/bench_install.py --update-doc     # the doc's install table, from the committed JSON

For each variant, a new virtual environment is made in a temporary folder
outside the repository and ``pip install --no-cache-dir -r <requirements>``
runs in it, from PyPI, with no wheel cache and none of this machine's pip
configuration (``PIP_CONFIG_FILE=/dev/null``: no local wheel folder, no extra
index, no constraints), i.e. what a learner's first ``pip install -r
requirements.txt`` costs. Variants:

- ``base``: ``requirements.txt`` without any ``voila`` line;
- ``voila``: the same plus ``voila`` (the line from ``requirements.txt`` if it
  has one, else plain ``voila``).

Reported per variant: wall time of the ``pip install`` (network included, so it
depends on the connection and on the machine's load), the CPU seconds pip and
its children used (unpacking, byte-compiling: much less sensitive to the
load than wall time), the venv's size on disk
(``du -sk``, as ``du -sh`` counts), the number of installed distributions and
the largest entries of ``site-packages``. ``-e .`` is installed from this
repository (editable, so bnlab itself adds almost nothing). The temporary
folder is removed afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from docblocks import replace_blocks

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
RESULTS = ROOT / "benchmarks" / "results" / "install.json"
DOC = ROOT / "docs" / "teaching_at_scale.md"
VARIANTS = ("base", "voila")
_VOILA = re.compile(r"^\s*voila\b", re.IGNORECASE)


def requirement_lines(requirements=REQUIREMENTS):
    """``(base, voila_line)``: the requirement lines without voila, and voila's own line."""
    base, voila = [], "voila"
    for raw in Path(requirements).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if _VOILA.match(line):
            voila = line
            continue
        if line in ("-e .", "-e ./", "."):
            line = f"-e {ROOT}"
        base.append(line)
    return base, voila


def variant_lines(variant, requirements=REQUIREMENTS):
    base, voila = requirement_lines(requirements)
    return base + [voila] if variant == "voila" else base


def clean_pip_env():
    """The environment with none of this machine's pip configuration (a learner's defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    for name in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def _children_cpu():
    """User + system CPU seconds of the finished child processes (pip and what it ran)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def du_kib(path):
    """Disk usage of ``path`` in KiB, as ``du -sk`` counts it."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def largest_entries(site_packages, top=10):
    """``[(name, MiB)]``: the biggest folders/files of site-packages, biggest first."""
    sizes = []
    for entry in Path(site_packages).iterdir():
        if entry.name.endswith((".dist-info", ".pth")) or entry.name == "__pycache__":
            continue
        sizes.append((entry.name, du_kib(entry) / 1024))
    return sorted(sizes, key=lambda item: -item[1])[:top]


def measure(variant, python=sys.executable, requirements=REQUIREMENTS, keep=False, log=print):
    """Make a venv, install ``variant`` into it from PyPI with no cache; figures as a dict."""
    work = Path(tempfile.mkdtemp(prefix=f"bnlab-install-{variant}-"))
    try:
        venv = work / "venv"
        env = clean_pip_env()
        subprocess.run([python, "-m", "venv", str(venv)], check=True, env=env)
        vpy = venv / "bin" / "python"
        pip_version = subprocess.run([vpy, "-m", "pip", "--version"], capture_output=True, text=True,
                                     env=env, check=True).stdout.split()[1]
        req = work / "requirements.txt"
        req.write_text("\n".join(variant_lines(variant, requirements)) + "\n")
        log(f"[{variant}] pip {pip_version}: installing {req.read_text().split()!r} ...")
        start, cpu_start = time.perf_counter(), _children_cpu()
        proc = subprocess.run([vpy, "-m", "pip", "install", "--no-cache-dir", "-r", str(req)],
                              cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu_start
        if proc.returncode:
            raise RuntimeError(f"pip install failed ({variant}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        dists = json.loads(subprocess.run([vpy, "-m", "pip", "list", "--format=json"], capture_output=True,
                                          text=True, env=env, check=True).stdout)
        site = next(venv.glob("lib/python*/site-packages"))
        result = {
            "variant": variant,
            "requirements": variant_lines(variant, requirements),
            "pip": pip_version,
            "install_seconds": round(seconds, 1),
            "install_cpu_seconds": round(cpu, 1),
            "venv_mib": round(du_kib(venv) / 1024, 1),
            "distributions": len(dists),
            "versions": {d["name"].lower(): d["version"] for d in dists},
            "largest": [[name, round(mib, 1)] for name, mib in largest_entries(site)],
        }
        if keep:
            result["path"] = str(venv)
        return result
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def markdown(results):
    """The results as a Markdown table (and the difference when both variants are there)."""
    lines = ["| install | pip install (wall), median of runs | pip's CPU (user + sys) | venv size (du) | distributions |",
             "|---|---:|---:|---:|---:|"]
    for r in results:
        name = "requirements.txt" if r["variant"] == "base" else "requirements.txt + voila"
        runs = r.get("install_seconds_runs", [r["install_seconds"]])
        spread = f" ({', '.join(f'{t:.0f}' for t in runs)})" if len(runs) > 1 else ""
        cpus = r.get("install_cpu_seconds_runs", [r.get("install_cpu_seconds", float("nan"))])
        cpu_spread = f" ({', '.join(f'{t:.0f}' for t in cpus)})" if len(cpus) > 1 else ""
        lines.append(f"| {name} | {r['install_seconds']:.0f} s{spread} | {r['install_cpu_seconds']:.0f} s{cpu_spread} "
                     f"| {r['venv_mib']:.0f} MiB | {r['distributions']} |")
    by = {r["variant"]: r for r in results}
    if set(by) == set(VARIANTS):
        extra = sorted(set(by["voila"]["versions"]) - set(by["base"]["versions"]))
        lines.append(f"| difference | {by['voila']['install_seconds'] - by['base']['install_seconds']:+.0f} s "
                     f"| {by['voila']['install_cpu_seconds'] - by['base']['install_cpu_seconds']:+.0f} s "
                     f"| {by['voila']['venv_mib'] - by['base']['venv_mib']:+.0f} MiB "
                     f"| {by['voila']['distributions'] - by['base']['distributions']:+d} |")
        lines.append("")
        lines.append("Distributions voila adds: " + (", ".join(f"{n} {by['voila']['versions'][n]}" for n in extra)
                                                     or "none") + ".")
    first = results[0]
    lines.append("")
    lines.append("Largest entries of site-packages: "
                 + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in first["largest"][:8]) + ".")
    return "\n".join(lines)


def doc_blocks(info):
    """``{name: markdown}`` for ``docs/teaching_at_scale.md``, from the JSON this script writes."""
    return {"install": markdown(info["results"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=VARIANTS, help="one variant only")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--python", default=sys.executable, help="the interpreter the venv is made from")
    parser.add_argument("--keep", action="store_true", help="keep the temporary venvs (their paths are printed)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="installs per variant, alternating the variants (the median time is reported)")
    parser.add_argument("--update-doc", action="store_true",
                        help=f"rewrite the install table of {DOC.relative_to(ROOT)} from --json (default "
                             f"{RESULTS.relative_to(ROOT)}) without measuring")
    args = parser.parse_args(argv)
    if args.update_doc:
        missing = replace_blocks(DOC, doc_blocks(json.loads((args.json or RESULTS).read_text())))
        print(f"updated {DOC}" + (f"; no place for: {missing}" if missing else ""))
        return 0
    variants = [args.only] if args.only else list(VARIANTS)
    runs = {v: [] for v in variants}
    for repeat in range(args.repeat):
        for variant in variants if repeat % 2 == 0 else variants[::-1]:
            r = measure(variant, python=args.python, keep=args.keep)
            print(f"[{variant}] {r['install_seconds']:.0f} s, {r['venv_mib']:.0f} MiB, {r['distributions']} "
                  f"distributions; largest: {', '.join(f'{n} {m:.0f}' for n, m in r['largest'][:6])}", flush=True)
            runs[variant].append(r)
    results = []
    for variant in variants:
        r = dict(runs[variant][-1])
        times = [run["install_seconds"] for run in runs[variant]]
        r["install_seconds"] = round(statistics.median(times), 1)
        r["install_seconds_runs"] = times
        cpus = [run["install_cpu_seconds"] for run in runs[variant]]
        r["install_cpu_seconds"] = round(statistics.median(cpus), 1)
        r["install_cpu_seconds_runs"] = cpus
        results.append(r)
    print()
    print(markdown(results))
    if args.json:
        info = {
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "note": "pip install --no-cache-dir from PyPI, none of the machine's pip configuration; wall time includes "
                    "downloads and depends on the connection and the machine's load",
            "results": results,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(info, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
