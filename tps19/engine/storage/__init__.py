"""Storage: SQLModel over SQLite (aiosqlite) or PostgreSQL (asyncpg), migrated with Alembic."""

from .db import Database
from .errors import DatabaseReadOnly, SchemaOutdated, SchemaTooNew, StorageError
from .lock import DatabaseInUse, InstanceLock
from .models import (
    AIDecision,
    BacktestResult,
    BacktestTrade,
    Bar,
    Fill,
    Order,
    OrderEvent,
    PortfolioSnapshot,
    TradingSignal,
)

__all__ = [
    "AIDecision",
    "BacktestResult",
    "BacktestTrade",
    "Bar",
    "Database",
    "DatabaseInUse",
    "DatabaseReadOnly",
    "Fill",
    "InstanceLock",
    "Order",
    "OrderEvent",
    "PortfolioSnapshot",
    "SchemaOutdated",
    "SchemaTooNew",
    "StorageError",
    "TradingSignal",
]
