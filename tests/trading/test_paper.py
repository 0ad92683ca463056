from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tps19.engine.storage import Database, Fill, Order, OrderEvent
from tps19.engine.trading import FillEvent, OrderUpdate
from tps19.engine.assembly import build_trading

from .conftest import START
from .helpers import book, settings, trades, until

D = Decimal


async def stack(bus, db, markets, **kw):
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings(**kw.pop("risk", {})),
                            exchange="cryptocom", starting_balances=dict(START), snapshot_interval_s=0, **kw)
    await s.start()
    return s


@pytest.mark.sqlite_only
async def test_market_order_walks_book_vwap_to_the_cent(bus, db, markets):
    s = await stack(bus, db, markets)
    sub = bus.subscribe(OrderUpdate, FillEvent)
    bus.publish(book())
    o = await s.broker.place_order("BTC/USDT", "buy", "market", "0.25")
    assert o.status.value == "filled"
    assert o.filled == D("0.25")
    assert o.avg_price == D("50000.60")  # (0.1*50000 + 0.15*50001) / 0.25
    assert o.fee == D("62.50075")  # taker 0.5% of 12500.15
    p = s.portfolio
    assert p.balances["USDT"] == D("100000") - D("12500.15") - D("62.50075")
    assert p.balances["BTC"] == D("1.25")
    # booked in SQLite: one order, two per-level fills, events new -> filled
    async with db.session() as ses:
        fills = (await ses.execute(select(Fill).order_by(Fill.price))).scalars().all()
        evs = (await ses.execute(select(OrderEvent).order_by(OrderEvent.id))).scalars().all()
    assert [(f.price, f.amount, f.liquidity) for f in fills] == [(D("50000"), D("0.1"), "taker"), (D("50001"), D("0.15"), "taker")]
    assert [(e.from_status, e.to_status) for e in evs] == [(None, "new"), ("new", "filled")]
    assert "vwap 50000.6, slippage 0.6 vs best 50000" in evs[-1].detail
    got = sub.drain()
    assert [type(e).__name__ for e in got] == ["OrderUpdate", "FillEvent", "FillEvent", "OrderUpdate"]
    await s.stop()


@pytest.mark.sqlite_only
async def test_consumed_liquidity_is_not_filled_twice(bus, db, markets):
    s = await stack(bus, db, markets)
    bus.publish(book())
    await s.broker.place_order("BTC/USDT", "buy", "market", "0.25")
    bus.publish(book())  # the venue's book has not changed: our fills had no market impact
    o2 = await s.broker.place_order("BTC/USDT", "buy", "market", "0.1")
    assert o2.avg_price == D("50003.00")  # 0.05 left at 50001, then 0.05 at 50005
    # a sell walks the other side, unaffected
    o3 = await s.broker.place_order("BTC/USDT", "sell", "market", "0.3")
    assert o3.avg_price == D("49999")
    # the venue's book moves past 50000 (level gone): its consumed entry is dropped;
    # 50001 is still shown, so what we took there stays consumed
    bus.publish(book(asks=((50001.0, 0.2), (50005.0, 0.5))))
    assert D("50000") not in s.broker.consumed[("BTC/USDT", "asks")]
    o4 = await s.broker.place_order("BTC/USDT", "buy", "market", "0.1")
    assert o4.avg_price == D("50005")
    # venue adds size at 50001: only the size above what we consumed is available
    bus.publish(book(asks=((50001.0, 0.5), (50005.0, 0.5))))
    o5 = await s.broker.place_order("BTC/USDT", "buy", "market", "0.3")
    assert o5.avg_price == D("50001")
    o6 = await s.broker.place_order("BTC/USDT", "buy", "market", "0.5")
    assert o6.filled == D("0.35") and o6.status.value == "expired"  # book exhausted: remainder expires
    await s.stop()


