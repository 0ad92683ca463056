"""An update that reaches ccxt while no watch is pending is in ccxt's cache but would only be
returned with the next message; on a quiet market that may never come. The feed publishes it
at once, and publishes every print exactly once."""

from __future__ import annotations

import asyncio

from tps19.config import FeedSettings
from tps19.engine.bus import EventBus
from tps19.engine.events import BarEvent, BookEvent, TickerEvent, TradeEvent
from tps19.engine.feed import MarketFeed

SYM = "BTC/USDT"


class QuietVenue:
    """ccxt's caches as they stand after a message that no watch was waiting for; every watch
    then waits for a next message that never comes (a quiet market)."""

    def __init__(self) -> None:
        self.orderbooks = {SYM: {"bids": [[100.0, 1.0]], "asks": [[101.0, 2.0]], "nonce": 7, "timestamp": 1}}
        self.trades = {SYM: [{"id": "t1", "timestamp": 1, "side": "buy", "price": 100.5, "amount": 0.1},
                             {"id": "t2", "timestamp": 2, "side": "sell", "price": 100.4, "amount": 0.2}]}
        self.tickers = {SYM: {"timestamp": 2, "bid": 100.0, "ask": 101.0, "last": 100.4}}
        self.ohlcvs = {SYM: {"1m": [[60_000, 100.0, 101.0, 99.0, 100.4, 3.0]]}}
        self.pending = 0

    async def _never(self, *args, **kw):
        self.pending += 1
        await asyncio.Event().wait()

    watch_order_book = watch_trades = watch_ticker = watch_ohlcv = _never


def _feed(client, bus):
    return MarketFeed(client, [SYM], bus, FeedSettings(watch_timeout_s=60))


async def _once(coro) -> bool:
    """Whether one update of a stream completes without a new message."""
    try:
        await asyncio.wait_for(coro, 1.0)
        return True
    except TimeoutError:
        return False


async def test_cached_updates_are_published_without_waiting_for_another_message():
    venue, bus = QuietVenue(), EventBus()
    got: list = []
    for t in (BookEvent, TradeEvent, TickerEvent, BarEvent):
        bus.on(t, got.append)
    feed = _feed(venue, bus)
    assert await _once(feed._book_once(SYM))
    assert await _once(feed._trades_once(SYM))
    assert await _once(feed._ticker_once(SYM))
    assert await _once(feed._bars_once(SYM))
    book = next(e for e in got if isinstance(e, BookEvent))
    assert (book.seq, book.bids[0], book.asks[0]) == (7, (100.0, 1.0), (101.0, 2.0))
    assert [t.id for e in got if isinstance(e, TradeEvent) for t in e.trades] == ["t1", "t2"]
    assert any(isinstance(e, BarEvent) and e.close == 100.4 for e in got)
    # nothing newer in the cache: now each stream waits for the venue
    for once in (feed._book_once, feed._trades_once, feed._ticker_once, feed._bars_once):
        assert not await _once(once(SYM))
    assert venue.pending == 4


async def test_a_print_is_published_once_even_when_the_watch_returns_it_again():
    venue, bus = QuietVenue(), EventBus()
    prints: list[str] = []
    bus.on(TradeEvent, lambda e: prints.extend(t.id for t in e.trades))
    feed = _feed(venue, bus)
    await feed._trades_once(SYM)  # from the cache

    async def watch_again(symbol):  # ccxt's newUpdates hands the same prints back with the next one
        return venue.trades[SYM] + [{"id": "t3", "timestamp": 3, "side": "buy", "price": 100.6, "amount": 0.3}]

    venue.watch_trades = watch_again
    venue.trades[SYM].append({"id": "t3", "timestamp": 3, "side": "buy", "price": 100.6, "amount": 0.3})
    await feed._trades_once(SYM)  # t3 from the cache
    await feed._trades_once(SYM)  # the watch: t1..t3 again, all seen
    assert prints == ["t1", "t2", "t3"]
