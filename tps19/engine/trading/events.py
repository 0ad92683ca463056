"""Typed events the trading layer publishes on the engine's EventBus.

Everything booked is Decimal. An event is published only after what it reports has been
written to SQLite (an ``OrderUpdate`` for a fill follows the ``FillEvent``; both follow the
commit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..events import now_ms


@dataclass(slots=True, frozen=True)
class OrderUpdate:
    """An order's state after a change (placed, accepted, filled, cancelled, rejected ...)."""

    client_order_id: str
    venue_order_id: str | None
    mode: str  # "paper" | "live"
    symbol: str
    side: str  # "buy" | "sell"
    type: str  # market | limit | post_only | ioc | stop_market | stop_limit | take_profit | take_profit_limit | trailing_stop
    amount: Decimal
    price: Decimal | None
    filled: Decimal
    avg_price: Decimal | None
    fee: Decimal
    status: str  # see orders.OrderStatus
    previous_status: str | None
    reason: str | None = None
    adopted: bool = False
    ts: int = field(default_factory=now_ms)
    # protective orders (docs/orders.md); None on plain entries
    trigger_price: Decimal | None = None  # a trailing stop's: its current level
    trigger_state: str | None = None  # armed | triggered | working
    placement: str | None = None  # emulated | venue
    oco_group: str | None = None
    parent_id: str | None = None
    trailing_pct: Decimal | None = None
    trailing_distance: Decimal | None = None
    activation_price: Decimal | None = None
    high_water: Decimal | None = None
    stop_loss_price: Decimal | None = None  # a bracket entry's protection
    take_profit_price: Decimal | None = None

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def protective(self) -> bool:
        return self.trigger_state is not None


@dataclass(slots=True, frozen=True)
class FillEvent:
    fill_id: str
    client_order_id: str | None
    venue_order_id: str | None
    mode: str
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str | None
    liquidity: str | None  # "maker" | "taker"
    ts: int = field(default_factory=now_ms)


@dataclass(slots=True, frozen=True)
class ExecutionEvent:
    """The book a paper order executed against (its sequence number and exchange time): a
    recording keeps it so that a replay executes the order at the same point of the stream."""

    client_order_id: str
    symbol: str
    book_seq: int | None
    book_ts: int | None
    ts: int = field(default_factory=now_ms)


@dataclass(slots=True, frozen=True)
class DecisionEvent:
    """A strategy's target became an order plan (side, amount at this mark): published before
    the order is placed, so a recording knows when the plan was made and on which mark."""

    symbol: str
    target: float
    side: str
    amount: Decimal
    mark: Decimal | None
    ts: int = field(default_factory=now_ms)


@dataclass(slots=True, frozen=True)
class PositionEvent:
    """Net position in one symbol, with P&L in the quote currency."""

    mode: str
    symbol: str
    base_balance: Decimal  # spot balance of the base currency
    net_position: Decimal  # net quantity bought minus sold (plus corrections)
    avg_entry: Decimal | None
    realized_pnl: Decimal  # gross of fees
    unrealized_pnl: Decimal | None  # None while no mark price is known
    fees: Decimal  # paid in quote-currency terms
    mark: Decimal | None
    ts: int = field(default_factory=now_ms)


@dataclass(slots=True, frozen=True)
class BalanceDiscrepancy:
    """The venue's balance disagrees with what our booked fills explain; the venue's wins."""

    mode: str
    currency: str
    expected: Decimal
    venue: Decimal
    difference: Decimal  # venue - expected
    detail: str = ""
    ts: int = field(default_factory=now_ms)


@dataclass(slots=True, frozen=True)
class KillSwitchEvent:
    engaged: bool
    cancelled: int = 0
    failed: int = 0
    detail: str = ""
    ts: int = field(default_factory=now_ms)


@dataclass(slots=True, frozen=True)
class TradingIssue:
    """A problem that was reported, counted and survived (a dropped reply, a failed poll ...).

    ``fields`` carries the ids and amounts an operator needs to act on it without reading the
    message: e.g. client_order_id, venue_order_id, symbol, side, amount, price, fill_id,
    currency, booked, venue, difference."""

    kind: str
    message: str
    count: int = 1
    ts: int = field(default_factory=now_ms)
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class EquitySnapshot:
    mode: str
    equity: Decimal
    cash: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    ts: int = field(default_factory=now_ms)


@dataclass(slots=True, frozen=True)
class BalanceRow:
    """One currency of the account: what is free, what working orders lock, and its value."""

    currency: str
    free: Decimal
    locked: Decimal
    total: Decimal
    value: Decimal | None  # in the valuation currency; None while it cannot be priced


@dataclass(slots=True, frozen=True)
class PortfolioUpdate:
    """The account marked to the market: published when a mark moves (at most every
    ``marks.INTERVAL_S``) and with every booked fill. ``pnl_today`` is the very figure the daily loss limit
    enforces (RiskEngine.pnl_today, counted from the day's first stored snapshot)."""

    mode: str
    valuation: str
    equity: Decimal
    unpriced: tuple[str, ...]
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal
    pnl_today: Decimal | None  # None until every position has a mark
    day_start_ts: int | None  # when today's starting figure was stored
    balances: tuple[BalanceRow, ...]
    ts: int = field(default_factory=now_ms)
    excluded: tuple[str, ...] = ()  # held, but no market on the venue values them: not in equity
    # the held currencies other than the valuation at the marks (Portfolio.gross_exposure: the
    # figure the exposure caps check); None where not computed
    gross_exposure: Decimal | None = None
