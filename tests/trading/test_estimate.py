"""The ticket's estimate is the paper fill: same book walk, same (venue's) fee rates."""

from __future__ import annotations

import copy
from decimal import Decimal as D

import pytest
from tps19.engine.trading import FillEvent

from tps19.engine.assembly import build_trading
from tps19.engine.trading.book_walk import estimate
from tps19.engine.trading.fees import FeeSchedule, apply

from .helpers import book, settings


@pytest.mark.sqlite_only
async def test_a_paper_fill_is_what_the_estimate_said(bus, db, markets):
    markets = copy.deepcopy(markets)
    apply(markets, {s: FeeSchedule(D("0.0004"), D("0.0006"), "venue") for s in markets})
    fills: list[FillEvent] = []
    bus.on(FillEvent, fills.append)
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings())
    await s.start()
    try:
        ev = book()  # asks 0.1 @ 50000, 0.2 @ 50001, 0.5 @ 50005
        bus.publish(ev)
        est = estimate("buy", "market", D("0.25"), None, ev, markets["BTC/USDT"])
        assert est.fee_rate == D("0.0006") and est.taker_amount == D("0.25") and not est.short_book
        o = await s.broker.place_order("BTC/USDT", "buy", "market", "0.25")
        assert o.status.value == "filled"
        assert o.avg_price == est.avg_price and sum(f.fee for f in fills) == est.fee == o.fee
        rest = estimate("buy", "limit", D("1"), D("40000"), ev, markets["BTC/USDT"])
        assert rest.fee_rate == D("0.0004") and rest.fee == D("40000") * D("0.0004")  # rests: maker
    finally:
        await s.stop()
