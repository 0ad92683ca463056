"""Start-up cost of the command line, whole processes, beside `python -c pass` in the same run.

    .venv/bin/python benchmarks/bench_startup.py [--runs 7] [--backtest-only]

CPU (user + system, the kernel's accounting of the finished child) and wall time, medians of
--runs alternating runs: `tps19 --help`, `tps19 COMMAND --help` for every command and
sub-command, and `tps19 backtest --data freqtrade_UNITTEST_BTC_1m.csv --json --no-save`
(13,681 real bars), that one also beside `python -c 'import numpy'`. Goals (issue 24): any
--help under 0.15 s of CPU, that backtest under 0.3 s.

Load matters beyond the wall times: numpy's OpenBLAS worker threads spin for ~0.1 s after
numpy loads and burn CPU only on a core nobody else wants, so `import numpy` costs more CPU on
an idle machine than on a busy one (0.20 vs 0.10 s measured). `tps19 backtest` shortens that
spin (OPENBLAS_THREAD_TIMEOUT); the numpy peer does not.

Bytecode: an installed TPS19 (pip install, or an editable install run once) starts from its cached
.pyc files. With PYTHONDONTWRITEBYTECODE set (this machine's shells set it) an editable install
compiles every module it imports from source at every start (~0.07 s of a backtest, ~0.2 s of a
`tps19 paper` process). So every command is timed as installed (bytecode cached in a private
directory, PYTHONPYCACHEPREFIX), and the backtest once more compiling TPS19 from source: a copy
of the package without __pycache__ is imported first (before 24-startup-3 this row read the
.pyc files test children leave beside the sources, so it timed bytecode too).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL = Path(os.environ.get("TPS19_DATA", "/work/shared/data")) / "freqtrade_UNITTEST_BTC_1m.csv"
TPS19 = str(Path(sys.executable).parent / "tps19")
NUMPY_LABEL = "    peer: python -c 'import numpy'"


def _env(cached: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    if cached:
        env["PYTHONPYCACHEPREFIX"] = PYCACHE
    else:
        # site-packages keep their installed .pyc; TPS19 compiles: it is imported from a copy of the
        # package without __pycache__ (the tree's own, written by test children, would be read)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(SOURCE_COPY), env.get("PYTHONPATH"))))
    return env


PYCACHE = tempfile.mkdtemp(prefix="tps19-bench-pyc-")
SOURCE_COPY = Path(tempfile.mkdtemp(prefix="tps19-bench-src-"))
shutil.copytree(ROOT / "tps19", SOURCE_COPY / "tps19", ignore=shutil.ignore_patterns("__pycache__"))
CACHED, SOURCE = _env(True), _env(False)


def once(cmd: list[str], env: dict[str, str] = CACHED) -> tuple[float, float]:
    """(cpu s, wall s) of one run of cmd, from the kernel's accounting of the child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def commands() -> list[list[str]]:
    """Every command and sub-command, read from the help pages themselves."""
    def listed(prefix: list[str]) -> list[str]:
        out = subprocess.run([TPS19, *prefix, "--help"], capture_output=True, text=True, check=True).stdout
        names, on = [], False
        for line in out.splitlines():
            if line.strip().lower().startswith("commands"):
                on = True
                continue
            if on and line.startswith("  ") and line.strip():
                names.append(line.split()[0])
        return names

    cmds: list[list[str]] = [[]]
    for name in listed([]):
        cmds.append([name])
        cmds.extend([name, sub] for sub in listed([name]))
    return cmds


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--backtest-only", action="store_true", help="skip the --help runs")
    args = ap.parse_args()
    peer = [sys.executable, "-c", "pass"]
    numpy_peer = [sys.executable, "-c", "import numpy"]
    runs: list[tuple[str, list[str], dict[str, str]]] = [
        (" ".join(["tps19", *c, "--help"]), [TPS19, *c, "--help"], CACHED)
        for c in ([] if args.backtest_only else commands())]
    if REAL.exists():
        bt = [TPS19, "backtest", "--strategy", "sma_cross", "--data", str(REAL), "--json", "--no-save"]
        runs.append((f"tps19 backtest {REAL.name} (13,681 bars)", bt, CACHED))
        runs.append(("  the same, TPS19 compiled from source", bt, SOURCE))
    print(f"median of {args.runs} runs, each beside `python -c pass`; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores; bytecode cached (as installed) unless said")
    print(f"{'command':48s} {'cpu s':>7s} {'wall s':>7s} {'pass cpu':>9s} {'pass wall':>9s}")
    worst_help = 0.0
    for label, cmd, env in runs:
        once(cmd, env)  # warm-up: .pyc files, page cache
        a, b, c = [], [], []
        for _ in range(args.runs):
            a.append(once(cmd, env))
            b.append(once(peer, env))
            if not label.endswith("--help"):  # a backtest imports numpy: its import is timed beside it
                c.append(once(numpy_peer, env))
        cpu, wall = (statistics.median(x) for x in zip(*a, strict=True))
        pcpu, pwall = (statistics.median(x) for x in zip(*b, strict=True))
        if label.endswith("--help"):
            worst_help = max(worst_help, cpu)
        print(f"{label:48s} {cpu:7.3f} {wall:7.3f} {pcpu:9.3f} {pwall:9.3f}")
        if c:
            ncpu, nwall = (statistics.median(x) for x in zip(*c, strict=True))
            print(f"{NUMPY_LABEL:48s} {ncpu:7.3f} {nwall:7.3f}")
    if worst_help:
        print(f"slowest --help: {worst_help:.3f} s of CPU (goal < 0.15)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(PYCACHE, ignore_errors=True)
        shutil.rmtree(SOURCE_COPY, ignore_errors=True)
