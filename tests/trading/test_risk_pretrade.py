"""Each pre-trade check refuses exactly at its boundary and passes just inside it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from tps19.config import RiskSettings
from tps19.engine.trading.orders import ValidatedOrder
from tps19.engine.trading.risk import BREAKER, RiskEngine

from .conftest import START
from .helpers import book, settings

BIG = D("1e12")


class Account:
    """A portfolio and account view with every figure set by the test."""

    def __init__(self, held: str = "0", gross: str = "0", open_orders: int = 0, free: str = "1e12") -> None:
        self.held, self.gross, self.open_orders, self.free = D(held), D(gross), open_orders, D(free)

    def position(self, symbol: str) -> D:
        return self.held

    def net_pnl(self) -> D:
        return D(0)

    def gross_exposure(self) -> D:
        return self.gross

    def open_order_count(self) -> int:
        return self.open_orders

    def shortfall(self, v: ValidatedOrder) -> str | None:
        need = v.notional if v.side == "buy" else v.amount
        return f"not enough free: needs {need}, {self.free} free" if need > self.free else None


class Feed:
    def __init__(self) -> None:
        self.ok = True

    def fresh(self, stream: str, symbol: str) -> bool:
        return self.ok


def _order(side: str, amount: str, price: str = "100") -> ValidatedOrder:
    a, p = D(amount), D(price)
    return ValidatedOrder(symbol="BTC/USDT", side=side, type="limit", amount=a, price=p, notional=a * p)


def _risk(acct: Account | None = None, feed: Feed | None = None, clock=None, **kw) -> RiskEngine:
    base = dict(max_order_notional=BIG, max_position_notional=BIG, max_gross_exposure=BIG, daily_loss_limit=BIG)
    acct = acct or Account()
    extra = {"clock": clock} if clock else {}
    return RiskEngine(RiskSettings(**(base | kw)), acct, account=acct, feed=feed, **extra)


def test_price_band_around_the_mid():
    r = _risk(price_band_pct=D("10"))
    mid = D("100")
    assert r.decide(_order("sell", "1", "90"), mid).accepted  # exactly 10 % below
    assert r.decide(_order("buy", "1", "110"), mid).accepted
    low = r.decide(_order("sell", "1", "89.99"), mid)
    assert low.reason == "limit price 89.99 is 10.01% from the mid 100: outside the 10% price band (fat finger?)"
    assert "outside the 10% price band" in r.decide(_order("buy", "1", "110.01"), mid).reason


def test_gross_exposure_cap():
    r = _risk(Account(gross="900"), max_gross_exposure=D("1000"))
    assert r.decide(_order("buy", "1")).accepted  # 900 + 100 = 1000: at the cap
    d = r.decide(_order("buy", "1.0001"))
    assert d.reason == "gross exposure after this order would be 1,000.01 > the gross exposure cap 1,000"


def test_gross_exposure_cap_lets_a_reducing_order_through():
    r = _risk(Account(held="5", gross="5000"), max_gross_exposure=D("1000"))
    assert r.decide(_order("sell", "1")).accepted
    assert not r.decide(_order("buy", "0.01")).accepted


def test_max_open_orders():
    acct = Account(open_orders=2)
    r = _risk(acct, max_open_orders=3)
    assert r.decide(_order("buy", "1")).accepted  # would be the 3rd
    acct.open_orders = 3
    assert r.decide(_order("buy", "1")).reason == "3 orders already open: the open-order limit"


def test_orders_per_minute_window():
    now = [1000.0]
    r = _risk(clock=lambda: now[0], max_orders_per_minute=3)
    for _ in range(3):
        assert r.decide(_order("buy", "1")).accepted
        r.count()
        now[0] += 10
    d = r.decide(_order("buy", "1"))  # 3 orders at t=1000, 1010, 1020; now 1030
    assert d.reason == "order rate limit reached (3 orders in the last minute)"
    now[0] = 1059.999
    assert not r.decide(_order("buy", "1")).accepted  # the first is 59.999 s old: still in the window
    now[0] = 1060.0
    assert r.decide(_order("buy", "1")).accepted  # now it is 60 s old: out


def test_free_balance():
    r = _risk(Account(free="100"))
    assert r.decide(_order("buy", "1", "100")).accepted  # needs exactly what is free
    assert r.decide(_order("buy", "1.0001", "100")).reason == "not enough free: needs 100.0100, 100 free"


def test_stale_feed_blocks_new_risk_but_not_exits():
    feed = Feed()
    r = _risk(Account(held="2"), feed)
    assert r.decide(_order("buy", "1")).accepted
    feed.ok = False
    d = r.decide(_order("buy", "1"))
    assert d.reason.startswith("BTC/USDT's order book feed is stale or resyncing")
    assert r.decide(_order("sell", "1")).accepted  # getting out stays allowed


def test_an_order_on_a_symbol_the_venue_does_not_watch_says_so_not_stale():
    feed = Feed()
    feed.symbols = ["ETH/USDT"]
    d = _risk(Account(held="2"), feed).decide(_order("buy", "1"))
    assert d.reason.startswith("BTC/USDT is not watched on this venue (watched: ETH/USDT)"), d.reason
    assert "stale" not in d.reason


def test_a_breaker_halt_refuses_new_risk_but_lets_exits_through():
    r = _risk(Account(held="2"))
    r.engage(BREAKER + "max drawdown 20% reached")
    assert r.decide(_order("sell", "2")).accepted
    d = r.decide(_order("buy", "0.01"))
    assert d.reason.startswith("trading halted by the circuit breaker: max drawdown 20% reached")
    r.engage("manual")  # the trader's own kill switch refuses everything
    assert "kill switch engaged" in r.decide(_order("sell", "1")).reason


@pytest.mark.sqlite_only
async def test_a_sell_limit_at_1_on_a_64k_market_is_refused_and_never_sent(bus, db, markets, monkeypatch):
    from tps19.engine.assembly import build_trading

    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings(),
                            exchange="cryptocom", starting_balances=dict(START), snapshot_interval_s=0)
    await s.start()
    sent: list[str] = []
    submit = type(s.broker)._submit

    async def spy(self, o, v):
        sent.append(o.client_order_id)
        return await submit(self, o, v)

    monkeypatch.setattr(type(s.broker), "_submit", spy)
    try:
        bus.publish(book(bids=((63999.0, 1.0),), asks=((64001.0, 1.0),)))
        o = await s.broker.place_order("BTC/USDT", "sell", "limit", "0.5", "1")
        assert o.status.value == "rejected"
        assert o.reason == ("not sent: limit price 1 is 100.00% from the mid 64,000: outside the 25% price band "
                            "(fat finger?)")
        assert sent == [] and s.broker.risk.rejections == 1
        ok = await s.broker.place_order("BTC/USDT", "sell", "limit", "0.5", "64500")
        assert ok.status.value == "open" and sent == [ok.client_order_id]
        # its 0.5 BTC is held back: selling the other 0.5 is fine, 0.50001 is not
        assert (await s.broker.place_order("BTC/USDT", "sell", "limit", "0.5", "64500")).status.value == "open"
        poor = await s.broker.place_order("BTC/USDT", "sell", "limit", "0.00001", "64500")
        assert poor.reason == "not sent: not enough free BTC: the order needs 0.00001, 0.0 is free"
    finally:
        await s.stop()
