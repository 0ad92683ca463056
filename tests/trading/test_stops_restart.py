"""Protective orders across a paper restart, on each database backend (SQLite, PostgreSQL): armed
rows come back armed, a stored trigger is sent whatever the price, an OCO whose leg filled while
down has its other leg cancelled."""

from __future__ import annotations

from decimal import Decimal

from tps19.engine.storage import Database

from .helpers import book
from .test_stops_paper import req, row, settled, stack

D = Decimal


async def test_restart_keeps_armed_stops_and_sends_a_stored_triggered_one_whatever_the_price(bus, db_target, markets):
    from tps19.engine.bus import EventBus

    db = Database(db_target)
    await db.open()
    s = await stack(bus, db, markets)
    bus.publish(book())
    armed = await s.broker.place(req("stop_market", amount="0.1", trigger_price="49000"))
    trig = await s.broker.place(req("stop_market", amount="0.2", trigger_price="49500"))
    # the process dies just after storing the trigger: simulated by writing what fire() writes first
    o = s.broker.emulator.held[trig.client_order_id]
    from tps19.engine.trading.orders import TriggerState
    o.trigger_state = TriggerState.TRIGGERED
    await s.store.save(o)
    await s.stop()
    await db.close()

    db = Database(db_target)
    await db.open()
    bus2 = EventBus()
    s2 = await stack(bus2, db, markets)
    assert set(s2.broker.emulator.held) == {armed.client_order_id, trig.client_order_id}
    bus2.publish(book())  # the price is far above 49500 now: the stored trigger is sent anyway
    r = await settled(db, trig.client_order_id)
    assert r.filled == D("0.2")
    assert s2.broker.emulator.held[armed.client_order_id].trigger_state.value == "armed"
    assert s2.portfolio.balances["BTC"] == D("0.8")
    await s2.stop()
    await db.close()


async def test_restart_with_one_oco_leg_filled_cancels_the_other(bus, db_target, markets):
    from tps19.engine.bus import EventBus

    db = Database(db_target)
    await db.open()
    s = await stack(bus, db, markets)
    bus.publish(book())
    stop = await s.broker.place(req("oco", amount="0.1", stop_loss_price="49000", take_profit_price="51000"))
    take = next(o for o in s.broker.emulator.held.values() if o.client_order_id != stop.client_order_id)
    await s.stop()
    # the take-profit leg filled, and the process died before the stop leg was cancelled
    t = take.copy()
    from tps19.engine.trading.orders import OrderStatus, TriggerState
    t.trigger_state = TriggerState.WORKING
    t.transition(OrderStatus.FILLED)
    t.filled = t.amount
    await s.store.save(t)
    await db.close()

    db = Database(db_target)
    await db.open()
    s2 = await stack(EventBus(), db, markets)
    assert s2.broker.emulator.held == {}
    r = await row(db, stop.client_order_id)
    assert r.status == "cancelled" and "filled" in r.reason
    await s2.stop()
    await db.close()
