"""Trigger orders and OCO lists on the simulated venue, placed with the unmodified ccxt 4.5.90
cryptocom client over real HTTP and websockets (issue 19): what ccxt sends for stopLossPrice /
takeProfitPrice / triggerPrice and create_orders(contingency_type=OCO), the trigger on the
market's prints, the other leg's cancel, open orders / order detail / the user channel; and the
switchboard's price shock."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import ccxt
import pytest

from tps19.simex.control import ControlServer

from .conftest import wait_for

SYM = "BTC/USDT"


def last_price(sim) -> Decimal:
    inst = sim._instrument(SYM)
    return inst.price(sim.last[inst.symbol])


def px(x: Decimal) -> float:
    return float(x.quantize(Decimal("0.01")))


async def test_stop_loss_waits_reserves_and_fires_on_the_prints(paused_sim, pex):
    sim = paused_sim
    last = last_price(sim)
    stop = px(last * Decimal("0.98"))
    o = await pex.create_order(SYM, "market", "sell", 0.1, None, {"stopLossPrice": stop})
    got = await pex.fetch_order(o["id"], SYM)
    assert got["type"] == "stop_loss" and got["status"] == "open" and got["filled"] == 0
    assert got["info"]["ref_price"] == f"{stop:.2f}" and got["info"]["trigger_price"] == "0"
    assert [x["id"] for x in await pex.fetch_open_orders(SYM)] == [o["id"]]
    bal = await pex.fetch_balance()
    assert bal["BTC"]["used"] == pytest.approx(0.1)  # the coins it will sell are reserved
    # the user channel sees it fire
    watch = asyncio.ensure_future(pex.watch_orders(SYM))
    await wait_for(lambda: any(s.startswith("user.order") for s in sim._subs if sim._subs[s]))
    shock = sim.shock(SYM, -5)
    assert Decimal(shock["last_after"]) < Decimal(str(stop))
    seen = await asyncio.wait_for(watch, 5)
    while not any(x["id"] == o["id"] and x["status"] == "closed" for x in seen):
        seen = await asyncio.wait_for(pex.watch_orders(SYM), 5)
    got = await pex.fetch_order(o["id"], SYM)
    assert got["status"] == "closed" and got["filled"] == pytest.approx(0.1)
    assert Decimal(got["info"]["trigger_price"]) <= Decimal(str(stop))  # the print that reached it
    assert got["average"] < stop  # a market order after a gap: below the stop
    trades = await pex.fetch_my_trades(SYM)
    assert sum(t["amount"] for t in trades if t["order"] == o["id"]) == pytest.approx(0.1)
    assert await pex.fetch_open_orders(SYM) == []
    assert (await pex.fetch_balance())["BTC"]["used"] == 0


async def test_what_ccxt_sends_for_each_trigger_kind(paused_sim, pex):
    sim = paused_sim
    last = last_price(sim)
    below, above = px(last * Decimal("0.97")), px(last * Decimal("1.03"))
    cases = [
        ({"stopLossPrice": below}, "market", "sell", None, "stop_loss"),
        ({"takeProfitPrice": above}, "market", "sell", None, "take_profit"),
        ({"stopLossPrice": below}, "limit", "sell", px(last * Decimal("0.96")), "stop_limit"),
        ({"takeProfitPrice": above}, "limit", "sell", px(last * Decimal("1.04")), "take_profit_limit"),
        ({"triggerPrice": above}, "limit", "buy", px(last * Decimal("1.04")), "stop_limit"),  # price > trigger: a buy stop
        ({"triggerPrice": below}, "limit", "buy", px(last * Decimal("0.96")), "take_profit_limit"),
        ({"stopLossPrice": above}, "market", "buy", None, "stop_loss"),
    ]
    for params, type_, side, price, kind in cases:
        o = await pex.create_order(SYM, type_, side, 0.01, price, params)
        got = await pex.fetch_order(o["id"], SYM)
        assert (got["type"], got["side"], got["status"]) == (kind, side, "open"), params
    open_ = await pex.fetch_open_orders(SYM)
    assert len(open_) == len(cases)
    # a level the market already reached would fire at once: refused, nothing placed
    with pytest.raises(ccxt.ExchangeError, match="INVALID_REF_PRICE"):
        await pex.create_order(SYM, "market", "sell", 0.01, None, {"stopLossPrice": above})
    # ccxt sends a market order with a bare triggerPrice as TAKE_PROFIT for a sell (it compares
    # the missing price with the trigger): below the market that fires at once, so it is refused
    with pytest.raises(ccxt.ExchangeError, match="INVALID_REF_PRICE"):
        await pex.create_order(SYM, "market", "sell", 0.01, None, {"triggerPrice": below})
    assert len(await pex.fetch_open_orders(SYM)) == len(cases)
    await pex.cancel_all_orders(SYM)
    assert await pex.fetch_open_orders(SYM) == []
    bal = await pex.fetch_balance()
    assert bal["BTC"]["used"] == 0 and bal["USDT"]["used"] == 0


async def test_take_profit_limit_triggers_on_the_way_up_and_rests_at_its_limit(paused_sim, pex):
    sim = paused_sim
    last = last_price(sim)
    trigger, limit = px(last * Decimal("1.02")), px(last * Decimal("1.20"))
    o = await pex.create_order(SYM, "limit", "sell", 0.05, limit, {"takeProfitPrice": trigger})
    sim.shock(SYM, 3)
    got = await pex.fetch_order(o["id"], SYM)
    # triggered (the print at +3 % reached +2 %): now a working limit sell at +20 %, on the book
    assert got["status"] == "open" and got["type"] == "take_profit_limit" and got["info"]["trigger_price"] != "0"
    book = sim.order_book(SYM, 10_000)
    assert any(p == Decimal(str(limit)) for p, _, _ in book["asks"])


async def test_oco_one_reserve_stop_leg_fires_and_cancels_the_limit_leg(paused_sim, pex):
    sim = paused_sim
    last = last_price(sim)
    tp, stop, stop_limit = px(last * Decimal("1.05")), px(last * Decimal("0.95")), px(last * Decimal("0.85"))
    res = await pex.create_orders([
        {"symbol": SYM, "type": "limit", "side": "sell", "amount": 0.2, "price": tp},
        {"symbol": SYM, "type": "stop_limit", "side": "sell", "amount": 0.2, "price": stop_limit,
         "params": {"ref_price": stop}},
    ], {"contingency_type": "OCO"})
    list_id = res[0]["id"]
    legs = await pex.fetch_open_orders(SYM)
    assert sorted(x["type"] for x in legs) == ["limit", "stop_limit"]
    assert {x["info"]["list_id"] for x in legs} == {list_id} and {x["info"]["contingency_type"] for x in legs} == {"OCO"}
    assert (await pex.fetch_balance())["BTC"]["used"] == pytest.approx(0.2)  # one reserve for both legs
    sim.shock(SYM, -8)
    by_type = {x["type"]: await pex.fetch_order(x["id"], SYM) for x in legs}
    assert by_type["stop_limit"]["status"] == "closed" and by_type["stop_limit"]["filled"] == pytest.approx(0.2)
    assert by_type["limit"]["status"] == "canceled" and by_type["limit"]["filled"] == 0
    assert await pex.fetch_open_orders(SYM) == []
    assert (await pex.fetch_balance())["BTC"]["used"] == 0


async def test_oco_limit_leg_trades_and_the_stop_leg_is_cancelled(paused_sim, pex):
    sim = paused_sim
    last = last_price(sim)
    res = await pex.create_orders([
        {"symbol": SYM, "type": "stop_limit", "side": "sell", "amount": 0.1, "price": px(last * Decimal("0.90")),
         "params": {"ref_price": px(last * Decimal("0.95"))}},
        {"symbol": SYM, "type": "limit", "side": "sell", "amount": 0.1, "price": px(last * Decimal("1.02"))},
    ], {"contingency_type": "OCO"})
    legs = {x["type"]: x for x in await pex.fetch_open_orders(SYM)}
    sim.shock(SYM, 4)  # the jump sweeps the limit sell on its way
    limit = await pex.fetch_order(legs["limit"]["id"], SYM)
    stop = await pex.fetch_order(legs["stop_limit"]["id"], SYM)
    assert limit["status"] == "closed" and limit["filled"] == pytest.approx(0.1)
    assert stop["status"] == "canceled" and stop["filled"] == 0
    # later moves never wake the cancelled leg: never both filled
    sim.shock(SYM, -10)
    assert (await pex.fetch_order(legs["stop_limit"]["id"], SYM))["status"] == "canceled"
    assert res[0]["id"] == limit["info"]["list_id"]


async def test_oco_cancelled_as_a_list_and_refused_whole(paused_sim, pex):
    sim = paused_sim
    last = last_price(sim)
    legs = [{"symbol": SYM, "type": "limit", "side": "sell", "amount": 0.3, "price": px(last * Decimal("1.1"))},
            {"symbol": SYM, "type": "stop_limit", "side": "sell", "amount": 0.3, "price": px(last * Decimal("0.85")),
             "params": {"ref_price": px(last * Decimal("0.9"))}}]
    # ccxt's advanced request names a leg without a price by comparing the missing price with the
    # trigger: a market "stop_loss" sell leg goes out as TAKE_PROFIT, which below the market would
    # fire at once: refused whole (an OCO's stop leg is sent as stop_limit, with its limit price)
    with pytest.raises(ccxt.ExchangeError, match="INVALID_REF_PRICE"):
        await pex.create_orders([legs[0], {"symbol": SYM, "type": "stop_loss", "side": "sell", "amount": 0.3,
                                           "params": {"ref_price": px(last * Decimal("0.9"))}}],
                                {"contingency_type": "OCO"})
    assert await pex.fetch_open_orders(SYM) == []
    res = await pex.create_orders(legs, {"contingency_type": "OCO"})
    await pex.cancel_orders([], SYM, {"contingency_type": "OCO", "list_id": res[0]["id"]})
    assert await pex.fetch_open_orders(SYM) == []
    assert (await pex.fetch_balance())["BTC"]["used"] == 0
    # more than the account holds: refused whole, nothing placed
    with pytest.raises(ccxt.InsufficientFunds):
        await pex.create_orders([dict(legs[0], amount=5), dict(legs[1], amount=5)], {"contingency_type": "OCO"})
    # a stop leg whose level the market already passed: refused whole
    with pytest.raises(ccxt.ExchangeError, match="INVALID_REF_PRICE"):
        await pex.create_orders([legs[0], dict(legs[1], params={"ref_price": px(last * Decimal("1.05"))})],
                                {"contingency_type": "OCO"})
    assert await pex.fetch_open_orders(SYM) == [] and not sim._order_updates
    # cancelling one leg cancels the list
    res = await pex.create_orders(legs, {"contingency_type": "OCO"})
    first = (await pex.fetch_open_orders(SYM))[0]
    await pex.cancel_order(first["id"], SYM)
    assert await pex.fetch_open_orders(SYM) == []


async def test_list_contingency_places_each_order_on_its_own(paused_sim, pex):
    sim = paused_sim
    last = last_price(sim)
    res = await pex.create_orders([
        {"symbol": SYM, "type": "limit", "side": "buy", "amount": 0.01, "price": px(last * Decimal("0.9"))},
        {"symbol": SYM, "type": "limit", "side": "sell", "amount": 50, "price": px(last * Decimal("1.1"))},  # > held
    ])
    assert res[0]["id"] and res[1]["status"] == "rejected"
    assert len(await pex.fetch_open_orders(SYM)) == 1


async def test_shock_over_the_switchboard_moves_book_prints_and_candles(paused_sim, pex):
    sim = paused_sim
    ctl = await ControlServer(sim, 0).start()
    try:
        before = last_price(sim)
        async with aiohttp.ClientSession(ctl.base_url) as http:
            async with http.post("/faults/shock?symbol=BTC_USDT&pct=-3") as r:
                assert r.status == 200, await r.text()
                body = await r.json()
            for bad in ("pct=0", "pct=nan", "pct=-95", "pct=abc", "pct=5&extra=1"):
                async with http.post(f"/faults/shock?symbol=BTC/USDT&{bad}") as r:
                    assert r.status == 400 and (await r.json())["parameter"] in ("pct", "extra")
        after = Decimal(body["shock"]["last_after"])
        assert after == pytest.approx(before * Decimal("0.97"), rel=Decimal("0.002"))
        ticker = await pex.fetch_ticker(SYM)
        assert ticker["last"] == pytest.approx(float(after))
        book = await pex.fetch_order_book(SYM, 10)
        mid = (book["bids"][0][0] + book["asks"][0][0]) / 2
        assert mid == pytest.approx(float(after), rel=0.003)
        candle = (await pex.fetch_ohlcv(SYM, "1m", limit=2))[-1]
        assert candle[3] <= float(after) and candle[4] == pytest.approx(float(after))
    finally:
        await ctl.stop()


async def test_a_stop_fires_on_the_first_print_that_reaches_it(paused_sim, pex):
    """The synthetic market's own flow, one event at a time: the stop stays armed through every
    event whose prints stay above its level, and fires in the event whose prints reach it."""
    sim = paused_sim
    inst = sim._instrument(SYM)
    stop = px(last_price(sim) * Decimal("0.99985"))  # ~1,500 events of the seeded flow
    level = inst.to_ticks(Decimal(str(stop)))
    o = await pex.create_order(SYM, "market", "sell", 0.01, None, {"stopLossPrice": stop})
    order = sim.engine.orders[o["id"]]
    prints: list[tuple[int, object]] = []  # (price, taker) of each print of the current event
    sim.engine.listeners.append(
        lambda kind, t: prints.append((t.price, t.taker)) if kind == "trade" and t.inst is inst else None)
    for _ in range(40_000):
        prints.clear()
        await sim.step(1)
        market = [p for p, taker in prints if taker is not order]
        if order.armed:
            assert all(p > level for p in market)  # nothing reached it: still waiting
            continue
        assert any(p <= level for p in market)  # fired in the event that reached it
        break
    else:
        pytest.fail("the flow never reached the stop")
    assert order.status == "FILLED" and order.trigger_price is not None and order.trigger_price <= level
    got = await pex.fetch_order(o["id"], SYM)
    assert got["status"] == "closed" and Decimal(got["info"]["trigger_price"]) <= Decimal(str(stop))
