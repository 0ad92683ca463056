"""Typed events carried on the engine's bus.

Market data (book levels, trade prices) is float: it is analytics and display. Anything
booked (orders, fills, balances, P&L) is Decimal and lives in the trading events that
the trading layer adds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from . import clock as _clock

Level = tuple[float, float]  # (price, size)


def now_ms() -> int:
    return _clock.now_ms()


@dataclass(slots=True, frozen=True)
class BookEvent:
    """Top of an L2 book after an update (bids descending, asks ascending)."""

    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts: int | None  # exchange timestamp, ms
    seq: int | None
    received: float = field(default_factory=time.perf_counter)  # when the engine got it

    @property
    def best_bid(self) -> float | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0][0] if self.asks else None

    @property
    def mid(self) -> float | None:
        if self.bids and self.asks:
            return (self.bids[0][0] + self.asks[0][0]) / 2
        return None

    @property
    def spread(self) -> float | None:
        if self.bids and self.asks:
            return self.asks[0][0] - self.bids[0][0]
        return None


@dataclass(slots=True, frozen=True)
class Trade:
    ts: int
    side: str  # "buy" or "sell" (taker side)
    price: float
    amount: float
    id: str | None = None


@dataclass(slots=True, frozen=True)
class TradeEvent:
    symbol: str
    trades: tuple[Trade, ...]
    received: float = field(default_factory=time.perf_counter)


@dataclass(slots=True, frozen=True)
class TickerEvent:
    symbol: str
    bid: float | None
    ask: float | None
    last: float | None
    volume_24h: float | None
    change_pct_24h: float | None
    ts: int | None


@dataclass(slots=True, frozen=True)
class BarEvent:
    symbol: str
    timeframe: str
    ts: int  # open time, ms
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool


class ConnState(str, Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    STALE = "stale"
    RECONNECTING = "reconnecting"
    RESYNC = "resync"
    STOPPED = "stopped"


@dataclass(slots=True, frozen=True)
class ConnectionEvent:
    stream: str  # "book", "trades", "ticker", "bars"
    symbol: str
    state: ConnState
    detail: str = ""
    ts: int = field(default_factory=now_ms)


@dataclass(slots=True, frozen=True)
class VenueEvent:
    """The engine is running on this venue. ``name`` as the trader reads it (e.g.
    ``sim@127.0.0.1:port``); ``trading``: orders can be placed (False: market data only)."""

    name: str
    mode: str
    trading: bool
    ts: int = field(default_factory=now_ms)


@dataclass(slots=True, frozen=True)
class LogEvent:
    level: str  # "debug" | "info" | "warning" | "error"
    message: str
    fields: dict[str, Any] = field(default_factory=dict)
    ts: int = field(default_factory=now_ms)


@dataclass(slots=True, frozen=True)
class StorageAlert:
    """The engine's footing on its database changed: ``halted`` with the reason (its lock lost,
    its file deleted or replaced), or trading allowed again (``halted`` False)."""

    database: str
    halted: bool
    reason: str
    ts: int = field(default_factory=now_ms)
