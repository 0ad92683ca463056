"""Protective orders, engine half: how long an emulated stop takes from the print that crosses
its level to its order being handed to ccxt (goal: p99 < 5 ms at 1,000 prints/s).

    .venv/bin/python benchmarks/bench_stops_live.py [--stops 200] [--rate 1000] [--seconds 8]

Live mode against the simulated exchange on loopback, the unmodified ccxt client, a SQLite file:
``--stops`` sell stops are armed at levels spread below the market; prints (TradeEvents on the
bus, as the feed publishes them) walk the price down through the levels at ``--rate`` prints a
second. For each stop the clock runs from the moment the first print at or below its level was
received (the event's own ``received`` stamp) to the moment ``client.create_order`` is called with
its client order id (the stored trigger is committed in between). Printed: p50, p99, max and the
prints the emulator evaluated.

Peer, same prints: the paper broker, where a triggered stop is filled by the paper fill model
(print received -> fill committed). No other engine's emulator is installed here to time
(nautilus_trader's OrderEmulator is the peer the issue names; it is not a dependency).

The backtest half is benchmarks/bench_stops.py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_trading import BENCH_RISK, pct  # noqa: E402
from tests.trading.conftest import cryptocom_markets  # noqa: E402
from tests.trading.helpers import book  # noqa: E402
from tps19.engine.assembly import build_trading  # noqa: E402
from tps19.engine.bus import EventBus  # noqa: E402
from tps19.engine.events import Trade, TradeEvent  # noqa: E402
from tps19.engine.storage import Database  # noqa: E402
from tps19.engine.trading import OrderRequest  # noqa: E402

D = Decimal
STEP = D("0.0005")  # levels 0.05 % apart


async def walk(bus: EventBus, levels: dict[str, D], start: D, rate: int, seconds: float) -> dict[str, float]:
    """Publish prints walking from ``start`` down past every level, ``rate`` a second; returns the
    receive time of the first print at or below each level."""
    low = min(levels.values()) * (1 - STEP)
    n = int(rate * seconds)
    crossed: dict[str, float] = {}
    pending = sorted(levels.items(), key=lambda kv: -kv[1])
    per_tick = max(1, rate // 100)  # 10 ms ticks
    t0 = time.perf_counter()
    for i in range(n):
        price = start - (start - low) * D(i) / D(n)
        ev = TradeEvent("BTC/USDT", (Trade(ts=int(time.time() * 1000), side="sell", price=float(price), amount=0.001),))
        while pending and D(repr(float(price))) <= pending[0][1]:
            crossed[pending.pop(0)[0]] = ev.received
        bus.publish(ev)
        if (i + 1) % per_tick == 0:
            # pace to the wall clock: the next tick is due at (i + 1) / rate seconds
            await asyncio.sleep(max(0.0, t0 + (i + 1) / rate - time.perf_counter()))
    return crossed


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def live(stops: int, rate: int, seconds: float) -> None:
    """The venue runs in its own process (`tps19 exchange`), as a real one would: its matching
    and HTTP work are not charged to the engine's event loop."""
    import subprocess
    import urllib.request

    from tests.trading.simhelp import make_client
    from tps19.config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET

    port = free_port()
    venue = subprocess.Popen([sys.executable, "-m", "tps19.cli", "exchange", "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(ROOT))
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/exchange/v1/public/get-instruments", timeout=1).read()
            break
        except OSError:
            await asyncio.sleep(0.1)
    try:
        await _live(url, make_client, SIM_DEMO_API_KEY, SIM_DEMO_SECRET, stops, rate, seconds)
    finally:
        venue.terminate()
        venue.wait(10)


async def _live(url: str, make_client, key: str, secret: str, stops: int, rate: int, seconds: float) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(url, key, secret)
    handed: dict[str, float] = {}
    real_create = client.create_order

    async def create_order(symbol, type, side, amount, price=None, params=None):  # type: ignore[no-untyped-def]
        cid = (params or {}).get("client_oid")
        if cid is not None:
            handed.setdefault(cid, time.perf_counter())
        return await real_create(symbol, type, side, amount, price, params or {})

    client.create_order = create_order
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db")
        await db.open()
        bus = EventBus()
        s = await build_trading(mode="live", bus=bus, db=db, client=client, markets=client.markets, settings=BENCH_RISK,
                                snapshot_interval_s=0, use_watch=False, poll_interval_s=3600,
                                stop_placement="emulated")
        await s.start()
        ob = await client.fetch_order_book("BTC/USDT", 5)
        mid = (D(repr(ob["bids"][0][0])) + D(repr(ob["asks"][0][0]))) / 2
        levels = {}
        for i in range(stops):
            level = (mid * (1 - STEP * (i + 1))).quantize(D("0.01"))
            o = await s.broker.place(OrderRequest("BTC/USDT", "sell", "stop_market", D("0.001"), trigger_price=level))
            assert o.status.value == "new", o.reason
            levels[o.client_order_id] = level
        cpu0 = time.process_time()
        crossed = await walk(bus, levels, mid, rate, seconds)
        deadline = time.monotonic() + 30
        while len(handed) < len(levels) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        cpu = time.process_time() - cpu0
        lat = [(handed[c] - crossed[c]) * 1000 for c in levels if c in handed and c in crossed]
        missing = len(levels) - len(lat)
        print(f"live (emulated -> ccxt.create_order, `tps19 exchange` in its own process on loopback): {len(lat)} stops, {rate} prints/s for "
              f"{seconds:g} s: p50 {pct(lat, 0.5):.2f} ms  p99 {pct(lat, 0.99):.2f} ms  max {max(lat):.2f} ms"
              f"  (goal p99 < 5 ms: {'met' if pct(lat, 0.99) < 5 else 'MISSED'}); process CPU {cpu:.1f} s"
              + (f"; {missing} never handed over" if missing else ""))
        await s.stop()
        await db.close()
    await client.close()


async def paper(stops: int, rate: int, seconds: float) -> None:
    markets = cryptocom_markets()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db")
        await db.open()
        bus = EventBus()
        s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=BENCH_RISK,
                                exchange="cryptocom", starting_balances={"USDT": D("1000000"), "BTC": D("10")},
                                snapshot_interval_s=0)
        await s.start()
        bus.publish(book(bids=((49999.0, 1000.0),), asks=((50000.0, 1000.0),)))
        mid = D("49999.5")
        filled: dict[str, float] = {}

        def on_update(u) -> None:  # type: ignore[no-untyped-def]
            if u.status == "filled":
                filled.setdefault(u.client_order_id, time.perf_counter())
        from tps19.engine.trading import OrderUpdate

        bus.on(OrderUpdate, on_update)
        levels = {}
        for i in range(stops):
            level = (mid * (1 - STEP * (i + 1))).quantize(D("0.01"))
            o = await s.broker.place(OrderRequest("BTC/USDT", "sell", "stop_market", D("0.001"), trigger_price=level))
            levels[o.client_order_id] = level
        crossed = await walk(bus, levels, mid, rate, seconds)
        deadline = time.monotonic() + 30
        while len(filled) < len(levels) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        lat = [(filled[c] - crossed[c]) * 1000 for c in levels if c in filled and c in crossed]
        print(f"paper (emulated -> paper fill committed): {len(lat)} stops: p50 {pct(lat, 0.5):.2f} ms  "
              f"p99 {pct(lat, 0.99):.2f} ms  max {max(lat):.2f} ms")
        await s.stop()
        await db.close()


def main() -> None:
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stops", type=int, default=200)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=8.0)
    a = ap.parse_args()
    asyncio.run(live(a.stops, a.rate, a.seconds))
    asyncio.run(paper(a.stops, a.rate, a.seconds))


if __name__ == "__main__":
    main()
