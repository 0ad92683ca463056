"""A stored backtest's trades: one row per round trip, in their own table (a 20M-bar run makes
hundreds of thousands; they were one JSON value in ``backtest_results.trades`` before)."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class BacktestTrade(SQLModel, table=True):
    """A round trip of backtest result ``result_id`` (``seq`` 0, 1, ... in entry order). Prices
    and P&L are floats, as the engine computes them (analytics, not booked money); an open
    trade has no exit bar/time and ``exit_price`` is the last close it was marked at."""

    __tablename__ = "backtest_trades"
    result_id: int = Field(foreign_key="backtest_results.id", primary_key=True)
    seq: int = Field(primary_key=True)
    side: str  # long | short
    entry_bar: int
    entry_ts: int
    entry_price: float
    units: float
    exit_bar: int | None = None
    exit_ts: int | None = None
    exit_price: float | None = None
    pnl: float
    return_pct: float
    fees: float
    open: bool = False
    exit_reason: str | None = None  # signal, stop_loss, take_profit, trailing_stop, breaker, end (None: stored before 0007)
