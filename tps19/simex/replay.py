"""The simulated exchange serving a recording over its own wire (`tps19 replay DIR`).

The recorded market frames are sent as they were received, in the recording's global order,
on the same websocket channels a venue uses, so ccxt.pro, the feed, the desk and headless runs
go through exactly the code live uses. A client subscribing mid-stream first gets the book as
rebuilt from the frames so far (a snapshot whose sequence number continues the recorded chain).
The venue's clock is the recording's (the time of the frame being served), so tickers, candles
and order times read the recording's time. ``speed`` 1 or 10 paces the frames by their receive
times; ``None`` (max) sends as fast as the engine takes them.

An engine in the same process that the replay is paced by (``pace_by(engine.bus)``) gets every
frame, in the recorded order: the next frame goes out only once the engine's feed has published
what the last one carried (the book at its sequence number, its prints, its ticker, its candle).
ccxt applies every frame it reads but hands a watch only the newest state, so frames sent ahead of
the feed's watch loop reach the engine as one coalesced book (at max speed: 6 books of 422 seen).
Without an engine to pace by, max speed only bounds each subscriber's socket queue.
Strategy warm-up candles come from the recording (what the recorded session warmed up on).

The recording must come from a Crypto.com-format venue (``sim`` or ``cryptocom``): serving a
Binance recording through a Binance wire is the multi-venue issue's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..engine.events import BarEvent, BookEvent, TickerEvent, TradeEvent
from ..engine.recording.books import Book
from ..engine.recording.format import BOOK, CANDLE, DELTA, MARKET_KINDS, TICKER, TRADE, WARMUP
from ..engine.recording.reader import RecordingError, inspect, read_rows
from ..engine.recording.replayer import read_meta
from .server import SimExchange
from .ws import Conn

log = logging.getLogger("tps19.simex")

MAX_QUEUE_AT_MAX_SPEED = 256  # unpaced: frames waiting for one subscriber before the player waits for it
SUBSCRIBE_WAIT_S = 15.0  # how long the player waits for the engine's subscriptions before it starts
PACED_SUBSCRIBE_WAIT_S = 120.0  # the same with an engine to pace by (its start loads markets, warm-up)
# A paced frame the engine has not taken after this long is reported and passed: a last resort
# against a frame the feed can never publish (the replay would hang), never a pacing mechanism.
ACK_WAIT_S = 30.0
TRADE_IDS_KEPT = 10_000  # prints published remembered per symbol (a frame's are asked for right after)


class Consumption:
    """What an engine's feed has published, per symbol: the replay's back-pressure."""

    def __init__(self) -> None:
        self.book_seq: dict[str, int] = {}
        self.trade_ids: dict[str, dict[str, None]] = defaultdict(dict)  # insertion-ordered, bounded
        self.ticker_ts: dict[str, int] = {}
        self.bar: dict[str, tuple[int, float, float, float, float, float]] = {}
        self.changed = asyncio.Event()
        self.unacked = 0  # frames passed after ACK_WAIT_S (each logged)

    def on_event(self, ev: Any) -> None:
        if isinstance(ev, BookEvent):
            if ev.seq is not None and ev.seq > self.book_seq.get(ev.symbol, -1):
                self.book_seq[ev.symbol] = ev.seq
        elif isinstance(ev, TradeEvent):
            ids = self.trade_ids[ev.symbol]
            ids.update((str(t.id), None) for t in ev.trades if t.id is not None)
            if len(ids) > 2 * TRADE_IDS_KEPT:
                for old in list(ids)[:TRADE_IDS_KEPT]:
                    del ids[old]
        elif isinstance(ev, TickerEvent):
            if ev.ts is not None and ev.ts > self.ticker_ts.get(ev.symbol, -1):
                self.ticker_ts[ev.symbol] = ev.ts
        elif isinstance(ev, BarEvent):
            if not ev.closed and ev.ts >= self.bar.get(ev.symbol, (-1,))[0]:
                self.bar[ev.symbol] = (ev.ts, ev.open, ev.high, ev.low, ev.close, ev.volume)
        self.changed.set()

    def taken(self, kind: str, symbol: str, row: Any) -> bool:
        """Whether the engine has published what this recorded frame carried."""
        if kind in (BOOK, DELTA):
            return row[6] is None or self.book_seq.get(symbol, -1) >= row[6]
        data = _frame_data(row[12])
        if kind == TRADE:
            seen = self.trade_ids[symbol]
            return all(str(t["d"]) in seen for t in data if t.get("d") is not None)
        if kind == TICKER:
            t = data[-1].get("t") if data else None
            return t is None or self.ticker_ts.get(symbol, -1) >= int(t)
        if kind == CANDLE:
            if not data:
                return True
            c = data[-1]
            bar = self.bar.get(symbol)
            if bar is None:
                return False
            try:
                want = (int(c["t"]), float(c["o"]), float(c["h"]), float(c["l"]), float(c["c"]), float(c["v"]))
            except (KeyError, TypeError, ValueError):
                return True  # not a candle the feed could publish
            return bar[0] > want[0] or bar == want
        return True

    async def wait(self, kind: str, symbol: str, row: Any) -> None:
        try:
            async with asyncio.timeout(ACK_WAIT_S):
                while not self.taken(kind, symbol, row):
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            self.unacked += 1
            log.warning("replay: the engine did not take a %s frame of %s (gseq %s) in %gs; going on",
                        kind, symbol, row[1], ACK_WAIT_S)


class ReplayExchange(SimExchange):
    """A SimExchange whose market is a recording instead of synthetic flow."""

    def __init__(self, root: Path, *, speed: float | None = 1.0, start_ns: int | None = None,
                 end_ns: int | None = None, **kw: Any) -> None:
        self.root = Path(root)
        info = inspect(self.root)
        meta = read_meta(self.root)
        exchange_id = str(meta.get("exchange_id") or (info.venues[0] if info.venues else ""))
        if exchange_id not in ("sim", "cryptocom"):
            raise RecordingError(f"{root}: a {exchange_id} recording needs that venue's wire; the simulated exchange "
                                 "replays Crypto.com-format recordings (sim, cryptocom)")
        self.info = info
        self.meta = meta
        self.speed = speed
        self.start_ns, self.end_ns = start_ns, end_ns
        first = start_ns if start_ns is not None else (info.first_ns or time.time_ns())
        self.now_ms = first // 1_000_000
        symbols = list(meta.get("symbols") or info.symbols)
        super().__init__(symbols=symbols, autoplay=False, clock=lambda: self.now_ms, **kw)
        unknown = [s for s in symbols if s not in self._by_symbol]
        if unknown:
            raise RecordingError(f"{root}: the simulated exchange does not list {', '.join(unknown)}")
        self.rbooks: dict[str, Book] = defaultdict(Book)
        self.finished = asyncio.Event()
        self.frames_sent = 0
        self.frames_total = 0
        self.warmup: dict[tuple[str, str], list[list[Any]]] = {}
        self._book_subs: dict[str, set[Conn]] = defaultdict(set)
        self.consumed: Consumption | None = None

    def pace_by(self, bus: Any) -> None:
        """Send each frame only once the engine publishing on ``bus`` has taken the one before."""
        self.consumed = Consumption()
        bus.on((BookEvent, TradeEvent, TickerEvent, BarEvent), self.consumed.on_event)

    async def start(self) -> ReplayExchange:
        await super().start()
        for r in read_rows(self.root, kinds=[WARMUP]):
            d = json.loads(r[12])
            self.warmup[(r[5], d["timeframe"])] = d["candles"]
        self._tasks.append(asyncio.create_task(self._play(), name="simex:replay"))
        return self

    # -- the venue's own market is silent: the recording is the market ---------------
    def _flush_books(self) -> int:
        self._dirty_books.clear()
        return 0

    def _publish_ticker(self, sym: str) -> None:
        pass

    def _publish_candles(self, sym: str) -> None:
        pass

    def _snapshot(self, conn: Conn, name: str, inst: Any, depth: int | None) -> None:
        """The book rebuilt from the frames so far, continuing the recorded sequence chain."""
        b = self.rbooks.get(inst.symbol)
        if b is None or b.seq is None:
            return
        bids, asks = b.levels(depth or 50)
        now = self.now_ms
        conn.send(self._envelope({"instrument_name": inst.id, "subscription": name, "channel": "book",
                                  "depth": depth, "data": [{"bids": [[_s(p), _s(q), "1"] for p, q in bids],
                                                            "asks": [[_s(p), _s(q), "1"] for p, q in asks],
                                                            "t": now, "tt": now, "u": b.seq, "cs": 0}]}))

    def _subscribe(self, conn: Conn, name: str, kind: str, inst: Any, depth: int | None) -> None:
        if kind == "book":
            assert inst is not None
            self._book_subs[inst.symbol].add(conn)
            conn.subs.add(name)
            self._snapshot(conn, name, inst, depth)
            return
        if kind.startswith("user."):
            super()._subscribe(conn, name, kind, inst, depth)  # the account's own channels
            return
        self._subs.setdefault(name, set()).add(conn)  # market channels: the recording's frames only
        conn.subs.add(name)

    def _unsubscribe(self, conn: Conn, name: str, kind: str, inst: Any, depth: int | None) -> None:
        if kind == "book" and inst is not None:
            conn.subs.discard(name)
            self._book_subs[inst.symbol].discard(conn)
            return
        super()._unsubscribe(conn, name, kind, inst, depth)

    def _forget(self, conn: Conn) -> None:
        super()._forget(conn)
        for subs in self._book_subs.values():
            subs.discard(conn)

    def _h_candles(self, params: dict) -> dict:
        """Warm-up candles as the recorded session got them (the last one still forming)."""
        out = super()._h_candles(params)
        inst = self._inst_param(params)
        recorded = self.warmup.get((inst.symbol, out["interval"])) if inst is not None else None
        if recorded:
            rows: list[dict[str, Any]] = [{"o": _s(c[1]), "h": _s(c[2]), "l": _s(c[3]), "c": _s(c[4]),
                                           "v": _s(c[5] or 0), "t": int(c[0])} for c in recorded]
            last_c, last_t = rows[-1]["c"], int(recorded[-1][0])
            step = last_t - int(recorded[-2][0]) if len(recorded) > 1 else 60_000
            rows.append({"o": last_c, "h": last_c, "l": last_c, "c": last_c, "v": "0", "t": last_t + step})
            out["data"] = rows[-int(params.get("count") or 25):]
        return out

    # -- the player ------------------------------------------------------------------
    def _subscribers(self, kind: str, symbol: str, raw: str) -> set[Conn]:
        if kind in (BOOK, DELTA):
            return self._book_subs.get(symbol, set())
        inst = self._by_symbol.get(symbol)
        if inst is None:
            return set()
        if kind == TRADE:
            return self._subs.get(f"trade.{inst.id}", set())
        if kind == TICKER:
            return self._subs.get(f"ticker.{inst.id}", set())
        if kind == CANDLE:
            try:
                sub = json.loads(raw)["result"]["subscription"]
            except (ValueError, KeyError, TypeError):
                return set()
            return self._subs.get(sub, set())
        return set()

    def _subscribed(self) -> bool:
        kinds = self.info.by_kind
        for inst in self.instruments:
            if not self._book_subs.get(inst.symbol) or not self._subs.get(f"trade.{inst.id}"):
                return False
            if self.consumed is None:
                continue
            # paced: every market channel the recording has, so no frame goes to no one
            if kinds.get(TICKER) and not self._subs.get(f"ticker.{inst.id}"):
                return False
            if kinds.get(CANDLE) and not any(n.startswith("candlestick.") and n.endswith(f".{inst.id}") and subs
                                             for n, subs in self._subs.items()):
                return False
        return True

    async def _play(self) -> None:
        try:
            wait_s = SUBSCRIBE_WAIT_S if self.consumed is None else PACED_SUBSCRIBE_WAIT_S
            deadline = time.monotonic() + wait_s
            while not self._subscribed() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # the engine subscribes channel by channel (~10 ms apart)
            await self._serve_rows()
        except Exception:  # a broken recording file: said in the log, the replay ends
            self.stats["internal_errors"] += 1
            log.exception("replay failed")
        finally:
            self.finished.set()

    async def _serve_rows(self) -> None:
        wall0 = time.monotonic()
        rec0: int | None = None
        sent_since_yield = 0
        forwarding = self.start_ns is not None  # --from: books are rebuilt from the frames before it, unsent
        for r in read_rows(self.root, end_ns=self.end_ns, kinds=MARKET_KINDS, batch_rows=4096):
            kind, symbol, ns = r[4], r[5], r[2]
            if forwarding:
                if ns < (self.start_ns or 0):
                    if kind in (BOOK, DELTA):
                        b0 = self.rbooks[symbol]
                        if kind == BOOK:
                            b0.snapshot(r[8] or [], r[9] or [], r[10] or [], r[11] or [], r[6], r[3])
                        else:
                            b0.apply(r[8], r[9], r[10], r[11], r[6], r[3])
                    self.now_ms = r[3] if r[3] else ns // 1_000_000
                    continue
                forwarding = False
                for inst in self.instruments:  # subscribers so far get the book as of --from
                    for c in list(self._book_subs.get(inst.symbol, ())):
                        for name in [n for n in c.subs if n.startswith(f"book.{inst.id}")]:
                            depth = name.rsplit(".", 1)[-1]
                            self._snapshot(c, name, inst, int(depth) if depth.isdigit() else 50)
            if rec0 is None:
                rec0 = ns
            if self.speed is not None:
                due = wall0 + (ns - rec0) / 1e9 / self.speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                    sent_since_yield = 0
            b = self.rbooks[symbol] if kind in (BOOK, DELTA) else None
            if b is not None:
                if kind == BOOK:
                    b.snapshot(r[8] or [], r[9] or [], r[10] or [], r[11] or [], r[6], r[3])
                else:
                    b.apply(r[8], r[9], r[10], r[11], r[6], r[3])
            self.now_ms = r[3] if r[3] else ns // 1_000_000
            self.frames_total += 1
            subs = self._subscribers(kind, symbol, r[12])
            for c in subs:
                c.send(r[12])
            if subs:
                self.frames_sent += 1
            if self.consumed is not None:
                if any(not c.closed for c in subs):
                    await self.consumed.wait(kind, symbol, r)
                continue
            if self.speed is None:
                # back-pressure: never more than a few hundred frames ahead of the slowest reader
                while any(c.queue.qsize() > MAX_QUEUE_AT_MAX_SPEED for c in subs if not c.closed):
                    await asyncio.sleep(0.001)
                sent_since_yield += 1
                if sent_since_yield >= 64:
                    sent_since_yield = 0
                    await asyncio.sleep(0)


def _frame_data(raw: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(raw)["result"]["data"]
    except (ValueError, KeyError, TypeError):
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _s(x: Any) -> str:
    """A float as the venue writes a decimal: no exponent, no trailing zeros."""
    d = Decimal(repr(float(x)))
    return format(d.normalize(), "f") if d else "0"
