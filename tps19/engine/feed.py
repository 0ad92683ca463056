"""Market data over ccxt.pro: books, trades, tickers and candles for every symbol.

Every watch is guarded by a timeout (a ccxt watch can hang forever on a dead or gapped
stream). A sequence gap, a crossed book or a silent stream closes the public websocket so
that every subscription is made again and starts from a fresh snapshot. Errors back off
exponentially and are counted, never raised into the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..aio import cancel_and_wait
from ..config import FeedSettings
from .bus import EventBus
from .events import BarEvent, BookEvent, ConnectionEvent, ConnState, LogEvent, TickerEvent, Trade, TradeEvent
from .orderbook import L2Book


@dataclass
class StreamStats:
    messages: int = 0
    errors: int = 0
    reconnects: int = 0
    resyncs: int = 0
    crossed: int = 0
    gaps: int = 0
    last_update: float = 0.0  # monotonic
    latency_ms: float | None = None  # local receive time minus exchange timestamp
    state: ConnState = ConnState.CONNECTING


@dataclass
class FeedStats:
    streams: dict[tuple[str, str], StreamStats] = field(default_factory=dict)

    def get(self, stream: str, symbol: str) -> StreamStats:
        key = (stream, symbol)
        if key not in self.streams:
            self.streams[key] = StreamStats()
        return self.streams[key]

    def total(self, attr: str) -> int:
        return sum(getattr(s, attr) for s in self.streams.values())


class Resync(Exception):
    """The stream's state cannot be trusted; start over from a snapshot."""


