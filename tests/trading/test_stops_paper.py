"""Protective orders in paper mode: armed in the database, triggered by the prints, filled through
the paper fill model, OCO groups and brackets, the kill switch, the risk stage and restarts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tps19.engine.storage import Database, Fill, Order, OrderEvent
from tps19.engine.assembly import build_trading
from tps19.engine.trading import OrderRequest, TradingIssue

from .conftest import START
from .helpers import book, settings, trades, until

D = Decimal
# matching and rules: SQLite only (the restarts, rows written and read back, run on both backends
# in test_stops_restart.py)
pytestmark = pytest.mark.sqlite_only


async def stack(bus, db, markets, **kw):
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets,
                            settings=settings(**kw.pop("risk", {})), exchange="cryptocom",
                            starting_balances=dict(START), snapshot_interval_s=0, **kw)
    await s.start()
    return s


async def events_of(db, cid):
    async with db.session() as ses:
        rows = (await ses.execute(select(OrderEvent).where(OrderEvent.client_order_id == cid)
                                  .order_by(OrderEvent.id))).scalars().all()
    return [(e.to_status, e.detail) for e in rows]


async def row(db, cid) -> Order:
    async with db.session() as ses:
        return await ses.get(Order, cid)


async def settled(db, cid, status="filled", timeout=10.0) -> Order:
    """The order's stored row once it reaches ``status`` (polled: the emulator works in its own task)."""
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        r = await row(db, cid)
        if r is not None and r.status == status:
            return r
        if loop.time() > end:
            raise AssertionError(f"{cid} is {r.status if r else None}, not {status}")
        await asyncio.sleep(0.005)


def req(type_, side="sell", amount="0.1", **kw):
    return OrderRequest("BTC/USDT", side, type_, D(amount), **{k: (D(v) if isinstance(v, str) else v) for k, v in kw.items()})


@pytest.mark.parametrize("request_, reason", [
    (req("stop_market", trigger_price="51000"), "would trigger at once"),
    (req("take_profit", trigger_price="49000"), "would trigger at once"),
    (req("trailing_stop", trailing_pct="0"), "trailing % must be above 0 and below 100"),
    (req("trailing_stop", trailing_pct="-1"), "trailing % must be above 0 and below 100"),
    (req("trailing_stop", trailing_pct="100"), "trailing % must be above 0 and below 100"),
    (req("oco", stop_loss_price="51000", take_profit_price="49000"), "take-profit 49000 is not above the stop-loss 51000"),
    (OrderRequest("BTC/USDT", "buy", "limit", D("0.1"), D("49000"), stop_loss_price=D("48000"),
                  take_profit_price=D("47000")), "take-profit 47000 is not above the stop-loss 48000"),
    (req("stop_market", amount="0.123456", trigger_price="49000"), "off the amount step 0.00001"),
    (req("stop_market", amount="2", trigger_price="49000"), "but 1 is held"),
    (req("stop_market", trigger_price="20000"), "outside the 25% price band"),
    (req("stop_limit", trigger_price="49000"), "needs a limit price"),
    (req("stop_market", trigger_price="49000", price="48900"), "takes no limit price"),
    (req("trailing_stop", trailing_pct="1", trigger_price="49000"), "not a trigger price"),
    (req("oco", stop_loss_price="49000"), "an OCO needs both a stop-loss and a take-profit"),
    (req("stop_market"), "a stop market order needs a trigger price"),
])
async def test_bad_protective_orders_are_refused_in_one_line_and_nothing_is_held(bus, db, markets, request_, reason):
    s = await stack(bus, db, markets)
    bus.publish(book())
    o = await s.broker.place(request_)
    assert o.status.value == "rejected", o
    assert reason in o.reason and "\n" not in o.reason
    assert o.reason.startswith("not sent: ")
    assert s.broker.open_orders() == [] and s.broker.emulator.held == {}
    assert s.portfolio.balances == START
    await s.stop()


async def test_stop_market_is_armed_in_the_database_and_fires_on_the_print_through_the_book(bus, db, markets):
    s = await stack(bus, db, markets)
    bus.publish(book())
    o = await s.broker.place(req("stop_market", amount="0.2", trigger_price="49500"))
    cid = o.client_order_id
    assert (o.status.value, o.trigger_state.value, o.placement) == ("new", "armed", "emulated")
    r = await row(db, cid)
    assert (r.type, r.trigger_price, r.trigger_state, r.status) == ("stop_market", D("49500"), "armed", "new")
    [shown] = s.broker.open_orders()
    assert shown.client_order_id == cid
    bus.publish(trades(("sell", 49600.0, 0.1), ("buy", 49501.0, 0.1)))  # above the level: nothing
    bus.publish(book(bids=((49400.0, 0.1), (49300.0, 1.0)), asks=((49401.0, 1.0),)))
    await until(lambda: s.broker.emulator.last_price.get("BTC/USDT") == D("49501"))
    assert cid in s.broker.emulator.held
    bus.publish(trades(("sell", 49500.0, 0.05)))  # at the level: it fires, a market sell walks the bids
    r = await settled(db, cid)
    assert (r.status, r.trigger_state, r.filled) == ("filled", "working", D("0.2"))
    assert r.avg_price == D("49350")  # 0.1 @ 49400 + 0.1 @ 49300
    async with db.session() as ses:
        fills = (await ses.execute(select(Fill).where(Fill.client_order_id == cid))).scalars().all()
    assert {f.liquidity for f in fills} == {"taker"}
    assert sum(f.fee for f in fills) == D("0.2") * D("49350") * D("0.005")  # a triggered market pays taker
    evs = await events_of(db, cid)
    assert [e[0] for e in evs] == ["new", "new", "filled"]
    assert "triggered: print 49500 <= stop_market level 49500" in evs[1][1]
    assert s.portfolio.balances["BTC"] == D("0.8")
    await s.stop()


