"""`tps19 optimize --search tpe --trials N`: an Optuna study over the --grid ranges, run through
the real CLI on real recorded candles (ETH/BTC 5m, 5,760 bars)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.backtest.test_overfitting import _reference_dsr, _returns
from tps19.cli import app
from tps19.engine.backtest import BacktestConfig, run_backtest
from tps19.engine.backtest.optimize import walk_forward_windows
from tps19.engine.strategies import get

ETH = str(Path("/work/shared/data") / "freqtrade_ETH_BTC_5m.csv")
STUDY = ["optimize", "--strategy", "sma_cross", "--grid", "fast=2:30", "--grid", "slow=10:120:5", "--data", ETH,
         "--search", "tpe"]


def _run(*args: str) -> dict:
    r = CliRunner().invoke(app, [*STUDY, *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def pruned_study() -> dict:
    """24 trials, walk-forward over 3 folds, seed 5: the pruner stops some trials early."""
    return _run("--trials", "24", "--walk-forward", "3", "--seed", "5")


def test_a_seed_repeats_a_sequential_study_exactly(pruned_study):
    again = _run("--trials", "24", "--walk-forward", "3", "--seed", "5")
    assert again["trial_log"] == pruned_study["trial_log"]  # the same proposals, scores, pruning decisions
    assert again["winner"] == pruned_study["winner"]
    assert again["deflated_sharpe"] == pruned_study["deflated_sharpe"] and again["pbo"] == pruned_study["pbo"]
    assert pruned_study["repeatable"] is True
    other = _run("--trials", "24", "--walk-forward", "3", "--seed", "6")
    assert [t["params"] for t in other["trial_log"]] != [t["params"] for t in pruned_study["trial_log"]]


def test_every_trial_pruned_ones_included_counts_in_the_deflated_sharpe(pruned_study):
    """The DSR recomputed with scipy from each trial's own backtests: a pruned trial contributes the
    folds it ran (its Sharpe over them) and counts in N; leaving pruned trials out gives another figure."""
    s = pruned_study
    log = s["trial_log"]
    evaluated = [t for t in log if t["state"] in ("complete", "pruned")]
    pruned = [t for t in evaluated if t["state"] == "pruned"]
    assert s["trials"] == len(evaluated) == 24 and s["overfitting"]["trials"] == 24
    assert s["pruned"] == len(pruned) > 0 and s["completed"] == 24 - s["pruned"]
    assert all(len(t["folds"]) < 3 for t in pruned) and all(len(t["folds"]) == 3 for t in evaluated if t not in pruned)
    assert s["overfitting"]["cscv_trials"] == s["completed"]  # CSCV needs every trial on the same bars
    assert s["proposals"] == len(log) and {t["state"] for t in log} <= {"complete", "pruned", "invalid", "repeat"}

    import pandas as pd

    df = pd.read_csv(ETH).rename(columns={"timestamp_ms": "ts"})
    cfg = BacktestConfig(fee=0.001)  # optimize's default fee
    windows = [w[0] for w in walk_forward_windows(len(df), 3)]

    def pooled(t: dict) -> np.ndarray:
        return np.concatenate([_returns(run_backtest(get("sma_cross")(t["params"]), df.iloc[lo:hi], cfg).equity, cfg.cash)
                               for lo, hi in windows[:len(t["folds"])]])

    rets = [pooled(t) for t in evaluated]
    winner = rets[[t["number"] for t in evaluated].index(s["winner"]["number"])]
    full = len(winner)
    sr = np.array([r.mean() / r.std(ddof=1) for r in rets])
    # a pruned trial's deviation from the trials' mean, measured over its T_i returns, scaled to the
    # winner's T (docs/backtesting.md, "Optuna search")
    scaled = sr.mean() + (sr - sr.mean()) * np.sqrt((np.array([len(r) for r in rets]) - 1) / (full - 1))
    assert s["deflated_sharpe"] == pytest.approx(_reference_dsr(winner, rets, scaled), abs=1e-9)
    assert s["overfitting"]["trial_sharpe_sd_per_bar"] == pytest.approx(np.std(scaled, ddof=1), rel=1e-9)
    completed_only = _reference_dsr(winner, [r for r, t in zip(rets, evaluated) if t["state"] == "complete"])
    raw = _reference_dsr(winner, rets)
    assert abs(completed_only - s["deflated_sharpe"]) > 1e-6 and abs(raw - s["deflated_sharpe"]) > 1e-6
    # the winner is the best mean fold score among the completed trials
    best = max((t for t in evaluated if t["state"] == "complete"), key=lambda t: (t["value"], -t["number"]))
    assert s["winner"]["number"] == best["number"] == s["ranking"][0]["number"]
    assert s["winner"]["value"] == pytest.approx(float(np.mean(s["winner"]["folds"])))


def test_the_table_shows_trials_pruned_and_the_out_of_sample_block(pruned_study):
    r = CliRunner().invoke(app, [*STUDY, "--trials", "24", "--walk-forward", "3", "--seed", "5"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    p = pruned_study["pruned"]
    assert f"TPE study, 24 trials ({p} pruned)" in text
    assert f"Trials │ 24 ({p} pruned)" in text
    # the ranking's number is Optuna's proposal number (it exceeds the trial count with repeats)
    assert "┃ # ┃ proposal ┃ params ┃" in text and "┃ trial ┃" not in text
    assert "Out-of-sample: the winner on the last block" in text and "(no trial saw it)" in text
    oos = pruned_study["walk_forward"]["out_of_sample"]
    assert f"{oos['total_return'] * 100:.2f}%" in text
    assert "not distinguishable from luck among 24 trials" in text  # ETH/BTC crosses: nothing to trust here
    assert "24/24" in r.stderr  # the progress bar over trials


def test_ranges_become_ints_floats_and_choices():
    """period=5:55:5 -> ints on the steps, k=1.0:3.0 -> any float in between, allow_short -> a choice."""
    s = json.loads(CliRunner().invoke(app, [
        "optimize", "--strategy", "bollinger", "--grid", "period=5:55:5", "--grid", "k=1.0:3.0",
        "--grid", "allow_short=true,false", "--data", ETH, "--search", "tpe", "--trials", "15", "--json"]).stdout)
    params = [t["params"] for t in s["trial_log"]]
    assert len(params) >= 15 and s["trials"] == 15 and s["pruned"] == 0  # no folds: nothing to prune
    assert all(p["period"] in range(5, 56, 5) for p in params)
    assert all(isinstance(p["k"], float) and 1.0 <= p["k"] <= 3.0 for p in params)
    assert len({p["k"] for p in params}) == len(params)  # continuous: no two draws alike
    assert all(p["allow_short"] in (True, False) for p in params)
    assert s["ranking"][0]["metrics"]["sharpe"] == pytest.approx(s["winner"]["value"])


@pytest.mark.parametrize("args, message", [
    (["--search", "foo"], "tps19: unknown --search 'foo' (choose from grid, tpe)"),
    (["--search", "tpe", "--trials", "0"], "tps19: --trials must be at least 1, not 0"),
    (["--search", "tpe"], "tps19: --search tpe needs --trials N (how many parameter sets to evaluate)"),
    (["--trials", "5"], "tps19: --trials is for --search tpe (the grid evaluates every point; --random N samples it)"),
    (["--search", "tpe", "--trials", "13"], "tps19: --trials 13 is more than the 12 parameter sets of this space: "
                                            "search it all with the grid (no --search tpe), or widen the ranges"),
    # seen as a user: 11-bar folds where no trial trades; every trial scored -inf and the first
    # proposal was called the winner, with a DSR and an out-of-sample table (and -Infinity in --json)
    (["--search", "tpe", "--trials", "3", "--walk-forward", "500"],
     "tps19: no trial scored a sharpe on any of the 500 folds (the shortest 11 bars: use fewer --walk-forward "
     "folds or more bars)"),
])
def test_bad_input_is_one_clear_line(args, message):
    r = CliRunner().invoke(app, ["optimize", "--strategy", "sma_cross", "--grid", "fast=2:5", "--grid", "slow=10:12",
                                 "--data", ETH, *args])
    assert r.exit_code == 2
    assert [line for line in r.stderr.splitlines() if line.strip() and not line.startswith("trials")] == [message]
    if "more than the" in message:  # said before the bars load: no empty 'trials 0/13' bar above it
        assert not any(line.startswith("trials") for line in r.stderr.splitlines()), r.stderr


def test_a_negative_seed_is_refused_before_the_study_starts():
    """--seed -1 printed an empty progress bar, then numpy's 'Seed must be between 0 and 2**32 - 1'."""
    r = CliRunner().invoke(app, [*STUDY, "--trials", "3", "--seed", "-1"])
    assert r.exit_code == 2
    assert "Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295" in " ".join(r.stderr.split())
    assert "trials" not in r.stderr.split("Usage")[0]


