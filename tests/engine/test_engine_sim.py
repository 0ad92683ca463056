"""The engine on the embedded simulated exchange: real ccxt.pro over loopback websockets."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.engine.helpers import wait_for

from tps19.engine.engine import Engine, EngineError
from tps19.engine.events import BookEvent, ConnectionEvent, ConnState, TradeEvent
from tps19.engine.storage import Bar, migrate

pytestmark = pytest.mark.slow


async def _collect_books(engine: Engine, seconds: float) -> list[BookEvent]:
    got: list[BookEvent] = []
    engine.bus.on(BookEvent, got.append)
    await asyncio.sleep(seconds)
    return got




async def test_engine_streams_sane_books_and_trades_for_every_symbol(sim_settings):
    engine = Engine(sim_settings)
    trades: list[TradeEvent] = []
    engine.bus.on(TradeEvent, trades.append)
    await engine.start()
    try:
        books = await _collect_books(engine, 3.0)
    finally:
        await engine.stop()
    assert {b.symbol for b in books} == set(sim_settings.symbols.watch)
    for b in books:
        assert b.bids and b.asks
        assert b.best_bid < b.best_ask, f"crossed or locked book {b.symbol}: {b.best_bid} >= {b.best_ask}"
        assert list(b.bids) == sorted(b.bids, reverse=True)
        assert list(b.asks) == sorted(b.asks)
    assert trades, "the simulated market printed no trades in 3 s"
    btc = [b for b in books if b.symbol == "BTC/USDT"]
    assert 1_000 < btc[-1].mid < 1_000_000


async def test_sequence_gap_triggers_resync_and_the_book_recovers(sim_settings, sim):
    engine = Engine(sim_settings)
    states: list[ConnectionEvent] = []
    engine.bus.on(ConnectionEvent, states.append)
    await engine.start()
    try:
        assert await wait_for(lambda: engine.books["BTC/USDT"].best_bid() is not None)
        sim.faults.skip_sequence("BTC/USDT")
        stats = engine.feed.stats.get("book", "BTC/USDT")
        assert await wait_for(lambda: stats.resyncs >= 1), "gap was not detected"
        before = stats.messages
        books = await _collect_books(engine, 2.0)
        assert stats.messages > before, "book stream did not come back after the resync"
    finally:
        await engine.stop()
    assert engine.venue.gap_count[0] >= 1
    assert any(s.state == ConnState.RESYNC and s.symbol == "BTC/USDT" for s in states)
    after = [b for b in books if b.symbol == "BTC/USDT"]
    assert after and all(b.best_bid < b.best_ask for b in after)


async def test_dropped_connection_reconnects(sim_settings, sim):
    engine = Engine(sim_settings)
    await engine.start()
    try:
        stats = engine.feed.stats.get("book", "ETH/USDT")
        assert await wait_for(lambda: stats.messages > 5)
        sim.faults.drop_connections()
        await asyncio.sleep(0.5)
        before = stats.messages
        assert await wait_for(lambda: stats.messages > before + 5), "no book updates after the drop"
        assert stats.state == ConnState.CONNECTED
    finally:
        await engine.stop()


async def test_unknown_symbol_is_a_clear_engine_error(sim_settings):
    sim_settings = sim_settings.model_copy(update={"symbols": sim_settings.symbols.model_copy(update={"watch": ["DOGE/EUR"]})})
    engine = Engine(sim_settings)
    with pytest.raises(EngineError, match="DOGE/EUR"):
        await engine.start()
    await engine.stop()


async def test_first_run_creates_versioned_database(sim_settings):
    engine = Engine(sim_settings)
    await engine.start()
    try:
        assert await engine.db.revision() == migrate.head()
    finally:
        await engine.stop()
    assert sim_settings.database.path.exists()


async def test_silent_book_stream_is_marked_stale_resubscribed_and_recovers(sim_settings, sim):
    engine = Engine(sim_settings)
    states: list[ConnectionEvent] = []
    engine.bus.on(ConnectionEvent, states.append)
    await engine.start()
    try:
        stats = engine.feed.stats.get("book", "SOL/USDT")
        assert await wait_for(lambda: stats.messages > 3)
        sim.faults.stop_stream("book", "SOL/USDT")
        # stale after stale_after_s (2 s), resubscribe after watch_timeout_s (4 s)
        assert await wait_for(lambda: any(s.state == ConnState.STALE and s.symbol == "SOL/USDT" for s in states), 10)
        assert await wait_for(lambda: stats.resyncs >= 1, 10)
        other = engine.feed.stats.get("book", "BTC/USDT")
        assert other.state == ConnState.CONNECTED or await wait_for(lambda: other.state == ConnState.CONNECTED)
        sim.faults.resume_stream("book", "SOL/USDT")
        before = stats.messages
        assert await wait_for(lambda: stats.messages > before + 3, 15), "book did not come back"
        assert await wait_for(lambda: stats.state == ConnState.CONNECTED)
    finally:
        await engine.stop()


async def test_a_part_that_fails_to_stop_is_logged_and_the_rest_still_stops(sim_settings):
    from tps19.engine.events import LogEvent

    engine = Engine(sim_settings)
    logs: list[LogEvent] = []
    engine.bus.on(LogEvent, logs.append)
    await engine.start()

    async def broken_stop() -> None:
        raise RuntimeError("broker could not flush")

    assert engine.trading is not None
    engine.trading.stop = broken_stop  # type: ignore[method-assign]
    await engine.stop()
    failed = [e for e in logs if e.message == "stopping failed"]
    assert [e.fields["part"] for e in failed] == ["trading"]
    assert "broker could not flush" in failed[0].fields["detail"]
    assert engine.feed is not None and not engine.feed._tasks  # the feed stopped after the failure
    # the database is closed and the instance lock released: a second engine may take the file
    again = Engine(sim_settings)
    await again.start()
    await again.stop()
