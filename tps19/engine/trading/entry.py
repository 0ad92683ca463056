"""The one order-entry path: every order is validated against its market and passes the risk
stage before a broker sees it.

``OrderEntry.admit`` answers with the validated order or the reason it was refused; the broker
records a refusal (never sent) and only ever executes admitted orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from ..events import BookEvent
from .orders import TICK_SIZE, D, OrderRejected, OrderRequest, ValidatedOrder, validate_order
from .portfolio import Portfolio
from .risk import PortfolioView, RiskEngine


class MarketView(Protocol):
    """What order entry reads of the market: the venue's market dicts and a reference price."""

    def market(self, symbol: str) -> dict[str, Any] | None: ...

    def ref_price(self, symbol: str, side: str) -> Decimal | None: ...


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


class HoldingsView:
    """A portfolio view for spot: the exposure a position cap limits is the base currency held."""

    def __init__(self, portfolio: Portfolio, markets: dict[str, dict[str, Any]]) -> None:
        self.portfolio = portfolio
        self.markets = markets

    def position(self, symbol: str) -> Decimal:
        return self.portfolio.balances.get(self.markets[symbol]["base"], Decimal(0))

    def net_pnl(self) -> Decimal:
        return self.portfolio.totals()["net_pnl"]


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
        decision = self.risk.decide(v)
        if not decision.accepted:
            return Admission(reason=decision.reason)
        return Admission(order=v)


__all__ = ["Admission", "BookQuotes", "HoldingsView", "MarketView", "OrderEntry", "PortfolioView"]
