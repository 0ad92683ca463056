"""Several venues: two venues x three symbols beside one venue x three symbols, in one run.

    .venv/bin/python benchmarks/bench_venues.py [--seconds 10] [--rate 300]

Each simulated exchange runs in its own child process (its CPU is not counted): the Crypto.com
dialect (seed 19) and the Binance dialect (seed 1019), each pushing `--rate` flow events/s over
loopback. This process runs the real engines headless in paper mode (tps19.engine.multivenue:
one engine per venue under a VenueSet), first one venue (Crypto.com dialect), then both.

Printed per configuration, measured in the same run on the same machine:
- book messages/s each simulated exchange actually pushed (its own counter, between two marks);
- book updates/s the engines published (BookEvent), per venue;
- book latency p50/p99: BookEvent.received (the engine got the update) to a bus consumer task
  taking it off its queue, the step a front end's pump waits on;
- event-loop lag p99 (a 10 ms timer's oversleep): what every part of the process feels;
- CPU of this process, in % of one core (engines, feeds, brokers; not the exchanges).
The desk's frame latency is not measured here: `bench_desk.py --venues 2` measures the desk on
two venues beside one. No assertions: figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIM_CHILD = r"""
import asyncio, sys, time
async def main(dialect, seed, rate):
    if dialect == "binance":
        from tps19.simex.binance import BinanceSimExchange as Sim
    else:
        from tps19.simex import SimExchange as Sim
    sim = Sim(seed=seed, updates_per_second=rate)
    await sim.start()
    print(sim.port, flush=True)
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "mark":
        print(sim.stats.get("book_messages", 0), time.perf_counter(), flush=True)
    await sim.stop()
asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


class Sim:
    def __init__(self, dialect: str, seed: int, rate: float) -> None:
        self.dialect = dialect
        self.proc = subprocess.Popen([sys.executable, "-c", SIM_CHILD, dialect, str(seed), str(rate)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT), text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline().strip())

    async def mark(self) -> tuple[int, float]:
        def ask() -> tuple[int, float]:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write("mark\n")
            self.proc.stdin.flush()
            n, t = self.proc.stdout.readline().split()
            return int(n), float(t)

        return await asyncio.to_thread(ask)

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=20)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q * (len(values) - 1)))))]


async def run(sims: dict[str, Sim], seconds: float, db: Path) -> dict:
    from tps19.config import Settings
    from tps19.engine.engine import Engine
    from tps19.engine.events import BookEvent
    from tps19.engine.multivenue import VenueSet

    engines = {}
    for venue, sim in sims.items():
        s = Settings(exchange={"id": venue, "rest_url": f"http://127.0.0.1:{sim.port}"}, database={"path": db})
        engines[venue] = Engine(s, "paper")
    venues = VenueSet(engines)
    failed = await venues.start()
    assert not failed, failed
    lat: list[float] = []
    counts = {v: 0 for v in engines}
    lags: list[float] = []
    measuring = [False]

    async def consume(venue: str, engine: Engine) -> None:
        sub = engine.bus.subscribe(BookEvent, coalesce=None, maxsize=100_000)
        while True:
            for e in await sub.wait():
                if measuring[0]:
                    lat.append((time.perf_counter() - e.received) * 1000)
                    counts[venue] += 1

    async def ticker() -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            if measuring[0]:
                lags.append((time.perf_counter() - t - 0.01) * 1000)

    tasks = [asyncio.create_task(consume(v, e)) for v, e in engines.items()] + [asyncio.create_task(ticker())]
    await asyncio.sleep(2.0)  # warm up: snapshots, subscriptions
    marks0 = {v: await s.mark() for v, s in sims.items()}
    measuring[0] = True
    c0, w0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    wall = time.perf_counter() - w0
    cpu = (time.process_time() - c0) / wall
    measuring[0] = False
    marks1 = {v: await s.mark() for v, s in sims.items()}
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await venues.stop()
    return {
        "pushed_per_s": {v: round((marks1[v][0] - marks0[v][0]) / (marks1[v][1] - marks0[v][1]), 1) for v in sims},
        "books_per_s": {v: round(n / wall, 1) for v, n in counts.items()},
        "book_latency_ms": {"p50": round(pct(lat, 0.5), 2), "p99": round(pct(lat, 0.99), 2), "n": len(lat)},
        "loop_lag_p99_ms": round(pct(lags, 0.99), 2),
        "cpu_pct_of_core": round(cpu * 100, 1),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=300.0, help="flow events/s of each simulated exchange")
    a = ap.parse_args()
    sims = {"sim": Sim("cryptocom", 19, a.rate), "sim-binance": Sim("binance", 1019, a.rate)}
    try:
        with tempfile.TemporaryDirectory() as d:
            one = await run({"sim": sims["sim"]}, a.seconds, Path(d) / "one.db")
            two = await run(sims, a.seconds, Path(d) / "two.db")
    finally:
        for s in sims.values():
            s.stop()
    print(f"bench_venues: {a.seconds:g} s per configuration, each exchange at {a.rate:g} flow events/s, "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, r in (("1 venue x 3 symbols", one), ("2 venues x 3 symbols", two)):
        print(f"  {name}: {json.dumps(r)}")


if __name__ == "__main__":
    asyncio.run(main())
