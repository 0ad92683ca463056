"""Fees, slippage and metrics against numbers computed by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tps19.engine.backtest import BacktestConfig, Fill, Trade, compute_metrics, run_backtest, simulate
from tps19.engine.strategies import Strategy, StrategyParams

DAY = 86_400_000


class ScriptParams(StrategyParams):
    allow_short: bool = True


class Scripted(Strategy):
    """Emits the given event targets (NaN = nothing)."""

    name = "scripted"
    Params = ScriptParams
    reasons = ("scripted",)

    def __init__(self, events):
        self._ev = np.asarray(events, dtype=float)
        super().__init__()

    def lookback(self):
        return 1

    def events(self, open_, high, low, close, volume):
        return self._ev, np.zeros(len(close), int), np.ones(len(close))

    def step(self):
        return math.nan, -1, 0.0


def frame(opens, closes=None):
    closes = closes or opens
    n = len(opens)
    return pd.DataFrame({"ts": np.arange(n) * DAY, "open": opens, "high": np.maximum(opens, closes),
                         "low": np.minimum(opens, closes), "close": closes, "volume": [1.0] * n})


NAN = math.nan


def test_long_round_trip_fee_and_slippage_to_the_cent():
    # decide long at bar 0's close -> buy at bar 1's open 100; decide flat at bar 2 -> sell at bar 3's open 120
    df = frame([100.0, 100.0, 110.0, 120.0, 90.0])
    res = run_backtest(Scripted([1, NAN, 0, NAN, NAN]), df, BacktestConfig(cash=10_000, fee=0.001, slippage_bps=10))
    buy, sell = res.fills
    # buy: 100 * (1 + 10bps) = 100.10; units = 10000 / (100.10 * 1.001) = 99.80029960...
    assert (buy.bar, buy.side) == (1, "buy")
    assert buy.price == pytest.approx(100.10, abs=1e-9)
    assert buy.units == pytest.approx(99.8002996005, rel=1e-10)
    assert round(buy.fee, 2) == 9.99
    # sell: 120 * (1 - 10bps) = 119.88; proceeds 11964.06, fee 11.96
    assert (sell.bar, sell.side) == (3, "sell")
    assert sell.price == pytest.approx(119.88, abs=1e-9)
    assert round(sell.units * sell.price, 2) == 11964.06
    assert round(sell.fee, 2) == 11.96
    assert round(res.final_equity, 2) == 11952.10
    assert round(res.metrics["fees"], 2) == 21.95
    t = res.trades[0]
    assert round(t.pnl, 2) == 1952.10 and t.entry_bar == 1 and t.exit_bar == 3 and not t.open
    # equity curve: all cash before the fill, marked at each close while long, cash after
    assert res.equity[0] == 10_000
    assert round(res.equity[1], 2) == round(99.8002996005 * 100.0, 2)  # 9980.03
    assert round(res.equity[2], 2) == 10978.03
    assert round(res.equity[4], 2) == 11952.10


def test_fee_only_round_trip():
    df = frame([100.0, 100.0, 110.0, 120.0, 90.0])
    res = run_backtest(Scripted([1, NAN, 0, NAN, NAN]), df, BacktestConfig(cash=10_000, fee=0.001))
    assert round(res.fills[0].fee, 2) == 9.99
    assert round(res.fills[1].fee, 2) == 11.99
    assert round(res.final_equity, 2) == 11976.02


def test_short_round_trip_fee_and_slippage():
    # short at 100 (sell at 99.90), cover at 120 (buy at 120.12)
    df = frame([100.0, 100.0, 110.0, 120.0, 90.0])
    res = run_backtest(Scripted([-1, NAN, 0, NAN, NAN]), df, BacktestConfig(cash=10_000, fee=0.001, slippage_bps=10))
    sell, buy = res.fills
    # units = 10000 / (99.90 * 1.001) = 100.0001000001
    assert sell.side == "sell" and sell.price == pytest.approx(99.9) and sell.units == pytest.approx(100.0001000001, rel=1e-10)
    assert round(sell.fee, 2) == 9.99
    assert buy.side == "buy" and buy.price == pytest.approx(120.12) and buy.units == pytest.approx(sell.units)
    assert round(buy.fee, 2) == 12.01
    # 10000 + 9990.01 - 9.99 - 12012.01 - 12.01 = 7956.00
    assert round(res.final_equity, 2) == 7956.00
    assert res.trades[0].side == "short" and round(res.trades[0].pnl, 2) == -2044.00


def test_flip_long_to_short_closes_then_opens():
    df = frame([100.0, 100.0, 110.0, 110.0, 90.0])
    res = run_backtest(Scripted([1, NAN, -1, NAN, NAN]), df, BacktestConfig(cash=1_000, fee=0.0))
    assert [f.side for f in res.fills] == ["buy", "sell", "sell"]
    assert [t.side for t in res.trades] == ["long", "short"]
    # long 10 units 100 -> 110 (+100), short 1100/110 = 10 units from 110 to close 90 (+200, open)
    assert res.trades[0].pnl == pytest.approx(100.0)
    assert res.trades[1].open and res.trades[1].pnl == pytest.approx(200.0)
    assert res.final_equity == pytest.approx(1_300.0)


def test_partial_target_and_size():
    df = frame([100.0, 100.0, 100.0, 200.0, 200.0])
    res = run_backtest(Scripted([0.5, NAN, NAN, NAN, NAN]), df, BacktestConfig(cash=1_000, fee=0.0))
    assert res.fills[0].units == pytest.approx(5.0)
    assert res.final_equity == pytest.approx(1_500.0)
    res2 = run_backtest(Scripted([1, NAN, NAN, NAN, NAN]), df, BacktestConfig(cash=1_000, fee=0.0, size=0.25))
    assert res2.final_equity == pytest.approx(1_250.0)


def test_metrics_hand_computed():
    eq = np.array([100.0, 110.0, 99.0, 121.0, 121.0])
    ts = np.arange(5) * DAY
    trades = [Trade("long", 0, 0, 1.0, 1.0, pnl=p, exit_bar=1) for p in (10.0, -5.0, 20.0, -5.0)]
    trades.append(Trade("long", 4, 4, 1.0, 1.0, pnl=3.0, open=True))
    fills = [Fill(0, 0, "buy", 1, 1, 1.0), Fill(1, 0, "sell", 1, 1, 2.0)]
    res = SimpleNamespace(equity=eq, ts=ts, config=BacktestConfig(cash=100.0), trades=trades, fills=fills,
                          position=np.array([0.0, 1.0, 1.0, 0.0, 0.0]))
    m = compute_metrics(res)
    assert m["total_return"] == pytest.approx(0.21)
    # 4 days = 4/365.25 years
    assert m["cagr"] == pytest.approx(1.21 ** (365.25 / 4) - 1)
    # per-bar returns from the starting cash: 0, +10%, -10%, +22.22%, 0
    r = [0.0, 0.1, -0.1, 121 / 99 - 1, 0.0]
    mean = sum(r) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 4)
    assert m["sharpe"] == pytest.approx(mean / sd * math.sqrt(365.25))
    downside = math.sqrt(0.1**2 / 5)
    assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(365.25))
    assert m["max_drawdown"] == pytest.approx(-0.1)  # 110 -> 99
    assert m["max_drawdown_bars"] == 2 and m["max_drawdown_duration_ms"] == 2 * DAY  # peak bar 1, recovered bar 3
    assert m["calmar"] == pytest.approx(m["cagr"] / 0.1)
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(3.0)  # 30 / 10
    assert m["trades"] == 4 and m["open_trades"] == 1
    assert m["avg_trade"] == pytest.approx(5.0)
    assert m["exposure"] == pytest.approx(0.4)
    assert m["fees"] == pytest.approx(3.0)


def test_drawdown_never_recovered_lasts_to_the_end():
    eq = np.array([100.0, 120.0, 90.0, 100.0, 110.0])
    res = SimpleNamespace(equity=eq, ts=np.arange(5) * DAY, config=BacktestConfig(cash=100.0), trades=[], fills=[],
                          position=np.zeros(5))
    m = compute_metrics(res)
    assert m["max_drawdown"] == pytest.approx(90 / 120 - 1)
    assert m["max_drawdown_bars"] == 3
    assert m["win_rate"] is None and m["profit_factor"] is None and m["trades"] == 0


def test_simulate_no_signal_is_flat():
    eq, units, fills, trades = simulate(np.arange(3), np.ones(3), np.ones(3), np.zeros(3), BacktestConfig())
    assert fills == [] and trades == [] and (eq == 10_000).all() and (units == 0).all()


@pytest.mark.parametrize("fee,slip,size,short", [(0.0, 0.0, 1.0, False), (0.001, 5.0, 1.0, True),
                                                 (0.0025, 0.0, 0.5, True), (0.001, 20.0, 0.3, False)])
def test_round_trip_path_equals_step_by_step(fee, slip, size, short):
    """The vectorised simulator (each change closes and/or opens a whole position) gives the same
    fills, trades and equity as the step-by-step one, and the peer-checked rules hold for both."""
    from tps19.engine.backtest.simulate import SimConfig, simulate_arrays

    rng = np.random.default_rng(3)
    n = 5_000
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.001, n))
    ts = np.arange(n, dtype=np.int64) * 60_000
    levels = [-1.0, 0.0, 1.0] if short else [0.0, 1.0]
    target = np.repeat(rng.choice(levels, n // 10), 10)
    target[0] = 1.0  # a decision on the first bar fills at the second
    cfg = SimConfig(10_000.0, fee, slip, size)
    fast = simulate_arrays(ts, open_, close, target, cfg)
    slow = simulate_arrays(ts, open_, close, target, cfg, step_by_step=True)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-9)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-9, atol=1e-12)
    for a, b in ((fast[2], slow[2]), (fast[3], slow[3])):
        assert len(a) == len(b) > 100
        for name in a.__dataclass_fields__:
            x, y = getattr(a, name), getattr(b, name)
            if x.dtype.kind == "f":
                np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9, err_msg=name)
            else:
                np.testing.assert_array_equal(x, y, err_msg=name)
    assert fast[2].bar[0] == 1 and fast[3].open[-1] == (target[-2] != 0)


def test_resizing_a_position_runs_step_by_step():
    """Same-side resizing (a sizing transform's targets) is simulated one change at a time."""
    eq, units, fills, trades = simulate(np.arange(6), np.full(6, 10.0), np.full(6, 10.0),
                                        np.array([0.5, 1.0, 0.25, 0.0, 0.0, 0.0]), BacktestConfig(fee=0.0))
    assert [f.side for f in fills] == ["buy", "buy", "sell", "sell"]
    assert units[1] == pytest.approx(500.0) and units[2] == pytest.approx(1000.0) and units[3] == pytest.approx(250.0)
    assert len(trades) == 1 and trades[0].exit_bar == 4 and trades[0].units == pytest.approx(1000.0)
