"""VaR/CVaR, drawdown and correlation against hand-computed samples; `tps19 risk` on files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tps19.cli import app
from tps19.engine.risk.metrics import max_drawdown, var_cvar

# r_i = (i - 50) / 1000, i = 0..99, shuffled: sorted they run -0.050, -0.049, ..., 0.049.
# numpy's linear 5 % quantile sits at position 99 * 0.05 = 4.95: -0.046 + 0.95 * 0.001 = -0.04505,
# so VaR95 = 0.04505; the returns at or below -0.04505 are -0.050..-0.046, mean -0.048 = CVaR95.
# 1 %: position 0.99: -0.050 + 0.99 * 0.001 = -0.04901 -> VaR99 0.04901; only -0.050 is below: CVaR99 0.05.
SAMPLE = (np.arange(100) - 50) / 1000.0
np.random.default_rng(7).shuffle(SAMPLE)


def test_var_and_cvar_against_a_hand_computed_sample():
    assert var_cvar(SAMPLE, 0.95) == pytest.approx((0.04505, 0.048), abs=1e-12)
    assert var_cvar(SAMPLE, 0.99) == pytest.approx((0.04901, 0.050), abs=1e-12)


def test_max_drawdown_of_compounded_returns():
    # +10 %, -20 %, +5 %, -10 %: equity 1.1, 0.88, 0.924, 0.8316; peak 1.1 -> (1.1 - 0.8316) / 1.1
    assert max_drawdown(np.array([0.1, -0.2, 0.05, -0.1])) == pytest.approx((1.1 - 0.8316) / 1.1)


def _csv(path, returns, start=100.0):
    close = start * np.concatenate(([1.0], np.cumprod(1.0 + np.asarray(returns))))
    ts = 1_700_000_000_000 + np.arange(len(close)) * 60_000
    lines = ["timestamp_ms,open,high,low,close,volume"]
    lines += [f"{t},{c},{c},{c},{c},1" for t, c in zip(ts, close, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_risk_command_reports_the_figures_of_a_file(tmp_path):
    f = _csv(tmp_path / "x.csv", SAMPLE)
    r = CliRunner().invoke(app, ["risk", "--data", f"X/USDT={f}", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["bars"] == 100 and out["leverage"] == 1.0
    assert out["var"]["95"] == pytest.approx(0.04505, rel=1e-9) and out["cvar"]["95"] == pytest.approx(0.048, rel=1e-9)
    assert out["var"]["99"] == pytest.approx(0.04901, rel=1e-9) and out["cvar"]["99"] == pytest.approx(0.05, rel=1e-9)


def test_two_opposite_symbols_hedge_each_other(tmp_path):
    up_down = np.tile([0.01, -0.01], 20)
    a = _csv(tmp_path / "a.csv", up_down)
    b = _csv(tmp_path / "b.csv", -up_down)
    r = CliRunner().invoke(app, ["risk", "--data", f"A/USDT={a}", "--data", f"B/USDT={b}",
                                 "--weights", "A/USDT=0.5", "--weights", "B/USDT=0.5", "--json"])
    out = json.loads(r.stdout)
    assert out["correlation"]["A/USDT"]["B/USDT"] == pytest.approx(-1.0)
    assert out["var"]["95"] == pytest.approx(0.0, abs=1e-12) and out["gross_exposure"] == 1.0


def test_bad_input_is_one_line(tmp_path):
    r = CliRunner().invoke(app, ["risk", "--data", "X/USDT"])
    assert r.exit_code == 2 and "is not SYMBOL=VALUE" in r.output and "Traceback" not in r.output
    f = _csv(tmp_path / "x.csv", SAMPLE)
    r = CliRunner().invoke(app, ["risk", "--data", f"X/USDT={f}", "--weights", "Y/USDT=1"])
    assert r.exit_code == 2 and "--weights names Y/USDT, which has no --data file" in r.output


def test_backtest_flags_for_sizing_and_the_breaker(tmp_path):
    f = _csv(tmp_path / "x.csv", np.tile([0.02, -0.03], 60))
    args = ["backtest", "--strategy", "sma_cross", "--param", "fast=2", "--param", "slow=5", "--data", str(f),
            "--no-save", "--json"]
    r = CliRunner().invoke(app, [*args, "--sizing", "kelly", "--sizing-param", "p=0.6", "--max-drawdown", "10"])
    assert r.exit_code == 0, r.output
    risk = json.loads(r.stdout)["metrics"]["risk"]
    assert risk["sizing"]["name"] == "kelly" and risk["max_drawdown_pct"] == 10.0
    bad = CliRunner().invoke(app, [*args, "--sizing", "kelly", "--sizing-param", "p=2"])
    assert bad.exit_code == 2 and "sizing parameter p=2.0 is out of range for kelly" in bad.output


def test_backtest_reports_carry_var_and_cvar_of_their_equity(tmp_path):
    f = _csv(tmp_path / "x.csv", SAMPLE)
    r = CliRunner().invoke(app, ["backtest", "--strategy", "sma_cross", "--param", "fast=2", "--param", "slow=5",
                                 "--data", str(f), "--no-save", "--json", "--fee", "0"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    m = out["metrics"]
    # the equity curve is not in the JSON: rebuild the per-bar returns from the run itself
    from tps19.engine.backtest import BacktestConfig, run_backtest
    from tps19.engine.history.quality import check, read_ohlcv
    from tps19.engine.strategies import create

    df, _ = check(read_ohlcv(f))
    res = run_backtest(create("sma_cross", ["fast=2", "slow=5"]), df, BacktestConfig(fee=0.0))
    curve = np.concatenate(([10_000.0], res.equity))
    rets = curve[1:] / curve[:-1] - 1
    assert (m["var_95"], m["cvar_95"]) == pytest.approx(var_cvar(rets, 0.95))
    assert (m["var_99"], m["cvar_99"]) == pytest.approx(var_cvar(rets, 0.99))


def test_every_var_names_its_horizon_and_gives_a_one_day_figure(tmp_path):
    """`tps19 risk --json`, backtest reports and the Risk pane gave per-bar (1m) figures without
    saying so. Each VaR/CVaR now names its horizon and comes with a one-day figure: historical
    from overlapping one-day returns given >= 30 days of bars, else sqrt(t)-scaled and labelled."""
    from tps19.engine.risk.metrics import one_day_var

    f = _csv(tmp_path / "x.csv", SAMPLE)  # 100 one-minute returns: too short for history
    out = json.loads(CliRunner().invoke(app, ["risk", "--data", f"X/USDT={f}", "--json"]).stdout)
    assert out["horizon"] == "1m" and out["one_day_method"] == "scaled"
    k = 1440 ** 0.5
    assert out["var_1d"]["95"] == pytest.approx(0.04505 * k) and out["cvar_1d"]["99"] == pytest.approx(0.05 * k)
    table = CliRunner().invoke(app, ["risk", "--data", f"X/USDT={f}"]).output
    assert "VaR 95% per 1m bar" in table and "VaR 95% 1 day (scaled)" in table
    # 40 days of hourly returns: the one-day figure is the quantile of overlapping 24-bar returns
    r = np.random.default_rng(3).normal(0.0, 0.01, 24 * 40)
    var, cvar, method = one_day_var(r, 24.0)
    daily = np.array([np.prod(1 + r[i:i + 24]) - 1 for i in range(len(r) - 23)])
    assert method == "historical" and var["95"] == pytest.approx(var_cvar(daily, 0.95)[0])
    assert cvar["99"] == pytest.approx(var_cvar(daily, 0.99)[1])
    # one sign convention: a loss is positive; a tail of gains is a negative VaR, shown as such
    assert var_cvar(np.full(50, 0.01), 0.95)[0] == pytest.approx(-0.01)
    bt = CliRunner().invoke(app, ["backtest", "--strategy", "sma_cross", "--param", "fast=2", "--param", "slow=5",
                                  "--data", str(f), "--no-save", "--json", "--fee", "0"])
    m = json.loads(bt.stdout)["metrics"]
    assert m["var_horizon"] == "1m" and m["var_1d_method"] == "scaled"
    assert m["var_1d_95"] == pytest.approx(m["var_95"] * k)


def test_the_risk_pane_names_the_horizon():
    from tps19.desk.widgets.panes import metric_rows
    from tps19.engine.risk.metrics import report

    r = np.random.default_rng(4).normal(0.0, 0.001, 200)
    ev = type("Ev", (), {"report": report({"X/USDT": r}, {"X/USDT": 1.0}, 1.0, 525_960.0), "drawdown_pct": 0.0})()
    rows = dict(metric_rows(ev))
    assert "VaR 95/99 (1m)" in rows and "VaR 1d (scaled)" in rows
    short = type("Ev", (), {"report": report({"X/USDT": r[:1]}, {"X/USDT": 1.0}, 1.0, 525_960.0),
                            "drawdown_pct": None})()
    assert dict(metric_rows(short))["VaR/CVaR"] == "n/a (1 bar)"


def test_cli_tables_are_not_cut_when_stdout_is_not_a_terminal(tmp_path):
    """Piped to a file or another program, rich cut tables at 80 columns ("correlation
    LONGNAMECOIN/USDT / …"): there is no width limit there."""
    a = _csv(tmp_path / "a.csv", SAMPLE)
    b = _csv(tmp_path / "b.csv", SAMPLE[::-1])
    names = ("VERYLONGNAMEDCOINNUMBERONE/USDT", "VERYLONGNAMEDCOINNUMBERTWO/USDT")
    r = CliRunner().invoke(app, ["risk", "--data", f"{names[0]}={a}", "--data", f"{names[1]}={b}"])
    assert r.exit_code == 0, r.output
    assert f"correlation {names[0]} / {names[1]}" in r.output and "…" not in r.output, r.output
