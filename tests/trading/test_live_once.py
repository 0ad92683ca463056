"""Live mode reports each new order once (learning its venue id is not a second new order)."""

from __future__ import annotations

import pytest

from tps19.engine.trading import OrderUpdate

from tps19.engine.assembly import build_trading

from .helpers import settings, until
from .simhelp import KEY, inside_spread_price

pytestmark = pytest.mark.slow


async def _live(bus, db, client):
    s = await build_trading(mode="live", bus=bus, db=db, client=client, markets=client.markets, settings=settings(),
                            snapshot_interval_s=0, poll_interval_s=0.2, watch_timeout_s=1.0, request_timeout_s=3.0)
    await s.start()
    return s


@pytest.mark.sqlite_only
async def test_a_live_order_is_announced_as_new_once(sim, clients, bus, db):
    mine, _ = clients
    updates: list[OrderUpdate] = []
    bus.on(OrderUpdate, updates.append)
    s = await _live(bus, db, mine)
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


@pytest.mark.sqlite_only
async def test_live_balances_show_what_the_account_held_free_and_locked(sim, clients, bus, db):
    """An account that already holds BTC: the desk's balances list it (from the venue), and a
    resting sell moves part of it from free to locked."""
    from decimal import Decimal

    from tps19.engine.trading.events import PortfolioUpdate

    from .simhelp import venue_totals

    mine, _ = clients
    seen: list[PortfolioUpdate] = []
    bus.on(PortfolioUpdate, seen.append)
    s = await _live(bus, db, mine)
    try:
        held = venue_totals(sim)["BTC"]
        assert held > 0
        await until(lambda: seen and any(b.currency == "BTC" and b.total == held for b in seen[-1].balances))
        ob = await mine.fetch_order_book("BTC/USDT", 5)
        far = Decimal(repr(ob["asks"][0][0])) * 2
        o = await s.broker.place_order("BTC/USDT", "sell", "limit", "0.05", far.quantize(Decimal("0.01")))
        assert o.status.value == "open"

        def btc():
            return next((b for b in seen[-1].balances if b.currency == "BTC"), None) if seen else None
        await until(lambda: btc() is not None and btc().locked == Decimal("0.05"))
        assert btc().free == held - Decimal("0.05") and btc().total == held
        assert sim.account_balances(KEY)["BTC"]["used"] == btc().locked  # what the venue holds
    finally:
        await s.stop()
