"""The live divergence alert: fills the paper model cannot explain, while the run is on.

For every live taker order the watch keeps the book the engine held when the order was sent (the
point the paper fill model would have filled it at) and, once the order is done, compares the
venue's average price with that book's walk for the filled amount: what the book does not explain
is the ledger's *unexplained* cause, live. When the session's unexplained cost passes
``threshold_bps`` of its taker notional the engine says so once (a warning log line, which the
desk shows and headless writes), and again only after it has fallen back under half of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..events import BookEvent, LogEvent
from .divergence import _walk_vwap

ZERO = Decimal(0)
DONE = frozenset({"filled", "cancelled", "canceled", "expired", "rejected"})


@dataclass
class _Live:
    symbol: str
    side: str
    book: Any
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    taker: bool = False


@dataclass
class DivergenceWatch:
    bus: Any
    threshold_bps: float
    mode: str = "live"
    unexplained: Decimal = ZERO  # quote currency: what the fills cost beyond the book at send (+ worse)
    notional: Decimal = ZERO
    orders: int = 0
    alerted: bool = False
    _books: dict[str, BookEvent] = field(default_factory=dict)
    _open: dict[str, _Live] = field(default_factory=dict)

    def start(self) -> DivergenceWatch:
        from ..trading.events import FillEvent, OrderUpdate

        self.bus.on(BookEvent, self._on_book)
        self.bus.on(OrderUpdate, self._on_update)
        self.bus.on(FillEvent, self._on_fill)
        return self

    @property
    def unexplained_bps(self) -> float:
        return float(self.unexplained / self.notional * 10_000) if self.notional else 0.0

    def _on_book(self, ev: BookEvent) -> None:
        self._books[ev.symbol] = ev

    def _on_update(self, ev: Any) -> None:
        if ev.mode != self.mode:
            return
        cid = ev.client_order_id
        if ev.previous_status is None and cid not in self._open:
            self._open[cid] = _Live(ev.symbol, ev.side, self._books.get(ev.symbol))
        elif ev.status in DONE and cid in self._open:
            self._close(self._open.pop(cid))

    def _on_fill(self, ev: Any) -> None:
        o = self._open.get(ev.client_order_id or "")
        if o is None or ev.mode != self.mode:
            return
        o.filled += Decimal(ev.amount)
        o.cost += Decimal(ev.amount) * Decimal(ev.price)
        o.taker = o.taker or ev.liquidity == "taker"

    def _close(self, o: _Live) -> None:
        if not o.taker or o.filled <= 0:
            return  # a resting order fills at its limit: nothing a book walk would explain
        model = _walk_vwap(o.book, o.side, o.filled)
        if model is None:
            return
        sign = 1 if o.side == "buy" else -1
        self.unexplained += sign * (o.cost - model * o.filled)
        self.notional += o.cost
        self.orders += 1
        bps = self.unexplained_bps
        if not self.alerted and bps > self.threshold_bps:
            self.alerted = True
            self.bus.publish(LogEvent("warning", "live fills diverge from the book: unexplained share above the "
                                      "alert threshold", {"unexplained_bp": round(bps, 2),
                                                          "threshold_bp": self.threshold_bps,
                                                          "unexplained": str(self.unexplained.quantize(Decimal("0.0001"))),
                                                          "taker_notional": str(self.notional), "orders": self.orders}))
        elif self.alerted and bps < self.threshold_bps / 2:
            self.alerted = False