def test_only_the_study_imports_optuna():
    code = ("import sys\nfrom tps19.cli import main\n"
            f"sys.argv = ['tps19', 'optimize', '--strategy', 'sma_cross', '--grid', 'fast=2:5', '--grid', 'slow=10:12',"
            f" '--data', {ETH!r}, '--json']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('optuna' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["candidates"] == 12
    assert out.stderr.strip().splitlines()[-1] == "False"
    assert not math.isnan(json.loads(out.stdout)["pbo"])


def test_trials_on_local_processes_score_as_a_sequential_backtest():
    """--jobs 2: trials run two at a time in worker processes; each evaluated set scores what a
    backtest of it in this process gives, and the run says it is not promised to repeat."""
    s = _run("--trials", "6", "--jobs", "2")
    assert s["trials"] == 6 and s["repeatable"] is False
    from tps19.engine.history.source import load_file_bars

    bars, _ = load_file_bars(Path(ETH), None, None)
    data = {k: bars[k] for k in ("ts", "open", "high", "low", "close", "volume")}
    for t in (t for t in s["trial_log"] if t["state"] == "complete"):
        m = run_backtest(get("sma_cross")(t["params"]), data, BacktestConfig(fee=0.001)).metrics
        assert t["value"] == pytest.approx(m["sharpe"], rel=1e-12)
