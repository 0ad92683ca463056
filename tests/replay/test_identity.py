"""A paper session recorded with --record, backtested with --replay: the same orders and fills."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.engine.helpers import wait_for
from tests.replay.conftest import fast_clock
from tps19.engine.engine import Engine
from tps19.engine.recording.reader import inspect
from tps19.engine.recording.replayer import ReplayOptions, replay_backtest
from tps19.engine.strategies.registry import create
from tps19.engine.trading.events import FillEvent, OrderUpdate
from tps19.launch import start_embedded_sim

pytestmark = pytest.mark.slow


def _fills(fills) -> list[tuple]:
    return [(f.symbol, f.side, f.price, f.amount, f.fee, f.liquidity) for f in fills]


def _orders(updates) -> list[tuple]:
    last: dict[str, OrderUpdate] = {}
    for u in updates:
        last[u.client_order_id] = u
    return [(u.symbol, u.side, u.type, u.amount, u.price, u.status, u.filled, u.avg_price, u.fee) for u in last.values()]


async def test_paper_session_replayed_gives_the_same_orders_and_fills(settings, tmp_path):
    pointed, sim = await start_embedded_sim(settings, clock=fast_clock())
    rec = tmp_path / "rec"
    fills: list[FillEvent] = []
    updates: list[OrderUpdate] = []
    try:
        engine = Engine(pointed, "paper", strategy=create("sma_cross", ["fast=2", "slow=3"]), record_dir=rec)
        engine.bus.on(FillEvent, fills.append)
        engine.bus.on(OrderUpdate, updates.append)
        await engine.start()
        try:
            assert await wait_for(lambda: len({f.client_order_id for f in fills}) >= 4, timeout=60), \
                f"the strategy traded {len(fills)} fills in 60 s"
            # and one order by hand: it is re-sent where it was executed
            await engine.trading.broker.place_order("BTC/USDT", "buy", "market", Decimal("0.01"))
            n = len(fills)
            assert await wait_for(lambda: len(fills) > n)
        finally:
            await engine.stop()
    finally:
        await sim.stop()
    info = inspect(rec)
    assert info.by_kind.get("delta", 0) > 50 and info.by_kind.get("trade", 0) > 5
    assert info.by_kind.get("fill") == len(fills)
    result = await replay_backtest(rec, settings, ReplayOptions())
    assert result.timing == "recorded"
    assert _fills(result.fills) == _fills(fills)
    assert _orders(result.updates) == _orders(updates)
    # the engine ran on the recording's clock: each fill is stamped with the receive time of the
    # event that caused it, a moment before the live fill was committed
    assert all(0 <= a.ts - b.ts <= 1000 for a, b in zip(fills, result.fills))
    assert result.book_frames > 50 and result.books_published > 10
