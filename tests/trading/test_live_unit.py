"""Live broker pieces that need no venue."""

from __future__ import annotations

import pytest
from tps19.engine.assembly import build_trading

from .helpers import settings


class PagedVenue:
    id = "cryptocom"
    has: dict = {}
    precisionMode = 4

    def __init__(self, n: int) -> None:
        # 250 trades, several sharing a millisecond
        self.trades = [{"id": str(i), "timestamp": 1_000 + i // 3, "order": "o", "symbol": "BTC/USDT"} for i in range(n)]
        self.calls = 0

    async def fetch_my_trades(self, symbol=None, since=None, limit=None, params=None):
        self.calls += 1
        until = (params or {}).get("until")
        rows = [t for t in self.trades if t["timestamp"] >= (since or 0) and (until is None or t["timestamp"] <= until)]
        rows.sort(key=lambda t: t["timestamp"], reverse=True)  # the venue returns the newest first
        return sorted(rows[:limit], key=lambda t: t["timestamp"])  # ccxt sorts ascending


@pytest.mark.sqlite_only
async def test_trade_history_is_paged(bus, db, markets):
    venue = PagedVenue(250)
    s = await build_trading(mode="live", bus=bus, db=db, client=venue, markets=markets, settings=settings())
    got = await s.broker.fetch_trades_since(None, 0)
    assert sorted(int(t["id"]) for t in got) == list(range(250)) and len(got) == 250
    assert venue.calls == 3
