"""Tables. Money columns are DecimalText (exact); market data and analytics are float."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import JSON, Field, SQLModel

from .types import DecimalText


def money(nullable: bool = False, default: Decimal | None = None) -> Any:
    return Field(default=default, sa_column=Column(DecimalText(), nullable=nullable))


class Bar(SQLModel, table=True):
    """OHLCV candle; ts is the open time in ms (UTC)."""

    __tablename__ = "bars"
    exchange: str = Field(primary_key=True)
    symbol: str = Field(primary_key=True)
    timeframe: str = Field(primary_key=True)
    ts: int = Field(primary_key=True)
    open: float
    high: float
    low: float
    close: float
    volume: float


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    client_order_id: str = Field(primary_key=True)
    venue_order_id: str | None = Field(default=None, index=True)
    exchange: str
    mode: str  # "paper" | "live"
    symbol: str = Field(index=True)
    side: str
    type: str  # market | limit | post_only | ioc | stop_market | stop_limit | take_profit | take_profit_limit | trailing_stop
    amount: Decimal = money()
    price: Decimal | None = money(nullable=True)
    filled: Decimal = money(default=Decimal(0))
    avg_price: Decimal | None = money(nullable=True)
    fee: Decimal = money(default=Decimal(0))
    status: str = Field(index=True)
    reason: str | None = None
    adopted: bool = False  # found on the venue during reconciliation, not placed by us
    created_ms: int
    updated_ms: int
    # protective orders (docs/orders.md); NULL on plain entries
    trigger_price: Decimal | None = money(nullable=True)
    trailing_pct: Decimal | None = money(nullable=True)
    trailing_distance: Decimal | None = money(nullable=True)
    activation_price: Decimal | None = money(nullable=True)
    high_water: Decimal | None = money(nullable=True)  # a trailing stop's best price since activation
    placement: str | None = None  # emulated | venue
    trigger_state: str | None = None  # armed | triggered | working
    triggered_ms: int | None = None
    checked_ms: int | None = None  # last compared with the market
    oco_group: str | None = Field(default=None, index=True)
    parent_id: str | None = Field(default=None, index=True)  # a bracket leg's entry
    # a bracket entry's protection (its legs are placed as its fills come in)
    stop_loss_price: Decimal | None = money(nullable=True)
    take_profit_price: Decimal | None = money(nullable=True)
    stop_loss_pct: Decimal | None = money(nullable=True)
    take_profit_pct: Decimal | None = money(nullable=True)
    trailing_stop_pct: Decimal | None = money(nullable=True)


class OrderEvent(SQLModel, table=True):
    """Every state change of an order, in order."""

    __tablename__ = "order_events"
    id: int | None = Field(default=None, primary_key=True)
    client_order_id: str = Field(index=True)
    ts: int
    from_status: str | None
    to_status: str
    detail: str | None = None


class Fill(SQLModel, table=True):
    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("exchange", "fill_id"),)
    id: int | None = Field(default=None, primary_key=True)
    exchange: str
    mode: str
    fill_id: str  # venue trade id (or the paper broker's own id): a fill is booked once
    client_order_id: str | None = Field(default=None, index=True)
    symbol: str = Field(index=True)
    side: str
    price: Decimal = money()
    amount: Decimal = money()
    fee: Decimal = money(default=Decimal(0))
    fee_currency: str | None = None
    liquidity: str | None = None  # maker | taker
    ts: int


class TradingSignal(SQLModel, table=True):
    __tablename__ = "trading_signals"
    id: int | None = Field(default=None, primary_key=True)
    ts: int = Field(index=True)
    strategy: str
    symbol: str
    direction: int  # -1 short/flat-from-long, 0 flat, 1 long
    strength: float
    reason: str = ""
    params: dict = Field(default_factory=dict, sa_column=Column(JSON))


class AIDecision(SQLModel, table=True):
    __tablename__ = "ai_decisions"
    id: int | None = Field(default=None, primary_key=True)
    ts: int = Field(index=True)
    model: str
    symbol: str
    decision: str
    confidence: float
    features: dict = Field(default_factory=dict, sa_column=Column(JSON))
    explanation: str = ""


class PortfolioSnapshot(SQLModel, table=True):
    __tablename__ = "portfolio_snapshots"
    id: int | None = Field(default=None, primary_key=True)
    ts: int = Field(index=True)
    mode: str
    equity: Decimal = money()
    cash: Decimal = money()
    realized_pnl: Decimal = money()
    unrealized_pnl: Decimal = money()
    fees: Decimal = money()
    positions: dict = Field(default_factory=dict, sa_column=Column(JSON))


class BacktestResult(SQLModel, table=True):
    __tablename__ = "backtest_results"
    id: int | None = Field(default=None, primary_key=True)
    created_ms: int
    strategy: str
    params: dict = Field(default_factory=dict, sa_column=Column(JSON))
    exchange: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    data_source: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    cash: Decimal = money()
    final_equity: Decimal = money()
    metrics: dict = Field(default_factory=dict, sa_column=Column(JSON))
    trades: list = Field(default_factory=list, sa_column=Column(JSON))  # before backtest_trades; now []


# --- trading (tps19/engine/trading) -----------------------------------------------------------


class TradingBalance(SQLModel, table=True):
    """Balances the trading layer books: the paper account's, or the last live balances
    (venue-reconciled, then moved by each booked fill in the same transaction)."""

    __tablename__ = "trading_balances"
    mode: str = Field(primary_key=True)
    exchange: str = Field(primary_key=True)
    currency: str = Field(primary_key=True)
    amount: Decimal = money()
    updated_ms: int


class PaperOrderState(SQLModel, table=True):
    """Simulation state of a resting paper order (queue position at its price)."""

    __tablename__ = "paper_order_state"
    client_order_id: str = Field(primary_key=True)
    queue_ahead: Decimal = money(default=Decimal(0))


class PositionAdjustment(SQLModel, table=True):
    """A correction booked when the venue's balance could not be explained by known fills."""

    __tablename__ = "position_adjustments"
    id: int | None = Field(default=None, primary_key=True)
    ts: int = Field(index=True)
    mode: str
    exchange: str
    currency: str
    symbol: str | None = None
    amount: Decimal = money()  # venue - expected
    expected: Decimal = money()
    venue: Decimal = money()
    reason: str = ""


class KillSwitchState(SQLModel, table=True):
    """The kill switch survives a restart: engaged until explicitly released."""

    __tablename__ = "kill_switch"
    mode: str = Field(primary_key=True)
    exchange: str = Field(primary_key=True)
    engaged: bool = False
    reason: str = ""
    ts: int


# The ML layer's tables live in their own module; importing it registers them with the metadata.
from .models_ml import AIDecisionOutcome, MLModel  # noqa: E402,F401
# The risk layer's table (limits changed in the desk).
from .models_risk import RiskLimitChange  # noqa: E402,F401
# A stored backtest's trades (one row each).
from .models_backtest import BacktestTrade  # noqa: E402,F401
