"""Portfolio: balances, net positions per symbol, average entry, realized/unrealized P&L
marked to the live mid, fees, and periodic equity snapshots to SQLite.

Realized P&L is gross of fees; fees are accumulated separately in quote terms
(``net = realized + unrealized - fees``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...aio import cancel_and_wait
from ..events import BookEvent, now_ms
from ..storage.models import PortfolioSnapshot, PositionAdjustment
from .events import EquitySnapshot, PositionEvent, TradingIssue
from .orders import D

log = logging.getLogger(__name__)
ZERO = Decimal(0)
BRIDGES = ("USDT", "USDC", "USD")  # a coin without a market in the valuation converts through one


@dataclass(slots=True)
class Position:
    symbol: str
    base: str
    quote: str
    qty: Decimal = ZERO  # signed net position
    avg_entry: Decimal | None = None
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    # spot: the position is what TPS19's fills bought, never below zero; selling more than that
    # sells holdings the account had before (or that fills did not explain), at no booked P&L
    spot: bool = True

    def apply(self, delta: Decimal, price: Decimal) -> None:
        if self.spot and self.qty + delta < 0:
            delta = -self.qty if self.qty > 0 else ZERO
        if delta == 0:
            return
        q = self.qty
        if q == 0 or (q > 0) == (delta > 0):
            avg = self.avg_entry if self.avg_entry is not None else price
            self.avg_entry = (abs(q) * avg + abs(delta) * price) / (abs(q) + abs(delta))
            self.qty = q + delta
            return
        closing = min(abs(delta), abs(q))
        sign = Decimal(1) if q > 0 else Decimal(-1)
        assert self.avg_entry is not None
        self.realized += closing * (price - self.avg_entry) * sign
        self.qty = q + delta
        if self.qty == 0:
            self.avg_entry = None
        elif (self.qty > 0) != (q > 0):  # flipped through zero: the rest opens at this price
            self.avg_entry = price

    def unrealized(self, mark: Decimal | None) -> Decimal | None:
        if self.qty == 0:
            return ZERO
        if mark is None or self.avg_entry is None:
            return None
        return (mark - self.avg_entry) * self.qty


def fill_balance_deltas(side: str, price: Decimal, amount: Decimal, fee: Decimal, fee_currency: str | None,
                        base: str, quote: str) -> dict[str, Decimal]:
    """How a spot fill moves balances."""
    cost = price * amount
    out: dict[str, Decimal] = {}
    if side == "buy":
        out[base] = amount
        out[quote] = -cost
    else:
        out[base] = -amount
        out[quote] = cost
    if fee:
        cur = fee_currency or quote
        out[cur] = out.get(cur, ZERO) - fee
    return out


class Portfolio:
    def __init__(self, *, mode: str, markets: dict[str, dict], bus: Any = None, db: Any = None,
                 valuation: str = "USDT", snapshot_interval_s: float = 60.0) -> None:
        self.mode = mode
        self.markets = markets
        self.bus = bus
        self.db = db
        self.valuation = valuation
        self.snapshot_interval_s = snapshot_interval_s
        self.balances: dict[str, Decimal] = {}
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, Decimal] = {}
        self.snapshots_written = 0
        self._paths: dict[str, tuple[tuple[str, bool], ...] | None] = {}
        # marks of held currencies outside the traded symbols (held_prices.py), set by build_trading
        self.held_prices: Any = None
        # what the account held before TPS19 traded, as entries at these prices (settings.holdings)
        self.cost_basis: dict[str, Decimal] = {}
        self._task: asyncio.Task | None = None
        # set by the broker: what working orders lock per currency (for free/locked balances), and
        # the risk engine's P&L today (the one figure the desk shows and the loss limit enforces)
        self.locked_source: Callable[[], dict[str, Decimal]] | None = None
        self.pnl_today_source: Callable[[], Decimal | None] | None = None
        self.day_start_sink: Callable[[Decimal], None] | None = None  # the risk engine's set_day_start
        self.day_start_ts: int | None = None  # when today's starting figure was stored
        from .marks import MarkPublisher

        self.publisher = MarkPublisher(self, bus) if bus is not None else None
        self._marks_task: asyncio.Task | None = None
        if bus is not None:
            bus.on(BookEvent, self.on_book)

    # ---------------------------------------------------------------- market data
    def on_book(self, ev: BookEvent) -> None:
        if ev.bids and ev.asks:
            # Mid in Decimal from the quoted prices: a float mid carries binary noise
            # (62990.229999999996) into equity and P&L.
            self.marks[ev.symbol] = (D(ev.bids[0][0]) + D(ev.asks[0][0])) / 2

    def mark(self, symbol: str) -> Decimal | None:
        return self.marks.get(symbol)

    # ---------------------------------------------------------------- booking
    def _ccy(self, symbol: str) -> tuple[str, str]:
        m = self.markets.get(symbol)
        if m:
            return m["base"], m["quote"]
        base, _, quote = symbol.partition("/")
        return base, quote.split(":")[0]

    def position(self, symbol: str) -> Position:
        p = self.positions.get(symbol)
        if p is None:
            base, quote = self._ccy(symbol)
            m = self.markets.get(symbol) or {}
            p = self.positions[symbol] = Position(symbol, base, quote, spot=bool(m.get("spot", True)))
        return p

    def fee_in_quote(self, symbol: str, fee: Decimal, fee_currency: str | None, price: Decimal) -> Decimal:
        base, quote = self._ccy(symbol)
        if not fee or fee_currency in (None, quote):
            return fee
        if fee_currency == base:
            return fee * price
        m = self.marks.get(f"{fee_currency}/{quote}")
        return fee * m if m is not None else ZERO

    def deltas(self, symbol: str, side: str, price: Decimal, amount: Decimal, fee: Decimal,
               fee_currency: str | None) -> dict[str, Decimal]:
        base, quote = self._ccy(symbol)
        return fill_balance_deltas(side, price, amount, fee, fee_currency, base, quote)

    def preview_balances(self, fills: list[Any]) -> dict[str, Decimal]:
        """Balances after these fills (only the changed currencies), without applying them."""
        out: dict[str, Decimal] = {}
        for f in fills:
            for cur, d in self.deltas(f.symbol, f.side, f.price, f.amount, f.fee, f.fee_currency).items():
                out[cur] = out.get(cur, self.balances.get(cur, ZERO)) + d
        return out

    def apply_fill(self, f: Any, *, balances: bool = True) -> Position:
        """Book a fill (FillRecord or Fill row) into positions (and balances)."""
        base, quote = self._ccy(f.symbol)
        if balances:
            for cur, d in self.deltas(f.symbol, f.side, f.price, f.amount, f.fee, f.fee_currency).items():
                self.balances[cur] = self.balances.get(cur, ZERO) + d
        p = self.position(f.symbol)
        delta = f.amount if f.side == "buy" else -f.amount
        if f.fee and f.fee_currency == base:
            delta -= f.fee  # the fee came out of the base received/sold
        p.apply(delta, f.price)
        p.fees += self.fee_in_quote(f.symbol, f.fee, f.fee_currency, f.price)
        if self.publisher is not None:
            self.publisher.touch()
        return p

    def apply_adjustment(self, adj: PositionAdjustment) -> None:
        if adj.symbol:
            p = self.position(adj.symbol)
            price = p.avg_entry if p.avg_entry is not None else self.marks.get(adj.symbol)
            if price is None:
                p.qty += adj.amount
                if p.spot and p.qty < 0:
                    p.qty = ZERO
            else:
                p.apply(adj.amount, price)

    def symbol_for_currency(self, currency: str) -> str | None:
        cands = [s for s, m in self.markets.items() if m.get("base") == currency]
        for s in cands:
            if self.markets[s].get("quote") == self.valuation:
                return s
        return cands[0] if cands else None

    def replay(self, fills: list[Any], adjustments: list[PositionAdjustment]) -> None:
        """Rebuild positions (not balances) from booked fills and corrections, in time order."""
        self.positions.clear()
        self._seed_cost_basis(fills)
        items: list[tuple[int, int, Any]] = [(f.ts, 0, f) for f in fills] + [(a.ts, 1, a) for a in adjustments]
        items.sort(key=lambda t: (t[0], t[1]))
        for _, kind, it in items:
            if kind == 0:
                self.apply_fill(it, balances=False)
            else:
                self.apply_adjustment(it)

    def _seed_cost_basis(self, fills: list[Any]) -> None:
        """The holdings from before TPS19 traded (the balance less what the fills moved) enter the
        position at their cost basis, first: their P&L shows, and selling them realises it."""
        for cur, basis in self.cost_basis.items():
            sym = self.symbol_for_currency(cur)
            held = self.balances.get(cur, ZERO)
            if sym is None or held <= 0:
                continue
            own = ZERO
            for f in fills:
                if f.symbol == sym:
                    own += f.amount if f.side == "buy" else -f.amount
                    if f.fee and f.fee_currency == cur:
                        own -= f.fee
            if held - own > 0:
                self.position(sym).apply(held - own, basis)

    # ---------------------------------------------------------------- views
    def position_event(self, symbol: str) -> PositionEvent:
        p = self.position(symbol)
        m = self.marks.get(symbol)
        return PositionEvent(
            mode=self.mode, symbol=symbol, base_balance=self.balances.get(p.base, ZERO), net_position=p.qty,
            avg_entry=p.avg_entry, realized_pnl=p.realized, unrealized_pnl=p.unrealized(m), fees=p.fees, mark=m,
        )

    def price_path(self, currency: str) -> tuple[tuple[str, bool], ...] | None:
        """The markets whose marks value ``currency`` in the valuation currency, each with
        whether its mark multiplies (base -> quote) or divides: () for the valuation itself,
        ``X/VAL``, else through a bridge (``X/USDT`` x ``USDT/VAL``, or / ``VAL/USDT``); None
        when the venue lists no such path (the currency is excluded from equity)."""
        cached = self._paths.get(currency, False)
        if cached is not False:
            return cached  # type: ignore[return-value]
        val, mk = self.valuation, self.markets
        path: tuple[tuple[str, bool], ...] | None = None
        if currency == val:
            path = ()
        elif f"{currency}/{val}" in mk:
            path = ((f"{currency}/{val}", True),)
        elif f"{val}/{currency}" in mk:
            path = ((f"{val}/{currency}", False),)
        else:
            for bridge in BRIDGES:
                if bridge in (currency, val) or f"{currency}/{bridge}" not in mk:
                    continue
                if f"{bridge}/{val}" in mk:
                    path = ((f"{currency}/{bridge}", True), (f"{bridge}/{val}", True))
                elif f"{val}/{bridge}" in mk:
                    path = ((f"{currency}/{bridge}", True), (f"{val}/{bridge}", False))
                if path:
                    break
        self._paths[currency] = path
        return path

    def value_of(self, currency: str, amount: Decimal) -> Decimal | None:
        """``amount`` of ``currency`` in the valuation currency at the marks (None: no mark yet,
        or no path: see ``price_path``)."""
        path = self.price_path(currency)
        if path is None:
            return None
        v = amount
        for sym, mul in path:
            m = self.marks.get(sym)
            if m is None or (not mul and m == 0):
                return None
            v = v * m if mul else v / m
        return v

    def excluded(self) -> list[str]:
        """Currencies held that no market on the venue can value: listed, never counted in
        equity, exposure or P&L (all of them read ``equity``/``value_of``)."""
        return sorted(c for c, a in self.balances.items() if a != 0 and self.price_path(c) is None)

    def price_symbols(self) -> set[str]:
        """Every market whose mark values a currency held (for the slow ticker poll)."""
        return {sym for c, a in self.balances.items() if a != 0 for sym, _ in (self.price_path(c) or ())}

    def equity(self) -> tuple[Decimal, list[str]]:
        """Equity in the valuation currency, and the currencies held that have a price path but
        no mark yet (excluded currencies are in neither: see ``excluded``)."""
        total, unpriced = ZERO, []
        for cur, amt in self.balances.items():
            if amt == 0 or self.price_path(cur) is None:
                continue
            v = self.value_of(cur, amt)
            if v is None:
                unpriced.append(cur)
            else:
                total += v
        return total, unpriced

    def gross_exposure(self) -> Decimal:
        """Every held currency other than the valuation, at the marks (one without a mark or a
        market counts as nothing): what the exposure caps check and the desk shows."""
        total = ZERO
        for cur, amt in self.balances.items():
            if amt and cur != self.valuation:
                v = self.value_of(cur, abs(amt))
                total += v if v is not None else ZERO
        return total

    def totals(self) -> dict[str, Decimal]:
        realized = sum((p.realized for p in self.positions.values()), ZERO)
        fees = sum((p.fees for p in self.positions.values()), ZERO)
        unreal = ZERO
        for s, p in self.positions.items():
            u = p.unrealized(self.marks.get(s))
            if u is not None:
                unreal += u
        return {"realized_pnl": realized, "unrealized_pnl": unreal, "fees": fees, "net_pnl": realized + unreal - fees}

    # ---------------------------------------------------------------- snapshots
    async def snapshot(self) -> PortfolioSnapshot:
        eq, unpriced = self.equity()
        t = self.totals()
        positions: dict[str, Any] = {
            s: {"qty": str(p.qty), "avg_entry": None if p.avg_entry is None else str(p.avg_entry),
                "realized": str(p.realized), "fees": str(p.fees),
                "mark": None if s not in self.marks else str(self.marks[s])}
            for s, p in self.positions.items()
        }
        if unpriced:
            positions["_unpriced"] = unpriced
        if excluded := self.excluded():
            positions["_excluded"] = excluded
        snap = PortfolioSnapshot(ts=now_ms(), mode=self.mode, equity=eq, cash=self.balances.get(self.valuation, ZERO),
                                 realized_pnl=t["realized_pnl"], unrealized_pnl=t["unrealized_pnl"], fees=t["fees"],
                                 positions=positions)
        if self.db is not None:
            async with self.db.session() as s, s.begin():
                s.add(snap)
            self.snapshots_written += 1
        if self.bus is not None:
            self.bus.publish(EquitySnapshot(self.mode, eq, snap.cash, snap.realized_pnl, snap.unrealized_pnl, snap.fees))
        return snap

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.snapshot_interval_s)
            try:
                await self.snapshot()
            except Exception as e:  # reported, counted, survived
                log.warning("portfolio snapshot failed: %s", e)
                if self.bus is not None:
                    self.bus.publish(TradingIssue("snapshot", f"equity snapshot failed: {e}"))

    def start(self) -> None:
        if self._task is None and self.snapshot_interval_s > 0:
            self._task = asyncio.create_task(self._loop(), name="portfolio-snapshots")
        if self._marks_task is None and self.publisher is not None:
            self._marks_task = asyncio.create_task(self.publisher.run(), name="portfolio-marks")
        if self.held_prices is not None:
            self.held_prices.start()

    async def stop(self) -> None:
        if self.held_prices is not None:
            await self.held_prices.stop()
        tasks = [t for t in (self._task, self._marks_task) if t is not None]
        self._task = self._marks_task = None
        if tasks:
            await cancel_and_wait(tasks)
