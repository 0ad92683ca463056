"""Positions, P&L and balances move with the market, not only on fills; "P&L today" is the
figure the daily loss limit enforces, from the same stored start, also after a restart."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from tps19.engine.assembly import build_trading
from tps19.engine.trading.events import FillEvent, PortfolioUpdate, PositionEvent

from .helpers import book, settings, until


async def _stack(bus, db, markets):
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings(),
                            starting_balances={"USDT": D("100000"), "BTC": D("1"), "ETH": D("10")})
    await s.start()
    return s


def _last(events, kind, **match):
    for e in reversed(events):
        if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items()):
            return e
    return None


@pytest.mark.sqlite_only
async def test_unrealized_pnl_and_equity_follow_the_mark_without_fills(bus, db, markets):
    seen: list = []
    bus.on((PositionEvent, PortfolioUpdate), seen.append)
    s = await _stack(bus, db, markets)
    try:
        bus.publish(book(bids=((49999.0, 1.0),), asks=((50001.0, 1.0),)))
        o = await s.broker.place_order("BTC/USDT", "buy", "market", "0.1")
        assert o.status.value == "filled"
        await until(lambda: _last(seen, PositionEvent, mark=D("50000")) is not None)
        fills_before = s.broker.portfolio.position("BTC/USDT").qty
        bus.publish(book(bids=((50999.0, 1.0),), asks=((51001.0, 1.0),)))  # only the mark moves
        await until(lambda: _last(seen, PositionEvent, mark=D("51000")) is not None)
        pos = _last(seen, PositionEvent, mark=D("51000"))
        assert pos.net_position == fills_before == D("0.1")
        assert pos.unrealized_pnl == (D("51000") - D("50001")) * D("0.1")
        await until(lambda: any(isinstance(e, PortfolioUpdate) and e.equity > D("150000") for e in seen))
        up = _last(seen, PortfolioUpdate)
        # 100000 - 5000.1 - fee + 1.1 BTC at 51000; ETH has no mark yet
        fee = s.portfolio.positions["BTC/USDT"].fees
        assert up.equity == D("100000") - D("5000.1") - fee + D("1.1") * D("51000")
        assert up.unpriced == ("ETH",)
    finally:
        await s.stop()


@pytest.mark.sqlite_only
async def test_balances_show_free_and_locked_including_holdings_from_before(bus, db, markets):
    seen: list = []
    bus.on(PortfolioUpdate, seen.append)
    s = await _stack(bus, db, markets)
    try:
        bus.publish(book(bids=((49999.0, 1.0),), asks=((50001.0, 1.0),)))
        o = await s.broker.place_order("BTC/USDT", "sell", "limit", "0.3", "60000")
        assert o.status.value == "open"
        await until(lambda: seen and any(b.currency == "BTC" and b.locked == D("0.3") for b in seen[-1].balances))
        rows = {b.currency: b for b in seen[-1].balances}
        assert (rows["BTC"].free, rows["BTC"].locked, rows["BTC"].total) == (D("0.7"), D("0.3"), D("1"))
        assert rows["BTC"].value == D("50000")
        assert (rows["ETH"].free, rows["ETH"].total, rows["ETH"].value) == (D("10"), D("10"), None)  # held before, no mark
        assert rows["USDT"].locked == 0 and rows["USDT"].free == D("100000")
    finally:
        await s.stop()


async def test_pnl_today_is_the_loss_limits_figure_and_survives_a_restart(bus, db, markets):
    seen: list = []
    bus.on(PortfolioUpdate, seen.append)
    s = await _stack(bus, db, markets)
    try:
        bus.publish(book(bids=((49999.0, 1.0),), asks=((50001.0, 1.0),)))
        bus.publish(book("ETH/USDT", bids=((2999.0, 1.0),), asks=((3001.0, 1.0),)))  # the day starts valued
        await s.broker.place_order("BTC/USDT", "buy", "market", "0.1")
        await until(lambda: s.portfolio.day_start_ts is not None and seen and seen[-1].pnl_today is not None)
        start_ts = s.portfolio.day_start_ts
        bus.publish(book(bids=((48999.0, 1.0),), asks=((49001.0, 1.0),)))
        await until(lambda: seen[-1].unrealized_pnl < -50)
        assert seen[-1].pnl_today == s.broker.risk.pnl_today() < 0
        # the headless `portfolio` line says the same, at 2 decimals (USDT)
        assert s.summary()["pnl_today"] == f"{seen[-1].pnl_today.quantize(D('0.01'))}"
        before = seen[-1].pnl_today
    finally:
        await s.stop()
    seen.clear()
    s2 = await _stack(bus, db, markets)  # a restart: the start figure comes from the stored snapshot
    try:
        assert s2.portfolio.day_start_ts == start_ts
        bus.publish(book(bids=((48999.0, 1.0),), asks=((49001.0, 1.0),)))
        await until(lambda: seen and seen[-1].pnl_today is not None)
        assert seen[-1].pnl_today == s2.broker.risk.pnl_today() == before
    finally:
        await s2.stop()


@pytest.mark.sqlite_only
async def test_selling_holdings_from_before_never_shows_a_negative_position(bus, db, markets):
    """The account started with 1 BTC that no fill bought: selling part of it leaves the
    position at zero (not -0.155) while the balance shows what is held."""
    seen: list = []
    bus.on(PositionEvent, seen.append)
    s = await _stack(bus, db, markets)
    try:
        bus.publish(book(bids=((49999.0, 1.0),), asks=((50001.0, 1.0),)))
        o = await s.broker.place_order("BTC/USDT", "sell", "market", "0.155")
        assert o.status.value == "filled"
        await until(lambda: any(e.base_balance == D("0.845") for e in seen))
        ev = [e for e in seen if e.base_balance == D("0.845")][-1]
        assert ev.net_position == 0 and ev.realized_pnl == 0
        await s.broker.place_order("BTC/USDT", "buy", "market", "0.1")
        assert s.portfolio.position("BTC/USDT").qty == D("0.1")
        await s.broker.place_order("BTC/USDT", "sell", "market", "0.3")  # 0.1 bought, 0.2 held before
        p = s.portfolio.position("BTC/USDT")
        assert p.qty == 0 and p.realized == (D("49999") - D("50001")) * D("0.1")
        assert all(e.net_position >= 0 for e in seen)
    finally:
        await s.stop()


async def test_the_session_summary_says_what_this_run_did(bus, db, markets):
    """Quitting the desk prints it; headless ends with it as a JSON `summary` line."""
    s = await _stack(bus, db, markets)
    try:
        bus.publish(book(bids=((49999.0, 1.0),), asks=((50001.0, 1.0),)))
        bus.publish(book("ETH/USDT", bids=((2999.0, 1.0),), asks=((3001.0, 1.0),)))
        await until(lambda: s.session.equity_start is not None)
        start = s.session.equity_start
        o = await s.broker.place_order("BTC/USDT", "buy", "market", "0.1")
        await s.broker.place_order("BTC/USDT", "sell", "market", "0.05")
        fees = s.portfolio.totals()["fees"]
        got = s.session.summary()
        assert (got["fills"], got["fees"]) == (2, f"{fees:.8f}") and o.status.value == "filled"
        assert got["equity_start"] == f"{start:.2f}" == "180000.00"  # 100,000 + 1 BTC + 10 ETH at the mids
        assert got["realized_pnl"] == f"{(D('49999') - D('50001')) * D('0.05'):.2f}"
        assert got["equity_end"] == f"{s.portfolio.equity()[0]:.2f}"
        lines = s.session.lines()
        assert "2 fill(s)" in lines[0] and "equity 180,000.00 -> " in lines[2]
    finally:
        await s.stop()


async def test_holdings_from_before_with_a_cost_basis_show_their_pnl(bus, db, markets):
    """`--cost-basis BTC=60000` (or TPS19_HOLDINGS__COST_BASIS): the 1 BTC the account had is a
    position entered at 60,000, so its P&L shows (it read 0 with no entry), also after a restart."""
    from tps19.config import HoldingsSettings

    async def stack():
        st = settings()
        st.holdings = HoldingsSettings(cost_basis={"btc": "60000"})
        s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=st,
                                starting_balances={"USDT": D("100000"), "BTC": D("1")})
        await s.start()
        return s

    s = await stack()
    try:
        bus.publish(book(bids=((49999.0, 1.0),), asks=((50001.0, 1.0),)))
        await until(lambda: s.portfolio.mark("BTC/USDT") is not None)
        pos = s.portfolio.position("BTC/USDT")
        assert (pos.qty, pos.avg_entry) == (D("1"), D("60000"))
        assert pos.unrealized(s.portfolio.mark("BTC/USDT")) == D("-10000")
        await s.broker.place_order("BTC/USDT", "sell", "market", "0.5")  # sells part of what it had: realised
        assert pos.realized == (D("49999") - D("60000")) * D("0.5") and pos.qty == D("0.5")
    finally:
        await s.stop()
    s2 = await stack()
    try:
        pos = s2.portfolio.position("BTC/USDT")
        assert (pos.qty, pos.avg_entry) == (D("0.5"), D("60000")) and pos.realized == D("-5000.5")
    finally:
        await s2.stop()


async def test_a_fills_portfolio_update_comes_with_the_fill_not_a_pass_later(bus, db, markets):
    """Every reader drains a fill's FillEvent and PositionEvent together with a PortfolioUpdate that
    counts the fill (its fee, its balances): the update was left to the mark publisher's next pass,
    so a reader saw the position with the fee beside balances, equity and P&L totals without it,
    and one drawing those totals on position events only kept them stale while no mark moved
    (the two-venue desk's fees row read 0.00 under a booked 0.574 in CI)."""
    s = await _stack(bus, db, markets)
    sub = bus.subscribe(PositionEvent, PortfolioUpdate, FillEvent)
    try:
        bus.publish(book(bids=((49999.0, 1.0),), asks=((50001.0, 1.0),)))
        bus.publish(book("ETH/USDT", bids=((2999.0, 1.0),), asks=((3001.0, 1.0),)))
        await until(lambda: any(isinstance(e, PortfolioUpdate) and not e.unpriced for e in sub.drain()))
        for _ in range(2):  # a buy, then a sell that realizes P&L
            side = "buy" if _ == 0 else "sell"
            o = await s.broker.place_order("BTC/USDT", side, "market", "0.1")
            assert o.status.value == "filled"
            # what a reader drains right after the order returns, before the publisher's loop runs
            got = sub.drain()
            fill = next(i for i, e in enumerate(got) if isinstance(e, FillEvent))
            pos = next(i for i, e in enumerate(got) if isinstance(e, PositionEvent) and i > fill)
            ups = [e for e in got[pos:] if isinstance(e, PortfolioUpdate)]
            assert ups, [type(e).__name__ for e in got]
            t, (eq, _) = s.portfolio.totals(), s.portfolio.equity()
            assert ups[0].fees == got[pos].fees == t["fees"] > 0
            assert (ups[0].realized_pnl, ups[0].net_pnl, ups[0].equity) == (t["realized_pnl"], t["net_pnl"], eq)
            usdt = next(b for b in ups[0].balances if b.currency == "USDT")
            assert usdt.total == s.portfolio.balances["USDT"]
    finally:
        sub.close()
        await s.stop()
