"""The one order-entry path: every order is validated against its market and passes the risk
stage before a broker sees it.

``OrderEntry.admit`` answers with the validated order or the reason it was refused; the broker
records a refusal (never sent) and only ever executes admitted orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from ..events import BookEvent
from .orders import (TICK_SIZE, D, OrderRejected, OrderRequest, OrderState, ValidatedOrder, fee_rate,
                     one_reserve_per_list, validate_order)
from .portfolio import Portfolio
from .risk import PortfolioView, RiskEngine

ZERO = Decimal(0)


class MarketView(Protocol):
    """What order entry reads of the market: the venue's market dicts and a reference price."""

    def market(self, symbol: str) -> dict[str, Any] | None: ...

    def ref_price(self, symbol: str, side: str) -> Decimal | None: ...

    def mid(self, symbol: str) -> Decimal | None: ...


class Marks(Protocol):
    def mark(self, symbol: str) -> Decimal | None: ...


class BookQuotes:
    """A market view over ccxt's market dicts and the latest top of book per symbol (the
    portfolio's mark when there is no book)."""

    def __init__(self, markets: dict[str, dict[str, Any]], books: dict[str, BookEvent], marks: Marks | None) -> None:
        self.markets = markets
        self.books = books
        self.marks = marks

    def market(self, symbol: str) -> dict[str, Any] | None:
        return self.markets.get(symbol)

    def ref_price(self, symbol: str, side: str) -> Decimal | None:
        b = self.books.get(symbol)
        if b is not None:
            p = b.best_ask if side == "buy" else b.best_bid
            if p is not None:
                return D(p)
        return self.marks.mark(symbol) if self.marks is not None else None

    def mid(self, symbol: str) -> Decimal | None:
        b = self.books.get(symbol)
        if b is not None and b.bids and b.asks:
            return (D(b.bids[0][0]) + D(b.asks[0][0])) / 2
        return self.marks.mark(symbol) if self.marks is not None else None


def locked_balances(orders: Iterable[OrderState], markets: Mapping[str, dict[str, Any]]) -> dict[str, Decimal]:
    """What working limit orders hold back per currency (a buy its quote plus the taker fee, a
    sell its base)."""
    out: dict[str, Decimal] = {}
    for o in one_reserve_per_list(orders):
        if not o.is_working:
            continue
        if o.price is None:
            if o.side == "sell" and o.placement == "venue":  # a venue-native stop reserves what it sells
                base = (markets.get(o.symbol) or {}).get("base", "")
                out[base] = out.get(base, ZERO) + o.remaining
            continue
        m = markets.get(o.symbol) or {}
        base, quote = m.get("base", ""), m.get("quote", "")
        if o.side == "buy":
            out[quote] = out.get(quote, ZERO) + o.remaining * o.price * (1 + fee_rate(m, "taker"))
        else:
            out[base] = out.get(base, ZERO) + o.remaining
    return out


class HoldingsView:
    """A portfolio view for spot: the exposure a position cap limits is the base currency held.
    Also the risk stage's account view once the broker's working orders are attached."""

    def __init__(self, portfolio: Portfolio, markets: dict[str, dict[str, Any]]) -> None:
        self.portfolio = portfolio
        self.markets = markets
        self.orders: Mapping[str, OrderState] = {}
        self.held: Mapping[str, OrderState] = {}  # protective orders TPS19 holds (emulator.py)
        self._terms_cache: dict[str, tuple[str, str, Decimal]] = {}

    def attach_orders(self, orders: Mapping[str, OrderState], held: Mapping[str, OrderState] | None = None) -> None:
        """The broker's working orders by client id (read live, never copied), and the protective
        orders its emulator holds."""
        self.orders = orders
        if held is not None:
            self.held = held

    def position(self, symbol: str) -> Decimal:
        return self.portfolio.balances.get(self.markets[symbol]["base"], ZERO)

    def net_pnl(self) -> Decimal:
        return self.portfolio.totals()["net_pnl"]

    def gross_exposure(self) -> Decimal:
        return self.portfolio.gross_exposure()

    def open_order_count(self) -> int:
        return len(self.orders) + len(self.held)  # the broker keeps only working orders there

    def _terms(self, symbol: str) -> tuple[str, str, Decimal]:
        """(base, quote, taker fee) of a market, converted once (this runs on every order)."""
        t = self._terms_cache.get(symbol)
        if t is None:
            m = self.markets.get(symbol) or {}
            t = self._terms_cache[symbol] = (m.get("base", ""), m.get("quote", ""), fee_rate(m, "taker"))
        return t

    def _locked_in(self, ccy: str) -> Decimal:
        """What working limit orders hold back of ``ccy`` (as ``locked_balances``, for one currency)."""
        total = ZERO
        cache = self._terms_cache
        for o in one_reserve_per_list(self.orders.values()):
            base, quote, taker = cache.get(o.symbol) or self._terms(o.symbol)
            if o.side == "buy":
                if quote == ccy and o.price is not None and o.is_working:
                    total += o.remaining * o.price * (1 + taker)
            elif base == ccy and o.is_working and (o.price is not None or o.placement == "venue"):
                total += o.remaining  # a venue-native stop reserves what it sells too
        return total

    def shortfall(self, v: ValidatedOrder) -> str | None:
        base, quote, taker = self._terms(v.symbol)
        if v.side == "buy":
            if v.notional is None:
                return None
            need, ccy = v.notional * (1 + taker), quote
        else:
            need, ccy = v.amount, base
        have = self.portfolio.balances.get(ccy, ZERO) - self._locked_in(ccy)
        if need > have:
            stops = sum((o.remaining for o in one_reserve_per_list(self.orders.values()) if o.is_working and o.side == "sell"
                         and o.placement == "venue" and self._terms(o.symbol)[0] == ccy), ZERO)
            extra = (f" (venue-native stops hold {stops:,f} {ccy}: shrink or cancel that protection first)"
                     if stops and v.side == "sell" else "")
            return f"not enough free {ccy}: the order needs {need:,f}, {have:,f} is free{extra}"
        return None


@dataclass(frozen=True, slots=True)
class Admission:
    order: ValidatedOrder | None = None
    reason: str | None = None  # why it was refused (None when admitted)


class OrderEntry:
    def __init__(self, risk: RiskEngine, market: MarketView, *, precision_mode: int = TICK_SIZE) -> None:
        self.risk = risk
        self.market = market
        self.precision_mode = precision_mode

    def admit(self, req: OrderRequest) -> Admission:
        try:
            v = validate_order(req, self.market.market(req.symbol), precision_mode=self.precision_mode,
                               ref_price=self.market.ref_price(req.symbol, req.side))
        except OrderRejected as e:
            return Admission(reason=e.reason)
        decision = self.risk.decide(v, self.market.mid(req.symbol))
        if not decision.accepted:
            return Admission(reason=decision.reason)
        return Admission(order=v)


__all__ = ["Admission", "BookQuotes", "HoldingsView", "MarketView", "OrderEntry", "PortfolioView", "locked_balances"]
