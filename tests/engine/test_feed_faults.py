"""Market data under the simulated exchange's fault switches: every stream of every symbol survives.

The real Engine runs ccxt.pro against the embedded simulated exchange over loopback websockets;
the faults are the exchange's own switches (the ``sim`` fixture's ``faults``).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.engine.helpers import wait_for

from tps19.config import FeedSettings
from tps19.engine.engine import Engine
from tps19.engine.events import ConnectionEvent, ConnState, LogEvent

pytestmark = pytest.mark.slow

STREAMS = ("book", "trades", "ticker", "bars")


def _with_feed(settings, **feed):
    return settings.model_copy(update={"feed": FeedSettings(**{**settings.feed.model_dump(), **feed})})


def _counts(engine: Engine) -> dict[tuple[str, str], int]:
    return {(stream, sym): engine.feed.stats.get(stream, sym).messages
            for sym in engine.symbols for stream in STREAMS}


async def _every_stream_counts(engine: Engine, timeout: float = 30.0) -> list[tuple[str, str]]:
    """Wait until every stream of every symbol has delivered a new message; return those that did not."""
    before = _counts(engine)
    await wait_for(lambda: all(n > before[k] for k, n in _counts(engine).items()), timeout)
    return [k for k, n in _counts(engine).items() if n <= before[k]]


async def test_book_gap_resync_leaves_every_other_stream_alive(sim_settings, sim):
    engine = Engine(sim_settings)
    await engine.start()
    try:
        assert await _every_stream_counts(engine) == []
        book = engine.feed.stats.get("book", "BTC/USDT")
        sim.faults.skip_sequence("BTC/USDT")
        assert await wait_for(lambda: book.resyncs >= 1), "gap was not detected"
        # The resync closed the shared public websocket: once the book is back, so is every other stream.
        after = book.messages
        assert await wait_for(lambda: book.messages > after + 3 and book.state == ConnState.CONNECTED, 30)
        assert await _every_stream_counts(engine) == [], "streams died after another stream's resync"
        assert all(engine.feed.stats.get(s, sym).state == ConnState.CONNECTED
                   for sym in engine.symbols for s in ("book", "ticker", "bars"))
    finally:
        await engine.stop()


async def test_a_stream_task_that_ends_is_restarted_counted_and_logged(sim_settings):
    engine = Engine(sim_settings)
    logs: list[LogEvent] = []
    engine.bus.on(LogEvent, logs.append)
    await engine.start()
    try:
        assert await _every_stream_counts(engine) == []
        task = next(t for t in asyncio.all_tasks() if t.get_name() == "feed:trades:ETH/USDT")
        task.cancel()  # not a stop: nobody asked this stream to end
        st = engine.feed.stats.get("trades", "ETH/USDT")
        assert await wait_for(lambda: st.restarts >= 1), "the stream was not restarted"
        assert any(e.level == "error" and e.fields.get("stream") == "trades" and e.fields.get("symbol") == "ETH/USDT"
                   and "restart" in e.message for e in logs)
        assert await _every_stream_counts(engine) == []
    finally:
        await engine.stop()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("feed:")], "stop left feed tasks behind"


async def test_every_stream_recovers_after_silence_with_few_resyncs(sim_settings, sim):
    # Silence longer than the watch timeout: books time out, resync, and must not spin.
    sim_settings = _with_feed(sim_settings, stale_after_s=1, watch_timeout_s=2, reconnect_min_s=0.1, reconnect_max_s=1)
    engine = Engine(sim_settings)
    states: list[ConnectionEvent] = []
    engine.bus.on(ConnectionEvent, states.append)
    await engine.start()
    try:
        assert await _every_stream_counts(engine) == []
        sim.faults.silence(5)
        assert await wait_for(lambda: {s.symbol for s in states if s.stream == "book" and s.state == ConnState.STALE}
                              == set(engine.symbols), 15), "silence did not make the books stale"
        assert await wait_for(lambda: engine.feed.stats.total("resyncs") >= 1, 15)
        # Data comes back by itself after 5 s: every stream of every symbol must count and be fresh again.
        assert await _every_stream_counts(engine, 45) == []
        assert await wait_for(engine.feed.all_fresh, 30), engine.feed.stale_streams()
        for sym in engine.symbols:
            assert engine.feed.stats.get("book", sym).resyncs <= 6, f"{sym} book resynced in a loop"
        assert engine.feed.stats.total("resyncs") <= 12
    finally:
        await engine.stop()


async def test_garbage_frames_are_counted_logged_and_survived(sim_settings, sim, capfd, caplog):
    caplog.set_level(logging.WARNING)
    engine = Engine(sim_settings)
    logs: list[LogEvent] = []
    engine.bus.on(LogEvent, logs.append)
    await engine.start()
    try:
        assert await _every_stream_counts(engine) == []
        assert sim.faults.garbage(4) >= 1
        assert await wait_for(lambda: any(e.fields.get("bad_frames", 0) >= 1 for e in logs), 15), \
            "no log event counts the malformed frames"
        assert await _every_stream_counts(engine) == [], "the feed did not recover from malformed frames"
        assert await wait_for(engine.feed.all_fresh, 30), engine.feed.stale_streams()
    finally:
        await engine.stop()
    bad = [e for e in logs if e.fields.get("bad_frames")]
    assert bad[0].level == "warning" and "malformed" in bad[0].message
    err = capfd.readouterr().err
    assert err == "", f"stderr: {err[:500]}"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]


async def test_a_book_that_lags_the_exchange_is_stale_until_the_lag_clears(sim_settings, sim):
    sim_settings = _with_feed(sim_settings, stale_after_s=1, watch_timeout_s=6)
    engine = Engine(sim_settings)
    await engine.start()
    try:
        book = engine.feed.stats.get("book", "BTC/USDT")
        assert await wait_for(lambda: book.messages > 5 and book.state == ConnState.CONNECTED)
        sim.faults.lag_market(2500)
        start = book.messages
        # Messages keep arriving, but 2.5 s behind the exchange's clock: that book is not fresh.
        assert await wait_for(lambda: book.messages > start + 20 and book.state == ConnState.STALE, 30), \
            (book.state, book.latency_ms)
        assert not engine.feed.fresh("book", "BTC/USDT") and not engine.feed.all_fresh()
        assert book.latency_ms is not None and book.latency_ms > 1000
        sim.faults.lag_market(0)
        assert await wait_for(lambda: book.state == ConnState.CONNECTED and book.latency_ms < 1000, 30), \
            (book.state, book.latency_ms)
        assert await wait_for(engine.feed.all_fresh, 30), engine.feed.stale_streams()
    finally:
        await engine.stop()