@pytest.mark.sqlite_only
async def test_resting_limit_queue_position_and_partial_fills(bus, db, markets):
    s = await stack(bus, db, markets)
    bus.publish(book())
    o = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.5", "49999")
    assert o.status.value == "open"
    assert s.broker.queue[o.client_order_id] == D("0.3")  # size ahead at 49999 when placed
    cid = o.client_order_id
    bus.publish(trades(("sell", 49999.0, 0.2)))
    await until(lambda: s.broker.queue[cid] == D("0.1"))
    assert s.broker.orders[cid].filled == 0
    bus.publish(trades(("buy", 49999.0, 5.0)))  # a buy taker cannot hit our bid
    bus.publish(trades(("sell", 50000.0, 5.0)))  # above our bid: no fill
    bus.publish(trades(("sell", 49999.0, 0.3)))  # eats the last 0.1 of queue, fills 0.2
    await until(lambda: s.broker.orders[cid].filled == D("0.2"))
    po = s.broker.orders[cid]
    assert po.status.value == "partially_filled" and po.fee == D("24.9995")  # maker 0.25% of 9999.8
    bus.publish(trades(("sell", 49998.0, 0.01)))  # trades through our price: the rest fills
    await until(lambda: cid not in s.broker.orders)
    final = await s.store.order(cid)
    assert final.status.value == "filled" and final.filled == D("0.5") and final.avg_price == D("49999")
    assert final.fee == D("0.5") * D("49999") * D("0.0025")
    async with db.session() as ses:
        evs = (await ses.execute(select(OrderEvent.to_status).where(OrderEvent.client_order_id == cid).order_by(OrderEvent.id))).scalars().all()
        fills = (await ses.execute(select(Fill).where(Fill.client_order_id == cid))).scalars().all()
    assert evs == ["new", "open", "partially_filled", "filled"]
    assert sorted(f.amount for f in fills) == [D("0.2"), D("0.3")] and {f.liquidity for f in fills} == {"maker"}
    assert s.portfolio.balances["BTC"] == D("1.5")
    assert s.portfolio.balances["USDT"] == D("100000") - D("0.5") * D("49999") - final.fee
    await s.stop()


@pytest.mark.sqlite_only
async def test_limit_crossing_ioc_post_only_and_rejections(bus, db, markets):
    s = await stack(bus, db, markets, risk=dict(max_order_notional=D("30000"), max_daily_orders=7))
    b = s.broker
    bus.publish(book())
    po = await b.place_order("BTC/USDT", "buy", "post_only", "0.1", "50000")
    assert po.status.value == "rejected" and "post-only" in po.reason
    ioc = await b.place_order("BTC/USDT", "buy", "ioc", "0.5", "50001")
    assert ioc.status.value == "expired"
    assert ioc.filled == D("0.3")
    lim = await b.place_order("BTC/USDT", "sell", "limit", "0.4", "49995")  # crosses: 0.3 at 49999 taker, 0.1 rests
    assert lim.status.value == "partially_filled" and lim.filled == D("0.3")
    assert b.queue[lim.client_order_id] == 0
    cap = await b.place_order("BTC/USDT", "buy", "limit", "1", "40000")
    assert cap.status.value == "rejected" and "per-order cap" in cap.reason
    # (free balance is now a pre-trade check: tests/trading/test_risk_pretrade.py)
    bad = await b.place_order("BTC/USDT", "buy", "limit", "0.000001", "40000")
    assert bad.status.value == "rejected" and "amount step" in bad.reason
    nobook = await b.place_order("ETH/USDT", "buy", "market", "1")
    assert nobook.status.value == "rejected"
    # the daily cap counts orders that passed pre-trade checks (po, ioc, lim so far; nobook had no price)
    assert b.risk.orders_today == 3
    r = await b.place_order("BTC/USDT", "buy", "limit", "0.01", "40000")
    assert r.status.value == "open"
    n = await b.kill("test")
    assert n == 2 and not b.open_orders()
    k = await b.place_order("BTC/USDT", "buy", "limit", "0.01", "40000")
    assert k.status.value == "rejected" and "kill switch" in k.reason
    b.release()
    for _ in range(3):
        assert (await b.place_order("BTC/USDT", "buy", "limit", "0.01", "40000")).status.value == "open"
    over = await b.place_order("BTC/USDT", "buy", "limit", "0.01", "40000")
    assert "daily order limit" in over.reason
    async with db.session() as ses:
        rejected = (await ses.execute(select(Order).where(Order.status == "rejected"))).scalars().all()
    assert len(rejected) == 6  # every rejection is recorded with its reason
    assert await s.store.orders_since(0) == 7
    await s.stop()


