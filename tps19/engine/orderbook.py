"""The engine's copy of each symbol's top of book (``Engine.books``, ``MarketFeed.books``).

ccxt.pro keeps the venue's book itself: it applies every delta and checks the venue's sequence
numbers (on a gap it drops the book and the feed resyncs from a fresh snapshot). On each update
the feed copies the top ``depth`` levels of ccxt's book here and publishes them as a BookEvent;
``Engine.summary`` (headless log, metrics) reads the best levels and the feed reads ``seq`` to
tell a new update from one already published. So this is a snapshot holder, not a delta engine
(an L2 delta engine of our own ran only in tests and benchmarks and was removed: see
tests/engine/test_orderbook.py, which replays real Binance depth through ccxt.pro instead).
"""

from __future__ import annotations

Level = tuple[float, float]


class L2Book:
    __slots__ = ("symbol", "bids", "asks", "seq", "ts")

    def __init__(self, symbol: str = "") -> None:
        self.symbol = symbol
        self.bids: tuple[Level, ...] = ()  # best (highest) first
        self.asks: tuple[Level, ...] = ()  # best (lowest) first
        self.seq: int | None = None  # the venue's sequence number (ccxt's nonce) of this copy
        self.ts: int | None = None  # exchange timestamp, ms

    def snapshot(self, bids: tuple[Level, ...], asks: tuple[Level, ...], seq: int | None = None,
                 ts: int | None = None) -> None:
        """Keep these levels, best first, as ccxt.pro's book holds them (sorted, no empty level):
        kept as given, since the feed calls this on every book update."""
        self.bids, self.asks, self.seq, self.ts = bids, asks, seq, ts

    def best_bid(self) -> Level | None:
        return self.bids[0] if self.bids else None

    def best_ask(self) -> Level | None:
        return self.asks[0] if self.asks else None