async def test_trailing_stop_follows_the_high_after_its_activation_price(bus, db, markets):
    s = await stack(bus, db, markets)
    bus.publish(book())
    o = await s.broker.place(req("trailing_stop", trailing_pct="2", activation_price="50500"))
    cid = o.client_order_id
    held = s.broker.emulator.held[cid]
    assert held.high_water is None and held.trigger_price is None  # not active below 50500
    bus.publish(trades(("buy", 50200.0, 0.1), ("sell", 49000.0, 0.1)))  # 49000: inactive, no fire
    await until(lambda: s.broker.emulator.last_price.get("BTC/USDT") == D("49000"))
    assert cid in s.broker.emulator.held and held.high_water is None
    bus.publish(trades(("buy", 50500.0, 0.1), ("buy", 51000.0, 0.1), ("sell", 50100.0, 0.1)))
    await until(lambda: s.broker.emulator.last_price.get("BTC/USDT") == D("50100"))
    assert held.high_water == D("51000") and held.trigger_price == D("49980")  # 2 % below the high
    assert cid in s.broker.emulator.held
    await s.broker.emulator._flush(force=True)
    assert (await row(db, cid)).high_water == D("51000")  # the mark survives a restart
    bus.publish(trades(("sell", 49980.0, 0.1)))
    await settled(db, cid)
    await s.stop()


async def test_oco_take_profit_fill_cancels_the_stop_at_once(bus, db, markets):
    s = await stack(bus, db, markets)
    bus.publish(book())
    stop = await s.broker.place(req("oco", amount="0.3", stop_loss_price="49000", take_profit_price="51000"))
    group = stop.oco_group
    legs = [o for o in s.broker.open_orders() if o.oco_group == group]
    assert sorted(o.type.value for o in legs) == ["stop_market", "take_profit"]
    take = next(o for o in legs if o.type.value == "take_profit")
    bus.publish(book(bids=((51000.0, 1.0),), asks=((51001.0, 1.0),)))
    bus.publish(trades(("buy", 51000.0, 0.1)))
    await settled(db, take.client_order_id)
    r = await row(db, stop.client_order_id)
    assert r.status == "cancelled" and "triggered" in r.reason
    # the market comes back down through the old stop: nothing more is sold
    bus.publish(trades(("sell", 48000.0, 1.0)))
    await until(lambda: s.broker.emulator.last_price.get("BTC/USDT") == D("48000"))
    assert s.portfolio.balances["BTC"] == D("0.7")
    await s.stop()


async def test_cancelling_one_leg_cancels_its_group(bus, db, markets):
    s = await stack(bus, db, markets)
    bus.publish(book())
    stop = await s.broker.place(req("oco", amount="0.3", stop_loss_price="49000", take_profit_price="51000"))
    await s.broker.cancel(stop.client_order_id)
    assert s.broker.open_orders() == []
    async with db.session() as ses:
        rows = (await ses.execute(select(Order).where(Order.oco_group == stop.oco_group))).scalars().all()
    assert sorted(r.status for r in rows) == ["cancelled", "cancelled"]
    await s.stop()


