"""One paper session recorded on the simulated exchange (a fast venue clock: a 1m bar every 0.5 s),
shared by the replay and divergence tests: a strategy trading, one market order and one resting
limit order placed by hand."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tests.engine.helpers import wait_for
from tests.replay.conftest import fast_clock
from tps19.config import Settings


@dataclass
class Session:
    root: Path
    settings: Settings
    fills: list = field(default_factory=list)
    updates: list = field(default_factory=list)
    limit_id: str = ""


def make_settings(tmp: Path) -> Settings:
    for k in list(os.environ):
        if k.startswith("TPS19_"):
            del os.environ[k]
    return Settings(
        database={"path": tmp / "tps19.db"},
        symbols={"watch": ["BTC/USDT"]},
        feed={"stale_after_s": 5, "watch_timeout_s": 6, "reconnect_min_s": 0.1, "reconnect_max_s": 1},
        risk={"max_order_notional": Decimal("1000000"), "max_position_notional": Decimal("1000000")},
        recording={"batch_rows": 500, "batch_s": 0.2},
    )


async def _record(s: Session) -> None:
    from tps19.engine.engine import Engine
    from tps19.engine.events import BookEvent
    from tps19.engine.strategies.registry import create
    from tps19.engine.trading.events import FillEvent, OrderUpdate
    from tps19.launch import start_embedded_sim

    pointed, sim = await start_embedded_sim(s.settings, clock=fast_clock())
    try:
        engine = Engine(pointed, "paper", strategy=create("sma_cross", ["fast=2", "slow=3"]), record_dir=s.root)
        # what the session did while it was recorded (the recording ends when the engine starts stopping)
        engine.bus.on(FillEvent, lambda ev: engine.recorder.taking and s.fills.append(ev))
        engine.bus.on(OrderUpdate, lambda ev: engine.recorder.taking and s.updates.append(ev))
        await engine.start()
        try:
            assert await wait_for(lambda: len({f.client_order_id for f in s.fills}) >= 4, timeout=60), \
                f"the strategy traded {len(s.fills)} fills in 60 s"
            broker = engine.trading.broker
            await broker.place_order("BTC/USDT", "buy", "market", Decimal("0.01"))
            book = broker.books["BTC/USDT"]
            tick = Decimal(str(engine.markets["BTC/USDT"]["precision"]["price"]))
            price = Decimal(repr(book.best_bid)) + tick  # inside the spread: first in its queue
            books = [0]
            engine.bus.on(BookEvent, lambda ev: books.__setitem__(0, books[0] + 1))
            o = await broker.place_order("BTC/USDT", "buy", "limit", Decimal("0.02"), price)
            s.limit_id = o.client_order_id
            # resting (filled by a print or a crossing book, or not): the broker judges it on 30 books
            assert await wait_for(lambda: books[0] >= 30, timeout=30)
        finally:
            await engine.stop()
    finally:
        await sim.stop()


def record_session(tmp: Path) -> Session:
    s = Session(root=tmp / "rec", settings=make_settings(tmp))
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        asyncio.run(_record(s))
    finally:
        os.chdir(cwd)
    return s
