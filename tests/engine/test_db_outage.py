"""A PostgreSQL outage under a running engine (the server unreachable through a loopback proxy that
is cut, then restored): orders halt, a strategy target whose order failed is acted on once the
database is back (it used to be lost: target 1.0, nothing held, two bars later), the bars missed
meanwhile are back-filled from the venue, and the error lines name the database and operation
(it used to be a bare `[Errno 111] Connect call failed`)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from tps19.engine.engine import Engine
from tps19.engine.events import BarEvent, LogEvent, StorageAlert
from tps19.engine.storage import Bar
from tps19.engine.strategies.signals import Signal
from tps19.engine.targets import TargetExecutor
from tps19.engine.trading.events import FillEvent

DEADLINE_S = 60.0
pytestmark = pytest.mark.slow


class Proxy:
    """127.0.0.1:port -> the PostgreSQL server; ``cut()`` drops every connection and refuses new
    ones (as a stopped server does), ``restore()`` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.server: asyncio.Server | None = None
        self.transports: set[asyncio.BaseTransport] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.transports |= {writer.transport, up_w.transport}

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.transport.abort()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for t in list(self.transports):
            t.abort()
        self.transports.clear()

    async def restore(self) -> None:
        await self.start()


class Events:
    """A subscription's events, none thrown away: ``until`` takes the first event not taken yet that
    matches, however early it came. (Scanning only new batches dropped the events that came in the
    same batch as, or before, the one awaited: the feed's own closed bar at a minute's turn, stored
    once the database is back, back-fills before the test's bar does, so the back-fill line can come
    with the restore alert or the fill; the test then waited 60 s for a line it had discarded.)"""

    def __init__(self, sub) -> None:
        self.sub = sub
        self.pending: list = []

    async def until(self, want):
        async with asyncio.timeout(DEADLINE_S):
            while True:
                for i, e in enumerate(self.pending):
                    if want(e):
                        return self.pending.pop(i)
                self.pending += await self.sub.wait()


@pytest.fixture
async def outage(sim_settings, pg_server):
    url = pg_server.lease()
    proxy = Proxy(pg_server.port)
    await proxy.start()
    via = url.replace(f":{pg_server.port}/", f":{proxy.port}/")
    settings = sim_settings.model_copy(update={
        "database": sim_settings.database.model_copy(update={"url": SecretStr(via)}),
        "symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]})})
    engine = Engine(settings)
    await engine.start()
    try:
        yield engine, proxy
    finally:
        await engine.stop()
        with contextlib.suppress(Exception):
            await proxy.cut()
        pg_server.give_back(url)


async def test_a_target_lost_in_an_outage_is_acted_on_and_missed_bars_are_back_filled(outage):
    engine, proxy = outage
    assert engine.trading is not None and engine.venue is not None
    async with asyncio.timeout(DEADLINE_S):
        while engine.books["BTC/USDT"].best_ask() is None:
            await asyncio.sleep(0.05)
    # the executor the engine builds for a strategy, driven here by hand
    executor = engine.executor = TargetExecutor(engine.trading.broker, engine.trading.portfolio, engine.markets,
                                                engine.symbols, engine.bus, strategy="outage",
                                                max_order_notional=engine.settings.risk.max_order_notional)
    sub = Events(engine.bus.subscribe(StorageAlert, LogEvent, FillEvent, coalesce=None))
    minute = int(time.time() // 60 * 60_000)
    await proxy.cut()
    alert = await sub.until(lambda e: isinstance(e, StorageAlert))
    assert alert.halted

    await executor.submit_target("BTC/USDT", 1.0, Signal(1, 1.0, "test entry", 1.0))
    assert "BTC/USDT" in executor.pending, "the target of a failed order was forgotten"
    engine.bus.publish(BarEvent("BTC/USDT", "1m", minute - 3 * 60_000, 1, 1, 1, 1, 1, closed=True))
    line = await sub.until(lambda e: isinstance(e, LogEvent) and e.message.startswith("storing bars failed"))
    assert f"database {engine.db.name}: " in line.message and "failed: " in line.message, line.message

    await proxy.restore()
    alert = await sub.until(lambda e: isinstance(e, StorageAlert) and not e.halted)
    fill = await sub.until(lambda e: isinstance(e, FillEvent))
    assert fill.side == "buy" and fill.client_order_id.startswith(executor.prefix)
    assert executor.own["BTC/USDT"] > 0 and not executor.pending

    # the next bar stores, and the outage's bars come from the venue
    engine.bus.publish(BarEvent("BTC/USDT", "1m", minute - 60_000, 1, 1, 1, 1, 1, closed=True))
    line = await sub.until(lambda e: isinstance(e, LogEvent) and e.message.startswith("back-filled"))
    async with engine.db.session() as s:
        stored = (await s.execute(select(Bar.ts).where(Bar.symbol == "BTC/USDT", Bar.ts >= minute - 3 * 60_000,
                                                       Bar.ts <= minute - 60_000))).scalars().all()
    assert sorted(stored) == [minute - 3 * 60_000, minute - 2 * 60_000, minute - 60_000], line.message
