"""The history a trader looks back at comes from the database: after a restart it still lists
filled, cancelled and rejected orders, fills with price, amount, fee and realized P&L, per-strategy
figures, the equity series and the daily P&L."""

from __future__ import annotations

from decimal import Decimal as D

from tps19.engine.targets import strategy_order_id, strategy_prefix
from tps19.engine.assembly import build_trading
from tps19.engine.trading.history import TradingHistory

from .helpers import book, settings


async def _stack(bus, db, markets):
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings(),
                            starting_balances={"USDT": D("100000"), "BTC": D("1")})
    await s.start()
    return s


def _book(mid: int):
    return book(bids=((mid - 1.0, 5.0),), asks=((mid + 1.0, 5.0),))


async def test_history_lists_finished_orders_and_fills_after_a_restart(bus, db, markets):
    s = await _stack(bus, db, markets)
    bus.publish(_book(50000))
    buy = await s.broker.place_order("BTC/USDT", "buy", "market", "0.2")
    rest = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.1", "40000")
    await s.broker.cancel(rest.client_order_id)
    bad = await s.broker.place_order("BTC/USDT", "sell", "limit", "0.1", "-5")
    bus.publish(_book(51000))
    sell = await s.broker.place_order("BTC/USDT", "sell", "market", "0.1")
    assert (buy.status.value, bad.status.value, sell.status.value) == ("filled", "rejected", "filled")
    await s.stop()

    s2 = await _stack(bus, db, markets)  # a restart: everything below is read back from SQLite
    try:
        h = TradingHistory(db, "paper", markets=markets)
        orders = await h.orders()
        by_id = {o.client_order_id: o for o in orders}
        assert by_id[buy.client_order_id].status == "filled" and by_id[rest.client_order_id].status == "cancelled"
        assert by_id[bad.client_order_id].status == "rejected" and by_id[bad.client_order_id].reason
        assert orders[0].client_order_id == sell.client_order_id  # newest first
        assert await h.count_orders() == 4 and await h.orders(symbol="ETH/USDT") == []
        page = await h.orders(limit=2, offset=2)
        assert [o.client_order_id for o in page] == [o.client_order_id for o in orders[2:4]]
        fills = await h.fills("BTC/USDT")
        assert [f.side for f in fills] == ["sell", "buy"] and await h.count_fills() == 2
        f_sell, f_buy = fills
        assert (f_buy.price, f_buy.amount, f_buy.realized_pnl) == (D("50001"), D("0.2"), 0)
        assert (f_sell.price, f_sell.amount) == (D("50999"), D("0.1"))
        assert f_sell.realized_pnl == (D("50999") - D("50001")) * D("0.1")
        assert f_sell.fee == f_sell.price * f_sell.amount * D(str(markets["BTC/USDT"]["taker"])) > 0
    finally:
        await s2.stop()


async def test_strategy_figures_equity_series_and_daily_pnl(bus, db, markets):
    s = await _stack(bus, db, markets)
    try:
        prefix = strategy_prefix("sma_cross")
        for mid_in, mid_out in ((50000, 52000), (52000, 50000)):  # one winning, one losing round trip
            bus.publish(_book(mid_in))
            await s.broker.place_order("BTC/USDT", "buy", "market", "0.1", client_order_id=strategy_order_id(prefix))
            bus.publish(_book(mid_out))
            await s.broker.place_order("BTC/USDT", "sell", "market", "0.1", client_order_id=strategy_order_id(prefix))
        await s.broker.place_order("BTC/USDT", "buy", "market", "0.05")  # the trader's own: not the strategy's
        await s.portfolio.snapshot()
        h = TradingHistory(db, "paper", markets=markets)
        assert await h.strategies() == ["smacross"]
        st = await h.strategy_stats("sma_cross")
        assert (st.trades, st.wins, st.losses, st.win_rate) == (4, 1, 1, 0.5)
        gross = (D("51999") - D("50001")) * D("0.1") + (D("49999") - D("52001")) * D("0.1")
        assert st.realized_pnl == gross and st.net_pnl == gross - st.fees and st.fees > 0
        assert st.max_drawdown >= (D("52001") - D("49999")) * D("0.1")  # the losing trade from the peak
        series = await h.equity_series()
        assert series and series[-1][1] == s.portfolio.equity()[0]
        days = await h.daily_pnl()
        assert len(days) == 1 and days[0].end_equity == series[-1][1]
    finally:
        await s.stop()


async def test_a_snapshot_that_does_not_value_every_holding_is_never_a_start(bus, db, markets):
    """A new database: the first snapshot was stored before BTC had a price (equity = the USDT
    alone). It was the P&L screen's period start and the day's open: "+50,000 over the period" a
    minute after start. Such a snapshot is skipped by the equity series and the daily table, and
    the day's start is stored only once every holding is valued."""
    s = await _stack(bus, db, markets)
    try:
        await s.portfolio.publisher.store_day_start()  # BTC has no price yet: no start stored
        assert s.portfolio.day_start_ts is None
        early = await s.portfolio.snapshot()  # e.g. the minute loop, before the first book
        assert early.positions.get("_unpriced") == ["BTC"] and early.equity == D("100000")
        bus.publish(_book(50000))
        await s.portfolio.publisher.store_day_start()
        assert s.portfolio.day_start_ts is not None
        await s.portfolio.snapshot()
        h = TradingHistory(db, "paper", markets=markets)
        series = await h.equity_series()
        assert series and all(v == D("150000") for _, v in series), series
        days = await h.daily_pnl()
        assert days[0].start_equity == D("150000") and days[0].end_equity == D("150000")
    finally:
        await s.stop()
