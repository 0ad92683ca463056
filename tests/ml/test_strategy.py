"""The `ml` strategy through the one strategy API: offline == live, and no backtest on training bars."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from tests.ml.conftest import make_bars

from tps19.cli import app
from tps19.engine.events import BarEvent
from tps19.engine.ml.features import LOOKBACK
from tps19.engine.strategies import create


def test_live_inference_gives_the_offline_probability_on_the_same_bars(registered):
    db, model_id, _ = registered
    later = make_bars(400, ar=-0.4, seed=8, t0=1_700_000_000_000)
    offline = create("ml", {"model": model_id}, db=db)
    p_offline = offline.probabilities(later)
    frame = offline.generate(later)
    live = offline.clone()
    seen = []
    for bar in later.itertuples(index=False):
        live.on_bar(BarEvent("X/USDT", "1m", int(bar.ts), bar.open, bar.high, bar.low, bar.close, bar.volume, True))
        seen.append(np.nan if live.last_prediction is None else live.last_prediction.probability)
        assert live.target == frame.target[len(seen) - 1]  # same position held, bar after bar
    seen_a = np.array(seen)
    assert np.isnan(seen_a[: LOOKBACK - 1]).all() and not np.isnan(seen_a[LOOKBACK - 1 :]).any()
    np.testing.assert_allclose(seen_a[LOOKBACK - 1 :], p_offline[LOOKBACK - 1 :], rtol=1e-12, atol=1e-15)
    assert frame.emitted.sum() > 2  # the model does trade on these bars


def test_a_backtest_on_the_training_range_is_refused_naming_both_ranges(registered, tmp_path):
    db, model_id, train_df = registered
    csv = tmp_path / "overlap.csv"
    train_df.iloc[-500:].to_csv(csv, index=False)
    res = CliRunner().invoke(app, ["backtest", "--strategy", "ml", "--param", f"model={model_id}", "--data", str(csv),
                                   "--db", str(db), "--no-save", "--no-plot"])
    assert res.exit_code == 2, res.output
    line = res.stderr.strip()
    assert "overlap model" in line and "training range 2020-01-01 00:00 .. 2020-01-02 17:39" in line, line
    assert "bars 2020-01-02 09:20 .. 2020-01-02 17:39" in line, line
    later = tmp_path / "later.csv"
    make_bars(400, ar=-0.4, seed=8, t0=1_700_000_000_000).to_csv(later, index=False)
    ok = CliRunner().invoke(app, ["backtest", "--strategy", "ml", "--param", f"model={model_id}", "--data", str(later),
                                  "--db", str(db), "--no-save", "--no-plot", "--json"])
    assert ok.exit_code == 0, ok.output


def test_backtest_portfolio_runs_the_ml_strategy_and_counts_its_round_trips(registered, tmp_path):
    """`backtest-portfolio --strategy ml` gives each symbol its bar times (it failed: 'needs each
    bar's time'), refuses the training range like `backtest`, and counts round trips, not 0 / 0."""
    import json

    db, model_id, train_df = registered
    args = ["backtest-portfolio", "--strategy", "ml", "--param", f"model={model_id}", "--db", str(db), "--json"]
    files = []
    for j, s in enumerate("XY"):
        f = tmp_path / f"{s}.csv"
        make_bars(400, ar=-0.4, seed=8 + j, t0=1_700_000_000_000).to_csv(f, index=False)
        files += ["--data", f"{s}/USDT={f}"]
    ok = CliRunner().invoke(app, [*args, *files])
    assert ok.exit_code == 0, ok.output
    m = json.loads(ok.stdout)["metrics"]
    fills = sum(json.loads(ok.stdout)["fills"].values())
    assert fills > 4 and m["trades"] + m["open_trades"] >= fills // 2 - 2 and m["trades"] > 0
    assert m["win_rate"] is not None
    overlap = tmp_path / "overlap.csv"
    train_df.iloc[-500:].to_csv(overlap, index=False)
    bad = CliRunner().invoke(app, [*args, "--data", f"X/USDT={overlap}", "--data", f"Y/USDT={overlap}"])
    assert bad.exit_code == 2 and "overlap model" in bad.stderr, bad.output
