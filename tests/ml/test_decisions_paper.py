"""A paper run on the simulated exchange: every prediction of the `ml` strategy and of a model in
shadow is stored as an AI decision, its outcome is joined once the horizon has passed, and the
shadow model sends no order.

The engine warms up on the venue's candle history (real ccxt calls to the simulated exchange),
then the test publishes closed bars on the engine's bus, as the feed does at each candle close
(a real 1m candle would take a minute to close)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from tests.engine.conftest import settings, sim, sim_settings  # noqa: F401  (fixtures)
from tests.engine.helpers import wait_for
from tests.ml.conftest import make_bars, register_model

from tps19.engine.engine import Engine
from tps19.engine.events import BarEvent
from tps19.engine.storage import AIDecision, Order
from tps19.engine.storage.models_ml import AIDecisionOutcome
from tps19.engine.strategies.registry import create

pytestmark = pytest.mark.slow


async def _rows(engine, model):  # type: ignore[no-untyped-def]
    async with engine.db.session() as s:
        return list((await s.execute(select(model))).scalars().all())


async def test_paper_decisions_of_the_model_and_its_shadow_are_stored_and_their_outcomes_joined(sim_settings):  # noqa: F811
    import asyncio

    sim_settings = sim_settings.model_copy(update={
        "symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]})})
    db = sim_settings.database.path
    champion = await asyncio.to_thread(register_model, db, make_bars(800, ar=-0.4), folds=2)
    challenger = await asyncio.to_thread(register_model, db, make_bars(800, ar=-0.4, seed=9), model="hgb", folds=2)
    # the champion never enters (P(up) > 0.99); the shadow would buy at once (P(up) > 0.01)
    engine = Engine(sim_settings, "paper", strategy=create("ml", {"model": champion, "enter": 0.99}, db=db),
                    shadow=create("ml", {"model": challenger, "enter": 0.01, "exit": 0.005}, db=db))
    await engine.start()
    try:
        runner = engine.runner
        assert runner is not None and runner.decisions is not None
        # each decision stores the live book's features: the first book must have arrived (under
        # load it can come after the first bars this test publishes; seen once at load 10)
        book = engine.books["BTC/USDT"]
        assert await wait_for(lambda: bool(book.bids and book.asks), 30), "no BTC/USDT book from the venue"
        last = runner.last_ts["BTC/USDT"]
        close = runner.strategy_for("BTC/USDT").window.last_close
        assert close is not None
        bars = []
        for k in range(1, 7):
            close *= 1.002 if k % 2 else 0.997
            bars.append(BarEvent("BTC/USDT", "1m", last + (1000 + k) * 60_000, close, close * 1.001, close * 0.999,
                                 close, 5.0, True))
        for b in bars:
            engine.bus.publish(b)
        ours = {b.ts for b in bars}

        async def stored() -> tuple[list[AIDecision], list[AIDecisionOutcome]]:
            return ([d for d in await _rows(engine, AIDecision) if d.ts in ours], await _rows(engine, AIDecisionOutcome))

        done = []

        async def poll() -> bool:
            d, o = await stored()
            done[:] = [d, o]
            return len(d) == 12 and len(o) >= 10

        deadline = asyncio.get_running_loop().time() + 30
        while not await poll() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        decisions, outcomes = done
        assert len(decisions) == 12, [(d.model, d.ts) for d in decisions]  # 6 bars x (champion + shadow)
        by_model = {m: [d for d in decisions if d.model == m] for m in (champion, challenger)}
        assert [d.ts for d in by_model[champion]] == sorted(ours)
        for d in decisions:
            assert 0.0 < d.confidence < 1.0 and d.symbol == "BTC/USDT"
            assert set(d.features["values"]) >= {"ret_1", "rsi_14", "macd", "vol_z_20", "dow_sin"}
            assert {"spread_bps", "imbalance_top", "imbalance_depth"} <= set(d.features["book"])
            assert d.features["horizon"] == 1 and d.features["shadow"] == (d.model == challenger)
        # the shadow went long in its own book (during warm-up already), the champion stayed flat
        assert all(d.features["target"] == 1.0 and d.explanation.startswith("shadow") for d in by_model[challenger])
        assert all(d.features["target"] == 0.0 for d in by_model[champion])
        assert all(d.decision == "hold" for d in by_model[champion])
        # outcomes: the bar after each decision closes its 1-bar horizon
        closes = {b.ts: b.close for b in bars}
        joined = {o.decision_id: o for o in outcomes}
        for d in decisions:
            if d.ts == max(ours):
                assert d.id not in joined  # its horizon has not passed yet
                continue
            o = joined[d.id]
            after = closes[d.ts + 60_000]
            assert o.close_then == closes[d.ts] and o.close_after == after
            assert o.outcome_return == pytest.approx(after / closes[d.ts] - 1)
            assert o.up == (after > closes[d.ts]) and o.hit == ((d.confidence > 0.5) == o.up)
        # the shadow is long, yet no order went out and no signal was published for it
        assert runner.signals == [] and await _rows(engine, Order) == []
        assert await wait_for(lambda: len(runner.decisions.pending) == 2)
    finally:
        await engine.stop()
