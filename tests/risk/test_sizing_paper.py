"""Paper/live size a strategy's target with the same rule (and function) as the backtest."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from typer.testing import CliRunner

from tps19.engine.risk.sizing import Sizing
from tps19.engine.targets import TargetExecutor
from tps19.engine.assembly import build_trading

from ..trading.conftest import bus, db, markets  # noqa: F401 (fixtures)
from ..trading.helpers import book, settings


async def test_fixed_fractional_sizes_the_paper_order(bus, db, markets):
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings(),
                            exchange="cryptocom", starting_balances={"USDT": D("100000")}, snapshot_interval_s=0)
    await s.start()
    try:
        bus.publish(book(bids=((49999.0, 5.0),), asks=((50001.0, 5.0),)))  # mark 50,000
        ex = TargetExecutor(s.broker, s.portfolio, markets, ["BTC/USDT"], bus,
                            sizing=Sizing("fixed_fractional", {"risk": 0.01, "stop": 0.04}))
        assert ex.sized("BTC/USDT", 1.0) == pytest.approx(0.25)
        await ex.submit_target("BTC/USDT", 1.0, signal=None)
        # 0.25 of 100,000 at the 50,000 mark = 0.5 BTC, bought at the 50,001 ask
        assert s.portfolio.balances["BTC"] == D("0.5")
    finally:
        await s.stop()


def test_paper_refuses_a_bad_sizing_rule_in_one_line():
    from tps19.cli import app

    r = CliRunner().invoke(app, ["paper", "--no-ui", "--sizing", "martingale"])
    assert r.exit_code == 2 and "unknown sizing 'martingale'" in r.output and "Traceback" not in r.output
