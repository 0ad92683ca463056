"""Soak: headless paper trading on a fast simulated market with a fault every 30 s.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--rate 1000] [--every 30]

Two real processes: `tps19 exchange --rate R --control-port C` (the venue, with its fault
switchboard) and `tps19 paper --no-ui` pointed at it (the desk's engine, JSON lines on stdout,
a `market` summary per symbol every 0.25 s with each stream's state and message count).
Every `--every` seconds one fault is injected, in turn: websocket drop, book sequence gap,
5 s of market silence, garbage frames, 20 REST 503s, and an exchange restart (SIGTERM, a new
process on the same port).

For each fault it prints the time from the end of the fault (the drop sent, silence over, the
new exchange listening) until every stream of every symbol is fresh again: state `connected`
and its message count moved since the fault ended. Recovery is timed only once the desk has seen
the fault (a stream left `connected`, up to 3 s), or the fault is marked as not visible. Goal: under 5 s each, every time. At the end:
whether messages and trades still count for every symbol, and the engine's RSS at start and end.
No assertions: it prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TPS19 = [sys.executable, "-c", "from tps19.cli import main; main()"]
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
STREAMS = ("book", "trades", "ticker", "bars")
FAULTS = ("drop", "gap", "silence", "garbage", "http", "restart")
SILENCE_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Exchange:
    def __init__(self, port: int, control: int, rate: float) -> None:
        self.port, self.control, self.rate = port, control, rate
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        self.proc = subprocess.Popen(TPS19 + ["exchange", "--port", str(self.port), "--control-port", str(self.control),
                                              "--rate", str(self.rate)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.get("/faults")
                return time.monotonic()
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the exchange did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control}{path}", timeout=5) as r:
            return json.loads(r.read())

    def post(self, path: str) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{self.control}{path}", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"{}")


class Desk:
    """The headless engine; a thread reads its JSON lines and keeps the latest view of every stream."""

    def __init__(self, rest_port: int, db: Path) -> None:
        env = dict(os.environ, TPS19_EXCHANGE__REST_URL=f"http://127.0.0.1:{rest_port}",
                   TPS19_SYMBOLS__WATCH=",".join(SYMBOLS), TPS19_LOG__SUMMARY_INTERVAL_S="0.25",
                   TPS19_FEED__STALE_AFTER_S="3", TPS19_FEED__WATCH_TIMEOUT_S="4")
        self.proc = subprocess.Popen(TPS19 + ["paper", "--no-ui", "--db", str(db)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.lock = threading.Lock()
        self.view: dict[tuple[str, str], tuple[str, int]] = {}  # (stream, symbol) -> (state, messages)
        self.updated = threading.Event()
        self.started = threading.Event()
        self.events: dict[str, int] = {}
        self.non_json = 0
        self.behind: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._stderr, daemon=True).start()
        self.stderr_lines: list[str] = []

    def _stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip())

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                rec = json.loads(line)
            except ValueError:
                self.non_json += 1
                continue
            ev = rec.get("event", "?")
            if os.environ.get("SOAK_TRACE") and ev not in ("market",):
                print("   desk:", line.strip()[:300], flush=True)
            self.events[ev] = self.events.get(ev, 0) + 1
            if ev == "started":
                self.started.set()
            elif ev == "market" and isinstance(rec.get("streams"), dict):
                with self.lock:
                    for stream, (state, msgs) in rec["streams"].items():
                        self.view[(stream, rec["symbol"])] = (state, int(msgs))
                self.updated.set()

    def snapshot(self) -> dict[tuple[str, str], tuple[str, int]]:
        with self.lock:
            return dict(self.view)

    def wait_disrupted(self, limit: float = 3.0) -> bool:
        """Whether some stream leaves `connected` within `limit` s: a gap is only noticed at the next
        delta, so timing recovery before the desk has seen the fault would time nothing."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            self.updated.clear()
            self.updated.wait(0.5)
            if any(state != "connected" for state, _ in self.snapshot().values()):
                return True
        return False

    def time_to_fresh(self, since: float, limit: float = 60.0) -> float | None:
        """Seconds from `since` until every stream is connected and has counted a message after it."""
        base = self.snapshot()
        keys = [(st, sym) for sym in SYMBOLS for st in STREAMS]
        while time.monotonic() - since < limit:
            self.updated.clear()
            self.updated.wait(0.5)
            now = self.snapshot()
            self.behind = [f"{st}:{sym}={now.get((st, sym), ('absent', 0))[0]}" for st, sym in keys
                           if not ((st, sym) in now and now[(st, sym)][0] == "connected"
                                   and now[(st, sym)][1] > base.get((st, sym), ("", -1))[1])]
            if not self.behind:
                return time.monotonic() - since
        return None


