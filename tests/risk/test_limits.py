"""Limits changed while trading: validated, in force at once, stored, logged, kept across a restart."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from sqlmodel import select

from tps19.engine.risk.limits import LimitError, change_limits
from tps19.engine.storage.models import RiskLimitChange
from tps19.engine.assembly import build_trading

from ..trading.conftest import START, bus, db, markets  # noqa: F401 (fixtures)
from ..trading.helpers import book, settings


async def _stack(bus, db, markets):
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings(),
                            exchange="cryptocom", starting_balances=dict(START), snapshot_interval_s=0)
    await s.start()
    return s


async def test_a_changed_limit_is_in_force_stored_and_kept_after_a_restart(bus, db, markets, caplog):
    s = await _stack(bus, db, markets)
    try:
        bus.publish(book())
        assert (await s.broker.place_order("BTC/USDT", "buy", "limit", "0.1", "49000")).status.value == "open"
        diff = await change_limits(s, {"max_order_notional": "4000", "price_band_pct": "25"})
        assert diff == [("max_order_notional", "1000000", "4000")]  # an unchanged value is no change
        o = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.1", "49000")
        assert o.reason == "not sent: order value 4,900.00 exceeds the per-order cap 4,000"
        assert "risk limit max_order_notional changed from 1000000 to 4000 (desk)" in caplog.text
        with pytest.raises(LimitError, match=r"invalid limit max_open_orders \(TPS19_RISK__MAX_OPEN_ORDERS\)"):
            await change_limits(s, {"max_open_orders": "0", "max_order_notional": "1"})
        assert s.broker.risk.settings.max_order_notional == D("4000")  # a refused change applies nothing
    finally:
        await s.stop()
    async with db.session() as ses:
        rows = (await ses.execute(select(RiskLimitChange))).scalars().all()
    assert [(r.name, r.old, r.new, r.mode) for r in rows] == [("max_order_notional", "1000000", "4000", "paper")]
    again = await _stack(bus, db, markets)
    try:
        assert again.broker.risk.settings.max_order_notional == D("4000")
        assert again.breakers.settings.max_order_notional == D("4000")
    finally:
        await again.stop()
