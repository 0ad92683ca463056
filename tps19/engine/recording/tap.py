"""The recorder: taps ccxt's websocket clients and the engine's bus, feeds the background writer.

* Venue frames are taken at ccxt's client message handler (``handle_text_or_binary_message``,
  where the gap guard and the frame guard sit): every frame as received, before ccxt coalesces
  it into a book, with the local receive time and the next global receive sequence number. On
  the event loop that is one tuple appended; parsing into rows happens in the writer thread.
* What the engine did is taken from its bus (synchronous callbacks, in publication order): the
  books, prints and bars the feed published (``view.*``), signals, order updates, fills and the
  book each paper execution walked. Those rows share the same sequence, so a replay knows
  which frames the engine had seen when it decided.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from .dialects import dialect_for
from .format import (
    BROKER_BOOK,
    BROKER_TRADES,
    DECISION,
    EXECUTION,
    FILL,
    META,
    ORDER,
    SIGNAL,
    VIEW_BAR,
    VIEW_BOOK,
    VIEW_TRADES,
    WARMUP,
    Row,
)
from .writer import RecordingWriter, WriterSettings
from ..ws_hooks import on_every_ws


def _plain(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def to_json(obj: Any) -> str:
    return json.dumps(obj, default=_plain, separators=(",", ":"))


class Recorder:
    def __init__(self, root: Path, venue: str, exchange_id: str, settings: WriterSettings | None = None,
                 on_problem: Callable[[str, dict[str, Any]], None] | None = None,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.venue = venue
        self.exchange_id = exchange_id
        self.clock_ns = clock_ns
        self.gseq = 0
        self._parse = dialect_for(exchange_id)
        self._symbols: dict[str, str] = {}  # venue market id -> unified symbol
        self.writer = RecordingWriter(root, venue, settings, on_problem=on_problem, convert=self._convert)
        self.frames = 0
        self.taking = True  # off once the engine starts stopping: the recording ends there

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Recorder:
        self.writer.start()
        return self

    def close(self) -> None:
        self.writer.close()

    def set_markets(self, markets: dict[str, Any]) -> None:
        for sym, m in markets.items():
            mid = m.get("id") if isinstance(m, dict) else None
            if mid:
                self._symbols[str(mid)] = sym
                self._symbols[str(mid).lower()] = sym

    def _symbol_of(self, market_id: str) -> str:
        return self._symbols.get(market_id) or self._symbols.get(market_id.lower()) or market_id

    def _next(self) -> int:
        self.gseq += 1
        return self.gseq

    # -- rows ------------------------------------------------------------------------
    def _convert(self, items: list[Any]) -> list[Row]:
        """In the writer thread: frames parsed by the venue's dialect, engine events to JSON."""
        out: list[Row] = []
        for it in items:
            tag = it[0]
            if tag == "f":
                row = self._parse(it[1], it[2], it[3], self._symbol_of)
                if row is not None:
                    out.append(row)
            elif tag == "e":
                _, g, ns, kind, symbol, venue_ts, seq, payload = it
                raw = payload if isinstance(payload, str) else to_json(payload)
                out.append((g, ns, venue_ts, kind, symbol, seq, None, None, None, None, None, raw))
            else:
                out.append(it[1])
        return out

    def frame(self, text: str | bytes) -> None:
        """One websocket frame as received (called from ccxt's receive callback: keep it cheap)."""
        if not self.taking:
            return
        if isinstance(text, bytes):
            try:
                text = text.decode()
            except UnicodeDecodeError:
                return
        self.frames += 1
        self.writer.add(("f", self._next(), self.clock_ns(), text))  # type: ignore[arg-type]

    def event(self, kind: str, symbol: str, payload: Any, *, venue_ts: int | None = None, seq: int | None = None) -> None:
        if not self.taking:
            return
        self.writer.add(("e", self._next(), self.clock_ns(), kind, symbol or "_", venue_ts, seq, payload))  # type: ignore[arg-type]

    def row(self, row: Row) -> None:
        """A row built elsewhere (imports); its gseq must come from ``next_gseq``."""
        self.writer.add(("r", row))  # type: ignore[arg-type]

    def next_gseq(self) -> int:
        return self._next()

    # -- taps ------------------------------------------------------------------------
    def tap_client(self, client: Any) -> None:
        """Record every frame every websocket of the ccxt.pro ``client`` receives (idempotent)."""
        if client.__dict__.get("_tps19_recorder") is self:
            return
        client._tps19_recorder = self
        on_every_ws(client, self._wrap)

    def _wrap(self, ws_client: Any) -> None:
        if getattr(ws_client, "_tps19_tapped", False):
            return
        ws_client._tps19_tapped = True
        handle = ws_client.handle_text_or_binary_message
        frame = self.frame

        def tapped(data: Any) -> Any:
            if isinstance(data, (str, bytes)):
                frame(data)
            return handle(data)

        ws_client.handle_text_or_binary_message = tapped

    def tap_bus(self, bus: Any) -> None:
        """Record what the engine published, in publication order."""
        from ..events import BarEvent, BookEvent, TradeEvent
        from ..strategies.signals import SignalEvent
        from ..trading.events import DecisionEvent, ExecutionEvent, FillEvent, OrderUpdate

        def book(ev: BookEvent) -> None:
            self.event(VIEW_BOOK, ev.symbol, "", venue_ts=ev.ts, seq=ev.seq)

        def trades(ev: TradeEvent) -> None:
            # the prints themselves: some never came as frames (REST backfill after a resubscribe)
            self.event(VIEW_TRADES, ev.symbol, [[t.id, t.ts, t.side, t.price, t.amount] for t in ev.trades],
                       venue_ts=ev.trades[-1].ts if ev.trades else None)

        def bar(ev: BarEvent) -> None:
            self.event(VIEW_BAR, ev.symbol, ev, venue_ts=ev.ts)

        def signal(ev: SignalEvent) -> None:
            self.event(SIGNAL, ev.symbol, ev, venue_ts=ev.ts)

        def decision(ev: DecisionEvent) -> None:
            self.event(DECISION, ev.symbol, ev)

        def order(ev: OrderUpdate) -> None:
            self.event(ORDER, ev.symbol, ev)

        def fill(ev: FillEvent) -> None:
            self.event(FILL, ev.symbol, ev)

        def execution(ev: ExecutionEvent) -> None:
            self.event(EXECUTION, ev.symbol, ev, venue_ts=ev.book_ts, seq=ev.book_seq)

        for t, fn in ((BookEvent, book), (TradeEvent, trades), (BarEvent, bar), (SignalEvent, signal),
                      (DecisionEvent, decision), (OrderUpdate, order), (FillEvent, fill), (ExecutionEvent, execution)):
            bus.on(t, fn)

    def tap_broker(self, broker: Any) -> None:
        """Where a paper broker judged its resting orders: its queue coalesces books, so which
        books it saw depends on when it ran; a replay judges on the same ones."""
        from ..events import BookEvent

        def processed(ev: Any) -> None:
            if isinstance(ev, BookEvent):
                self.event(BROKER_BOOK, ev.symbol, "", venue_ts=ev.ts, seq=ev.seq)
            else:
                self.event(BROKER_TRADES, ev.symbol, [t.id for t in ev.trades])

        if hasattr(broker, "on_processed"):
            broker.on_processed = processed

    def warmup(self, symbol: str, timeframe: str, candles: list[list[Any]]) -> None:
        self.event(WARMUP, symbol, {"timeframe": timeframe, "candles": candles})

    def meta(self, payload: dict[str, Any]) -> None:
        self.event(META, "_", payload)
