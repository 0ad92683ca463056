"""Live risk metrics: the monitor computes them with the same functions as `tps19 risk`, and the
desk's Risk pane shows them."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from tps19.engine.events import BarEvent
from tps19.engine.risk.metrics import var_cvar
from tps19.engine.assembly import build_trading

from ..trading.conftest import bus, db, markets  # noqa: F401 (fixtures)
from ..trading.helpers import book, settings


def _bar(symbol: str, i: int, close: float) -> BarEvent:
    return BarEvent(symbol=symbol, timeframe="1m", ts=i * 60_000, open=close, high=close, low=close, close=close,
                    volume=1.0, closed=True)


async def test_the_monitor_measures_the_held_portfolio(bus, db, markets):
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings(),
                            exchange="cryptocom", starting_balances={"USDT": D("100000")}, snapshot_interval_s=0)
    await s.start()
    try:
        bus.publish(book(bids=((49999.0, 5.0),), asks=((50001.0, 5.0),)))
        o = await s.broker.place_order("BTC/USDT", "buy", "market", "1")
        assert o.status.value == "filled"
        rng = np.random.default_rng(3)
        closes = 50000.0 * np.cumprod(1 + rng.normal(0, 0.01, 60))
        for i, c in enumerate(closes):
            bus.publish(_bar("BTC/USDT", i, float(c)))
        ev = s.risk_metrics.refresh()
        eq = float(s.portfolio.equity()[0])
        w = 50000.0 / eq  # 1 BTC at the 50,000 mark, of the equity
        r = closes[1:] / closes[:-1] - 1
        assert ev.report.exposure == {"BTC/USDT": pytest.approx(50000.0)}
        assert ev.report.leverage == pytest.approx(w)
        assert ev.report.bars == 59
        assert (ev.report.var["95"], ev.report.cvar["95"]) == pytest.approx(var_cvar(w * r, 0.95))
        assert (ev.report.var["99"], ev.report.cvar["99"]) == pytest.approx(var_cvar(w * r, 0.99))
    finally:
        await s.stop()


def test_the_risk_pane_rows_of_the_metrics():
    from tps19.engine.risk.metrics import RiskReport
    from tps19.engine.risk.monitor import RiskMetricsEvent
    from tps19.desk.widgets.panes import metric_rows

    rep = RiskReport(exposure={"BTC/USDT": 5.0}, gross_exposure=5.0, leverage=0.5, bars=100, volatility_per_bar=0.01,
                     volatility_annual=0.8, var={"95": 0.012, "99": 0.02}, cvar={"95": 0.015, "99": 0.025},
                     correlation={"BTC/USDT": {"BTC/USDT": 1.0, "ETH/USDT": 0.8}, "ETH/USDT": {"BTC/USDT": 0.8}},
                     horizon="1m", var_1d={"95": 0.45, "99": 0.75}, cvar_1d={"95": 0.57, "99": 0.95})
    ev = RiskMetricsEvent(equity=10.0, report=rep, peak_equity=12.0, drawdown_pct=16.67)
    assert metric_rows(ev) == [("leverage", "0.50x"), ("from peak", "-16.67%"), ("vol (annual)", "80.0%"),
                               ("VaR 95/99 (1m)", "1.20% / 2.00%"), ("CVaR 95/99 (1m)", "1.50% / 2.50%"),
                               ("VaR 1d (scaled)", "45.00% / 75.00%"), ("corr BTC/ETH", "+0.80")]
    few = RiskMetricsEvent(equity=10.0, report=RiskReport({}, 0.0, 0.0, 3, 0.0, 0.0), drawdown_pct=0.0)
    assert metric_rows(few) == [("leverage", "0.00x"), ("from peak", "0.00%"), ("VaR/CVaR", "n/a (3 bars)")]


async def test_holdings_the_account_had_count_in_exposure_and_leverage(bus, db, markets):
    # Seen on the desk: 1 BTC held before the start, exposure 67k on the pane, leverage 0.00x:
    # equity is made of what the account holds, so its risk figures must be too.
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings(),
                            exchange="cryptocom", starting_balances={"USDT": D("50000"), "BTC": D("1")},
                            snapshot_interval_s=0)
    await s.start()
    try:
        bus.publish(book(bids=((49999.0, 5.0),), asks=((50001.0, 5.0),)))
        ev = s.risk_metrics.refresh()
        assert ev.report.exposure == {"BTC/USDT": pytest.approx(50000.0)}
        assert ev.report.leverage == pytest.approx(0.5)
    finally:
        await s.stop()
