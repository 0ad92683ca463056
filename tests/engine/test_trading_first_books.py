"""The engine builds trading after the market feed has started: every book the feed publishes
meanwhile (while trading asks the venue for its fee schedule, say) must reach the portfolio's
marks and the broker's books. On a paused market each symbol publishes its book once."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from tps19.config import Settings
from tps19.launch import build_engine, start_embedded_sim


async def test_trading_sees_the_books_published_while_it_was_built(settings: Settings) -> None:
    pointed, sim = await start_embedded_sim(settings, seed=19, autoplay=False)
    engine = build_engine(pointed, "paper")
    try:
        await engine.start()
        symbols = engine.symbols
        end = time.monotonic() + 30
        while not all(engine.books[s].best_bid() and engine.books[s].best_ask() for s in symbols):
            assert time.monotonic() < end, "the feed never had every book"
            await asyncio.sleep(0.05)
        assert engine.trading is not None
        for s in symbols:
            book = engine.books[s]
            mid = (Decimal(str(book.bids[0][0])) + Decimal(str(book.asks[0][0]))) / 2
            assert engine.trading.portfolio.mark(s) == mid, s
            assert engine.trading.broker.books[s].seq == book.seq, s
    finally:
        await engine.stop()
        await sim.stop()