class MarketFeed:
    def __init__(
        self,
        client: Any,
        symbols: list[str],
        bus: EventBus,
        settings: FeedSettings,
        *,
        depth: int = 50,
        timeframe: str = "1m",
        books: dict[str, L2Book] | None = None,
        streams: tuple[str, ...] = ("book", "trades", "ticker", "bars"),
    ) -> None:
        self.client = client
        self.symbols = symbols
        self.bus = bus
        self.settings = settings
        self.depth = depth
        self.timeframe = timeframe
        self.books = books if books is not None else {s: L2Book(s) for s in symbols}
        self.streams = streams
        self.stats = FeedStats()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._reset_lock = asyncio.Lock()
        self._last_reset = 0.0
        self._last_bar: dict[str, list[float]] = {}

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        self._running = True
        loops: dict[str, Callable[[str], Awaitable[None]]] = {
            "book": self._book_once,
            "trades": self._trades_once,
            "ticker": self._ticker_once,
            "bars": self._bars_once,
        }
        for symbol in self.symbols:
            for stream in self.streams:
                self._tasks.append(asyncio.create_task(self._run(stream, symbol, loops[stream]), name=f"feed:{stream}:{symbol}"))
        self._tasks.append(asyncio.create_task(self._stale_monitor(), name="feed:stale"))

    async def stop(self) -> None:
        self._running = False
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        for (stream, symbol), st in self.stats.streams.items():
            st.state = ConnState.STOPPED

    # -- the guarded loop ----------------------------------------------------------
    def _set_state(self, stream: str, symbol: str, state: ConnState, detail: str = "") -> None:
        st = self.stats.get(stream, symbol)
        if st.state != state:
            st.state = state
            self.bus.publish(ConnectionEvent(stream=stream, symbol=symbol, state=state, detail=detail))

    def _log(self, level: str, message: str, **fields: Any) -> None:
        self.bus.publish(LogEvent(level=level, message=message, fields=fields))

    async def _run(self, stream: str, symbol: str, once: Callable[[str], Awaitable[None]]) -> None:
        import ccxt

        st = self.stats.get(stream, symbol)
        backoff = self.settings.reconnect_min_s
        timeout = self.settings.watch_timeout_s
        while self._running:
            try:
                await asyncio.wait_for(once(symbol), timeout)
                backoff = self.settings.reconnect_min_s
                continue
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                st.resyncs += 1
                self._set_state(stream, symbol, ConnState.RESYNC, f"no {stream} update for {timeout:g}s")
                self._log("warning", "stream silent, resubscribing", stream=stream, symbol=symbol, timeout_s=timeout)
                await self._reset_public_ws()
                continue
            except (Resync, ccxt.ChecksumError, ccxt.InvalidNonce) as err:
                st.resyncs += 1
                if isinstance(err, ccxt.ChecksumError):
                    st.gaps += 1
                self._set_state(stream, symbol, ConnState.RESYNC, _short(err))
                self._log("warning", "book resync", stream=stream, symbol=symbol, reason=_short(err))
                await self._reset_public_ws()
                continue
            except ccxt.BadSymbol as err:
                st.errors += 1
                self._set_state(stream, symbol, ConnState.STOPPED, _short(err))
                self._log("error", "symbol not available on venue", stream=stream, symbol=symbol)
                return
            except ccxt.NotSupported:
                self._set_state(stream, symbol, ConnState.STOPPED, "not supported by venue")
                self._log("warning", "stream not supported by venue", stream=stream, symbol=symbol)
                return
            except Exception as err:  # network errors, exchange errors, parser surprises
                st.errors += 1
                st.reconnects += 1
                self._set_state(stream, symbol, ConnState.RECONNECTING, _short(err))
                self._log("warning", "stream error, reconnecting", stream=stream, symbol=symbol,
                          error=type(err).__name__, detail=_short(err), retry_in_s=round(backoff, 2))
            await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
            backoff = min(backoff * 2, self.settings.reconnect_max_s)

    async def _reset_public_ws(self) -> None:
        """Close the public websocket(s); ccxt reconnects and resubscribes on the next watch."""
        async with self._reset_lock:
            if time.monotonic() - self._last_reset < 0.5:
                return  # another stream has just done it
            self._last_reset = time.monotonic()
            ws_urls = self.client.urls.get("api", {}).get("ws", {})
            private = ws_urls.get("private") if isinstance(ws_urls, dict) else None
            for url, ws in list(getattr(self.client, "clients", {}).items()):
                if private and url == private:
                    continue
                with contextlib.suppress(Exception):
                    await ws.close()
                self.client.clients.pop(url, None)
            # Forget ccxt's cached books so the next snapshot starts clean.
            with contextlib.suppress(Exception):
                self.client.orderbooks.clear()

    def _mark(self, stream: str, symbol: str, exchange_ts: int | None) -> None:
        st = self.stats.get(stream, symbol)
        st.messages += 1
        st.last_update = time.monotonic()
        if exchange_ts:
            st.latency_ms = max(0.0, time.time() * 1000 - exchange_ts)
        if st.state != ConnState.CONNECTED:
            self._set_state(stream, symbol, ConnState.CONNECTED)

    # -- one update of each stream -------------------------------------------------
    async def _book_once(self, symbol: str) -> None:
        ob = await self.client.watch_order_book(symbol, self.depth)
        depth = self.depth
        # ccxt's level lists are live and shared: copy before keeping them.
        bids = tuple((l[0], l[1]) for l in ob["bids"][:depth])
        asks = tuple((l[0], l[1]) for l in ob["asks"][:depth])
        if bids and asks and bids[0][0] >= asks[0][0]:
            self.stats.get("book", symbol).crossed += 1
            raise Resync(f"crossed book: bid {bids[0][0]} >= ask {asks[0][0]}")
        book = self.books[symbol]
        book.snapshot(bids, asks, seq=ob.get("nonce"), ts=ob.get("timestamp"))
        self._mark("book", symbol, ob.get("timestamp"))
        self.bus.publish(BookEvent(symbol=symbol, bids=bids, asks=asks, ts=ob.get("timestamp"), seq=ob.get("nonce")))

    async def _trades_once(self, symbol: str) -> None:
        trades = await self.client.watch_trades(symbol)
        if not trades:
            return
        out = tuple(
            Trade(ts=int(t["timestamp"] or 0), side=t.get("side") or "", price=float(t["price"]),
                  amount=float(t["amount"]), id=t.get("id"))
            for t in trades
        )
        self._mark("trades", symbol, out[-1].ts)
        self.bus.publish(TradeEvent(symbol=symbol, trades=out))

    async def _ticker_once(self, symbol: str) -> None:
        t = await self.client.watch_ticker(symbol)
        self._mark("ticker", symbol, t.get("timestamp"))
        self.bus.publish(
            TickerEvent(symbol=symbol, bid=t.get("bid"), ask=t.get("ask"), last=t.get("last"),
                        volume_24h=t.get("baseVolume"), change_pct_24h=t.get("percentage"), ts=t.get("timestamp"))
        )

    async def _bars_once(self, symbol: str) -> None:
        candles = await self.client.watch_ohlcv(symbol, self.timeframe)
        if not candles:
            return
        self._mark("bars", symbol, None)
        for c in candles:
            prev = self._last_bar.get(symbol)
            if prev is not None and c[0] > prev[0]:
                # A newer candle has started: the previous one is final.
                self.bus.publish(bar_event(symbol, self.timeframe, prev, closed=True))
            if prev is None or c[0] >= prev[0]:
                self._last_bar[symbol] = list(c)
                self.bus.publish(bar_event(symbol, self.timeframe, c, closed=False))

    async def _stale_monitor(self) -> None:
        limit = self.settings.stale_after_s
        while self._running:
            await asyncio.sleep(min(1.0, limit / 2))
            now = time.monotonic()
            for (stream, symbol), st in list(self.stats.streams.items()):
                # Trades may be quiet on a calm market; a book that stops moving is a dead feed.
                if stream == "book" and st.state == ConnState.CONNECTED and st.last_update and now - st.last_update > limit:
                    self._set_state(stream, symbol, ConnState.STALE, f"no update for {now - st.last_update:.1f}s")
                    self._log("warning", "feed stale", stream=stream, symbol=symbol, silent_s=round(now - st.last_update, 1))

    def book_age_s(self, symbol: str) -> float | None:
        st = self.stats.streams.get(("book", symbol))
        return time.monotonic() - st.last_update if st and st.last_update else None


def bar_event(symbol: str, timeframe: str, c: list[float], closed: bool) -> BarEvent:
    return BarEvent(symbol=symbol, timeframe=timeframe, ts=int(c[0]), open=float(c[1]), high=float(c[2]),
                    low=float(c[3]), close=float(c[4]), volume=float(c[5] or 0), closed=closed)


def _short(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= 200 else text[:197] + "..."
