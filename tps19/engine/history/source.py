"""Bars for a backtest, from a CSV/Parquet file or from the Bar table: one loader for the
`tps19 backtest`/`optimize` commands and the desk's Backtest screen, so both clean and cut
the data the same way."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bars import Bars, read_ohlcv
from .quality import QualityReport, check

# exchange id -> an open ccxt client; the caller's, because only it knows whether a
# simulated exchange must be started to serve that id.
ClientFactory = Callable[[str], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True)
class StoredBars:
    """Bars stored in the database file ``db_path`` under exchange/symbol/timeframe."""

    db_path: str | Path
    exchange: str
    symbol: str
    timeframe: str


def load_file_bars(path: str | Path, since: int | None = None, until: int | None = None) -> tuple[Bars, QualityReport]:
    """The clean bars of a CSV/Parquet file in [since, until), and the quality report."""
    bars, rep = check(read_ohlcv(path))
    return bars.window(since, until), rep


async def load_backtest_bars(
    source: str | Path | StoredBars, since: int | None = None, until: int | None = None,
    *, fetch: ClientFactory | None = None,
) -> tuple[Bars, QualityReport]:
    """The clean bars in [since, until) and the report of what was dropped or missing.

    With ``fetch`` and ``since``, stored bars missing from the database are downloaded first.
    ``report.rows_in`` is 0 when nothing was there at all (before any cleaning)."""
    import asyncio

    if not isinstance(source, StoredBars):
        return await asyncio.to_thread(load_file_bars, source, since, until)
    raw = await _stored(source, since, until, fetch)
    bars, rep = await asyncio.to_thread(check, raw)
    return bars.window(since, until), rep


async def _stored(source: StoredBars, since: int | None, until: int | None, fetch: ClientFactory | None) -> Any:
    from ..storage import Database
    from .fetch import fetch_history
    from .store import load_bars

    db = Database(source.db_path)
    await db.open(create=fetch is not None and since is not None)  # only reading stored bars creates no database
    try:
        if fetch is not None and since is not None:
            end = until if until is not None else int(time.time() * 1000)
            async with fetch(source.exchange) as client:
                await fetch_history(client, db, exchange=source.exchange, symbol=source.symbol,
                                    timeframe=source.timeframe, since=since, until=end)
        return await load_bars(db, source.exchange, source.symbol, source.timeframe, since, until)
    finally:
        await db.close()
