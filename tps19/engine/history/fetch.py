"""Paginated, resumable OHLCV download through any ccxt async client into the Bar table.

Resumable: before fetching, the bars already stored for the range are read and only the
missing stretches are requested; every page is committed as it arrives, so an interrupted
run keeps what it got and the next run fills only the gaps. De-duplicated by the table's
primary key (upsert). Rate limits are ccxt's own (``enableRateLimit``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from .quality import timeframe_ms
from .store import existing_ts, upsert_bars

ProgressFn = Callable[[int, int], None]  # (bars done, bars planned)


@dataclass
class FetchReport:
    planned: int = 0  # bars missing before the run
    already: int = 0  # bars already stored in the range
    written: int = 0  # rows upserted
    requests: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)  # missing [start, end] fetched
    empty_windows: int = 0  # windows the exchange had no candles for (real gaps)


def missing_ranges(have: list[int], since: int, until: int, step: int) -> list[tuple[int, int]]:
    """Contiguous [start, end] (inclusive) stretches of the step grid in [since, until) not in ``have``."""
    import numpy as np

    grid = np.arange(since, until, step, dtype=np.int64)
    if len(grid) == 0:
        return []
    miss = np.setdiff1d(grid, np.asarray(have, dtype=np.int64), assume_unique=True)
    if len(miss) == 0:
        return []
    breaks = np.flatnonzero(np.diff(miss) != step)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [len(miss) - 1]))
    return [(int(miss[s]), int(miss[e])) for s, e in zip(starts, ends, strict=True)]


async def fetch_history(
    client: Any,
    db: Any,
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    since: int,
    until: int,
    limit: int = 300,
    progress: ProgressFn | None = None,
) -> FetchReport:
    """Fill the Bar table for [since, until) with the candles the exchange has."""
    step = timeframe_ms(timeframe)
    since = -(-since // step) * step  # align up to the grid
    until = (until // step) * step
    rep = FetchReport()
    have = await existing_ts(db, exchange, symbol, timeframe, since, until)
    rep.already = len(have)
    rep.ranges = missing_ranges(have, since, until, step)
    rep.planned = sum((e - s) // step + 1 for s, e in rep.ranges)
    done = 0
    if progress:
        progress(0, rep.planned)
    for start, end in rep.ranges:
        cursor = start
        while cursor <= end:
            rows = await client.fetch_ohlcv(symbol, timeframe, since=cursor, limit=limit)
            rep.requests += 1
            rows = [r for r in rows if cursor <= r[0] <= end and None not in r[:5]]
            if not rows:
                rep.empty_windows += 1
                advance = min(end + step, cursor + limit * step)
                done += (advance - cursor) // step
                cursor = advance
            else:
                rows.sort(key=lambda r: r[0])
                rep.written += await upsert_bars(db, exchange, symbol, timeframe, rows)
                nxt = int(rows[-1][0]) + step
                done += (nxt - cursor) // step
                cursor = nxt
            if progress:
                progress(min(done, rep.planned), rep.planned)
    return rep


def _async_class(exchange_id: str) -> type:
    from ..ccxt_classes import exchange_class

    cls = exchange_class(exchange_id, "async")
    assert cls is not None, exchange_id
    return cls


@contextlib.asynccontextmanager
async def open_client(exchange_id: str, *, rest_url: str | None = None) -> AsyncIterator[Any]:
    """A ccxt async client with rate limiting; ``sim`` is a simulated exchange already serving at
    ``rest_url`` (the entry point starts it: tps19.launch.history_client)."""
    from ..ccxt_classes import exchange_class

    if exchange_id == "sim":
        if not rest_url:
            raise ValueError("exchange 'sim' needs the simulated exchange's URL")
        from ..venue import point_ccxt

        client = point_ccxt(_async_class("cryptocom")({"enableRateLimit": True}), rest_url)
        try:
            yield client
        finally:
            await client.close()
        return
    if exchange_id == "sim-binance":
        if not rest_url:
            raise ValueError("exchange 'sim-binance' needs the simulated exchange's URL")
        from ..venue import BINANCE_SPOT_OPTIONS, point_ccxt_binance

        client = point_ccxt_binance(_async_class("binance")({"enableRateLimit": True, "options": dict(BINANCE_SPOT_OPTIONS)}),
                                    rest_url)
        try:
            yield client
        finally:
            await client.close()
        return
    cls = exchange_class(exchange_id, "async")
    if cls is None:
        raise ValueError(f"unknown exchange {exchange_id!r} (not a ccxt exchange id)")
    options: dict[str, Any] = {"enableRateLimit": True}
    if exchange_id.startswith("binance"):
        options["options"] = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}
    client = cls(options)
    try:
        yield client
    finally:
        await client.close()
