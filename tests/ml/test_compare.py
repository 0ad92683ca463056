"""Champion and challenger: `tps19 models compare` on the decisions both made, `models show` live figures."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from typer.testing import CliRunner

from tests.ml.conftest import make_bars, register_model

from tps19.cli import app
from tps19.engine.ml.decisions import DecisionLog
from tps19.engine.ml.strategy import Prediction
from tps19.engine.storage import Database

T = 1_700_000_000_000


async def _decide(db_path, model: str, probs: dict[int, float], closes: list[float]) -> None:
    db = Database(db_path)
    await db.open()
    try:
        log = DecisionLog(db)
        for i, close in enumerate(closes):
            ts = T + i * 60_000
            await log.resolve("BTC/USDT", ts, close)
            if i in probs:
                p = probs[i]
                await log.record("BTC/USDT", "1m", Prediction(model, ts, p, close, 1, {"ret_1": p - 0.5},
                                                             target=1.0 if p > 0.5 else 0.0), shadow=False)
    finally:
        await db.close()


def test_compare_pairs_the_decisions_both_models_made_and_tests_the_difference(tmp_path):
    db = tmp_path / "t.db"
    a = register_model(db, make_bars(800, ar=-0.4), folds=2)
    b = register_model(db, make_bars(800, ar=-0.4, seed=5), folds=2)
    rng = np.random.default_rng(1)
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 61))))
    up = [closes[i + 1] > closes[i] for i in range(60)]
    good = {i: (0.8 if up[i] else 0.2) for i in range(60)}  # A knows the next bar
    coin = {i: float(p) for i, p in zip(range(10, 60), rng.uniform(0.3, 0.7, 50), strict=True)}  # B guesses, from bar 10
    good[60], coin[60] = 0.6, 0.4  # both decide on the last bar too: its outcome is not known yet
    asyncio.run(_decide(db, a, good, closes))
    asyncio.run(_decide(db, b, coin, closes))
    res = CliRunner().invoke(app, ["models", "compare", a, b, "--json", "--db", str(db)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["paired_decisions"] == 50  # bars 10..59: B made no decision before bar 10
    assert out["pending_pairs"] == 1  # bar 60: both decided, its horizon has not passed
    assert out["a_figures"]["hit_rate"] == 1.0 and out["b_figures"]["hit_rate"] < 0.8
    assert out["only_b_right"] == 0 and out["only_a_right"] > 10
    assert out["mcnemar_p"] < 0.01 and out["log_loss_t_p"] < 0.01 and out["log_loss_diff"] < 0
    assert out["a_figures"]["signal_pnl"] > out["b_figures"]["signal_pnl"]
    text = CliRunner().invoke(app, ["models", "compare", a, b, "--db", str(db)])
    assert "McNemar" in text.stdout and "50 decisions both made" in text.stdout
    assert "1 more paired decision pending its horizon" in text.stdout
    shown = json.loads(CliRunner().invoke(app, ["models", "show", a, "--json", "--db", str(db)]).stdout)
    assert shown["live"]["resolved"] == 60 and shown["live"]["hit_rate"] == 1.0
    assert "ret_1" in shown["drift_psi"]
    missing = CliRunner().invoke(app, ["models", "compare", a, "nope", "--db", str(db)])
    assert missing.exit_code == 2 and "no model 'nope'" in missing.stderr
