"""The model lifecycle: the promotion rule on hand-built decisions, and a paper run on the
simulated exchange that retrains in a worker process, runs the new model in shadow and promotes
or refuses it by the rule, storing lineage and evidence."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from sqlmodel import select

from tests.engine.conftest import settings, sim, sim_settings  # noqa: F401  (fixtures)
from tests.ml.conftest import make_bars, register_model
from tps19.engine.engine import Engine
from tps19.engine.events import BarEvent
from tps19.engine.ml.evaluation import Outcome, outcomes
from tps19.engine.ml.lifecycle import LifecycleConfig, parse_every
from tps19.engine.ml.promotion import PromotionRule, decide
from tps19.engine.storage import AIDecision
from tps19.engine.storage.models_ml import MLModel, MLPromotion
from tps19.engine.strategies.registry import create


def outcomes_of(probs, ups, t0=0):
    return [Outcome("BTC/USDT", t0 + 60_000 * i, p, 1.0, 0.0, bool(u), (p > 0.5) == bool(u))
            for i, (p, u) in enumerate(zip(probs, ups, strict=True))]


def test_the_rule_waits_for_its_pairs_then_decides_once_on_the_first_n():
    rng = np.random.default_rng(3)
    ups = rng.random(60) < 0.5
    champion = outcomes_of(np.full(60, 0.5), ups)
    conf = rng.uniform(0.6, 0.8, 60)
    sharp = outcomes_of(np.where(ups, conf, 1 - conf), ups)  # right every time
    rule = PromotionRule(pairs=40, alpha=0.05)
    pending = decide(champion[:39], sharp[:39], rule, horizon=1)
    assert not pending.decided and pending.pairs == 39 and pending.word == "pending"
    v = decide(champion, sharp, rule, horizon=1)
    assert v.decided and v.promote and v.evidence["pairs_used"] == 40 and v.evidence["p_value"] < 1e-6
    # pairs after the first 40 do not change the verdict: the test is made once
    worse_later = sharp[:40] + outcomes_of(np.where(ups[40:], 0.1, 0.9), ups[40:], t0=40 * 60_000)
    assert decide(champion, worse_later, rule, horizon=1).evidence == v.evidence
    # a challenger no better than the champion is refused
    same = decide(champion, outcomes_of(np.full(60, 0.5), ups), rule, horizon=1)
    assert same.decided and not same.promote and same.word == "refuse"
    # only decisions on the same bars are paired
    shifted = outcomes_of(np.where(ups, conf, 1 - conf), ups, t0=30_000)
    assert decide(champion, shifted, rule, horizon=1).pairs == 0


def test_overlapping_outcomes_are_tested_on_batch_means():
    """Horizon 5: the t-test runs on the means of consecutive batches of 5 pairs (what scipy
    gives on those means), not on the 40 correlated differences."""
    from scipy import stats

    rng = np.random.default_rng(5)
    ups = rng.random(40) < 0.5
    a = rng.uniform(0.3, 0.7, 40)
    b = np.clip(a + np.where(ups, 0.05, -0.05) + rng.normal(0, 0.1, 40), 0.01, 0.99)
    v = decide(outcomes_of(a, ups), outcomes_of(b, ups), PromotionRule(pairs=40, alpha=0.05), horizon=5)

    def ll(p):
        return -(ups * np.log(p) + (1 - ups) * np.log(1 - p))

    means = (ll(b) - ll(a)).reshape(8, 5).mean(axis=1)
    assert v.evidence["batches"] == 8
    assert v.evidence["p_value"] == pytest.approx(stats.ttest_1samp(means, 0.0, alternative="less").pvalue)
    assert v.promote == (v.evidence["p_value"] < 0.05)


def test_retrain_every_parses_durations():
    assert parse_every("1d") == 86_400_000 and parse_every("6h") == 21_600_000 and parse_every("90s") == 90_000
    for bad in ("", "1x", "-1d", "d", "nanh"):
        with pytest.raises(ValueError, match="retrain-every"):
            parse_every(bad)


@pytest.mark.slow
async def test_a_paper_run_retrains_shadows_and_decides_by_the_rule(sim_settings):  # noqa: F811
    sim_settings = sim_settings.model_copy(update={
        "symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]})})
    db = sim_settings.database.path
    champion = await asyncio.to_thread(register_model, db, make_bars(800, ar=-0.4), folds=2)
    rule = PromotionRule(pairs=8, alpha=0.05)
    # the champion's data ended in 2020: the schedule (3 bars of time) fires at the first live bar
    life = LifecycleConfig(retrain_every_ms=3 * 60_000, window_bars=1000, folds=2, model="logreg", rule=rule,
                           auto_promote=True)
    engine = Engine(sim_settings, "paper", strategy=create("ml", {"model": champion}, db=db), lifecycle=life)
    await engine.start()
    try:
        runner, lc = engine.runner, engine.lifecycle
        assert runner is not None and lc is not None and len(lc.bars) >= 250  # the venue's candle history
        warm_bars = len(lc.bars)
        ts = runner.last_ts["BTC/USDT"]
        close = runner.strategy_for("BTC/USDT").window.last_close
        rng = np.random.default_rng(1)
        published: list[int] = []

        async def step() -> None:
            nonlocal ts, close
            ts += 60_000
            close *= math.exp(rng.normal(0, 0.002))
            engine.bus.publish(BarEvent("BTC/USDT", "1m", ts, close, close * 1.001, close * 0.999, close, 5.0, True))
            published.append(ts)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while lc.last_bar_ts != ts and loop.time() < deadline:  # decided, and the lifecycle has seen it
                await asyncio.sleep(0.02)
            assert lc.last_bar_ts == ts

        async def until(cond, limit_s: float) -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + limit_s
            while not cond() and loop.time() < deadline:
                await asyncio.sleep(0.05)
            assert cond()

        await step()
        assert lc.training is not None  # the schedule fired; the fit runs in the worker process
        for _ in range(2):
            await step()  # bars keep being decided while it trains
        await until(lambda: lc.challenger is not None or lc.failures, 120)
        assert lc.failures == 0 and lc.retrains == 1
        challenger = lc.challenger.model.id
        for _ in range(12):
            if lc.verdicts:
                break
            await step()
        assert lc.verdicts, "no verdict after 12 paired bars"

        async with engine.db.session() as s:
            models = {m.id: m for m in (await s.execute(select(MLModel))).scalars().all()}
            promos = (await s.execute(select(MLPromotion))).scalars().all()
            decisions = (await s.execute(select(AIDecision))).scalars().all()
        # lineage: parent, trigger, the data it was trained on
        lin = models[challenger].lineage
        assert lin["parent"] == champion and lin["trigger"] == "schedule" and lin["window_bars"] == 1000
        # the stored bars of the window, topped up from the venue first (the venue has history
        # beyond the engine's 300-candle warm-up: the whole 1,000-bar window is filled)
        assert lin["source"].startswith("stored bars sim BTC/USDT 1m, topped up from the venue")
        assert lin["end_ms"] == published[0] and warm_bars < lin["bars"] <= 1000
        async with engine.db.session() as s:
            from tps19.engine.storage import Bar

            stored = (await s.execute(select(Bar.ts).where(Bar.symbol == "BTC/USDT", Bar.ts >= lin["start_ms"],
                                                           Bar.ts <= lin["end_ms"]))).scalars().all()
        assert len(stored) == lin["bars"]
        assert models[champion].lineage["trigger"] == "cli"
        # every published bar has the champion's decision, including those decided while training
        champ_ts = {d.ts for d in decisions if d.model == champion}
        assert set(published[:3]) <= champ_ts
        shadow = [d for d in decisions if d.model == challenger]
        assert shadow and all(d.features["shadow"] for d in shadow)
        # one verdict, stored with its evidence, equal to the rule applied to the stored outcomes
        assert len(promos) == 1
        p = promos[0]
        assert (p.champion, p.challenger, p.pairs) == (champion, challenger, 8)
        again = decide(await outcomes(engine.db, champion), await outcomes(engine.db, challenger), rule, horizon=1)
        assert p.p_value == pytest.approx(again.evidence["p_value"]) and p.decision == again.word
        assert p.applied == (p.decision == "promote")
        traded_by = runner.prototype.model.id
        assert traded_by == (challenger if p.decision == "promote" else champion)
        assert runner.shadows == []
    finally:
        await engine.stop()
    assert engine.lifecycle._pool is None  # the worker process is gone


def test_drift_triggers_a_retrain_and_a_steady_market_does_not(tmp_path):
    """The champion learnt on 0.1 % bar moves; a day of bars five times as volatile moves its
    volatility features out of their training deciles (PSI far above 0.5): a retrain is
    triggered, named 'drift' with its figures. A day like the training ones triggers nothing
    (calendar features aside: any single day is 'drifted' in day of week)."""
    from types import SimpleNamespace

    from tps19.engine.ml.lifecycle import ModelLifecycle

    db = tmp_path / "d.db"
    model = register_model(db, make_bars(5000, seed=1))
    champion = create("ml", {"model": model}, db=db)
    cfg = LifecycleConfig(retrain_on_drift=True, drift_psi=0.5, drift_bars=1440, drift_check_every=1)

    def lifecycle_over(df):
        lc = ModelLifecycle(SimpleNamespace(prototype=champion), None, cfg, "BTC/USDT", "1m", lambda *a: None)
        lc.last_trained_ts = 0
        for r in df.itertuples(index=False):
            lc.observe(BarEvent("BTC/USDT", "1m", int(r.ts), r.open, r.high, r.low, r.close, r.volume, True))
        return lc, BarEvent("BTC/USDT", "1m", int(df.ts.iloc[-1]), 1, 1, 1, 1, 1, True)

    calm = make_bars(1600, seed=2, t0=1_600_000_000_000)
    lc, last = lifecycle_over(calm)
    assert lc._trigger(last) is None and lc.drift()[0] < 0.5
    assert not any(k.startswith(("tod_", "dow_")) for k in lc.drift()[1])
    wild = calm.copy()
    wild["close"] = 100 * np.exp(5 * np.log(calm["close"] / 100))
    wild["open"] = np.concatenate(([wild["close"].iloc[0]], wild["close"].to_numpy()[:-1]))
    wild["high"] = np.maximum(wild["open"], wild["close"]) * 1.0005
    wild["low"] = np.minimum(wild["open"], wild["close"]) * 0.9995
    lc, last = lifecycle_over(wild)
    trigger = lc._trigger(last)
    assert trigger is not None and trigger[0] == "drift"
    assert trigger[1]["max_psi"] > 0.5 and trigger[1]["max_psi"] == max(v for v in trigger[1]["psi"].values() if v)


def test_models_promotions_lists_every_verdict_with_its_evidence(tmp_path):
    import json

    from typer.testing import CliRunner

    from tps19.cli import app
    from tps19.engine.storage import Database

    db = tmp_path / "p.db"
    runner = CliRunner()
    async def store(rows: bool = True) -> None:
        d = Database(db)
        await d.open()
        if not rows:
            await d.close()
            return
        try:
            async with d.session() as s:
                s.add(MLPromotion(created_ms=1_700_000_000_000, champion="lasso-a", challenger="hgb-b", decision="refuse",
                                  applied=False, p_value=0.41, pairs=200,
                                  evidence={"champion_log_loss": 0.69, "challenger_log_loss": 0.7}))
                await s.commit()
        finally:
            await d.close()

    asyncio.run(store(rows=False))
    r = runner.invoke(app, ["models", "promotions", "--db", str(db)])
    assert r.exit_code == 0 and "no promotion decisions yet" in r.stdout
    asyncio.run(store())
    r = runner.invoke(app, ["models", "promotions", "--db", str(db), "--json"])
    assert r.exit_code == 0
    (row,) = json.loads(r.stdout)
    assert row["decision"] == "refuse" and row["p_value"] == 0.41 and row["evidence"]["challenger_log_loss"] == 0.7
    r = runner.invoke(app, ["models", "promotions", "--db", str(db)])
    assert "refuse" in r.stdout and "hgb-b" in r.stdout


def test_lifecycle_verdicts_are_notifications_of_class_models():
    """What the lifecycle logs on a verdict or a failed retrain becomes a `models` notice (a URL
    tagged models=... gets only these); its progress lines do not."""
    from tps19.engine.events import LogEvent
    from tps19.engine.notify.notices import MODEL_LIFECYCLE, notices_for

    fields = {"champion": "lasso-a", "challenger": "hgb-b", "p_value": 0.012, "pairs": 200, "alpha": 0.05}
    (n,) = notices_for(LogEvent("warning", MODEL_LIFECYCLE + "promotion proposed: restart with --param model=hgb-b",
                                fields), "paper", set())
    assert n.cls == "models" and n.title == "TPS19 PAPER: promotion proposed"
    assert "hgb-b" in n.body and "p_value 0.012" in n.body and "pairs 200" in n.body
    (f,) = notices_for(LogEvent("error", MODEL_LIFECYCLE + "retraining failed: the champion keeps trading",
                                {"error": "ValueError: not enough bars"}), "live", set())
    assert f.cls == "models" and "not enough bars" in f.body
    assert notices_for(LogEvent("info", "challenger in shadow", {"model": "hgb-b"}), "paper", set()) == []


@pytest.mark.parametrize(("extra", "message"), [
    (["--cluster", "tcp://127.0.0.1:8786"],
     "--cluster in paper/live runs the model's retrains: add --retrain-every or --retrain-on-drift"),
    (["--strategy", "ml", "--param", "model=1", "--retrain-every", "1d", "--cluster", "127.0.0.1:8786"],
     "--cluster takes tcp://HOST:PORT (a Dask scheduler), not '127.0.0.1:8786'"),
])
def test_paper_cluster_flag_errors_are_one_line(extra, message):
    from typer.testing import CliRunner

    from tps19.cli import app

    r = CliRunner().invoke(app, ["paper", "--no-ui", *extra])
    assert r.exit_code == 2 and r.stderr.strip() == f"tps19: {message}", r.output


def test_a_cluster_address_with_credentials_is_refused_without_echoing_them():
    """The address is logged and stored in a retrained model's lineage: it must carry no secret."""
    from typer.testing import CliRunner

    from tps19.cli import app
    from tps19.config import MLSettings
    from tps19.engine.ml.lifecycle import lifecycle_config

    secret = "tcp://trader:hunter2@10.0.0.5:8786"
    args = ["paper", "--no-ui", "--strategy", "ml", "--param", "model=1", "--retrain-every", "1d"]
    for r in (CliRunner().invoke(app, [*args, "--cluster", secret]),
              CliRunner().invoke(app, args, env={"TPS19_ML__CLUSTER": secret})):
        assert r.exit_code == 2 and "without credentials" in r.stderr and "hunter2" not in r.output, r.output
        assert len(r.stderr.strip().splitlines()) == 1
    assert MLSettings(cluster=" off ").cluster is None
    ml = MLSettings(cluster="tcp://10.0.0.5:8786/", retrain_every="1d")
    assert lifecycle_config(ml).cluster == "tcp://10.0.0.5:8786"
