"""Matching engine rules, without any server."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tps19.simex.engine import Account, EngineError, MatchingEngine
from tps19.simex.instruments import DEFAULT_INSTRUMENTS

BTC = "BTC/USDT"
INST = DEFAULT_INSTRUMENTS[0]  # tick 0.01, lot 0.00001


def px(p: str) -> int:
    return INST.to_ticks(D(p))


def lots(q: str) -> int:
    return INST.to_lots(D(q))


@pytest.fixture
def eng():
    t = [1_000]
    e = MatchingEngine(list(DEFAULT_INSTRUMENTS), clock=lambda: t[0], maker_fee=D("0.001"), taker_fee=D("0.002"))
    return e


def acct(name: str, usdt: str = "1000000", btc: str = "10") -> Account:
    return Account(api_key=name, secret="s", balances={"USDT": D(usdt), "BTC": D(btc)})


def test_price_time_priority(eng):
    a, b, c, t = acct("a"), acct("b"), acct("c"), acct("t")
    first = eng.new_order(a, BTC, "SELL", "LIMIT", lots("0.1"), px("60000"))
    second = eng.new_order(b, BTC, "SELL", "LIMIT", lots("0.1"), px("60000"))
    better_later = eng.new_order(c, BTC, "SELL", "LIMIT", lots("0.1"), px("59999"))
    taker = eng.new_order(t, BTC, "BUY", "LIMIT", lots("0.15"), px("60000"))
    assert better_later.status == "FILLED"  # better price first, even though it came last
    assert first.filled == lots("0.05") and first.status == "ACTIVE"  # then time priority at 60000
    assert second.filled == 0
    assert taker.status == "FILLED"
    assert [f.price for f in t.trades] == [px("59999"), px("60000")]


def test_partial_fill_keeps_rest_on_book(eng):
    a, t = acct("a"), acct("t")
    rest = eng.new_order(a, BTC, "BUY", "LIMIT", lots("1"), px("50000"))
    eng.new_order(t, BTC, "SELL", "LIMIT", lots("0.3"), px("50000"))
    assert rest.status == "ACTIVE" and rest.filled == lots("0.3")
    book = eng.books[BTC]
    assert book.top("BUY", 1) == [(px("50000"), lots("0.7"), 1)]
    # hold shrinks with the fill: 0.7 BTC * 50000 still held
    assert a.holds["USDT"] == D("35000.0000000")


def test_post_only_rejected_when_crossing_and_rests_otherwise(eng):
    a, b = acct("a"), acct("b")
    eng.new_order(a, BTC, "SELL", "LIMIT", lots("0.1"), px("60000"))
    crossing = eng.new_order(b, BTC, "BUY", "LIMIT", lots("0.1"), px("60000"), post_only=True)
    assert crossing.status == "REJECTED" and crossing.reason == 43005 and crossing.filled == 0
    assert b.holds.get("USDT", D(0)) == 0 and b.balances["USDT"] == D("1000000")
    resting = eng.new_order(b, BTC, "BUY", "LIMIT", lots("0.1"), px("59999.99"), post_only=True)
    assert resting.status == "ACTIVE"
    assert eng.books[BTC].best_bid() == px("59999.99")


def test_ioc_fills_what_it_can_then_cancels(eng):
    a, t = acct("a"), acct("t")
    eng.new_order(a, BTC, "SELL", "LIMIT", lots("0.1"), px("60000"))
    eng.new_order(a, BTC, "SELL", "LIMIT", lots("0.1"), px("60010"))
    ioc = eng.new_order(t, BTC, "BUY", "LIMIT", lots("0.5"), px("60000"), tif="IMMEDIATE_OR_CANCEL")
    assert ioc.status == "CANCELED" and ioc.filled == lots("0.1")
    assert eng.books[BTC].best_bid() is None  # never rests
    assert t.holds["USDT"] == 0
    none = eng.new_order(t, BTC, "BUY", "LIMIT", lots("0.1"), px("59000"), tif="IMMEDIATE_OR_CANCEL")
    assert none.status == "CANCELED" and none.filled == 0 and none.reason == 43004


def test_fok_all_or_nothing(eng):
    a, t = acct("a"), acct("t")
    eng.new_order(a, BTC, "SELL", "LIMIT", lots("0.1"), px("60000"))
    fok = eng.new_order(t, BTC, "BUY", "LIMIT", lots("0.2"), px("60000"), tif="FILL_OR_KILL")
    assert fok.status == "CANCELED" and fok.filled == 0 and not t.trades
    fok2 = eng.new_order(t, BTC, "BUY", "LIMIT", lots("0.1"), px("60000"), tif="FILL_OR_KILL")
    assert fok2.status == "FILLED"


def test_market_order_sweeps_levels(eng):
    a, t = acct("a"), acct("t")
    eng.new_order(a, BTC, "SELL", "LIMIT", lots("0.1"), px("60000"))
    eng.new_order(a, BTC, "SELL", "LIMIT", lots("0.1"), px("60100"))
    m = eng.new_order(t, BTC, "BUY", "MARKET", lots("0.15"))
    assert m.status == "FILLED"
    assert m.cum_value == D("6000") + D("3005")
    assert eng.books[BTC].top("SELL", 5) == [(px("60100"), lots("0.05"), 1)]
    # nothing left to buy -> cancelled, not resting
    m2 = eng.new_order(t, BTC, "BUY", "MARKET", lots("1"))
    assert m2.status == "CANCELED" and m2.filled == lots("0.05")
    assert eng.books[BTC].best_ask() is None


def test_fees_and_balances_exact(eng):
    maker, taker = acct("m"), acct("t")
    eng.new_order(maker, BTC, "SELL", "LIMIT", lots("0.5"), px("60000"))
    eng.new_order(taker, BTC, "BUY", "MARKET", lots("0.5"))
    # taker bought 0.5 BTC for 30000 USDT, taker fee 0.2% paid in BTC
    assert taker.balances["BTC"] == D("10") + D("0.5") - D("0.5") * D("0.002")
    assert taker.balances["USDT"] == D("1000000") - D("30000")
    # maker sold 0.5 BTC, maker fee 0.1% paid in USDT
    assert maker.balances["BTC"] == D("9.5")
    assert maker.balances["USDT"] == D("1000000") + D("30000") - D("30")
    assert maker.holds["BTC"] == 0
    assert {f.liquidity for f in maker.trades} == {"MAKER"} and {f.liquidity for f in taker.trades} == {"TAKER"}


def test_insufficient_balance_and_holds(eng):
    poor = acct("p", usdt="1000", btc="0")
    with pytest.raises(EngineError) as e:
        eng.new_order(poor, BTC, "BUY", "LIMIT", lots("1"), px("60000"))
    assert e.value.code == 306
    with pytest.raises(EngineError):
        eng.new_order(poor, BTC, "SELL", "LIMIT", lots("0.1"), px("60000"))
    o = eng.new_order(poor, BTC, "BUY", "LIMIT", lots("0.01"), px("60000"))
    assert poor.available("USDT") == D("400")
    with pytest.raises(EngineError):  # the hold counts
        eng.new_order(poor, BTC, "BUY", "LIMIT", lots("0.01"), px("60000"))
    assert eng.cancel(o)
    assert poor.available("USDT") == D("1000") and not eng.cancel(o)


def test_limit_buy_filled_below_limit_releases_difference(eng):
    a, t = acct("a"), acct("t")
    eng.new_order(a, BTC, "SELL", "LIMIT", lots("0.1"), px("59000"))
    o = eng.new_order(t, BTC, "BUY", "LIMIT", lots("0.1"), px("60000"))
    assert o.status == "FILLED"
    assert t.holds["USDT"] == 0
    assert t.balances["USDT"] == D("1000000") - D("5900")


def test_below_min_size_rejected(eng):
    with pytest.raises(EngineError) as e:
        eng.new_order(acct("a"), BTC, "BUY", "LIMIT", lots("0.00001"), px("1"))  # 0.00001 USDT notional
    assert e.value.code == 415
