"""Market data over ccxt.pro: books, trades, tickers and candles for every symbol.

Every watch is guarded by a timeout (a ccxt watch can hang forever on a dead or gapped
stream). A sequence gap, a crossed book, a silent book or a malformed frame replaces the
public websocket so that every subscription is made again and starts from a fresh snapshot.
Streams never end on their own: a watch cancelled by such a reset is a reconnect, errors back
off per stream (with jitter, capped) and are counted, and a supervisor restarts any stream
task that ends unexpectedly. A book is fresh only while it is both recent and close to the
exchange's own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..aio import cancel_and_wait
from ..config import FeedSettings
from . import clock as _clock
from .bus import EventBus
from .ccxt_classes import ccxt_base
from .events import BarEvent, BookEvent, ConnectionEvent, ConnState, LogEvent, TickerEvent, Trade, TradeEvent
from .orderbook import L2Book
from .venue import FrameGuard, install_frame_guard

# Streams whose silence or lag says the connection is unhealthy. Trades, tickers and candles
# may be quiet on a calm market; a book that stops moving (or moves late) is a dead feed.
JUDGED_STREAMS = frozenset({"book"})


@dataclass
class StreamStats:
    messages: int = 0
    errors: int = 0
    reconnects: int = 0
    resyncs: int = 0
    restarts: int = 0  # the stream's task ended unexpectedly and the supervisor started it again
    crossed: int = 0
    gaps: int = 0
    last_update: float = 0.0  # monotonic
    latency_ms: float | None = None  # local receive time minus exchange timestamp
    last_exchange_ts: int | None = None
    state: ConnState = ConnState.CONNECTING


@dataclass
class FeedStats:
    streams: dict[tuple[str, str], StreamStats] = field(default_factory=dict)
    bad_frames: int = 0  # malformed websocket frames survived (each one replaced its connection)

    def get(self, stream: str, symbol: str) -> StreamStats:
        key = (stream, symbol)
        if key not in self.streams:
            self.streams[key] = StreamStats()
        return self.streams[key]

    def total(self, attr: str) -> int:
        return sum(getattr(s, attr) for s in self.streams.values())


class Resync(Exception):
    """The stream's state cannot be trusted; start over from a snapshot."""


class Backoff:
    """Per-stream retry delay: doubles on each failure up to a cap, with jitter so that streams
    failing together do not retry together; back to the minimum once the stream has stayed
    healthy for `healthy_s` (a snapshot followed at once by another gap is not health)."""

    def __init__(self, low: float, high: float, healthy_s: float) -> None:
        self.low, self.high, self.healthy_s = low, max(low, high), healthy_s
        self.delay = low
        self._failed_at = 0.0

    def failure(self) -> float:
        delay = self.delay * (0.5 + random.random())
        self.delay = min(self.delay * 2, self.high)
        self._failed_at = time.monotonic()
        return min(delay, self.high)

    def success(self) -> None:
        if self.delay > self.low and time.monotonic() - self._failed_at > self.healthy_s:
            self.delay = self.low

    def jitter(self) -> float:
        """A short pause that does not count against the stream (someone else's reset)."""
        return self.low * (0.5 + random.random())