def inject(fault: str, ex: Exchange) -> float:
    """Inject one fault; returns the monotonic time at which the fault is over."""
    if fault == "drop":
        ex.post("/faults/drop")
    elif fault == "gap":
        ex.post("/faults/gap?symbol=BTC/USDT")
    elif fault == "silence":
        ex.post(f"/faults/silence?seconds={SILENCE_S:g}")
        time.sleep(SILENCE_S)
    elif fault == "garbage":
        ex.post("/faults/garbage?count=5")
    elif fault == "http":
        ex.post("/faults/http?status=503&count=20")
    elif fault == "restart":
        ex.stop()
        return ex.start()
    return time.monotonic()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="simulated book events per second")
    ap.add_argument("--every", type=float, default=30.0, help="seconds between faults")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tps19-soak-"))
    ex = Exchange(free_port(), free_port(), args.rate)
    ex.start()
    desk = Desk(ex.port, tmp / "soak.db")
    if not desk.started.wait(60):
        ex.stop()
        raise SystemExit("the desk did not start: " + " | ".join(desk.stderr_lines[-5:]))
    settle = desk.time_to_fresh(time.monotonic())
    rss_start = rss_kb(desk.proc.pid)
    print(f"soak: {args.minutes:g} min, {args.rate:g} events/s, a fault every {args.every:g} s; "
          f"desk fresh {settle:.2f} s after start, RSS {rss_start / 1024:.0f} MB", flush=True)
    t_end = time.monotonic() + args.minutes * 60
    results: dict[str, list[float | None]] = {f: [] for f in FAULTS}
    invisible: dict[str, int] = {}
    i = 0
    next_fault = time.monotonic() + args.every
    while next_fault < t_end:
        time.sleep(max(0.0, next_fault - time.monotonic()))
        fault = FAULTS[i % len(FAULTS)]
        over = inject(fault, ex)
        seen = desk.wait_disrupted()
        took = desk.time_to_fresh(over)
        if not seen:  # nothing to recover from: the figure would only be the 3 s spent looking
            invisible[fault] = invisible.get(fault, 0) + 1
            print(f"  {time.strftime('%H:%M:%S')} {fault:8s} not visible to the desk: every stream stayed "
                  f"connected{'' if took is not None else f', yet not fresh after 60 s: {desk.behind}'}", flush=True)
            if took is None:
                results[fault].append(None)
            i += 1
            next_fault += args.every
            continue
        results[fault].append(took)
        print(f"  {time.strftime('%H:%M:%S')} {fault:8s} fresh again after "
              f"{f'NEVER (60 s): {desk.behind}' if took is None else f'{took:.2f} s'}", flush=True)
        i += 1
        next_fault += args.every
    time.sleep(max(0.0, t_end - time.monotonic()))

    # Still counting? Compare two views 5 s apart.
    before = desk.snapshot()
    time.sleep(5)
    after = desk.snapshot()
    rss_end = rss_kb(desk.proc.pid)
    desk.proc.send_signal(signal.SIGTERM)
    try:
        code = desk.proc.wait(15)
    except subprocess.TimeoutExpired:
        desk.proc.kill()
        code = "killed after 15 s"
    ex.stop()

    print()
    print(f"{'fault':9s} {'n':>3s} {'max s':>7s} {'median s':>9s} {'all < 5 s':>10s}")
    for fault, xs in results.items():
        if not xs:
            if invisible.get(fault):
                print(f"{fault:9s} {invisible[fault]:3d} {'-':>7s} {'-':>9s}   (not visible: every stream stayed connected)")
            continue
        ok = [x for x in xs if x is not None]
        mx = "never" if len(ok) < len(xs) else f"{max(ok):.2f}"
        med = f"{statistics.median(ok):.2f}" if ok else "-"
        print(f"{fault:9s} {len(xs):3d} {mx:>7s} {med:>9s} {'yes' if len(ok) == len(xs) and max(ok) < 5 else 'NO':>10s}")
    print()
    for sym in SYMBOLS:
        moved = {st: after.get((st, sym), ("", 0))[1] - before.get((st, sym), ("", 0))[1] for st in STREAMS}
        print(f"{sym}: messages in the last 5 s " + ", ".join(f"{k} +{v}" for k, v in moved.items())
              + ("" if all(v > 0 for v in moved.values()) else "   <- NOT COUNTING"))
    print(f"RSS start {rss_start / 1024:.0f} MB, end {rss_end / 1024:.0f} MB; desk exit code {code}; "
          f"non-JSON stdout lines {desk.non_json}; stderr lines {len(desk.stderr_lines)}")
    print(f"log events: {json.dumps(desk.events, sort_keys=True)}")


if __name__ == "__main__":
    main()
