"""The risk stage is its own object: explicit inputs, a decision, and no broker sees what it refuses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tps19.config import RiskSettings
from tps19.engine.trading.orders import ValidatedOrder
from tps19.engine.trading.risk import RiskEngine

from .conftest import START
from .helpers import book, settings


class Holdings:
    def __init__(self, held: str, pnl: str = "0") -> None:
        self.held, self.pnl = Decimal(held), Decimal(pnl)

    def position(self, symbol: str) -> Decimal:
        return self.held

    def net_pnl(self) -> Decimal:
        return self.pnl


def _order(side: str, amount: str, price: str = "100") -> ValidatedOrder:
    a, p = Decimal(amount), Decimal(price)
    return ValidatedOrder(symbol="BTC/USDT", side=side, type="limit", amount=a, price=p, notional=a * p)


def test_the_risk_engine_decides_from_the_portfolio_view_it_is_given():
    view = Holdings(held="8")
    risk = RiskEngine(RiskSettings(max_position_notional=Decimal("1000"), daily_loss_limit=Decimal("50")), view)
    assert risk.decide(_order("buy", "2")).accepted  # 10 x 100: at the cap
    d = risk.decide(_order("buy", "2.01"))
    assert not d.accepted and d.reason == "position after this order would be 1,001.00 > the position cap 1,000"
    view.pnl = Decimal("-50")  # the day started at 0
    assert "daily loss limit reached" in risk.decide(_order("buy", "1")).reason
    assert risk.decide(_order("sell", "8")).accepted  # getting out stays allowed


@pytest.mark.sqlite_only
async def test_no_broker_sees_an_order_the_risk_stage_refuses(bus, db, markets, monkeypatch):
    from tps19.engine.assembly import build_trading

    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets,
                            settings=settings(max_order_notional=Decimal("1000")), exchange="cryptocom",
                            starting_balances=dict(START), snapshot_interval_s=0)
    await s.start()
    seen: list[str] = []
    submit = type(s.broker)._submit

    async def spy(self, o, v):
        seen.append(o.client_order_id)
        return await submit(self, o, v)

    monkeypatch.setattr(type(s.broker), "_submit", spy)
    try:
        bus.publish(book())
        big = await s.broker.place_order("BTC/USDT", "buy", "limit", "1", "40000")
        assert big.status.value == "rejected" and big.reason == "not sent: order value 40,000.00 exceeds the per-order cap 1,000"
        assert seen == []
        ok = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.01", "40000")
        assert ok.status.value == "open" and seen == [ok.client_order_id]
    finally:
        await s.stop()
