"""Child process for the protective-order crash tests: runs the live broker, arms a stop (or an
OCO), drives it to the point the test names, says so on stdout, then waits to be killed.

    python -m tests.trading.stops_child URL DB LEVEL POINT [TAKE LIMIT]

POINT: ``armed`` (armed, nothing more), ``triggered`` (stored as triggered, never handed to the
venue), ``sent`` (wait for ``go`` on stdin, then trigger: the test loses the venue's reply),
``oco`` (an OCO whose take-profit limit leg is triggered and working at the venue),
``unwritten`` (triggered and sent, the trigger's own write never lands: the row still says armed).
"""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal


def say(**kw: object) -> None:
    print(json.dumps(kw, default=str), flush=True)


async def main(url: str, db_path: str, level: str, point: str, take: str = "", limit: str = "") -> None:
    from tps19.engine.bus import EventBus
    from tps19.engine.events import Trade, TradeEvent
    from tps19.engine.storage import Database
    from tps19.engine.assembly import build_trading
    from tps19.engine.trading import OrderRequest

    from .helpers import settings
    from .simhelp import make_client

    client = await make_client(url, timeout_ms=30_000)
    db = Database(db_path)
    await db.open()
    bus = EventBus()
    s = await build_trading(mode="live", bus=bus, db=db, client=client, markets=client.markets,
                            settings=settings(), snapshot_interval_s=0, use_watch=False, poll_interval_s=30, stop_placement="emulated")
    await s.start()
    b = s.broker
    if point == "oco":
        o = await b.place(OrderRequest("BTC/USDT", "sell", "oco", Decimal("0.01"), Decimal(limit),
                                       stop_loss_price=Decimal(level), take_profit_price=Decimal(take)))
    else:
        o = await b.place(OrderRequest("BTC/USDT", "sell", "stop_market", Decimal("0.01"), trigger_price=Decimal(level)))
    if o.status.value == "rejected":
        say(error=o.reason)
        return
    cid = o.client_order_id
    if point == "armed":
        say(cid=cid, state=o.trigger_state.value)
    elif point == "triggered":
        never = asyncio.Event()

        async def hang(order: object, *, resend: bool = False) -> None:
            await never.wait()  # the process dies here: stored as triggered, never sent
        b._release = hang  # type: ignore[method-assign]
        bus.publish(TradeEvent("BTC/USDT", (Trade(ts=0, side="sell", price=float(level), amount=0.01),)))
        while (await s.store.order(cid)).trigger_state.value != "triggered":  # type: ignore[union-attr]
            await asyncio.sleep(0.01)
        say(cid=cid, state="triggered")
    elif point == "unwritten":
        real_save = s.store.save
        never = asyncio.Event()

        async def stuck(order, **kw):  # type: ignore[no-untyped-def]
            if order is not None and order.client_order_id == cid:
                await never.wait()  # the disk never answers for this order's rows
            return await real_save(order, **kw)
        s.store.save = stuck  # type: ignore[method-assign]
        sent = asyncio.Event()
        real_create = client.create_order

        async def create(*a, **kw):  # type: ignore[no-untyped-def]
            r = await real_create(*a, **kw)
            sent.set()
            return r
        client.create_order = create
        bus.publish(TradeEvent("BTC/USDT", (Trade(ts=0, side="sell", price=float(level), amount=0.01),)))
        await sent.wait()
        say(cid=cid, state="sent, row armed")
    elif point == "sent":
        say(cid=cid, ready=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        bus.publish(TradeEvent("BTC/USDT", (Trade(ts=0, side="sell", price=float(level), amount=0.01),)))
    elif point == "oco":
        leg = next(x for x in b.open_orders() if x.oco_group == o.oco_group and x.client_order_id != cid)
        bus.publish(TradeEvent("BTC/USDT", (Trade(ts=0, side="buy", price=float(take), amount=0.01),)))
        while (cur := await s.store.order(leg.client_order_id)) is None or cur.status.value != "open":
            await asyncio.sleep(0.01)
        say(cid=cid, take=leg.client_order_id, venue_id=cur.venue_order_id)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
