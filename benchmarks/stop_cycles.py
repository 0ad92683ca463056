"""Start/stop cycles of `tps19 paper --no-ui`: does SIGTERM always end the process, and how fast?

Each cycle starts the headless desk on the embedded simulated exchange (fresh database),
waits for its `started` line, waits a small random delay (so the signal lands at a
different point of the engine's work each time), sends SIGTERM and times signal -> exit.
A process still running 30 s after the signal is counted as hung and killed.

Prints: cycles, how many exited 0 (and every other exit code), hung ones, and p50/p99/max of
signal -> `stopped` line and signal -> process exit.

Run: .venv/bin/python benchmarks/stop_cycles.py [--cycles 200] [--max-delay 1.0] [--seed 1]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANG_AFTER_S = 30.0
START_DEADLINE_S = 120.0


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


class Child:
    """One `tps19 paper --no-ui` process; a thread timestamps its stdout lines as they arrive."""

    def __init__(self, db: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TPS19_")}
        env.update(TPS19_DATABASE__PATH=str(db), PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, "-m", "tps19.cli", "paper", "--no-ui"], cwd=db.parent,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[tuple[float, dict]] = []
        self.started = threading.Event()
        self.stderr = ""
        self._out = threading.Thread(target=self._read, daemon=True)
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._out.start()
        self._err.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            t = time.monotonic()
            try:
                rec = json.loads(line)
            except ValueError:
                rec = {"event": "not-json", "line": line}
            self.lines.append((t, rec))
            if rec.get("event") in ("started", "error", "stopped"):
                self.started.set()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def first(self, event: str) -> tuple[float, dict] | None:
        return next(((t, r) for t, r in self.lines if r.get("event") == event), None)

    def finish(self) -> None:
        self._out.join(5)
        self._err.join(5)


def cycle(tmp: Path, i: int, rng: random.Random, max_delay: float) -> dict:
    db = tmp / f"c{i}" / "desk.db"
    db.parent.mkdir()
    child = Child(db)
    result: dict = {"cycle": i}
    if not child.started.wait(START_DEADLINE_S) or child.first("started") is None:
        child.proc.kill()
        child.proc.wait()
        child.finish()
        result.update(outcome="no-start", stderr=child.stderr[-500:], lines=[r for _, r in child.lines][-3:])
        return result
    time.sleep(rng.uniform(0, max_delay))
    t0 = time.monotonic()
    child.proc.send_signal(signal.SIGTERM)
    try:
        child.proc.wait(HANG_AFTER_S)
    except subprocess.TimeoutExpired:
        child.proc.kill()
        child.proc.wait()
        child.finish()
        result.update(outcome="hung", lines=[r for _, r in child.lines][-3:])
        return result
    t_exit = time.monotonic()
    child.finish()
    stopped = child.first("stopped")
    result.update(outcome="exit", code=child.proc.returncode, exit_s=t_exit - t0,
                  stopped_s=None if stopped is None else stopped[0] - t0,
                  traceback="Traceback" in child.stderr)
    if child.proc.returncode != 0:
        result["tail"] = [r for _, r in child.lines][-3:]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--max-delay", type=float, default=1.0, help="random delay after `started`, 0..S seconds")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    results = []
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tps19-stop-") as d:
        for i in range(args.cycles):
            r = cycle(Path(d), i, rng, args.max_delay)
            results.append(r)
            if r["outcome"] != "exit" or r.get("code") != 0 or r.get("traceback"):
                print(f"cycle {i}: {json.dumps(r)}", flush=True)
            if (i + 1) % 25 == 0:
                print(f"... {i + 1}/{args.cycles} cycles, {time.monotonic() - t_start:.0f}s", flush=True)
    exits = [r for r in results if r["outcome"] == "exit"]
    codes = collections.Counter(r["code"] for r in exits)
    times = [r["exit_s"] for r in exits]
    stops = [r["stopped_s"] for r in exits if r["stopped_s"] is not None]
    print(f"cycles: {len(results)}  exited 0: {codes.get(0, 0)}  other exit codes: "
          f"{dict((k, v) for k, v in codes.items() if k != 0) or 'none'}  "
          f"hung (> {HANG_AFTER_S:g}s, killed): {sum(r['outcome'] == 'hung' for r in results)}  "
          f"did not start: {sum(r['outcome'] == 'no-start' for r in results)}  "
          f"tracebacks: {sum(bool(r.get('traceback')) for r in exits)}")
    if times:
        print(f"signal -> process exit:  p50 {pct(times, 0.5) * 1000:.0f} ms  p99 {pct(times, 0.99) * 1000:.0f} ms  "
              f"max {max(times) * 1000:.0f} ms")
    if stops:
        print(f"signal -> `stopped` line: p50 {pct(stops, 0.5) * 1000:.0f} ms  p99 {pct(stops, 0.99) * 1000:.0f} ms  "
              f"max {max(stops) * 1000:.0f} ms")
    print(f"total {time.monotonic() - t_start:.0f}s")


if __name__ == "__main__":
    main()
