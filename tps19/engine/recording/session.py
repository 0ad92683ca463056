"""`tps19 record`: market data only, no trading: the venue, the feed, the recorder.

The feed runs exactly as in `paper` (its guards, resyncs and the frames it subscribes to), on
its own bus; nothing trades and no database is opened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bus import EventBus
from ..events import LogEvent
from .tap import Recorder
from .writer import WriterSettings


@dataclass
class RecordStatus:
    seconds: float
    frames: int
    rows_written: int
    bytes_written: int
    dropped_rows: int
    errors: int


async def record_market_data(settings: Any, out: Path, *, duration_s: float | None = None,
                             stop: asyncio.Event | None = None,
                             on_status: Callable[[RecordStatus], None] | None = None,
                             on_log: Callable[[LogEvent], None] | None = None) -> RecordStatus:
    """Record the venue's market data for ``settings.symbols.watch`` into ``out`` until ``stop`` is
    set or ``duration_s`` has passed."""
    from ..feed import MarketFeed
    from ..venue import open_venue

    venue = await open_venue(settings, private=False)
    bus = EventBus()
    if on_log is not None:
        bus.on(LogEvent, on_log)
    rs = settings.recording
    ws = WriterSettings(batch_rows=rs.batch_rows, batch_s=rs.batch_s, rotate_bytes=int(rs.rotate_mb * (1 << 20)),
                        retention_days=rs.retention_days)
    rec = Recorder(out, venue.exchange_id, venue.exchange_id, ws,
                   on_problem=lambda m, f: bus.publish(LogEvent("warning", m, f))).start()
    feed = None
    t0 = time.monotonic()
    try:
        rec.tap_client(venue.client)
        rec.tap_bus(bus)
        markets = await venue.client.load_markets()
        rec.set_markets(markets)
        symbols = list(settings.symbols.watch)
        missing = [s for s in symbols if s not in markets]
        if missing:
            raise ValueError(f"symbol(s) not listed on {venue.name}: {', '.join(missing)}")
        rec.meta({"mode": None, "venue": venue.name, "exchange_id": venue.exchange_id, "symbols": symbols,
                  "timeframe": settings.symbols.timeframe, "book_depth": settings.symbols.book_depth,
                  "markets": {s: markets.get(s) for s in symbols},
                  "precision_mode": getattr(venue.client, "precisionMode", None)})
        feed = MarketFeed(venue.client, symbols, bus, settings.feed, depth=settings.symbols.book_depth,
                          timeframe=settings.symbols.timeframe)
        await feed.start()
        stop = stop or asyncio.Event()
        end = None if duration_s is None else t0 + duration_s
        while not stop.is_set():
            wait = 1.0 if end is None else max(0.0, min(1.0, end - time.monotonic()))
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                pass
            if on_status is not None:
                on_status(_status(rec, t0))
            if end is not None and time.monotonic() >= end:
                break
    finally:
        rec.taking = False
        if feed is not None:
            await feed.stop()
        await venue.close()
        await asyncio.to_thread(rec.close)
    return _status(rec, t0)


def _status(rec: Recorder, t0: float) -> RecordStatus:
    st = rec.writer.stats
    return RecordStatus(time.monotonic() - t0, rec.frames, st.rows, st.bytes, st.dropped_rows, st.errors)
