"""The desk's history lists the orders of the venue it trades on, not every venue's in the file."""

from __future__ import annotations

from decimal import Decimal as D
from types import SimpleNamespace

from tps19.desk.cockpit import CockpitScreens
from tps19.engine.assembly import build_trading

from ..trading.conftest import bus, db, markets  # noqa: F401 (fixtures)
from ..trading.helpers import book, settings


async def test_history_screen_reads_only_its_own_venues_orders(bus, db, markets):
    placed = {}
    for venue in ("cryptocom", "binance"):  # one database, used against two venues in turn
        s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings(),
                                exchange=venue, starting_balances={"USDT": D("100000")}, snapshot_interval_s=0)
        await s.start()
        bus.publish(book())
        placed[venue] = (await s.broker.place_order("BTC/USDT", "buy", "market", "0.01")).client_order_id
        await s.stop()
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings(),
                            exchange="cryptocom", starting_balances={"USDT": D("100000")}, snapshot_interval_s=0)
    try:
        desk = CockpitScreens()
        desk.engine, desk.mode = SimpleNamespace(db=db, trading=s, markets=markets), "paper"
        orders = await desk._trading_history().orders()
        assert [o.client_order_id for o in orders] == [placed["cryptocom"]]
    finally:
        await s.stop()
