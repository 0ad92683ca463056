"""SQLite storage (SQLModel over aiosqlite)."""

from .db import SCHEMA_VERSION, Database
from .errors import DatabaseReadOnly, StorageError
from .lock import DatabaseInUse, InstanceLock
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
    "DatabaseInUse",
    "DatabaseReadOnly",
    "Fill",
    "InstanceLock",
    "Order",
    "OrderEvent",
    "PortfolioSnapshot",
    "StorageError",
    "TradingSignal",
]
