"""Live mode reports each new order once (learning its venue id is not a second new order)."""

from __future__ import annotations

import pytest

from tps19.engine.trading import OrderUpdate, build_trading

from .helpers import settings, until
from .simhelp import inside_spread_price

pytestmark = pytest.mark.slow


async def test_a_live_order_is_announced_as_new_once(sim, clients, bus, db):
    mine, _ = clients
    updates: list[OrderUpdate] = []
    bus.on(OrderUpdate, updates.append)
    s = await build_trading(mode="live", bus=bus, db=db, client=mine, markets=mine.markets, settings=settings(),
                            snapshot_interval_s=0, poll_interval_s=0.2, watch_timeout_s=1.0, request_timeout_s=3.0)
    await s.start()
    try:
        price = await inside_spread_price(mine)
        o = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.01", price)
        assert o.status.value == "open"
        await s.broker.cancel(o.client_order_id)
        await until(lambda: any(u.status == "cancelled" for u in updates))
        mine_only = [u for u in updates if u.client_order_id == o.client_order_id]
        changes = [(u.previous_status, u.status) for u in mine_only if u.previous_status != u.status]
        assert changes == [(None, "new"), ("new", "open"), ("open", "cancelled")]
        assert any(u.venue_order_id for u in mine_only)
    finally:
        await s.stop()
