"""Desk benchmark: book update -> frame latency, frames/s and CPU under a fast simulated market.

    .venv/bin/python benchmarks/bench_desk.py [--seconds 10] [--rate 1200] [--size 120x40]

The simulated exchange runs in a child process (so its CPU is not counted) pushing `--rate`
flow events/s over loopback websockets; this process runs the real engine (ccxt.pro feed, paper
trading) and the real DeskApp headless (Textual still lays out, renders and composites every
frame; only the terminal write is discarded).

Measured:
- book updates/s arriving in the engine (BookEvents published on the bus, all symbols);
- latency from `BookEvent.received` (perf_counter when the engine got the update) to the moment
  the book ladder renders the frame that shows it (median, p99, max); coalesced updates that were
  superseded before a frame are never drawn and so are not in the sample;
- frames/s: ladder frames that showed a new book, and pump ticks (timer at settings.ui.refresh_hz);
- CPU: time.process_time() delta / wall for this process (engine + desk), and the same for the
  engine alone without the desk, measured first; the difference is the desk's share.
Goals: p99 <= 50 ms, desk CPU <= 30 % of one core. No assertions: it prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIM_CHILD = r"""
import asyncio, sys, time
from tps19.simex import SimExchange
async def main(rate):
    sim = SimExchange(seed=19, updates_per_second=rate)
    await sim.start()
    print(sim.port, flush=True)
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "mark":
        print(sim.stats.get("book_messages", 0), time.perf_counter(), flush=True)
    await sim.stop()
asyncio.run(main(float(sys.argv[1])))
"""


class SimMeter:
    """Book messages/s the simulated exchange pushed between two marks."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    async def mark(self) -> tuple[int, float]:
        def ask() -> tuple[int, float]:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write("mark\n")
            self.proc.stdin.flush()
            n, t = self.proc.stdout.readline().split()
            return int(n), float(t)

        return await asyncio.to_thread(ask)


def start_sim(rate: float) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", SIM_CHILD, str(rate)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            cwd=str(ROOT), text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().strip())
    return proc, port


def make_settings(port: int, db: Path, refresh_hz: float):
    from tps19.config import Settings

    return Settings(exchange={"id": "sim", "rest_url": f"http://127.0.0.1:{port}"}, database={"path": db},
                    ui={"refresh_hz": refresh_hz})


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(q * (len(values) - 1)))))
    return values[k]


async def engine_only(settings, seconds: float, meter: SimMeter) -> tuple[float, float, float]:
    """CPU share and book updates/s of the engine without any UI."""
    from tps19.engine.engine import Engine
    from tps19.engine.events import BookEvent

    engine = Engine(settings, "paper")
    n = [0]
    engine.bus.on(BookEvent, lambda e: n.__setitem__(0, n[0] + 1))
    await engine.start()
    await asyncio.sleep(2.0)  # warm up
    n[0] = 0
    m0 = await meter.mark()
    c0, w0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = (time.process_time() - c0) / (time.perf_counter() - w0)
    rate = n[0] / (time.perf_counter() - w0)
    m1 = await meter.mark()
    await engine.stop()
    return cpu, rate, (m1[0] - m0[0]) / (m1[1] - m0[1])


async def with_desk(settings, seconds: float, size: tuple[int, int], meter: SimMeter) -> dict:
    from tps19.app import DeskApp
    from tps19.engine.events import BookEvent
    from tps19.widgets.book import BookLadder

    app = DeskApp(settings=settings, mode="paper")
    out: dict = {}
    async with app.run_test(size=size) as pilot:
        end = time.monotonic() + 20
        while not (app.ready and app.symbol in app.state.books) and time.monotonic() < end:
            await pilot.pause(0.05)
        if not app.ready:
            raise SystemExit(f"engine did not start: {app.engine_error}")
        n = [0]
        app.engine.bus.on(BookEvent, lambda e: n.__setitem__(0, n[0] + 1))
        ladder = app.screen.query_one("#book", BookLadder)
        await asyncio.sleep(2.0)  # warm up
        ladder.rendered.clear()
        ladder.probe = True
        n[0] = 0
        frames0 = app.frames
        m0 = await meter.mark()
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        wall = time.perf_counter() - w0
        m1 = await meter.mark()
        out["sim_rate"] = (m1[0] - m0[0]) / (m1[1] - m0[1])
        out["cpu"] = (time.process_time() - c0) / wall
        out["book_rate"] = n[0] / wall
        out["pumps"] = (app.frames - frames0) / wall
        lat = [(r - e) * 1000 for e, r in ladder.rendered]
        out["frames"] = len(lat) / wall
        out["lat"] = lat
        out["dropped"] = app.sub.dropped
        ladder.probe = False
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1200.0, help="simulated flow events per second")
    ap.add_argument("--size", default="120x40")
    ap.add_argument("--refresh-hz", type=float, default=15.0)
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    os.environ.pop("NO_COLOR", None)
    proc, port = start_sim(args.rate)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            meter = SimMeter(proc)
            base_cpu = base_rate = base_sim = None
            if not args.skip_baseline:
                base_cpu, base_rate, base_sim = await engine_only(
                    make_settings(port, Path(tmp) / "a.db", args.refresh_hz), args.seconds, meter)
            r = await with_desk(make_settings(port, Path(tmp) / "b.db", args.refresh_hz), args.seconds, (w, h), meter)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
    lat = r["lat"]
    print(f"desk benchmark: {args.seconds:g} s, sim {args.rate:g} events/s (child process), terminal {w}x{h}, "
          f"refresh_hz {args.refresh_hz:g}")
    print(f"  book updates pushed by sim   : {r['sim_rate']:8.0f} /s (websocket book messages, 3 symbols)")
    print(f"  book updates into the engine : {r['book_rate']:8.0f} /s (BookEvents; ccxt hands the feed the latest book"
          f" per await, so a busy loop merges messages)")
    print(f"  update -> frame latency      : median {statistics.median(lat) if lat else float('nan'):6.1f} ms   "
          f"p99 {pct(lat, 0.99):6.1f} ms   max {max(lat) if lat else float('nan'):6.1f} ms   (n={len(lat)})   goal p99 <= 50 ms")
    print(f"  frames showing a new book    : {r['frames']:8.1f} /s    pump ticks {r['pumps']:.1f} /s")
    print(f"  CPU engine + desk            : {r['cpu'] * 100:8.1f} % of one core")
    if base_cpu is not None:
        print(f"  CPU engine alone             : {base_cpu * 100:8.1f} % of one core ({base_rate:.0f} BookEvents/s from"
              f" {base_sim:.0f} pushed/s)")
        print(f"  CPU desk share (difference)  : {(r['cpu'] - base_cpu) * 100:8.1f} % of one core   goal <= 30 %")
    print(f"  bus events dropped by the desk subscription: {r['dropped']}")


if __name__ == "__main__":
    asyncio.run(main())
