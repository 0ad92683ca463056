"""Storage benchmark: the same paper trading on SQLite and on PostgreSQL, in one run.

1. Paper orders/second end to end: place -> book walk -> fills + order + balances committed in
   the database -> published, one order at a time (the broker awaits each commit).
2. Fill to database: a venue trade (TradeEvent on the bus) fills a resting paper order; the clock
   stops when the fill is committed and published (FillEvent). p50/p99.

Backends, on the same data in the same run:
- SQLite file, WAL, synchronous=NORMAL (what TPS19 uses; commits are not fsynced one by one).
- PostgreSQL 'durable': a throwaway local server with PostgreSQL's defaults (fsync on,
  synchronous_commit on: every commit waits for its WAL flush).
- PostgreSQL 'async commit': the same server, a database with synchronous_commit=off (a crash
  may lose the last commits but never corrupts: the durability SQLite's NORMAL gives).
With --pg-url, that server is used instead of a throwaway one (it must accept CREATE DATABASE).

Run: .venv/bin/python benchmarks/bench_storage.py [--orders 500] [--trades 200] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_trading import market_orders, paper_stack, pct, resting_fills  # noqa: E402  (benchmarks/ is sys.path[0])
from tps19.engine.bus import EventBus  # noqa: E402
from tps19.engine.storage import Database  # noqa: E402


async def run(label: str, target: str | Path, n_orders: int, n_trades: int) -> dict[str, float]:
    db = Database(target)
    await db.open(probe_write=True)
    bus = EventBus()
    s = await paper_stack(db, bus)
    dt, _ = await market_orders(bus, s.broker, n_orders)
    _, xs = await resting_fills(bus, s.broker, n_trades)
    await s.stop()
    await db.close()
    r = {"orders_s": n_orders / dt, "p50": pct(xs, .5) * 1e3, "p99": pct(xs, .99) * 1e3, "mean": statistics.mean(xs) * 1e3}
    print(f"{label:<34} {r['orders_s']:>10,.0f} {r['p50']:>9.2f} {r['p99']:>9.2f} {r['mean']:>9.2f}", flush=True)
    return r


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--trades", type=int, default=200)
    ap.add_argument("--pg-url", default=None, help="postgresql+asyncpg://USER@HOST:PORT (no database): use this server")
    a = ap.parse_args()
    server = None
    if a.pg_url is None:
        from tests.pg_server import PgServer

        server = PgServer()
        server.start(durable=True)
        base = server.base_url
    else:
        base = a.pg_url.rstrip("/")
    try:
        import asyncpg
        from sqlalchemy.engine import make_url

        u = make_url(base + "/postgres")
        admin = await asyncpg.connect(host=u.host, port=u.port, user=u.username, password=u.password, database="postgres")
        stamp = int(time.time())
        for name, extra in ((f"bench_durable_{stamp}", None), (f"bench_async_{stamp}", "synchronous_commit = off")):
            await admin.execute(f"CREATE DATABASE {name}")
            if extra:
                await admin.execute(f"ALTER DATABASE {name} SET {extra}")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"paper trading, {a.orders} market orders then {a.trades} resting orders filled by trades, per backend "
              f"({os.cpu_count()} cores, load average {load})")
        print(f"{'backend':<34} {'orders/s':>10} {'fill p50':>9} {'fill p99':>9} {'mean':>9}  (ms: trade -> fill committed)")
        with tempfile.TemporaryDirectory() as d:
            await run("SQLite (WAL, synchronous=NORMAL)", Path(d) / "bench.db", a.orders, a.trades)
        await run("PostgreSQL durable (defaults)", f"{base}/bench_durable_{stamp}", a.orders, a.trades)
        await run("PostgreSQL synchronous_commit=off", f"{base}/bench_async_{stamp}", a.orders, a.trades)
        for name in (f"bench_durable_{stamp}", f"bench_async_{stamp}"):
            await admin.execute(f"DROP DATABASE {name}")
        await admin.close()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