async def test_bracket_protects_each_partial_fill_and_a_cancelled_entry_keeps_what_is_needed(bus, db, markets):
    s = await stack(bus, db, markets)
    bus.publish(book())
    e = await s.broker.place(OrderRequest("BTC/USDT", "buy", "limit", D("0.5"), D("49999"),
                                          stop_loss_price=D("48000"), take_profit_price=D("52000")))
    cid = e.client_order_id
    assert e.status.value == "open" and s.broker.emulator.held == {}  # nothing filled: nothing to protect
    bus.publish(trades(("sell", 49999.0, 0.5)))  # queue 0.3 ahead: 0.2 fills
    await until(lambda: len(s.broker.emulator.held) == 2)
    legs = list(s.broker.emulator.held.values())
    assert {o.amount for o in legs} == {D("0.2")} and {o.oco_group for o in legs} == {e.oco_group}
    assert {o.parent_id for o in legs} == {cid}
    assert sorted((o.type.value, o.trigger_price) for o in legs) == [("stop_market", D("48000")), ("take_profit", D("52000"))]
    bus.publish(trades(("sell", 49999.0, 0.1)))  # the protection grows with the fill
    await until(lambda: {o.amount for o in s.broker.emulator.held.values()} == {D("0.3")})
    await s.broker.cancel(cid)  # the entry goes; the legs protecting what filled stay
    assert {o.amount for o in s.broker.emulator.held.values()} == {D("0.3")}
    assert len(s.broker.emulator.held) == 2
    bus.publish(book(bids=((47990.0, 1.0),), asks=((48000.0, 1.0),)))
    bus.publish(trades(("sell", 47990.0, 0.01)))
    stop_leg = next(o for o in s.broker.emulator.held.values() if o.type.value == "stop_market")
    await settled(db, stop_leg.client_order_id)
    assert not s.broker.emulator.held
    assert s.portfolio.balances["BTC"] == D("1")  # bought 0.3, the stop sold 0.3
    await s.stop()


async def test_kill_switch_cancels_entries_and_keeps_protection_working(bus, db, markets):
    s = await stack(bus, db, markets)
    b = s.broker
    bus.publish(book())
    entry = await b.place_order("BTC/USDT", "buy", "limit", "0.1", "49000")
    stop = await b.place(req("stop_market", amount="0.5", trigger_price="49500"))
    await b.kill("test")
    assert (await row(db, entry.client_order_id)).status == "cancelled"
    assert [o.client_order_id for o in b.open_orders()] == [stop.client_order_id]
    # a new protective sell may still be placed (it only reduces); a new entry may not
    tp = await b.place(req("take_profit", amount="0.5", trigger_price="51000"))
    assert tp.trigger_state.value == "armed"
    assert (await b.place_order("BTC/USDT", "buy", "market", "0.1")).status.value == "rejected"
    bus.publish(trades(("sell", 49400.0, 0.1)))
    await settled(db, stop.client_order_id)  # passed the kill switch
    await s.stop()


async def test_a_breaker_cancels_entries_only_and_the_stop_it_keeps_passes_the_halt(bus, db, markets):
    s = await stack(bus, db, markets)
    b = s.broker
    bus.publish(book())
    entry = await b.place_order("BTC/USDT", "buy", "limit", "0.1", "49000")
    stop = await b.place(req("stop_market", amount="0.5", trigger_price="49500"))
    await s.breakers.trip("max drawdown 20% reached (test)")
    assert b.risk.halted_by_breaker
    assert (await row(db, entry.client_order_id)).status == "cancelled"
    assert [o.client_order_id for o in b.open_orders()] == [stop.client_order_id]
    bus.publish(trades(("sell", 49400.0, 0.1)))
    await settled(db, stop.client_order_id)
    await s.stop()


async def test_an_unsendable_stop_raises_an_alert(bus, db, markets):
    s = await stack(bus, db, markets)
    sub = bus.subscribe(TradingIssue)
    bus.publish(book())
    stop = await s.broker.place(req("stop_market", amount="1", trigger_price="49500"))
    await s.broker.place_order("BTC/USDT", "sell", "market", "1")  # the trader sold it all by hand
    bus.publish(trades(("sell", 49000.0, 0.1)))
    r = await settled(db, stop.client_order_id, "rejected")
    assert "nothing to sell" in r.reason
    await until(lambda: any(i.kind == "stop_unsendable" for i in sub.drain()))
    await s.stop()


async def test_headless_order_lines_carry_the_trigger_and_say_when_it_fired(bus, db, markets, tmp_path):
    import json

    from tps19.engine.headless import _write_event
    from tps19.engine.jsonlog import JsonLines
    from tps19.engine.trade_log import TradeFormatter
    from tps19.engine.trading import OrderUpdate

    s = await stack(bus, db, markets)
    sub = bus.subscribe(OrderUpdate)
    bus.publish(book())
    stop = await s.broker.place(req("oco", amount="0.1", stop_loss_price="49500", take_profit_price="51000"))
    bus.publish(trades(("sell", 49500.0, 0.05)))
    await settled(db, stop.client_order_id)
    out = JsonLines(tmp_path / "log.jsonl")
    fmt = TradeFormatter(markets)
    for e in sub.drain():
        _write_event(out, e, 0, fmt)
    out.close()
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    mine = [x for x in lines if x.get("client_order_id") == stop.client_order_id]
    assert [(x["type"], x["status"], x["trigger_state"]) for x in mine] == [
        ("stop_market", "new", "armed"), ("stop_market", "new", "triggered"), ("stop_market", "filled", "working")]
    assert mine[0]["trigger_price"] == "49500.00 USDT" and mine[0]["placement"] == "emulated"
    assert mine[0]["oco_group"] == stop.oco_group
    await s.stop()
