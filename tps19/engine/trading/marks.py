"""Positions and the account marked to the market, published when only the mark moves.

The portfolio's marks follow every book (``Portfolio.on_book``); this loop looks at them a few
times a second and, for each symbol whose mark changed, publishes a fresh ``PositionEvent``
(unrealized P&L at the new mark), then one ``PortfolioUpdate`` (equity, P&L, balances free and
locked). Polling at a fixed rate bounds the work at any book rate, and the last change is always
published (no event is lost to throttling, only intermediate marks).

"P&L today" has one definition: ``RiskEngine.pnl_today()``, the figure the daily loss limit
enforces. Its starting figure is the day's first stored portfolio snapshot (restored at start);
when none is stored yet, one is stored the first time every position has a mark and every holding
is valued, and handed to the risk engine as the start, so the desk, the limit and a restarted engine count from one figure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from ..events import now_ms
from .events import BalanceRow, PortfolioUpdate, TradingIssue
from .risk import utc_day_start_ms


class MarkedBook(Protocol):
    """What the publisher reads of the portfolio that owns it (``portfolio.py``'s ``Portfolio``,
    which builds its publisher and hands itself in: typed here so marks never imports it)."""

    mode: str
    valuation: str
    balances: dict[str, Decimal]
    positions: dict[str, Any]
    marks: dict[str, Decimal]
    locked_source: Callable[[], dict[str, Decimal]] | None
    pnl_today_source: Callable[[], Decimal | None] | None
    day_start_sink: Callable[[Decimal], None] | None
    day_start_ts: int | None

    def position(self, symbol: str) -> Any: ...
    def position_event(self, symbol: str) -> Any: ...
    def value_of(self, currency: str, amount: Decimal) -> Decimal | None: ...
    def equity(self) -> tuple[Decimal, list[str]]: ...
    def excluded(self) -> list[str]: ...
    def gross_exposure(self) -> Decimal: ...
    def totals(self) -> dict[str, Decimal]: ...
    async def snapshot(self) -> Any: ...

log = logging.getLogger(__name__)
INTERVAL_S = 0.25
ZERO = Decimal(0)


class MarkPublisher:
    def __init__(self, portfolio: MarkedBook, bus: Any, *, interval_s: float = INTERVAL_S) -> None:
        self.portfolio = portfolio
        self.bus = bus
        self.interval_s = interval_s
        self.sent: dict[str, Decimal] = {}  # the mark each symbol's last PositionEvent carried
        self.dirty = True  # publish a PortfolioUpdate on the next pass (fills, balances, start)
        self.published = 0
        self._day_stored: int | None = None  # UTC day whose starting figure is in the database

    def touch(self) -> None:
        """Something other than a mark changed (a fill, a balance): publish on the next pass."""
        self.dirty = True

    def publish_now(self) -> None:
        """A fill was booked: publish its PortfolioUpdate at once, in the same synchronous stretch
        as the fill's FillEvent and PositionEvent, so every subscriber drains them together. Left
        to the next pass (up to ``interval_s`` later, more on a busy loop), a reader saw the
        position with the fill's fee beside balances, equity and P&L totals without it; and a
        reader that draws those totals only on position events kept them stale while no mark
        moved (the two-venue desk's fees row read 0.00 under a booked 0.574, CI)."""
        try:
            self.publish_changes()
        except Exception as e:  # reported, counted, survived: the booking itself stands
            log.warning("mark update failed: %s", e)
            self.bus.publish(TradingIssue("marks", f"marking the portfolio failed: {e}"))

    def marks_complete(self) -> bool:
        """Every open position can be valued (else P&L would count it as zero)."""
        pf = self.portfolio
        return all(p.qty == 0 or s in pf.marks for s, p in pf.positions.items())

    def balances(self) -> tuple[BalanceRow, ...]:
        pf = self.portfolio
        locked = pf.locked_source() if pf.locked_source is not None else {}
        rows = []
        for cur in sorted(set(pf.balances) | set(locked)):
            total = pf.balances.get(cur, ZERO)
            lk = min(locked.get(cur, ZERO), max(total, ZERO))
            if total == 0 and lk == 0:
                continue
            rows.append(BalanceRow(cur, total - lk, lk, total, pf.value_of(cur, total)))
        return tuple(rows)

    def update(self) -> PortfolioUpdate:
        pf = self.portfolio
        eq, unpriced = pf.equity()
        t = pf.totals()
        today = None
        if pf.pnl_today_source is not None and self.marks_complete():
            today = pf.pnl_today_source()
        return PortfolioUpdate(mode=pf.mode, valuation=pf.valuation, equity=eq, unpriced=tuple(unpriced),
                               realized_pnl=t["realized_pnl"], unrealized_pnl=t["unrealized_pnl"], fees=t["fees"],
                               net_pnl=t["net_pnl"], pnl_today=today, day_start_ts=pf.day_start_ts,
                               balances=self.balances(), excluded=tuple(pf.excluded()),
                               gross_exposure=pf.gross_exposure())

    def publish_changes(self) -> bool:
        """One pass: PositionEvents for moved marks, then a PortfolioUpdate if anything changed."""
        pf = self.portfolio
        moved = [s for s, m in list(pf.marks.items()) if self.sent.get(s) != m]
        for s in moved:
            self.sent[s] = pf.marks[s]
            if s in pf.positions or pf.balances.get(pf.position(s).base, ZERO) != 0:
                self.bus.publish(pf.position_event(s))
        if not (moved or self.dirty):
            return False
        self.dirty = False
        self.bus.publish(self.update())
        self.published += 1
        return True

    async def store_day_start(self) -> None:
        """Store today's starting figure once it can be computed (see the module docstring)."""
        pf = self.portfolio
        day = utc_day_start_ms()
        if self._day_stored == day or pf.pnl_today_source is None or not self.marks_complete():
            return
        if pf.equity()[1]:
            return  # a holding without a price: its equity is no day's open (it would read as a gain)
        self._day_stored = day
        if pf.day_start_ts is not None and pf.day_start_ts >= day:
            return  # restored from today's first stored snapshot
        snap = await pf.snapshot()
        # the stored figure is the start, for the limit too (an order placed before every mark was
        # known made the risk engine take a provisional one)
        if pf.day_start_sink is not None:
            pf.day_start_sink(snap.realized_pnl + snap.unrealized_pnl - snap.fees)
        pf.day_start_ts = snap.ts

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.store_day_start()
                self.publish_changes()
            except Exception as e:  # reported, counted, survived
                log.warning("mark update failed: %s", e)
                self.bus.publish(TradingIssue("marks", f"marking the portfolio failed: {e}"))


def plain_locked(orders: Callable[[], list[Any]], markets: dict[str, dict[str, Any]]) -> dict[str, Decimal]:
    """What working orders lock, as a venue holds it: a buy its remaining quote at its limit, a
    sell its remaining base (market orders lock nothing: they do not rest)."""
    out: dict[str, Decimal] = {}
    for o in orders():
        m = markets.get(o.symbol) or {}
        if o.price is None or not m:
            continue
        if o.side == "buy":
            out[m["quote"]] = out.get(m["quote"], ZERO) + o.remaining * o.price
        else:
            out[m["base"]] = out.get(m["base"], ZERO) + o.remaining
    return out


__all__ = ["INTERVAL_S", "MarkPublisher", "now_ms", "plain_locked"]
