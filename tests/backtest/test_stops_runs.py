"""Protective exits through the whole backtest: sizing's stop, continuous targets, the breaker,
a strategy's own levels, the command line, --json and the stored trades (issue 19)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tps19.cli import app
from tps19.engine.backtest import BacktestConfig, run_backtest
from tps19.engine.protection import Protection
from tps19.engine.risk.backtest import BacktestRisk
from tps19.engine.risk.sizing import Sizing
from tps19.engine.strategies.base import SignalFrame

from .conftest import DATA

ETH = str(DATA / "freqtrade_ETH_BTC_5m.csv")


class Scripted:
    """A strategy whose targets (and optionally protective levels) are given by the test."""

    name = "scripted"

    def __init__(self, target, levels=None) -> None:
        self.target = np.asarray(target, dtype=float)
        self.levels = levels

    def param_dict(self) -> dict:
        return {}

    def generate(self, cols) -> SignalFrame:
        z = np.zeros(len(self.target))
        return SignalFrame(self.target, z.astype(bool), z.astype(np.int8), z, z.astype(np.int16) - 1, ())

    def protection_columns(self, cols):
        return self.levels


def bars(open_, high, low, close) -> pd.DataFrame:
    n = len(close)
    return pd.DataFrame({"ts": 1_700_000_000_000 + np.arange(n) * 60_000, "open": open_, "high": high,
                         "low": low, "close": close, "volume": 1.0})


def falling(gap_to: float | None = None) -> pd.DataFrame:
    """Flat at 100 for 3 bars, then 10 % down in steps of 1 (or a gap straight to ``gap_to``)."""
    close = [100.0] * 3 + [99.0 - i for i in range(10)]
    open_ = [100.0] + close[:-1]
    if gap_to is not None:
        open_[3], close[3] = gap_to, gap_to
        close[4:] = [gap_to - 1 - i for i in range(len(close) - 4)]
        open_[4:] = close[3:-1]
    return bars(open_, np.maximum(open_, close), np.minimum(open_, close), close)


FEE = 0.001


@pytest.mark.parametrize("gap_to", [None, 95.0])
def test_fixed_fractional_places_the_stop_its_size_assumes(gap_to):
    """risk 1 %, stop 2 %: half the equity is held and the stop at 98 is placed, so a 10 % fall
    loses the promised 1 % plus fees (plus the gap, when the bar opens below the stop)."""
    df = falling(gap_to)
    risk = BacktestRisk(sizing=Sizing("fixed_fractional", {"risk": 0.01, "stop": 0.02}))
    res = run_backtest(Scripted([1.0] * len(df)), df, BacktestConfig(cash=10_000.0, fee=FEE), risk)
    (t,) = res.trades
    assert t.entry_price == 100.0 and t.units == pytest.approx(5_000.0 / (100.0 * (1 + FEE)))
    exit_px = 98.0 if gap_to is None else gap_to
    assert (t.exit_reason, t.exit_price) == ("stop_loss", exit_px)
    fees = t.units * 100.0 * FEE + t.units * exit_px * FEE
    promised = t.units * 100.0 * 0.02  # 1 % of equity, less the entry fee's share
    gap = t.units * (98.0 - exit_px)
    assert -t.pnl == pytest.approx(promised + fees + gap, rel=1e-12)
    assert -t.pnl / 10_000.0 == pytest.approx(0.01 / (1 + FEE) + fees / 10_000.0 + gap / 10_000.0, rel=1e-12)
    assert res.metrics["protection"]["stop_loss_pct"] == 2.0


def test_stop_loss_flag_wins_over_the_sizing_rules_stop_and_sizes_it():
    df = falling()
    risk = BacktestRisk(sizing=Sizing("fixed_fractional", {"risk": 0.01, "stop": 0.02}))
    res = run_backtest(Scripted([1.0] * len(df)), df,
                       BacktestConfig(cash=10_000.0, fee=0.0, protection=Protection(stop_loss_pct=4.0)), risk)
    (t,) = res.trades
    assert t.units == pytest.approx(25.0)  # 1 % / 4 % = a quarter of equity
    assert (t.exit_reason, t.exit_price) == ("stop_loss", 96.0)
    assert -t.pnl == pytest.approx(100.0)  # 1 % of 10,000
    assert res.metrics["risk"]["sizing"]["params"]["stop"] == 0.04


def test_continuous_targets_do_not_re_enter_after_a_stop():
    """vol_target resizes every bar; after the stop the strategy is flat until its own target
    changes (here: flat at bar 12, long again at 15)."""
    rng = np.random.default_rng(3)
    n = 40
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high, low = np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999
    low[8] = close[8] * 0.9  # a wick through any stop
    raw = np.array([0.0] * 2 + [1.0] * 10 + [0.0] * 3 + [1.0] * 25)
    risk = BacktestRisk(sizing=Sizing("vol_target", {"target": 0.002, "lookback": 3}))
    cfg = BacktestConfig(cash=10_000.0, fee=0.0, protection=Protection(stop_loss_pct=3.0))
    res = run_backtest(Scripted(raw), bars(open_, high, low, close), cfg, risk)
    first, second = res.trades[0], res.trades[1]
    assert (first.entry_bar, first.exit_bar, first.exit_reason) == (4, 8, "stop_loss")  # sigma known from bar 3
    assert second.entry_bar == 16  # decided at 15's close: nothing between the stop and the new signal
    assert not any(9 <= f.bar <= 15 for f in res.fills)
    without = run_backtest(Scripted(raw), bars(open_, high, low, close), BacktestConfig(cash=10_000.0, fee=0.0), risk)
    assert any(9 <= f.bar <= 12 for f in without.fills)  # it resizes every bar when nothing stops it


def test_the_breaker_names_its_exit_and_shorts_get_mirrored_levels():
    close = [100.0] * 4 + [95.0, 90.0, 85.0, 80.0, 75.0, 70.0, 65.0, 60.0, 55.0, 50.0]
    open_ = [close[0]] + close[:-1]
    df = bars(open_, np.maximum(open_, close), np.minimum(open_, close), close)
    res = run_backtest(Scripted([0.5] * len(close)), df, BacktestConfig(cash=10_000.0, fee=0.0),
                       BacktestRisk(max_drawdown_pct=20.0, flatten=True))
    assert [(t.exit_bar, t.exit_reason) for t in res.trades] == [(12, "breaker")]
    assert res.metrics["exit_reasons"]["breaker"] == 1
    # short, take-profit 20 % below the entry: reached in bar 8 (low 75... the level is 80)
    res = run_backtest(Scripted([-1.0] * len(close)), df,
                       BacktestConfig(cash=10_000.0, fee=0.0, protection=Protection(take_profit_pct=20.0)))
    (t,) = res.trades
    assert (t.side, t.exit_bar, t.exit_price, t.exit_reason) == ("short", 7, 80.0, "take_profit")


def test_a_strategys_own_levels_and_the_flag_over_them():
    df = falling()
    n = len(df)
    levels = {"stop_loss_price": np.full(n, 96.5), "take_profit_price": np.full(n, np.nan)}
    res = run_backtest(Scripted([1.0] * n, levels), df, BacktestConfig(cash=10_000.0, fee=0.0))
    assert (res.trades[0].exit_price, res.trades[0].exit_reason) == (96.5, "stop_loss")
    assert res.metrics["protection"]["strategy_levels"] is True
    res = run_backtest(Scripted([1.0] * n, levels), df,
                       BacktestConfig(cash=10_000.0, fee=0.0, protection=Protection(stop_loss_pct=1.0)))
    assert (res.trades[0].exit_price, res.trades[0].exit_reason) == (99.0, "stop_loss")


@pytest.fixture()
def cli():
    return CliRunner()


def test_backtest_flags_json_and_stored_exit_reasons(cli, tmp_path):
    from tps19.engine.storage import BacktestTrade, Database

    db = tmp_path / "b.db"
    r = cli.invoke(app, ["backtest", "--strategy", "sma_cross", "--data", ETH, "--json", "--db", str(db),
                         "--stop-loss", "1", "--take-profit", "1.5", "--trailing-stop", "1.2"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    reasons = [t["exit_reason"] for t in obj["trades"]]
    assert {"signal", "stop_loss", "take_profit", "trailing_stop"} <= set(reasons) and reasons[-1] in ("end", "stop_loss", "take_profit", "trailing_stop", "signal")
    assert all(t["exit_reason"] == "end" for t in obj["trades"] if t["open"])
    assert obj["config"]["protection"] == {"stop_loss_pct": 1.0, "take_profit_pct": 1.5, "trailing_pct": 1.2}
    assert "stop wins" in obj["metrics"]["protection"]["intrabar_rule"]
    assert sum(obj["metrics"]["exit_reasons"].values()) == obj["metrics"]["trades"]
    for t in obj["trades"]:  # a protective exit is within its bar's range, never a signal's open
        if t["exit_reason"] == "stop_loss":
            assert t["exit_price"] <= t["entry_price"] * 0.99 + 1e-12

    async def stored():
        d = Database(db)
        await d.open()
        try:
            async with d.session() as s:
                return [row.exit_reason for row in (await s.execute(select(BacktestTrade).order_by(BacktestTrade.seq))).scalars()]
        finally:
            await d.close()

    assert asyncio.run(stored()) == reasons
    r = cli.invoke(app, ["backtest", "--strategy", "sma_cross", "--data", ETH, "--no-save", "--no-plot",
                         "--stop-loss", "1"], env={"COLUMNS": "160"})
    assert r.exit_code == 0 and "Intrabar rule" in r.stdout and "the stop (pessimistic)" in r.stdout
    assert "stop loss" in r.stdout and "│ stop " in r.stdout


@pytest.mark.parametrize("args, msg", [
    (["--stop-loss", "0"], "--stop-loss 0 is out of range"),
    (["--trailing-stop", "100"], "--trailing-stop 100 is out of range"),
    (["--take-profit", "-2"], "--take-profit -2 is out of range"),
    (["--stop-loss", "nan"], "--stop-loss"),
])
@pytest.mark.parametrize("command", ["backtest", "optimize", "backtest-portfolio"])
def test_bad_protective_flags_are_one_line_exit_2(cli, command, args, msg):
    base = {"backtest": ["backtest", "--strategy", "sma_cross", "--data", ETH, "--no-save"],
            "optimize": ["optimize", "--strategy", "sma_cross", "--grid", "fast=5:10:5", "--data", ETH],
            "backtest-portfolio": ["backtest-portfolio", "--strategy", "sma_cross", "--data", f"ETH={ETH}"]}[command]
    r = cli.invoke(app, base + args)
    assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1


def test_optimize_with_stops_ranks_the_protected_runs(cli):
    args = ["optimize", "--strategy", "sma_cross", "--grid", "fast=5:10:5", "--param", "slow=30", "--data", ETH,
            "--json", "--metric", "total_return"]
    plain = json.loads(cli.invoke(app, args).stdout)
    r = cli.invoke(app, args + ["--stop-loss", "0.5", "--take-profit", "1"])
    assert r.exit_code == 0, r.output
    stopped = json.loads(r.stdout)
    assert stopped != plain
    r = cli.invoke(app, args + ["--stop-loss", "0.5", "--walk-forward", "2"])
    assert r.exit_code == 0, r.output


def test_portfolio_stops_close_inside_the_bar_and_stay_flat(cli, tmp_path):
    """Two symbols sharing cash: A's stop closes it inside bar 4 at the stop, B is untouched;
    A is not bought again while its strategy's target holds."""
    from tps19.engine.backtest.portfolio import run_portfolio

    n = 10
    flat = [100.0] * n
    a_low = list(flat)
    a_low[4] = 90.0
    frames = {
        "A": bars(flat, [101.0] * n, a_low, flat),
        "B": bars(flat, [101.0] * n, [99.0] * n, flat),
    }
    cfg = BacktestConfig(cash=10_000.0, fee=0.0, protection=Protection(stop_loss_pct=5.0))
    res = run_portfolio(["A", "B"], frames, cfg, strategy=lambda _s: Scripted([1.0] * n))
    a = [(f.bar, f.side, f.price, f.reason) for f in res.fills["A"]]
    assert a == [(1, "buy", 100.0, "signal"), (4, "sell", 95.0, "stop_loss")]
    assert [f.side for f in res.fills["B"]] == ["buy"]
    assert res.metrics["exit_reasons"]["stop_loss"] == 1
    assert res.equity[-1] == pytest.approx(10_000.0 - 5_000.0 * 0.05)
    paths = []
    for s, df in frames.items():
        path = tmp_path / f"{s}.csv"
        df.to_csv(path, index=False)
        paths += ["--data", f"{s}={path}"]
    r = cli.invoke(app, ["backtest-portfolio", "--strategy", "sma_cross", "--param", "fast=2", "--param", "slow=3",
                         *paths, "--stop-loss", "5", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["metrics"]["protection"]["stop_loss_pct"] == 5.0


def test_portfolio_breaker_flatten_is_named_breaker():
    from tps19.engine.backtest.portfolio import run_portfolio

    close = [100.0] * 4 + [90.0, 80.0, 70.0, 60.0, 55.0, 50.0]
    open_ = [close[0]] + close[:-1]
    df = bars(open_, np.maximum(open_, close), np.minimum(open_, close), close)
    res = run_portfolio(["A", "B"], {"A": df, "B": df}, BacktestConfig(cash=10_000.0, fee=0.0),
                        strategy=lambda _s: Scripted([1.0] * len(close)),
                        risk=BacktestRisk(max_drawdown_pct=20.0, flatten=True))
    halted = res.metrics["risk"]["halted_at_bar"]
    assert halted is not None
    for s in ("A", "B"):
        assert [(f.bar, f.side, f.reason) for f in res.fills[s]] == [(1, "buy", "signal"), (halted + 1, "sell", "breaker")]
    assert res.metrics["exit_reasons"]["breaker"] == 2
