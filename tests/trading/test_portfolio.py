from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tps19.engine.storage import PortfolioSnapshot
from tps19.engine.storage.models import PositionAdjustment
from tps19.engine.trading.portfolio import Portfolio
from tps19.engine.trading.store import FillRecord

from .helpers import book, until

D = Decimal


def f(side, price, amount, fee, cur="USDT", symbol="BTC/USDT"):
    return FillRecord(f"f{price}{amount}{side}", None, None, symbol, side, D(price), D(amount), D(fee), cur, "taker", 0)


@pytest.mark.sqlite_only
async def test_hand_computed_pnl(markets, bus, db):
    p = Portfolio(mode="paper", markets=markets, bus=bus, db=db, snapshot_interval_s=0)
    p.balances = {"USDT": D("1000"), "BTC": D("1")}
    for x in (f("buy", "100", "1", "0.1"), f("buy", "110", "1", "0.11")):
        p.apply_fill(x)
    pos = p.position("BTC/USDT")
    assert (pos.qty, pos.avg_entry, pos.realized) == (D("2"), D("105"), D("0"))
    p.apply_fill(f("sell", "120", "1.5", "0.18"))
    assert (pos.qty, pos.avg_entry, pos.realized) == (D("0.5"), D("105"), D("22.5"))
    bus.publish(book(bids=((129.0, 1.0),), asks=((131.0, 1.0),)))  # mid 130
    assert pos.unrealized(p.mark("BTC/USDT")) == D("12.5")
    t = p.totals()
    assert t == {"realized_pnl": D("22.5"), "unrealized_pnl": D("12.5"), "fees": D("0.39"), "net_pnl": D("34.61")}
    # sell through zero on spot: 0.5 closes at 100 (-2.5); the other 0.5 is BTC the account held
    # before any fill (no short on spot): the position stays at zero, never negative
    p.apply_fill(f("sell", "100", "1", "0.1"))
    assert (pos.qty, pos.avg_entry, pos.realized) == (D("0"), None, D("20"))
    bus.publish(book(bids=((89.0, 1.0),), asks=((91.0, 1.0),)))  # mid 90
    assert pos.unrealized(D("90")) == 0
    assert p.balances == {"USDT": D("1069.51"), "BTC": D("0.5")}
    eq, unpriced = p.equity()
    assert eq == D("1069.51") + D("0.5") * D("90") and unpriced == []
    # a buy after that opens a new long at its price
    p.apply_fill(f("buy", "80", "0.5", "0"))
    assert (pos.qty, pos.avg_entry, pos.realized) == (D("0.5"), D("80"), D("20"))
    p.apply_fill(f("sell", "80", "0.5", "0"))
    assert (pos.qty, pos.avg_entry, pos.realized) == (D("0"), None, D("20"))
    ev = p.position_event("BTC/USDT")
    assert ev.net_position == 0 and ev.unrealized_pnl == 0 and ev.fees == D("0.49")
    snap = await p.snapshot()
    async with db.session() as s:
        row = (await s.execute(select(PortfolioSnapshot))).scalars().one()
    assert row.equity == snap.equity and row.realized_pnl == D("20") and row.fees == D("0.49")
    assert D(row.positions["BTC/USDT"]["qty"]) == 0


def test_fee_in_base_currency_reduces_position(markets):
    p = Portfolio(mode="live", markets=markets)
    p.balances = {"USDT": D("1000")}
    p.apply_fill(f("buy", "100", "1", "0.001", cur="BTC"))
    pos = p.position("BTC/USDT")
    assert pos.qty == D("0.999") and pos.fees == D("0.1")
    assert p.balances == {"USDT": D("900"), "BTC": D("0.999")}


def test_replay_matches_live_booking(markets):
    fills = [f("buy", "100", "1", "0.1"), f("sell", "120", "0.4", "0.05"), f("buy", "90", "2", "0.2")]
    a = Portfolio(mode="paper", markets=markets)
    for x in fills:
        a.apply_fill(x)
    b = Portfolio(mode="paper", markets=markets)
    adj = PositionAdjustment(ts=1, mode="paper", exchange="x", currency="BTC", symbol="BTC/USDT",
                             amount=D("0"), expected=D("0"), venue=D("0"))
    b.replay(fills, [adj])
    pa, pb = a.position("BTC/USDT"), b.position("BTC/USDT")
    assert (pa.qty, pa.avg_entry, pa.realized, pa.fees) == (pb.qty, pb.avg_entry, pb.realized, pb.fees)


async def test_equity_snapshots_every_n_seconds_and_factory_defaults(markets, bus, db):
    from tps19.config import Settings
    from tps19.engine.trading import EquitySnapshot
    from tps19.engine.assembly import build_trading

    sub = bus.subscribe(EquitySnapshot)
    st = Settings.model_construct()
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=st,
                            snapshot_interval_s=0.05)
    await s.start()
    assert s.portfolio.balances == st.sim.starting_balances  # paper starts from the configured balances
    bus.publish(book(bids=((49999.0, 1.0),), asks=((50001.0, 1.0),)))
    await until(lambda: s.portfolio.snapshots_written >= 2)
    await s.stop()
    async with db.session() as ses:
        snaps = (await ses.execute(select(PortfolioSnapshot))).scalars().all()
    assert len(snaps) >= 3  # periodic ones plus the final one at stop
    # 100000 USDT + 1 BTC @ 50000 mid; ETH and SOL have no mark here
    assert snaps[-1].equity == D("150000") and snaps[-1].positions["_unpriced"] == ["ETH", "SOL"]
    assert any(isinstance(e, EquitySnapshot) for e in sub.drain())
    assert s.summary()["equity"] == "150000.00"  # money at 2 decimals in USDT (tps19/figures.py)


def test_mark_is_the_exact_decimal_mid_of_the_quotes():
    from decimal import Decimal

    from tps19.engine.events import BookEvent
    from tps19.engine.trading.portfolio import Portfolio

    pf = Portfolio(mode="paper", markets={"BTC/USDT": {"base": "BTC", "quote": "USDT", "symbol": "BTC/USDT"}})
    # as floats, (62990.21 + 62990.25) / 2 == 62990.229999999996
    pf.on_book(BookEvent("BTC/USDT", ((62990.21, 1.0),), ((62990.25, 1.0),), ts=None, seq=None))
    assert pf.mark("BTC/USDT") == Decimal("62990.23")
