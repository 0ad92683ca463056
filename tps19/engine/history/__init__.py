"""Market history: download (ccxt), import (CSV/Parquet), quality checks, Bar storage."""

from .fetch import FetchReport, fetch_history, missing_ranges, open_client
from .quality import DataError, QualityReport, check, read_ohlcv, timeframe_ms
from .source import ClientFactory, StoredBars, load_backtest_bars
from .store import existing_ts, import_file, load_bars, upsert_bars
from .times import parse_time_value

__all__ = [
    "ClientFactory",
    "DataError",
    "FetchReport",
    "QualityReport",
    "StoredBars",
    "check",
    "existing_ts",
    "fetch_history",
    "import_file",
    "load_backtest_bars",
    "load_bars",
    "missing_ranges",
    "open_client",
    "parse_time_value",
    "read_ohlcv",
    "timeframe_ms",
    "upsert_bars",
]
