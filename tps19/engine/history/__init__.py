"""Market history: download (ccxt), import (CSV/Parquet), quality checks, Bar storage.

Names load on first use (PEP 562): a backtest of a file needs ``bars``/``quality``/``source``,
not the database layer (sqlalchemy, alembic) or ccxt that ``fetch``/``store`` bring in."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bars import Bars, DataError, read_ohlcv
    from .fetch import FetchReport, fetch_history, missing_ranges, open_client
    from .quality import QualityReport, check, timeframe_ms
    from .source import ClientFactory, StoredBars, load_backtest_bars, load_file_bars
    from .store import existing_ts, import_file, load_bars, upsert_bars
    from .times import parse_time_value

_WHERE = {
    "Bars": "bars", "DataError": "bars", "read_ohlcv": "bars",
    "FetchReport": "fetch", "fetch_history": "fetch", "missing_ranges": "fetch", "open_client": "fetch",
    "QualityReport": "quality", "check": "quality", "timeframe_ms": "quality",
    "ClientFactory": "source", "StoredBars": "source", "load_backtest_bars": "source", "load_file_bars": "source",
    "existing_ts": "store", "import_file": "store", "load_bars": "store", "upsert_bars": "store",
    "parse_time_value": "times",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
