"""SQLite storage (SQLModel over aiosqlite)."""

from .db import SCHEMA_VERSION, Database
from .models import (
    AIDecision,
    BacktestResult,
    Bar,
    Fill,
    Order,
    OrderEvent,
    PortfolioSnapshot,
    TradingSignal,
)

__all__ = [
    "SCHEMA_VERSION",
    "AIDecision",
    "BacktestResult",
    "Bar",
    "Database",
    "Fill",
    "Order",
    "OrderEvent",
    "PortfolioSnapshot",
    "TradingSignal",
]
