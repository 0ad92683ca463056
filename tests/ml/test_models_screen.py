"""The desk's models screen (key m): validation beside live figures, and a drift warning."""

from __future__ import annotations

import asyncio

from textual.app import App
from textual.widgets import DataTable, Static

from tests.ml.conftest import make_bars, register_model
from tests.ui.conftest import desk_app, settings, wait_for  # noqa: F401  (fixtures)

from tps19.engine.ml.decisions import DecisionLog
from tps19.engine.ml.features import FEATURE_NAMES
from tps19.engine.ml.strategy import Prediction
from tps19.engine.storage import Database
from tps19.desk.screens.models import ModelsScreen


async def _live_decisions(db_path, model: str, drifted: bool, more: int = 0) -> None:
    db = Database(db_path)
    await db.open()
    try:
        log = DecisionLog(db)
        closes = [100.0, 101.0, 100.5, 101.5, 102.0, 101.0, 101.2] + [101.2] * more
        for i, close in enumerate(closes):
            ts = 1_700_000_000_000 + i * 60_000
            await log.resolve("BTC/USDT", ts, close)
            # every feature at 0 except ret_1, far outside anything the model was trained on when drifted
            values = {n: 0.0 for n in FEATURE_NAMES} | {"ret_1": 0.5 if drifted else 0.0}
            await log.record("BTC/USDT", "1m", Prediction(model, ts, 0.7, close, 1, values, target=1.0), shadow=False)
    finally:
        await db.close()


class _Host(App[None]):
    def __init__(self, db, psi_warn: float) -> None:
        super().__init__()
        self.db, self.psi_warn = db, psi_warn

    def on_mount(self) -> None:
        self.push_screen(ModelsScreen(self.db, self.psi_warn))


async def test_models_screen_shows_validation_beside_live_hit_rate_and_warns_of_drift(tmp_path):
    db = tmp_path / "t.db"
    model = await asyncio.to_thread(register_model, db, make_bars(800, ar=-0.4), folds=2)
    await _live_decisions(db, model, drifted=True)
    app = _Host(db, psi_warn=0.25)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.loaded, what="models loaded")
        screen = app.screen
        table = screen.query_one("#models-table", DataTable)
        row = [str(c) for c in table.get_row_at(0)]
        assert row[0] == model and row[5] == "6"  # 6 resolved of 7 decisions (the last is still open)
        up = [101.0 > 100.0, 100.5 > 101.0, 101.5 > 100.5, 102.0 > 101.5, 101.0 > 102.0, 101.2 > 101.0]
        assert row[6] == f"{sum(up) / 6 * 100:.1f}%"  # P(up) 0.7 is right when the price rose
        assert row[3].endswith("%") and row[3] != "-"  # validation accuracy beside it
        # 7 decisions are no sample to measure drift on (PSI of 7 values read DRIFT): n/a, with n
        assert row[8] == "n/a n=7", row[8]
        detail = str(screen.query_one("#models-detail", Static).render())
        assert "7 live decisions" in detail and "computed from 100 on" in detail and "calibration" in detail
        assert "DRIFT" not in detail


async def test_drift_is_measured_from_a_minimum_sample(tmp_path):
    db = tmp_path / "t.db"
    model = await asyncio.to_thread(register_model, db, make_bars(800, ar=-0.4), folds=2)
    await _live_decisions(db, model, drifted=True, more=113)  # 120 decisions
    app = _Host(db, psi_warn=0.25)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.loaded, what="models loaded")
        row = [str(c) for c in app.screen.query_one("#models-table", DataTable).get_row_at(0)]
        assert row[8].startswith("DRIFT"), row
        detail = str(app.screen.query_one("#models-detail", Static).render())
        assert "ret_1" in detail and "DRIFT" in detail and "120 live decisions" in detail


async def test_key_m_opens_the_models_screen_from_the_desk(settings):  # noqa: F811
    app = desk_app(settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.engine is not None and app.engine.started_at is not None, timeout=60,
                       what="the engine started")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.loaded, what="models screen")
        assert "No models yet" in str(app.screen.query_one("#models-detail", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ModelsScreen), what="back to the desk")


async def test_models_screen_proposes_a_challenger_the_rule_promoted(tmp_path):
    """A challenger the promotion rule promoted without --auto-promote is proposed on the screen,
    with its champion, p-value and the flag to run it; its lineage names its parent."""
    from tps19.engine.storage.models_ml import MLModel, MLPromotion

    db = tmp_path / "t.db"
    champion = await asyncio.to_thread(register_model, db, make_bars(800, ar=-0.4), folds=2)
    challenger = await asyncio.to_thread(register_model, db, make_bars(800, ar=-0.4, seed=9), folds=2, horizon=2)
    d = Database(db)
    await d.open()
    try:
        async with d.session() as s:
            rec = await s.get(MLModel, challenger)
            rec.lineage = {"parent": champion, "trigger": "schedule", "bars": 800, "trained_on": "local process",
                           "worker": {"host": "desk", "pid": 4242},
                           "cluster_fallback": {"scheduler": "tcp://10.0.0.5:8786", "error": "ClusterError: no"}}
            s.add(rec)
            s.add(MLPromotion(created_ms=1_700_000_000_000, champion=champion, challenger=challenger,
                              decision="promote", applied=False, p_value=0.0123, pairs=200, evidence={}))
            await s.commit()
    finally:
        await d.close()
    app = _Host(db, psi_warn=0.25)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ModelsScreen) and app.screen.loaded, what="models loaded")
        screen = app.screen
        table = screen.query_one("#models-table", DataTable)
        assert str(table.get_row_at(0)[0]) == challenger  # newest first
        detail = " ".join(str(screen.query_one("#models-detail", Static).render()).split())
        assert f"PROMOTION PROPOSED: {challenger} over {champion} (p 0.0123 on 200 paired decisions)" in detail
        assert f"restart with --param model={challenger}" in detail
        assert (f"retrained from {champion} (schedule) on 800 bars, in a local worker process (pid 4242): the Dask "
                "cluster tcp://10.0.0.5:8786 was unavailable (ClusterError: no)") in detail
        await pilot.press("down")
        await wait_for(pilot, lambda: champion in str(screen.query_one("#models-detail", Static).render()),
                       what="the champion's detail")
        assert "PROMOTION PROPOSED" not in str(screen.query_one("#models-detail", Static).render())
