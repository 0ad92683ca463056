"""Portfolio backtests share one cash balance; with one symbol they are the single-symbol engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tps19.engine.backtest import BacktestConfig
from tps19.engine.backtest.engine import simulate
from tps19.engine.backtest.portfolio import RebalanceEvery, run_portfolio, simulate_portfolio


def _walk(n: int, seed: int, vol: float = 0.01) -> np.ndarray:
    return 100.0 * np.cumprod(1 + np.random.default_rng(seed).normal(0, vol, n))


def _frame(close: np.ndarray) -> pd.DataFrame:
    o = np.concatenate(([close[0]], close[:-1]))
    ts = 1_700_000_000_000 + np.arange(len(close)) * 3_600_000
    return pd.DataFrame({"ts": ts, "open": o, "high": np.maximum(o, close), "low": np.minimum(o, close),
                         "close": close, "volume": 1.0})


def test_one_symbol_long_only_is_the_single_symbol_engine():
    n = 300
    close = _walk(n, 1)
    o = np.concatenate(([close[0]], close[:-1]))
    ts = np.arange(n, dtype=np.int64) * 60_000
    target = np.where(np.sin(np.arange(n) / 7.0) > 0, 1.0, np.where(np.cos(np.arange(n) / 5.0) > 0.5, 0.4, 0.0))
    cfg = BacktestConfig(cash=10_000.0, fee=0.001, slippage_bps=3.0)
    eq1, units1, fills1, _ = simulate(ts, o, close, target, cfg)
    eq, units, fills, _cash = simulate_portfolio(ts, o[:, None], close[:, None], target[:, None], cfg)
    assert np.allclose(eq, eq1, rtol=1e-12) and np.allclose(units[:, 0], units1, rtol=1e-12)
    assert [(f.bar, f.side) for f in fills[0]] == [(f.bar, f.side) for f in fills1]


def test_two_symbols_share_the_cash():
    a, b = _walk(50, 2), _walk(50, 3)
    fa, fb = _frame(a), _frame(b)

    class Hold:
        def __init__(self, symbol):
            pass

        def generate(self, cols):
            return type("F", (), {"target": np.ones(len(cols["close"]))})()

    res = run_portfolio(["A", "B"], {"A": fa, "B": fb}, BacktestConfig(cash=10_000.0, fee=0.0), strategy=Hold)
    # each gets target 1 / 2 of the equity at bar 1's open: 5,000 each, held to the end
    want = 5_000.0 * a[-1] / a[0] + 5_000.0 * b[-1] / b[0]  # bar 1 opens at bar 0's close
    assert res.equity[-1] == pytest.approx(want, rel=1e-12)
    assert res.metrics["final_equity"] == pytest.approx(want, rel=1e-12)


def test_periodic_rebalance_holds_weights_summing_to_one_without_look_ahead():
    n = 200
    closes = np.column_stack([_walk(n, 4, 0.005), _walk(n, 5, 0.02), _walk(n, 6, 0.01)])
    rb = RebalanceEvery("risk_parity", period=20, lookback=50)
    t = rb.targets(closes)
    assert (t[:50] == 0).all() and np.allclose(t[50:].sum(axis=1), 1.0) and (t >= 0).all()
    assert t[60, 0] > t[60, 2] > t[60, 1]  # calmest asset the most weight
    cut = rb.targets(closes[:121])
    assert np.array_equal(cut, t[:121])  # the weights at bar 120 do not use later bars
    frames = {s: _frame(closes[:, j]) for j, s in enumerate("XYZ")}
    res = run_portfolio(list("XYZ"), frames, BacktestConfig(cash=10_000.0, fee=0.001), rebalance=rb)
    assert sum(len(f) for f in res.fills.values()) > 3 and res.equity.min() > 0


def test_backtest_portfolio_command(tmp_path):
    import json

    from typer.testing import CliRunner

    from tps19.cli import app

    args = ["backtest-portfolio", "--rebalance", "min_variance", "--every", "10", "--lookback", "20", "--json"]
    for j, s in enumerate("XY"):
        f = tmp_path / f"{s}.csv"
        _frame(_walk(80, 10 + j)).rename(columns={"ts": "timestamp_ms"}).to_csv(f, index=False)
        args += ["--data", f"{s}/USDT={f}"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["symbols"] == ["X/USDT", "Y/USDT"] and out["metrics"]["bars"] == 80
    assert out["metrics"]["min_cash"] >= 0.0
    table = CliRunner().invoke(app, [a for a in args if a != "--json"])
    assert table.exit_code == 0 and "Lowest cash" in table.output
    bad = CliRunner().invoke(app, [*args[:1], "--rebalance", "max_sharpe", *args[7:]])
    assert bad.exit_code == 2 and "unknown --rebalance 'max_sharpe'" in bad.output


def test_the_drawdown_breaker_halts_the_whole_portfolio():
    from tps19.engine.risk.backtest import BacktestRisk

    # two symbols falling 5 a bar from 100 after bar 3; a quarter of the cash in each from bar 1's
    # open (100): equity = 5,000 + 2 x 25 units x close -> 10 % down at close 80 = bar 7
    close = np.array([100.0] * 4 + [95.0, 90.0, 85.0, 80.0, 75.0, 70.0, 70.0, 70.0])
    frames = {"A": _frame(close), "B": _frame(close)}

    class Hold:
        def __init__(self, symbol):
            pass

        def generate(self, cols):
            n = len(cols["close"])
            return type("F", (), {"target": np.where(np.arange(n) < 9, 0.5, 1.0)})()  # wants more at bar 9

    cfg = BacktestConfig(cash=10_000.0, fee=0.0)
    res = run_portfolio(["A", "B"], frames, cfg, strategy=Hold, risk=BacktestRisk(max_drawdown_pct=10.0))
    assert res.metrics["risk"]["halted_at_bar"] == 7 and res.equity[7] == pytest.approx(9_000.0)
    assert not [f for fs in res.fills.values() for f in fs if f.bar > 7]  # the wish for more never fills
    free = run_portfolio(["A", "B"], frames, cfg, strategy=Hold)
    assert [f for fs in free.fills.values() for f in fs if f.bar > 7]


def test_symbols_from_stored_bars(tmp_path):
    """`--symbol` repeated reads bars imported into the database (`tps19 import`)."""
    import json

    from typer.testing import CliRunner

    from tps19.cli import app

    db = str(tmp_path / "bars.db")
    for j, s in enumerate(("X/USDT", "Y/USDT")):
        f = tmp_path / f"{j}.csv"
        _frame(_walk(60, 20 + j)).rename(columns={"ts": "timestamp_ms"}).to_csv(f, index=False)
        imp = CliRunner().invoke(app, ["import", str(f), "--exchange", "file", "--symbol", s, "--timeframe", "1h",
                                       "--db", db])
        assert imp.exit_code == 0, imp.output
    stored = ["--symbol", "X/USDT", "--symbol", "Y/USDT", "--exchange", "file", "--timeframe", "1h", "--db", db]
    r = CliRunner().invoke(app, ["backtest-portfolio", "--rebalance", "risk_parity", "--every", "10", "--lookback",
                                 "20", "--json", *stored])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["metrics"]["bars"] == 60
    w = CliRunner().invoke(app, ["rebalance", "--method", "min_variance", "--dry-run", "--json", *stored])
    assert w.exit_code == 0, w.output
    assert sum(json.loads(w.stdout)["weights"].values()) == pytest.approx(1.0)


def test_a_buy_the_cash_cannot_pay_is_scaled_not_borrowed():
    """A to 0.5 at 100, A rises to 120, then B to 0.5: B gets the cash that is left (fees and
    slippage included), never more; cash is never below zero and reconciles with the fills."""
    n = 6
    a = np.array([100.0, 100.0, 120.0, 120.0, 120.0, 120.0])
    b = np.full(n, 50.0)
    opens, closes = np.column_stack([a, b]), np.column_stack([a, b])
    t = np.zeros((n, 2))
    t[0:, 0] = 0.5  # A decided at bar 0, fills at bar 1's open (100)
    t[2:, 1] = 0.5  # B decided at bar 2, fills at bar 3's open
    cfg = BacktestConfig(cash=10_000.0, fee=0.001, slippage_bps=10.0)
    ts = np.arange(n, dtype=np.int64) * 60_000
    eq, units, fills, cash = simulate_portfolio(ts, opens, closes, t, cfg)
    assert cash.min() >= 0.0 and cash[-1] == pytest.approx(0.0, abs=1e-6)
    flows = sum((-1 if f.side == "buy" else 1) * f.units * f.price - f.fee for fs in fills.values() for f in fs)
    assert cash[-1] == pytest.approx(10_000.0 + flows, abs=1e-9)
    assert np.allclose(eq, cash + (units * closes).sum(axis=1))


def test_risk_parity_every_60_bars_never_borrows():
    n = 1_500
    closes = np.column_stack([_walk(n, 31, 0.004), _walk(n, 32, 0.012), _walk(n, 33, 0.008)])
    frames = {s: _frame(closes[:, j]) for j, s in enumerate("XYZ")}
    res = run_portfolio(list("XYZ"), frames, BacktestConfig(cash=10_000.0, fee=0.001, slippage_bps=5.0),
                        rebalance=RebalanceEvery("risk_parity", period=60, lookback=120))
    assert res.cash.min() >= 0.0 and res.metrics["min_cash"] == pytest.approx(float(res.cash.min()))
    assert np.allclose(res.equity, res.cash + (res.units * closes).sum(axis=1), rtol=1e-12)
    assert res.as_dict()["metrics"]["min_cash"] >= 0.0
