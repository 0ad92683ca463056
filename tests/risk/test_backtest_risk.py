"""In a backtest a loss streak trips the drawdown breaker at the right bar, and no order that
adds risk fills after it; sizing scales the targets before the simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tps19.engine.backtest import BacktestConfig, run_backtest
from tps19.engine.risk.backtest import BacktestRisk
from tps19.engine.risk.sizing import Sizing
from tps19.engine.strategies.base import SignalFrame


class Scripted:
    """A strategy whose targets are given by the test."""

    name = "scripted"

    def __init__(self, target: list[float]) -> None:
        self.target = np.asarray(target, dtype=float)

    def param_dict(self) -> dict:
        return {}

    def generate(self, cols) -> SignalFrame:
        n = len(self.target)
        z = np.zeros(n)
        return SignalFrame(self.target, z.astype(bool), z.astype(np.int8), z, z.astype(np.int16) - 1, ())


def bars(close: list[float]) -> pd.DataFrame:
    c = np.asarray(close, dtype=float)
    o = np.concatenate(([c[0]], c[:-1]))  # each bar opens at the previous close
    ts = 1_700_000_000_000 + np.arange(len(c)) * 60_000
    return pd.DataFrame({"ts": ts, "open": o, "high": np.maximum(o, c), "low": np.minimum(o, c), "close": c, "volume": 1.0})


# Flat at 100, then a loss streak of 5 a bar. By hand, no fee: 0.5 of 10,000 buys 50 units at
# bar 1's open (100); equity = 5,000 + 50 * close, peak 10,000; 20 % down is 8,000, i.e. close 60:
# closes by index 0..3 = 100, 4 = 95, 5 = 90, 6 = 85, 7 = 80, 8 = 75, 9 = 70, 10 = 65, 11 = 60 -> bar 11.
CLOSE = [100.0] * 4 + [95.0, 90.0, 85.0, 80.0, 75.0, 70.0, 65.0, 60.0, 55.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0, 50.0]
TARGET = [0.5] * 12 + [0.3, 0.3, 1.0, 1.0, -1.0, 0.2, 0.5, 0.5]


def test_a_loss_streak_trips_the_drawdown_breaker_at_the_right_bar():
    cfg = BacktestConfig(cash=10_000.0, fee=0.0)
    res = run_backtest(Scripted(TARGET), bars(CLOSE), cfg, BacktestRisk(max_drawdown_pct=20.0))
    risk = res.metrics["risk"]
    assert risk["halted_at_bar"] == 11 and res.equity[11] == pytest.approx(8_000.0)
    assert res.equity[10] == pytest.approx(8_250.0)  # 17.5 % down: not yet
    after = [f for f in res.fills if f.bar > 11]
    # 0.3 at bar 12 is a reduction (sells at bar 13); 1.0, the flip to -1 and 0.2/0.5 later add risk:
    # the flip only closes the long, and nothing is bought or shorted again
    assert [f.side for f in after] == ["sell", "sell"]
    assert res.position[-1] == 0.0
    unhalted = run_backtest(Scripted(TARGET), bars(CLOSE), cfg)
    assert any(f.side == "buy" and f.bar > 11 for f in unhalted.fills)  # without the breaker they would fill


def test_flatten_on_halt_closes_at_the_next_open():
    res = run_backtest(Scripted(TARGET), bars(CLOSE), BacktestConfig(cash=10_000.0, fee=0.0),
                       BacktestRisk(max_drawdown_pct=20.0, flatten=True))
    after = [(f.bar, f.side, f.units) for f in res.fills if f.bar > 11]
    assert after == [(12, "sell", pytest.approx(50.0))]


def test_sizing_scales_the_targets_before_the_simulator():
    # fixed fractional: risk 1 % with a 4 % stop -> 0.25 of equity: 2,500 / 100 = 25 units at bar 1
    res = run_backtest(Scripted([1.0] * 4), bars([100.0] * 4), BacktestConfig(cash=10_000.0, fee=0.0),
                       BacktestRisk(sizing=Sizing("fixed_fractional", {"risk": 0.01, "stop": 0.04})))
    assert [(f.bar, f.side, f.units) for f in res.fills] == [(1, "buy", pytest.approx(25.0))]