def _cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task is not None and task.cancelling())


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
        # ccxt keeps a diff-depth book (binance: REST snapshot + diffs) only as deep as the watch's
        # limit, truncated in place: a level deleted at the top is not backfilled until the next
        # snapshot, so a 5-level watch shows 4, then 3 (seen replaying real Binance depth). Such
        # venues are watched at ccxt's full snapshot depth; the feed publishes the top `depth`.
        self.watch_limit: int | None = None if str(getattr(client, "id", "")).startswith("binance") else depth
        self.timeframe = timeframe
        self.books = books if books is not None else {s: L2Book(s) for s in symbols}
        self.streams = streams
        self.stats = FeedStats()
        self._once: dict[str, Callable[[str], Awaitable[None]]] = {
            "book": self._book_once,
            "trades": self._trades_once,
            "ticker": self._ticker_once,
            "bars": self._bars_once,
        }
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._restart_handles: dict[str, asyncio.TimerHandle] = {}
        self._retired: set[tuple[str, str]] = set()  # streams the venue cannot serve: not restarted
        self._closing: set[asyncio.Task[None]] = set()
        self._running = False
        self._generation = 0  # bumped by every public websocket reset
        self._frames: FrameGuard | None = None
        self._bad_pending = 0
        self._bad_last: tuple[str, str] = ("", "")
        self._last_bar: dict[str, list[float]] = {}
        self._trade_ids: dict[str, _RecentIds] = {}
        self._last_trade_ts: dict[str, int] = {}  # the newest print published, per symbol
        self._trade_gen: dict[str, int] = {}  # the websocket generation each trade stream last watched on
        self._trade_gap: dict[str, int] = {}  # symbol -> last print's ts before a resubscribe: backfill due
        self._gap_drained: set[str] = set()  # gaps whose old socket's prints have left the cache
        self._ticker_ts: dict[str, Any] = {}

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        self._running = True
        if hasattr(self.client, "client"):  # a ccxt.pro exchange (tests may pass a bare stub)
            self._frames = install_frame_guard(self.client)
            self._frames.listen(self._on_bad_frame)
        for symbol in self.symbols:
            for stream in self.streams:
                self._spawn(f"feed:{stream}:{symbol}", partial(self._run, stream, symbol))
        self._spawn("feed:stale", self._stale_monitor)

    async def stop(self) -> None:
        self._running = False
        for handle in self._restart_handles.values():
            handle.cancel()
        self._restart_handles.clear()
        await cancel_and_wait(list(self._tasks.values()))
        self._tasks.clear()
        if self._closing:  # let replaced websockets finish closing; never hang a stop on one
            await asyncio.wait(list(self._closing), timeout=2.0)
            await cancel_and_wait(list(self._closing))
        if self._frames is not None:
            self._frames.unlisten(self._on_bad_frame)
        for st in self.stats.streams.values():
            st.state = ConnState.STOPPED

    # -- supervision -----------------------------------------------------------------
    def _spawn(self, name: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._restart_handles.pop(name, None)
        if not self._running:
            return
        task = asyncio.create_task(factory(), name=name)
        self._tasks[name] = task
        task.add_done_callback(partial(self._on_task_end, name, factory))

    def _on_task_end(self, name: str, factory: Callable[[], Coroutine[Any, Any, None]], task: asyncio.Task[None]) -> None:
        if not self._running or self._tasks.get(name) is not task:
            return
        parts = name.split(":", 2)
        key = (parts[1], parts[2]) if len(parts) == 3 else None
        if task.cancelled():
            if all(t.done() or t.cancelling() for t in self._tasks.values()):
                return  # every feed task cancelled at once: the loop is shutting down, no stream died
            reason = "cancelled"
        elif task.exception() is not None:
            reason = _short(task.exception())  # type: ignore[arg-type]
        elif key in self._retired:
            return
        else:
            reason = "returned"
        restarts = 1
        fields: dict[str, Any] = {"task": name, "reason": reason}
        if key is not None:
            st = self.stats.get(*key)
            st.restarts += 1
            restarts = st.restarts
            fields.update(stream=key[0], symbol=key[1], restarts=st.restarts)
            self._set_state(key[0], key[1], ConnState.RECONNECTING, f"task ended ({reason}), restarting")
        # A task that keeps dying waits longer each time, so a bug cannot spin the loop.
        delay = min(self.settings.reconnect_min_s * 2 ** min(restarts - 1, 10), self.settings.reconnect_max_s)
        fields["retry_in_s"] = round(delay, 2)
        self._log("error", "feed task ended unexpectedly, restarting", **fields)
        loop = asyncio.get_running_loop()
        self._restart_handles[name] = loop.call_later(delay, self._spawn, name, factory)

    # -- the guarded loop ----------------------------------------------------------
    def _set_state(self, stream: str, symbol: str, state: ConnState, detail: str = "") -> None:
        st = self.stats.get(stream, symbol)
        if st.state != state:
            st.state = state
            self.bus.publish(ConnectionEvent(stream=stream, symbol=symbol, state=state, detail=detail))

    def _log(self, level: str, message: str, **fields: Any) -> None:
        self.bus.publish(LogEvent(level=level, message=message, fields=fields))

    def _judges_connection(self, stream: str) -> bool:
        return stream in JUDGED_STREAMS or not JUDGED_STREAMS.intersection(self.streams)

    async def _run(self, stream: str, symbol: str) -> None:
        ccxt = ccxt_base()

        once = self._once[stream]
        st = self.stats.get(stream, symbol)
        timeout = self.settings.watch_timeout_s
        backoff = Backoff(self.settings.reconnect_min_s, self.settings.reconnect_max_s, self.settings.stale_after_s)
        while self._running and not _cancelling():
            generation = self._generation
            try:
                await asyncio.wait_for(once(symbol), timeout)
                backoff.success()
                continue
            except asyncio.CancelledError:
                if not self._running or _cancelling():
                    raise
                # Not a stop: ccxt cancelled the watch because its websocket was closed under it
                # (another stream's resync). Subscribe again on the new connection.
                st.reconnects += 1
                self._set_state(stream, symbol, ConnState.RECONNECTING, "websocket replaced")
                delay = backoff.jitter()
            except TimeoutError:
                if not self._judges_connection(stream):
                    continue  # a quiet market; the book watches over the connection
                st.resyncs += 1
                self._set_state(stream, symbol, ConnState.RESYNC, f"no {stream} update for {timeout:g}s")
                delay = backoff.failure()
                self._log("warning", "stream silent, resubscribing", stream=stream, symbol=symbol, timeout_s=timeout,
                          retry_in_s=round(delay, 2))
                self._reset_public_ws(generation)
            except (Resync, ccxt.ChecksumError, ccxt.InvalidNonce) as err:
                st.resyncs += 1
                if isinstance(err, ccxt.ChecksumError):
                    st.gaps += 1
                self._set_state(stream, symbol, ConnState.RESYNC, _short(err))
                delay = backoff.failure()
                self._log("warning", "book resync", stream=stream, symbol=symbol, reason=_short(err),
                          retry_in_s=round(delay, 2))
                self._reset_public_ws(generation)
            except ccxt.BadSymbol as err:
                st.errors += 1
                self._retired.add((stream, symbol))
                self._set_state(stream, symbol, ConnState.STOPPED, _short(err))
                self._log("error", "symbol not available on venue", stream=stream, symbol=symbol)
                return
            except ccxt.NotSupported:
                self._retired.add((stream, symbol))
                self._set_state(stream, symbol, ConnState.STOPPED, "not supported by venue")
                self._log("warning", "stream not supported by venue", stream=stream, symbol=symbol)
                return
            except Exception as err:  # network errors, exchange errors, parser surprises
                st.errors += 1
                st.reconnects += 1
                self._set_state(stream, symbol, ConnState.RECONNECTING, _short(err))
                delay = backoff.failure()
                self._log("warning", "stream error, reconnecting", stream=stream, symbol=symbol,
                          error=type(err).__name__, detail=_short(err), retry_in_s=round(delay, 2))
            if stream == "trades":
                self._mark_trade_gap(symbol)  # the next watch subscribes again
            await asyncio.sleep(delay)

    def _reset_public_ws(self, seen_generation: int) -> None:
        """Replace the public websocket(s): the next watch of every stream subscribes afresh.

        `seen_generation` is the reset count when the failing watch began. If a reset has
        happened since, that watch's websocket is already gone and its next watch lands on a
        fresh one, so there is nothing to do (a time-based "someone just did it" shortcut
        could leave a stream on the old, broken subscription).
        """
        if seen_generation != self._generation:
            return
        self._generation += 1
        clients = getattr(self.client, "clients", None) or {}
        ws_urls = self.client.urls.get("api", {}).get("ws", {})
        private = ws_urls.get("private") if isinstance(ws_urls, dict) else None
        # Detach and forget cached books before anything can await: a watch started from here
        # on gets a new websocket, a new subscription and a fresh snapshot.
        old = [clients.pop(url) for url in list(clients) if not (private and url == private)]
        with contextlib.suppress(Exception):
            self.client.orderbooks.clear()
        for ws in old:
            task = asyncio.create_task(self._close_ws(ws), name="feed:close-ws")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_ws(ws: Any) -> None:
        ccxt = ccxt_base()

        # Marked as failed, ccxt's close callback leaves the exchange's client table alone;
        # otherwise it would delete the *new* websocket registered under the same url.
        if getattr(ws, "error", None) is None:
            ws.error = ccxt.NetworkError("replaced by a resync")
        with contextlib.suppress(Exception):
            await ws.close()  # cancels every watch still waiting on it: their streams reconnect

    def _on_bad_frame(self, total: int, url: str, err: BaseException) -> None:
        # Called from ccxt's receive callback: count now, log once per burst from the event loop.
        self.stats.bad_frames += 1
        self._bad_last = (url, type(err).__name__)
        self._bad_pending += 1
        if self._bad_pending == 1:
            asyncio.get_running_loop().call_soon(self._report_bad_frames)

    def _report_bad_frames(self) -> None:
        count, self._bad_pending = self._bad_pending, 0
        url, error = self._bad_last
        self._log("warning", "malformed frames from venue, reconnecting", bad_frames=count,
                  bad_frames_total=self.stats.bad_frames, error=error, url=url)

    def _mark(self, stream: str, symbol: str, exchange_ts: int | None) -> None:
        st = self.stats.get(stream, symbol)
        st.messages += 1
        st.last_update = time.monotonic()
        # Only a timestamp that moved says how late the data is (some venues keep the snapshot's).
        if exchange_ts and exchange_ts != st.last_exchange_ts:
            st.last_exchange_ts = exchange_ts
            st.latency_ms = max(0.0, _clock.now_ms() - exchange_ts)
        limit_ms = self.settings.stale_after_s * 1000
        if stream in JUDGED_STREAMS and st.latency_ms is not None and st.latency_ms > limit_ms:
            if st.state != ConnState.STALE:
                self._set_state(stream, symbol, ConnState.STALE, f"exchange time lags by {st.latency_ms / 1000:.1f}s")
                self._log("warning", "feed lagging", stream=stream, symbol=symbol, lag_s=round(st.latency_ms / 1000, 1))
        elif st.state != ConnState.CONNECTED:
            self._set_state(stream, symbol, ConnState.CONNECTED)

    # -- one update of each stream -------------------------------------------------
    # ccxt resolves a watch only if one is pending when a message is handled: an update that lands
    # between two watches is in ccxt's cache but returned only with the *next* message, which on a
    # quiet market may never come (the desk would show an older state than ccxt holds). So each
    # watch first takes what the cache has that was not published yet.
    def _cached(self, attr: str, symbol: str) -> Any:
        cache = getattr(self.client, attr, None)
        return cache.get(symbol) if isinstance(cache, dict) else None

    async def _book_once(self, symbol: str) -> None:
        ob = self._cached("orderbooks", symbol)
        if ob is None or ob.get("nonce") is None or ob.get("nonce") == self.books[symbol].seq or not ob.get("bids"):
            ob = await self.client.watch_order_book(symbol, self.watch_limit)
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
        seen = self._trade_ids.setdefault(symbol, _RecentIds())
        # ccxt appends prints to its cache: the ones not published yet are its tail.
        unseen: list[dict] = []
        for t in reversed(self._cached("trades", symbol) or ()):
            if t.get("id") in seen:
                break
            if t.get("id") is not None:
                unseen.append(t)
        unseen.reverse()
        if not unseen:
            # A reset replaced the websocket since the last watch: the old socket's prints are out
            # of the cache, the next watch subscribes again and a gap starts.
            if self._trade_gen.setdefault(symbol, self._generation) != self._generation:
                self._trade_gen[symbol] = self._generation
                self._mark_trade_gap(symbol)
            if symbol in self._trade_gap:
                self._gap_drained.add(symbol)  # what reaches the cache from now on is the new socket's
        # A print is published once, whether it came from the cache or from the watch (paper
        # fills are driven by prints: a repeat would fill twice).
        rows = unseen or await self.client.watch_trades(symbol)
        if rows and symbol in self._gap_drained:
            # Prints arrive again, so the venue has registered the new subscription: whatever it
            # printed since the last print published went to no one and is in its REST trades.
            rows = await self._missed_prints(symbol, self._trade_gap[symbol], seen) + list(rows)
            del self._trade_gap[symbol]
            self._gap_drained.discard(symbol)
        new = []
        for t in rows:
            if t.get("id") is None or seen.add(t["id"]):
                new.append(Trade(ts=int(t["timestamp"] or 0), side=t.get("side") or "", price=float(t["price"]),
                                 amount=float(t["amount"]), id=t.get("id")))
        out = tuple(new)
        if not out:
            return
        self._mark("trades", symbol, out[-1].ts)
        self._last_trade_ts[symbol] = max(out[-1].ts, self._last_trade_ts.get(symbol, 0))
        self.bus.publish(TradeEvent(symbol=symbol, trades=out))

    def _mark_trade_gap(self, symbol: str) -> None:
        # Only after a print was published: at the first subscription, earlier prints are history,
        # not missed prints (a paper order restored from the db must not fill on them).
        if symbol in self._last_trade_ts:
            self._trade_gap.setdefault(symbol, self._last_trade_ts[symbol])
            self._gap_drained.discard(symbol)

    async def _missed_prints(self, symbol: str, since_ts: int, seen: _RecentIds) -> list[dict]:
        """The venue's prints from `since_ts` on that were not published (the venue sends no
        snapshot of past prints on subscribe, so a resubscribe's gap is lost otherwise)."""
        try:
            rows = await self.client.fetch_trades(symbol, limit=150)
        except Exception as err:  # the gap stays unfilled; the live prints still go out
            self.stats.get("trades", symbol).errors += 1
            self._log("warning", "prints missed while resubscribing could not be fetched", symbol=symbol,
                      error=_short(err))
            return []
        missed = [t for t in rows if t.get("id") is not None and t["id"] not in seen
                  and (t.get("timestamp") or 0) >= since_ts]
        if missed:
            self._log("info", "prints missed while resubscribing published", symbol=symbol, prints=len(missed))
        return missed

    async def _ticker_once(self, symbol: str) -> None:
        t = self._cached("tickers", symbol)
        if t is None or t.get("timestamp") is None or t.get("timestamp") == self._ticker_ts.get(symbol):
            t = await self.client.watch_ticker(symbol)
        self._ticker_ts[symbol] = t.get("timestamp")
        self._mark("ticker", symbol, t.get("timestamp"))
        self.bus.publish(
            TickerEvent(symbol=symbol, bid=t.get("bid"), ask=t.get("ask"), last=t.get("last"),
                        volume_24h=t.get("baseVolume"), change_pct_24h=t.get("percentage"), ts=t.get("timestamp"))
        )

    async def _bars_once(self, symbol: str) -> None:
        by_tf = self._cached("ohlcvs", symbol)
        cached = by_tf.get(self.timeframe) if isinstance(by_tf, dict) else None
        if cached and list(cached[-1]) != self._last_bar.get(symbol):
            candles = list(cached[-2:])  # the forming candle, and the one it may have just closed
        else:
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
                if stream in JUDGED_STREAMS and st.state == ConnState.CONNECTED and st.last_update and now - st.last_update > limit:
                    self._set_state(stream, symbol, ConnState.STALE, f"no update for {now - st.last_update:.1f}s")
                    self._log("warning", "feed stale", stream=stream, symbol=symbol, silent_s=round(now - st.last_update, 1))

    # -- views ---------------------------------------------------------------------
    def fresh(self, stream: str, symbol: str) -> bool:
        """Connected and delivering; for a book also recent and close to the exchange's clock."""
        st = self.stats.streams.get((stream, symbol))
        if st is None or st.state != ConnState.CONNECTED:
            return False
        if stream in JUDGED_STREAMS:
            return time.monotonic() - st.last_update <= self.settings.stale_after_s
        return True

    def stale_streams(self) -> list[tuple[str, str]]:
        """(stream, symbol) pairs that are not fresh now, streams the venue cannot serve aside."""
        return [(stream, symbol) for symbol in self.symbols for stream in self.streams
                if (stream, symbol) not in self._retired and not self.fresh(stream, symbol)]

    def all_fresh(self) -> bool:
        """Is every stream of every symbol fresh? (cheap: for the desk and the soak benchmark)"""
        return not self.stale_streams()


class _RecentIds:
    """The ids of the last few thousand prints of one symbol (bounded memory)."""

    def __init__(self, size: int = 5000) -> None:
        self._ids: set[Any] = set()
        self._order: deque[Any] = deque()
        self._size = size

    def __contains__(self, trade_id: Any) -> bool:
        return trade_id in self._ids

    def add(self, trade_id: Any) -> bool:
        """Remember `trade_id`; True if it was new."""
        if trade_id in self._ids:
            return False
        self._ids.add(trade_id)
        self._order.append(trade_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


def bar_event(symbol: str, timeframe: str, c: list[float], closed: bool) -> BarEvent:
    return BarEvent(symbol=symbol, timeframe=timeframe, ts=int(c[0]), open=float(c[1]), high=float(c[2]),
                    low=float(c[3]), close=float(c[4]), volume=float(c[5] or 0), closed=closed)


def _short(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= 200 else text[:197] + "..."