async def test_paper_state_survives_restart(bus, db_target, markets):
    path = db_target
    db = Database(path)
    await db.open()
    s = await stack(bus, db, markets)
    bus.publish(book())
    await s.broker.place_order("BTC/USDT", "buy", "market", "0.25")
    rest = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.5", "49999")
    bus.publish(trades(("sell", 49999.0, 0.4)))  # queue 0.3 -> fills 0.1
    await until(lambda: s.broker.orders[rest.client_order_id].filled == D("0.1"))
    balances = dict(s.portfolio.balances)
    pos = s.portfolio.position("BTC/USDT")
    qty, avg = pos.qty, pos.avg_entry
    await s.stop()
    await db.close()

    from tps19.engine.bus import EventBus
    bus2 = EventBus()
    db2 = Database(path)
    await db2.open()
    s2 = await build_trading(mode="paper", bus=bus2, db=db2, client=None, markets=markets, settings=settings(),
                             exchange="cryptocom", starting_balances={"USDT": D("1")}, snapshot_interval_s=0)
    await s2.start()
    assert s2.portfolio.balances == balances  # persisted balances win over starting balances
    p2 = s2.portfolio.position("BTC/USDT")
    assert (p2.qty, p2.avg_entry) == (qty, avg)
    [o] = s2.broker.open_orders()
    assert o.client_order_id == rest.client_order_id and o.filled == D("0.1") and o.status.value == "partially_filled"
    assert s2.broker.queue[o.client_order_id] == 0
    bus2.publish(trades(("sell", 49999.0, 1.0)))
    await until(lambda: not s2.broker.open_orders())
    assert s2.portfolio.balances["BTC"] == balances["BTC"] + D("0.4")
    await s2.stop()
    await db2.close()


@pytest.mark.sqlite_only
async def test_latency_book_moves_while_order_travels(bus, db, markets):
    s = await stack(bus, db, markets, latency_s=0.05)
    bus.publish(book())
    import asyncio
    t = asyncio.create_task(s.broker.place_order("BTC/USDT", "buy", "market", "0.1"))
    await asyncio.sleep(0.01)
    bus.publish(book(asks=((50010.0, 1.0),)))
    o = await t
    assert o.avg_price == D("50010")
    await s.stop()


@pytest.mark.sqlite_only
async def test_queue_shrinks_with_cancellations_ahead(bus, db, markets):
    s = await stack(bus, db, markets)
    bus.publish(book())
    o = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.5", "49999")
    assert s.broker.queue[o.client_order_id] == D("0.3")
    bus.publish(book(bids=((49999.0, 0.1), (49990.0, 1.0))))  # 0.2 ahead of us was cancelled
    assert s.broker.queue[o.client_order_id] == D("0.1")
    bus.publish(book(bids=((49999.0, 0.4), (49990.0, 1.0))))  # new size joins behind us
    assert s.broker.queue[o.client_order_id] == D("0.1")
    bus.publish(trades(("sell", 49999.0, 0.3)))
    await until(lambda: s.broker.orders[o.client_order_id].filled == D("0.2"))
    await s.stop()


async def test_kill_switch_survives_restart(bus, db_target, markets):
    path = db_target
    db = Database(path)
    await db.open()
    s = await stack(bus, db, markets)
    bus.publish(book())
    await s.broker.place_order("BTC/USDT", "buy", "limit", "0.1", "49000")
    assert await s.broker.kill("desk stop") == 1
    await s.stop()
    await db.close()
    db2 = Database(path)
    await db2.open()
    from tps19.engine.bus import EventBus
    bus2 = EventBus()
    s2 = await stack(bus2, db2, markets)
    assert s2.broker.killed
    bus2.publish(book())
    r = await s2.broker.place_order("BTC/USDT", "buy", "limit", "0.1", "49000")
    assert r.status.value == "rejected" and "desk stop" in r.reason
    s2.broker.release()
    assert (await s2.broker.place_order("BTC/USDT", "buy", "limit", "0.1", "49000")).status.value == "open"
    await s2.stop()
    await db2.close()


@pytest.mark.sqlite_only
async def test_bad_market_data_is_reported_and_survived(bus, db, markets):
    from tps19.engine.events import Trade, TradeEvent
    from tps19.engine.trading import TradingIssue

    s = await stack(bus, db, markets)
    issues = bus.subscribe(TradingIssue)
    bus.publish(book())
    o = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.1", "49999")
    bus.publish(TradeEvent("BTC/USDT", (Trade(0, "sell", None, 1.0),)))  # malformed
    bus.publish(trades(("sell", 49998.0, 0.01)))
    await until(lambda: o.client_order_id not in s.broker.orders)
    assert any(i.kind == "paper" for i in issues.drain())
    await s.stop()
