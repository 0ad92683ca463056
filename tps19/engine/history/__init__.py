"""Market history: download (ccxt), import (CSV/Parquet), quality checks, Bar storage."""

from .fetch import FetchReport, fetch_history, missing_ranges, open_client
from .quality import DataError, QualityReport, check, read_ohlcv, timeframe_ms
from .store import existing_ts, import_file, load_bars, upsert_bars

__all__ = [
    "DataError",
    "FetchReport",
    "QualityReport",
    "check",
    "existing_ts",
    "fetch_history",
    "import_file",
    "load_bars",
    "missing_ranges",
    "open_client",
    "read_ohlcv",
    "timeframe_ms",
    "upsert_bars",
]
