"""Trading benchmarks (loopback only). Prints figures; asserts nothing about time.

1. Paper orders/second end to end: place -> fill (book walk) -> booked in SQLite -> published.
2. Paper: latency from a venue trade (TradeEvent on the bus) to the resting order's fill
   committed in SQLite, p50/p99.
3. Live against the simulated exchange: latency from another trader's order hitting our
   resting order on the venue to our fill committed in SQLite (watch_orders, then the
   order's fills over REST), p50/p99.

Run: .venv/bin/python benchmarks/bench_trading.py [--orders 1000] [--trades 300] [--live 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.trading.conftest import cryptocom_markets  # noqa: E402
from tests.trading.helpers import book, settings, trades  # noqa: E402
from tps19.engine.bus import EventBus  # noqa: E402
from tps19.engine.storage import Database  # noqa: E402
from tps19.engine.trading import FillEvent  # noqa: E402
from tps19.engine.assembly import build_trading  # noqa: E402

D = Decimal


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


# The benchmark round-trips thousands of orders: lift the caps that would (rightly) stop a trader.
BENCH_RISK = settings(max_daily_orders=10**6, max_position_notional=D("1e12"), daily_loss_limit=D("1e12"),
                      max_gross_exposure=D("1e13"), max_open_orders=10**6, max_orders_per_minute=10**7)


async def paper_stack(db: Database, bus: EventBus):
    """The paper trading stack both this benchmark and bench_storage.py time, on a database."""
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=cryptocom_markets(), settings=BENCH_RISK,
                            exchange="cryptocom", starting_balances={"USDT": D("100000000"), "BTC": D("1000")},
                            snapshot_interval_s=0)
    await s.start()
    return s


async def market_orders(bus: EventBus, broker, n: int) -> tuple[float, list[float]]:
    """n market orders one at a time, each awaited until filled and committed: (seconds, place latencies)."""
    lat: list[float] = []
    t0 = time.perf_counter()
    for i in range(n):
        # the venue's book moves each time (new levels), as a live feed would
        px = 50000.0 + (i % 50)
        bus.publish(book(asks=tuple((px + k, 0.5) for k in range(10)), bids=tuple((px - 1 - k, 0.5) for k in range(10))))
        t = time.perf_counter()
        o = await broker.place_order("BTC/USDT", "buy" if i % 2 == 0 else "sell", "market", "0.6")
        lat.append(time.perf_counter() - t)
        assert o.status.value == "filled", o.reason
    return time.perf_counter() - t0, lat


async def resting_fills(bus: EventBus, broker, n: int) -> tuple[float, list[float]]:
    """n resting orders, each filled by one venue trade at its price (queue ahead 0); the clock
    stops when the fill is committed and published: (seconds, trade -> fill latencies)."""
    bus.publish(book(bids=((48000.0, 1.0),), asks=((51000.0, 1.0),)))
    got: dict[str, float] = {}
    bus.on(FillEvent, lambda ev: got.setdefault(ev.client_order_id, time.perf_counter()))
    xs: list[float] = []
    t0 = time.perf_counter()
    for _ in range(n):
        o = await broker.place_order("BTC/USDT", "buy", "limit", "0.01", "49000")
        ev = trades(("sell", 49000.0, 0.01))
        bus.publish(ev)
        while o.client_order_id not in got:
            await asyncio.sleep(0)
        xs.append(got[o.client_order_id] - ev.received)
    return time.perf_counter() - t0, xs


async def paper(n_orders: int, n_trades: int, tmp: Path) -> None:
    db = Database(tmp / "bench_paper.db")
    await db.open()
    bus = EventBus()
    s = await paper_stack(db, bus)
    dt, lat = await market_orders(bus, s.broker, n_orders)
    print(f"paper market orders: {n_orders} in {dt:.2f}s = {n_orders / dt:,.0f} orders/s end to end "
          f"(place->walk->fills+order+balances committed->published); place latency p50 {pct(lat, .5)*1e3:.2f} ms, "
          f"p99 {pct(lat, .99)*1e3:.2f} ms")
    dt, xs = await resting_fills(bus, s.broker, n_trades)
    print(f"paper trade->fill in SQLite: {len(xs)} resting orders filled by trades in {dt:.2f}s, "
          f"p50 {pct(xs, .5)*1e3:.2f} ms, p99 {pct(xs, .99)*1e3:.2f} ms, mean {statistics.mean(xs)*1e3:.2f} ms")
    await s.stop()
    await db.close()


async def live(n: int, tmp: Path) -> None:
    from tests.trading.simhelp import KEY2, SECRET2, inside_spread_price, make_client, make_sim

    sim = make_sim()
    await sim.start()
    mine = await make_client(sim.base_url)
    other = await make_client(sim.base_url, KEY2, SECRET2)
    db = Database(tmp / "bench_live.db")
    await db.open()
    bus = EventBus()
    s = await build_trading(mode="live", bus=bus, db=db, client=mine, markets=mine.markets,
                            settings=BENCH_RISK, snapshot_interval_s=0,
                            poll_interval_s=5.0, watch_timeout_s=10.0)
    await s.start()
    got: dict[str, float] = {}
    bus.on(FillEvent, lambda ev: got.setdefault(ev.client_order_id, time.perf_counter()))
    place_lat, fill_lat = [], []
    for _ in range(n):
        price = await inside_spread_price(other)
        t = time.perf_counter()
        o = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.001", price)
        place_lat.append(time.perf_counter() - t)
        t_hit = time.perf_counter()
        await other.create_order("BTC/USDT", "limit", "sell", 0.001, float(price))
        for _ in range(2000):
            if o.client_order_id in got:
                break
            await asyncio.sleep(0.001)
        if o.client_order_id in got:
            fill_lat.append(got[o.client_order_id] - t_hit)
    print(f"live (simex, loopback): place->acknowledged p50 {pct(place_lat, .5)*1e3:.1f} ms, p99 {pct(place_lat, .99)*1e3:.1f} ms")
    print(f"live venue trade->fill in SQLite ({len(fill_lat)}/{n} via watch_orders + fetch_my_trades): p50 {pct(fill_lat, .5)*1e3:.1f} ms, "
          f"p99 {pct(fill_lat, .99)*1e3:.1f} ms (includes the counterparty's own REST round trip)")
    await s.stop()
    await mine.close()
    await other.close()
    await db.close()
    await sim.stop()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1000)
    ap.add_argument("--trades", type=int, default=300)
    ap.add_argument("--live", type=int, default=50)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        await paper(a.orders, a.trades, Path(d))
        if a.live:
            await live(a.live, Path(d))


if __name__ == "__main__":
    asyncio.run(main())
