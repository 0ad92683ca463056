"""A strategy's entries carry protective exits in paper mode; after a protective exit it stays
flat until its raw target changes; a sell of its own cancels (and, for what it keeps, replaces)
its protection."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal as D

import pytest

from tps19.engine.assembly import build_trading
from tps19.engine.targets import TargetExecutor

from .helpers import book, settings, trades, until

pytestmark = pytest.mark.parametrize("db_target", ["sqlite"], indirect=True)


@dataclass(frozen=True)
class Prot:
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_pct: float | None = None
    stop_loss_price: float | None = None
    take_profit_price: float | None = None


async def paper(bus, db, markets):
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets,
                            settings=settings(daily_loss_limit=D("1000000")),
                            exchange="cryptocom", starting_balances={"USDT": D("100000")}, snapshot_interval_s=0)
    await s.start()
    return s


async def test_entry_is_protected_and_a_stop_exit_keeps_the_strategy_flat_until_its_signal_changes(bus, db, markets):
    s = await paper(bus, db, markets)
    try:
        bus.publish(book(bids=((49999.0, 5.0),), asks=((50001.0, 5.0),)))
        ex = TargetExecutor(s.broker, s.portfolio, markets, ["BTC/USDT"], bus, strategy="demo",
                            protection=Prot(stop_loss_pct=2.0, take_profit_pct=5.0))
        await ex.submit_target("BTC/USDT", 0.5, signal=None)
        bought = s.portfolio.balances["BTC"]
        assert bought > 0
        await until(lambda: len(s.broker.emulator.held) == 2)
        legs = sorted(s.broker.emulator.held.values(), key=lambda o: o.type.value)
        # 2 % below and 5 % above the entry's fill at 50,001, rounded to the tick
        assert [(o.type.value, o.trigger_price, o.amount) for o in legs] == [
            ("stop_market", D("49000.98"), bought), ("take_profit", D("52501.05"), bought)]
        assert all(o.client_order_id.startswith(ex.prefix) for o in legs)  # the strategy's own
        bus.publish(book(bids=((48990.0, 5.0),), asks=((48995.0, 5.0),)))
        bus.publish(trades(("sell", 48990.0, 0.1)))
        await until(lambda: s.portfolio.balances.get("BTC") == 0 and not s.broker.emulator.held)
        await until(lambda: "BTC/USDT" in ex.flat_until_change)
        assert ex.own["BTC/USDT"] == 0
        await ex.submit_target("BTC/USDT", 0.5, signal=None)  # the same raw target: stays flat
        assert s.portfolio.balances.get("BTC") == 0
        await ex.submit_target("BTC/USDT", 0.0, signal=None)  # the signal changes: free again
        await ex.submit_target("BTC/USDT", 0.5, signal=None)  # a new entry signal re-enters
        assert s.portfolio.balances["BTC"] > 0
        await until(lambda: len(s.broker.emulator.held) == 2)
    finally:
        await s.stop()


async def test_a_partial_sell_by_the_strategy_moves_its_protection_to_what_it_keeps(bus, db, markets):
    s = await paper(bus, db, markets)
    try:
        bus.publish(book(bids=((49999.0, 5.0),), asks=((50001.0, 5.0),)))
        ex = TargetExecutor(s.broker, s.portfolio, markets, ["BTC/USDT"], bus, strategy="demo",
                            protection=Prot(stop_loss_pct=2.0))
        await ex.submit_target("BTC/USDT", 0.8, signal=None)
        await until(lambda: len(s.broker.emulator.held) == 1)
        [first] = s.broker.emulator.held.values()
        await ex.submit_target("BTC/USDT", 0.4, signal=None)
        await asyncio.sleep(0)
        [kept] = s.broker.emulator.held.values()
        assert kept.client_order_id != first.client_order_id and kept.trigger_price == first.trigger_price
        assert kept.amount == ex.held("BTC/USDT") < first.amount
        await ex.submit_target("BTC/USDT", 0.0, signal=None)  # out by its own signal: no protection left
        assert s.broker.emulator.held == {} and s.portfolio.balances.get("BTC", D(0)) < D("0.00001")
    finally:
        await s.stop()


@pytest.mark.parametrize("args, says", [
    (["--stop-loss", "2"], "add --strategy"),
    (["--strategy", "sma_cross", "--stop-loss", "0"], "--stop-loss 0 is out of range"),
    (["--strategy", "sma_cross", "--trailing-stop", "100"], "--trailing-stop 100 is out of range"),
])
def test_paper_protection_flags_refuse_bad_values_in_one_line(db_target, args, says):
    from typer.testing import CliRunner

    from tps19.cli import app

    r = CliRunner().invoke(app, ["paper", "--no-ui", *args])
    assert r.exit_code == 2 and says in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_fixed_fractional_places_its_own_stop_and_a_stop_loss_flag_wins_and_sizes_it(db_target):
    from tps19.config import Settings
    from tps19.engine.engine import strategy_protection

    ff = {"sizing": "fixed_fractional", "sizing_params": {"risk": 0.01, "stop": 0.04}}
    p, sizing = strategy_protection(Settings(stops={"take_profit_pct": 5.0}, risk=ff))
    assert (p.stop_loss_pct, p.take_profit_pct, sizing.p["stop"]) == (pytest.approx(4.0), 5.0, 0.04)
    p, sizing = strategy_protection(Settings(stops={"stop_loss_pct": 2.0}, risk=ff))
    assert (p.stop_loss_pct, sizing.p["stop"]) == (2.0, pytest.approx(0.02))  # the flag wins, the size follows
    p, sizing = strategy_protection(Settings())
    assert p is None and sizing.name == "fixed"
