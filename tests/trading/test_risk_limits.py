"""Position cap and daily loss limit: they refuse orders that add risk, never ones that reduce it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tps19.config import RiskSettings
from tps19.engine.trading.orders import OrderRejected, ValidatedOrder
from tps19.engine.trading.risk import RiskGate


def _order(side: str, amount: str, price: str = "100") -> ValidatedOrder:
    a, p = Decimal(amount), Decimal(price)
    return ValidatedOrder(symbol="BTC/USDT", side=side, type="limit", amount=a, price=p, notional=a * p)


def _gate(held: str = "0", pnl: str = "0") -> tuple[RiskGate, dict]:
    state = {"held": Decimal(held), "pnl": Decimal(pnl)}
    gate = RiskGate(RiskSettings(max_order_notional=Decimal("100000"), max_position_notional=Decimal("1000"),
                                 daily_loss_limit=Decimal("50")))
    gate.position_of = lambda s: state["held"]
    gate.net_pnl = lambda: state["pnl"]
    gate.pnl_today()  # the day starts here
    return gate, state


def test_position_cap_refuses_a_buy_beyond_it_but_not_one_within():
    gate, _ = _gate(held="8")
    gate.check(_order("buy", "2"))  # 10 x 100 = 1000: at the cap
    with pytest.raises(OrderRejected, match="position cap"):
        gate.check(_order("buy", "2.01"))


def test_selling_down_is_allowed_above_the_cap():
    gate, _ = _gate(held="50")  # 5000 held, over the cap (e.g. starting balance)
    gate.check(_order("sell", "10"))
    with pytest.raises(OrderRejected, match="position cap"):
        gate.check(_order("buy", "0.01"))


def test_daily_loss_limit_blocks_new_risk_only():
    gate, state = _gate(held="5")
    state["pnl"] = Decimal("-49.99")
    gate.check(_order("buy", "1"))
    state["pnl"] = Decimal("-50")
    with pytest.raises(OrderRejected, match="daily loss limit"):
        gate.check(_order("buy", "1"))
    gate.check(_order("sell", "5"))  # getting out is always allowed


def test_loss_is_measured_from_the_start_of_the_day_not_lifetime():
    gate, state = _gate(held="1", pnl="-500")  # lost 500 before today
    state["pnl"] = Decimal("-520")
    gate.check(_order("buy", "1"))  # -20 today: fine
    assert gate.pnl_today() == Decimal("-20")


async def test_a_restart_does_not_reset_the_days_loss(bus, db, markets):
    """The day's first stored snapshot is where today's P&L counts from, across restarts."""
    from tps19.engine.events import now_ms
    from tps19.engine.storage.models import PortfolioSnapshot
    from tps19.engine.assembly import build_trading

    from .conftest import START
    from .helpers import book, settings

    async with db.session() as s, s.begin():  # earlier today this account was 1,000 up
        s.add(PortfolioSnapshot(ts=now_ms() - 1, mode="paper", equity=Decimal("1"), cash=Decimal("1"),
                                realized_pnl=Decimal("1000"), unrealized_pnl=Decimal("0"), fees=Decimal("0")))
    stack = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets,
                                settings=settings(daily_loss_limit=Decimal("1000")), exchange="cryptocom",
                                starting_balances=dict(START), snapshot_interval_s=0)
    await stack.start()
    try:
        bus.publish(book())
        assert stack.broker.risk.pnl_today() == Decimal("-1000")  # now flat: 1,000 given back today
        o = await stack.broker.place_order("BTC/USDT", "buy", "limit", "0.01", "49000")
        assert o.status.value == "rejected" and "daily loss limit" in o.reason
    finally:
        await stack.stop()
