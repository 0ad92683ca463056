"""Orders carry Side and OrderType; the database, the bus and JSON keep the plain strings."""

from __future__ import annotations

import json

from sqlalchemy import text

from tps19.engine.trading import OrderUpdate
from tps19.engine.trading.orders import OrderType, Side

from .helpers import book
from .test_paper import stack


async def test_sides_and_types_round_trip_through_the_database_as_plain_strings(bus, db, markets):
    s = await stack(bus, db, markets)
    sub = bus.subscribe(OrderUpdate, coalesce=None)
    try:
        bus.publish(book())
        o = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.01", "40000")
        assert o.side is Side.BUY and o.type is OrderType.LIMIT
        back = await s.store.order(o.client_order_id)
        assert back is not None and back.side is Side.BUY and back.type is OrderType.LIMIT
        async with db.session() as ses:
            row = (await ses.execute(text("select side, type from orders where client_order_id = :c"),
                                     {"c": o.client_order_id})).one()
        assert tuple(row) == ("buy", "limit")
        ev = [e for e in sub.drain() if e.client_order_id == o.client_order_id][-1]
        assert type(ev.side) is str and type(ev.type) is str  # subscribers and logs see plain strings
        assert json.dumps({"side": o.side, "type": o.type}) == '{"side": "buy", "type": "limit"}'
        assert f"{o.side} {o.type}" == "buy limit"
    finally:
        sub.close()
        await s.stop()


async def test_a_refused_side_or_type_is_recorded_as_unknown_and_named_in_the_reason(bus, db, markets):
    s = await stack(bus, db, markets)
    try:
        bus.publish(book())
        o = await s.broker.place_order("BTC/USDT", "hold", "limit", "0.01", "40000")
        assert o.status.value == "rejected" and "'hold'" in o.reason and o.side is Side.UNKNOWN
        t = await s.broker.place_order("BTC/USDT", "buy", "?", "0.01", "40000")
        assert t.status.value == "rejected" and "order type must be" in t.reason and t.type is OrderType.UNKNOWN
        back = await s.store.order(o.client_order_id)
        assert back is not None and back.side is Side.UNKNOWN and back.reason == o.reason
    finally:
        await s.stop()
