"""Emulated protective orders in live mode against the simulated exchange (unmodified ccxt on
loopback): triggered by the prints on the bus, sent under their own client order id, OCO legs
working at the venue cancelled before the other leg is sent."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import select

from tps19.engine.events import Trade, TradeEvent
from tps19.engine.storage import Fill, Order
from tps19.engine.assembly import build_trading
from tps19.engine.trading import OrderRequest

from .helpers import settings, until
from .simhelp import KEY, venue_totals

D = Decimal
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_target", ["sqlite"], indirect=True)]


async def live_stack(bus, db, client, **kw):
    s = await build_trading(mode="live", bus=bus, db=db, client=client, markets=client.markets, settings=settings(),
                            snapshot_interval_s=0, poll_interval_s=0.2, watch_timeout_s=1.0, request_timeout_s=3.0,
                            **({"stop_placement": "emulated"} | kw))
    await s.start()
    return s


def prints(*prices: float, symbol: str = "BTC/USDT") -> TradeEvent:
    return TradeEvent(symbol, tuple(Trade(ts=0, side="sell", price=p, amount=0.01) for p in prices))


async def settled(db, cid, status="filled", timeout=15.0) -> Order:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        async with db.session() as ses:
            r = await ses.get(Order, cid)
        if r is not None and r.status == status:
            return r
        if loop.time() > end:
            raise AssertionError(f"{cid} is {r.status if r else None}, not {status}")
        await asyncio.sleep(0.01)


async def mid(client) -> D:
    ob = await client.fetch_order_book("BTC/USDT", 5)
    return (D(repr(ob["bids"][0][0])) + D(repr(ob["asks"][0][0]))) / 2


async def test_emulated_stop_fires_on_a_print_and_reaches_the_venue_once_under_its_own_id(sim, clients, bus, db):
    mine, _ = clients
    s = await live_stack(bus, db, mine)
    m = await mid(mine)
    s.broker.books.clear()
    level = (m * D("0.99")).quantize(D("0.01"))
    stop = await s.broker.place(OrderRequest("BTC/USDT", "sell", "stop_market", D("0.01"), trigger_price=level))
    assert stop.trigger_state.value == "armed" and stop.status.value == "new"
    assert sim.open_orders(KEY) == []  # emulated: the venue holds nothing until the trigger
    bus.publish(prints(float(level + 1), float(level)))
    r = await settled(db, stop.client_order_id)
    assert (r.trigger_state, r.type, r.filled) == ("working", "stop_market", D("0.01")) and r.venue_order_id
    acct = sim.accounts[KEY]
    assert list(acct.by_client_oid) == [stop.client_order_id]  # one venue order, under the stop's own id
    async with db.session() as ses:
        fills = (await ses.execute(select(Fill).where(Fill.client_order_id == stop.client_order_id))).scalars().all()
    assert sum(f.amount for f in fills) == D("0.01") and {f.liquidity for f in fills} == {"taker"}
    await until(lambda: s.portfolio.balances == venue_totals(sim))
    bus.publish(prints(float(level - 100)))  # further prints: nothing more is sent
    await asyncio.sleep(0.05)
    assert len(acct.by_client_oid) == 1
    await s.stop()


async def test_a_triggered_take_profit_limit_at_the_venue_is_cancelled_before_the_stop_leg_sells(sim, clients, bus, db):
    mine, _ = clients
    s = await live_stack(bus, db, mine)
    m = await mid(mine)
    stop_level, take_level = (m * D("0.98")).quantize(D("0.01")), (m * D("1.02")).quantize(D("0.01"))
    limit = (m * D("1.05")).quantize(D("0.01"))  # far above the market: it rests at the venue
    stop = await s.broker.place(OrderRequest("BTC/USDT", "sell", "oco", D("0.01"), limit, stop_loss_price=stop_level,
                                             take_profit_price=take_level))
    take = next(o for o in s.broker.open_orders() if o.oco_group == stop.oco_group and o.client_order_id != stop.client_order_id)
    assert take.type.value == "take_profit_limit"
    bus.publish(prints(float(take_level)))
    await settled(db, take.client_order_id, "open")
    [vo] = sim.open_orders(KEY)
    assert vo["client_oid"] == take.client_order_id
    assert stop.client_order_id in s.broker.emulator.held  # the stop still protects while the limit works
    bus.publish(prints(float(stop_level)))
    await settled(db, stop.client_order_id)
    assert (await settled(db, take.client_order_id, "cancelled")).filled == 0
    assert sim.open_orders(KEY) == []
    await s.stop()


async def test_venue_native_stop_lives_on_the_venue_survives_the_kill_switch_and_fills_there(sim, clients, bus, db):
    mine, other = clients
    s = await live_stack(bus, db, mine, stop_placement="auto")  # auto: stop-losses venue-native
    ob = await mine.fetch_order_book("BTC/USDT", 5)
    bid = D(repr(ob["bids"][0][0]))
    stop = await s.broker.place(OrderRequest("BTC/USDT", "sell", "stop_market", D("0.01"), trigger_price=bid))
    assert (stop.placement, stop.trigger_state.value, stop.status.value) == ("venue", "armed", "open"), stop.reason
    [vo] = sim.open_orders(KEY)
    assert (vo["client_oid"], vo["order_type"], D(vo["ref_price"])) == (stop.client_order_id, "STOP_LOSS", bid)
    r = await settled(db, stop.client_order_id, "open")
    assert (r.placement, r.trigger_state, r.trigger_price) == ("venue", "armed", bid)
    # the kill switch cancels entries only: the venue keeps the stop
    entry = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.01", str(bid * D("0.9")))
    await s.broker.kill("test")
    assert (await settled(db, entry.client_order_id, "cancelled")).filled == 0
    assert [v["client_oid"] for v in sim.open_orders(KEY)] == [stop.client_order_id]
    # a manual sell of the coins the stop holds is refused before the venue, saying why
    s.broker.release()
    held = s.portfolio.balances["BTC"]
    sell = await s.broker.place_order("BTC/USDT", "sell", "market", str(held))
    assert sell.status.value == "rejected" and "venue-native stops hold 0.01 BTC" in sell.reason
    # another trader sells through the level: the venue triggers and fills our stop
    await other.create_order("BTC/USDT", "limit", "sell", 0.5, float(bid * D("0.99")))
    r = await settled(db, stop.client_order_id)
    assert (r.filled, r.trigger_state) == (D("0.01"), "working")
    await until(lambda: s.portfolio.balances == venue_totals(sim))
    await s.stop()


async def test_reconciliation_adopts_the_venues_own_stop_orders(sim, clients, bus, db):
    mine, _ = clients
    ob = await mine.fetch_order_book("BTC/USDT", 5)
    level = float(D(repr(ob["bids"][0][0])) * D("0.97"))
    vo = await mine.create_order("BTC/USDT", "market", "sell", 0.01, None, {"stopLossPrice": level})
    s = await live_stack(bus, db, mine)
    [o] = s.broker.open_orders()
    assert (o.venue_order_id, o.type.value, o.placement, o.trigger_state.value, o.adopted) == (
        vo["id"], "stop_market", "venue", "armed", True)
    assert o.trigger_price == D(repr(level)).quantize(D("0.01"))
    await s.broker.kill("test")  # adopted protection stays too
    assert [v["order_id"] for v in sim.open_orders(KEY)] == [vo["id"]]
    await s.stop()


async def test_venue_placement_refuses_what_the_venue_cannot_hold_in_one_line(sim, clients, bus, db):
    mine, _ = clients
    s = await live_stack(bus, db, mine, stop_placement="venue")
    o = await s.broker.place(OrderRequest("BTC/USDT", "sell", "trailing_stop", D("0.01"), trailing_pct=D("2")))
    assert o.status.value == "rejected" and "cannot hold a trailing stop" in o.reason and sim.open_orders(KEY) == []
    await s.stop()
