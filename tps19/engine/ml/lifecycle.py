"""A model lifecycle that runs itself in paper and live: retrain, shadow, promote by the rule.

* **Retrain** on a schedule (``--retrain-every 1d``: bar time since the champion, or the last
  challenger, was trained) and/or when feature drift passes its threshold (``--retrain-on-drift``:
  the largest PSI of the last ``drift_bars`` bars' features against the champion's training
  distribution, calendar features aside, above ``TPS19_ML__RETRAIN_PSI``), on the last
  ``window_bars`` stored bars of the first watched symbol, topped up from the venue first (the
  bars the engine has seen if the database or venue cannot give them; the lineage says which). The
  fit runs in a worker *process* (spawned once, BLAS/OpenMP limited to ``TPS19_ML__THREADS``), or
  on the Dask cluster when one is configured (``--cluster``/``TPS19_ML__CLUSTER``: the bars go as
  arrays, the fitted model comes back; waited for in a thread); a cluster that cannot be reached
  or is lost mid-fit falls back to the local process with a warning. Never on the event loop;
  bars keep being decided while it runs. The lineage says where it trained.
* The new model is registered with its **lineage** (parent = the champion, the data range and
  window, the trigger and its figures) and runs as a **shadow** beside the champion: it predicts
  on the same bars, its decisions are stored, it sends no order.
* **Promotion**: once ``rule.pairs`` paired decisions are resolved, promotion.decide makes the
  one test; promote or refuse, the verdict is stored in ``ml_promotions`` with its evidence.
  With ``--auto-promote`` a promoted challenger becomes the champion in the running engine (its
  warm strategy instances replace the champion's; orders follow its targets from the next bar);
  without, a warning proposes it (desk log, notifications, `tps19 models promotions`).

One challenger at a time: no retraining while one is being trained or evaluated.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...durations import parse_every
from ..notify.notices import MODEL_LIFECYCLE
from .promotion import PromotionRule, Verdict, decide
from .retrain_jobs import located_retrain_job, retrain_job

__all__ = ["LifecycleConfig", "ModelLifecycle", "lifecycle_config", "parse_every", "retrain_job"]

log = logging.getLogger(__name__)

COLS = ("ts", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class LifecycleConfig:
    retrain_every_ms: int | None = None
    retrain_on_drift: bool = False
    drift_psi: float = 0.5
    drift_bars: int = 1440  # the recent bars whose features are compared with the training rows
    drift_check_every: int = 10  # bars between two drift checks
    window_bars: int = 5000
    folds: int = 3
    model: str = "auto"
    threads: int = 1
    rule: PromotionRule = field(default_factory=PromotionRule)
    auto_promote: bool = False
    cluster: str | None = None  # a Dask scheduler, tcp://HOST:PORT: retrains run there (None: local process)
    cluster_timeout_s: float = 10.0  # connecting to it; past this, the local process

    @property
    def active(self) -> bool:
        return self.retrain_every_ms is not None or self.retrain_on_drift


def lifecycle_config(ml: Any) -> LifecycleConfig:
    """The lifecycle the settings ask for (``Settings.ml``)."""
    return LifecycleConfig(
        retrain_every_ms=parse_every(ml.retrain_every) if ml.retrain_every else None,
        retrain_on_drift=ml.retrain_on_drift, drift_psi=ml.retrain_psi, drift_bars=ml.drift_bars,
        window_bars=ml.retrain_window_bars,
        folds=ml.retrain_folds, threads=ml.threads, rule=PromotionRule(pairs=ml.promote_after, alpha=ml.promote_alpha),
        auto_promote=ml.auto_promote, cluster=ml.cluster)


class ModelLifecycle:
    """Attached to the StrategyRunner of an ``ml`` champion (``runner.after_bar``)."""

    def __init__(self, runner: Any, db: Any, cfg: LifecycleConfig, symbol: str, timeframe: str,
                 notify: Callable[[str, str, dict[str, Any]], None], client: Any = None,
                 exchange: str | None = None) -> None:
        self.runner = runner
        self.db = db
        self.client = client  # the venue's ccxt client: tops the stored bars up before a retrain
        self.exchange = exchange  # the name the engine stores this venue's bars under
        self.cfg = cfg
        self.symbol = symbol
        self.timeframe = timeframe
        self.notify = notify  # (level, message, fields): the engine's log events
        self.bars: deque[tuple[float, ...]] = deque(maxlen=cfg.window_bars)
        self.champion = runner.prototype
        self.challenger: Any = None
        self.challenger_since: int | None = None  # bar time the challenger's shadow started at
        self.last_trained_ts: int | None = None
        self.training: asyncio.Task[None] | None = None
        self.verdicts: list[Verdict] = []
        self.retrains = 0
        self.failures = 0
        self._pool: Any = None
        self._stopping = threading.Event()  # tells a thread waiting on the cluster to cancel its task
        self._since_drift_check = 0
        self._checking = False
        self.last_bar_ts: int | None = None  # the last bar on_bar finished with

    # -- bars ------------------------------------------------------------------------------
    def observe(self, bar: Any) -> None:
        """A closed bar of the training symbol (warm-up history or live)."""
        if bar.symbol == self.symbol:
            self.bars.append((bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume))

    def arrays(self) -> dict[str, np.ndarray]:
        a = np.array(self.bars, dtype=float)
        out = {k: a[:, i] for i, k in enumerate(COLS)}
        out["ts"] = out["ts"].astype(np.int64)
        return out

    async def on_bar(self, bar: Any) -> None:
        """After the runner decided ``bar``: trigger a retrain, or evaluate the challenger.
        Never waits for training."""
        try:
            await self._on_bar(bar)
        finally:
            self.last_bar_ts = int(bar.ts)

    async def _on_bar(self, bar: Any) -> None:
        self.observe(bar)
        if bar.symbol != self.symbol:
            return
        if self.last_trained_ts is None:
            rec = self.champion.model.record
            self.last_trained_ts = int(rec.end_ms)
        if self.challenger is not None:
            if not self._checking:
                self._checking = True
                try:
                    await self._evaluate()
                finally:
                    self._checking = False
            return
        if self.training is not None:
            return
        trigger = self._trigger(bar)
        if trigger is not None:
            reason, figures = trigger
            self.training = asyncio.create_task(self._retrain(reason, figures), name="model-retrain")

    def _trigger(self, bar: Any) -> tuple[str, dict[str, Any]] | None:
        cfg = self.cfg
        assert self.last_trained_ts is not None
        if cfg.retrain_every_ms is not None and bar.ts - self.last_trained_ts >= cfg.retrain_every_ms:
            return "schedule", {"every_ms": cfg.retrain_every_ms, "since_ms": int(bar.ts - self.last_trained_ts)}
        if cfg.retrain_on_drift:
            self._since_drift_check += 1
            if self._since_drift_check >= cfg.drift_check_every and len(self.bars) >= cfg.drift_bars:
                self._since_drift_check = 0
                worst, table = self.drift()
                if worst is not None and worst > cfg.drift_psi:
                    return "drift", {"max_psi": worst, "threshold": cfg.drift_psi, "psi": table}
        return None

    def drift(self) -> tuple[float | None, dict[str, float | None]]:
        """The largest PSI of the last ``drift_bars`` bars' features against the champion's training
        rows. Calendar features are left out: any window shorter than a week is 'drifted' in day of
        week (PSI ~12 over 200 bars), which says nothing about the market."""
        from .drift import psi
        from .features import FEATURE_NAMES, feature_frame

        a = self.arrays()
        recent = {k: v[-(self.cfg.drift_bars + 104):] for k, v in a.items()}  # + the features' warm-up
        x = feature_frame(recent)[-self.cfg.drift_bars:]
        stats = self.champion.model.record.feature_stats or {}
        table = {name: psi(stats[name], x[:, j]) for j, name in enumerate(FEATURE_NAMES)
                 if name in stats and not name.startswith(("tod_", "dow_"))}
        values = [v for v in table.values() if v is not None]
        return (max(values) if values else None), table

    # -- training ----------------------------------------------------------------------------
    def _executor(self) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: the engine's process has threads (a forked child would inherit their locks)
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def _retrain(self, trigger: str, figures: dict[str, Any]) -> None:
        from . import registry
        from .registry import LoadedModel
        from .strategy import MLStrategy
        from .train import TrainConfig

        champion = self.champion
        rec = champion.model.record
        params = rec.params or {}
        try:
            data, source = await self._training_bars()
            cfg = TrainConfig(model=self.cfg.model, horizon=int(params.get("horizon", 1)),
                              threshold_bps=float(params.get("threshold_bps", 0.0)), folds=self.cfg.folds,
                              fee=float(params.get("fee", 0.001)), enter=float(params.get("enter", 0.55)),
                              exit=float(params.get("exit", 0.5)), threads=self.cfg.threads)
            self.notify("info", "retraining the model", {"trigger": trigger, "bars": len(data["ts"]), "parent": rec.id})
            result, where = await self._fit(data, cfg)
            lineage = {"parent": rec.id, "trigger": trigger, "trigger_figures": figures,
                       "start_ms": result.start_ms, "end_ms": result.end_ms, "bars": result.bars,
                       "window_bars": self.cfg.window_bars, "symbol": self.symbol, "timeframe": self.timeframe,
                       "exchange": self.exchange, "source": source, **where}
            row = await registry.save(self.db, result, {"symbol": self.symbol, "timeframe": self.timeframe,
                                                        "data_source": "paper/live retrain", "lineage": lineage})
            loaded = LoadedModel(record=row, pipeline=result.pipeline)
            challenger = MLStrategy(champion.params.replace(model=row.id), _loaded=loaded)
            self.runner.add_shadow(challenger, self._warm_bars())
            self.challenger = challenger
            self.challenger_since = int(self.bars[-1][0]) if self.bars else None
            self.last_trained_ts = int(result.end_ms)
            self.retrains += 1
            self.notify("info", "challenger in shadow", {"model": row.id, "parent": rec.id, "trigger": trigger,
                                                           "cv_auc": result.cv.get("roc_auc")})
        except Exception as err:  # a failed retrain leaves the champion trading, says why, and waits for the next trigger
            self.failures += 1
            self.last_trained_ts = int(self.bars[-1][0]) if self.bars else self.last_trained_ts
            self.notify("error", MODEL_LIFECYCLE + "retraining failed: the champion keeps trading", {"error": f"{type(err).__name__}: {err}"})
            log.exception("retraining failed")
        finally:
            self.training = None

    async def _fit(self, data: dict[str, np.ndarray], cfg: Any) -> tuple[Any, dict[str, Any]]:
        """The fitted ``TrainResult`` and where it trained (lineage fields): on the cluster when one
        is configured and answers, else in the local worker process."""
        fallback: str | None = None
        if self.cfg.cluster:
            from .retrain_jobs import Stopped, cluster_faults, train_on_cluster

            address = self.cfg.cluster  # checked by the settings: tcp://HOST:PORT, no credentials
            # importing distributed (~1 s) and Dask's own client loop stay off the event loop
            faults = await asyncio.to_thread(cluster_faults)
            try:
                result, worker = await asyncio.to_thread(train_on_cluster, address, data, cfg, self._stopping,
                                                         self.cfg.cluster_timeout_s)
                return result, {"trained_on": "cluster", "scheduler": address, "worker": worker}
            except Stopped:
                raise asyncio.CancelledError from None
            except faults as err:  # a trader's retrain must not silently stop: train here, say so
                cause = str(err).splitlines()[0] if str(err) else type(err).__name__
                fallback = f"{type(err).__name__}: {cause}"[:300]
                self.notify("warning", MODEL_LIFECYCLE + "the Dask cluster is unavailable: retraining in the local "
                            "worker process", {"scheduler": address, "error": fallback})
        loop = asyncio.get_running_loop()
        result, worker = await loop.run_in_executor(self._executor(), located_retrain_job, data, cfg)
        where: dict[str, Any] = {"trained_on": "local process", "worker": worker}
        if fallback is not None:
            where["cluster_fallback"] = {"scheduler": self.cfg.cluster, "error": fallback}
        return result, where

    async def _training_bars(self) -> tuple[dict[str, np.ndarray], str]:
        """The last ``window_bars`` bars up to the latest closed one: the stored bars, topped up
        from the venue first (what it has that the database lacks is fetched and stored); without
        a database or venue, or when that fails, the bars this engine has seen (and says so)."""
        import asyncio as aio
        import importlib

        from ..history import timeframe_ms
        from ..history.fetch import fetch_history
        from ..history.store import load_bars

        held = self.arrays()
        if self.db is None or self.client is None or self.exchange is None or not len(held["ts"]):
            return held, "engine: bars seen since start (venue history at start + live)"
        step = timeframe_ms(self.timeframe)
        until = int(held["ts"][-1]) + step
        since = until - self.cfg.window_bars * step
        try:
            await aio.to_thread(importlib.import_module, "pandas")  # its first import must not hold the loop
            await fetch_history(self.client, self.db, exchange=self.exchange, symbol=self.symbol,
                                timeframe=self.timeframe, since=since, until=until)
            df = await load_bars(self.db, self.exchange, self.symbol, self.timeframe, since, until)
        except Exception as err:  # a venue or database problem: train on what the engine holds, say so
            self.notify("warning", "stored bars unavailable for retraining: using the bars seen since start",
                        {"error": f"{type(err).__name__}: {err}"})
            return held, f"engine: bars seen since start (stored bars unavailable: {type(err).__name__})"
        if len(df) < len(held["ts"]):
            return held, "engine: bars seen since start (fewer stored bars)"
        out = {k: np.asarray(df[k], dtype=float) for k in COLS}
        out["ts"] = np.asarray(df["ts"], dtype=np.int64)
        return out, f"stored bars {self.exchange} {self.symbol} {self.timeframe}, topped up from the venue"

    def _warm_bars(self) -> dict[str, list[Any]]:
        """The bars the challenger's feature windows warm up on (the training symbol's)."""
        from ..events import BarEvent

        tail = list(self.bars)[-300:]
        return {self.symbol: [BarEvent(self.symbol, self.timeframe, int(b[0]), b[1], b[2], b[3], b[4], b[5], True)
                              for b in tail]}

    # -- promotion ---------------------------------------------------------------------------
    async def _evaluate(self) -> None:
        from ..storage.models_ml import MLPromotion
        from .evaluation import outcomes

        challenger = self.challenger
        champ_id, chall_id = self.champion.model.id, challenger.model.id
        # only the champion's decisions since the challenger joined can pair: a long run's history stays unread
        since = self.challenger_since
        verdict = decide(await outcomes(self.db, champ_id, since), await outcomes(self.db, chall_id, since),
                         self.cfg.rule, challenger.model.horizon)
        if not verdict.decided:
            return
        self.verdicts.append(verdict)
        applied = verdict.promote and self.cfg.auto_promote
        async with self.db.session() as s:
            s.add(MLPromotion(created_ms=int(time.time() * 1000), champion=champ_id, challenger=chall_id,
                              decision=verdict.word, applied=applied, p_value=float(verdict.evidence["p_value"]),
                              pairs=int(verdict.evidence["pairs_used"]), evidence=verdict.evidence))
            await s.commit()
        fields = {"champion": champ_id, "challenger": chall_id, "p_value": verdict.evidence["p_value"],
                  "pairs": verdict.evidence["pairs_used"], "alpha": self.cfg.rule.alpha}
        if applied:
            self.runner.promote(challenger)
            self.champion = challenger
            self.notify("warning", MODEL_LIFECYCLE + "challenger promoted: it trades now", fields)
        elif verdict.promote:
            self.runner.drop_shadow(challenger)
            self.notify("warning", MODEL_LIFECYCLE + f"promotion proposed: restart with --param model={chall_id} "
                        "(or use --auto-promote)",
                        fields)
        else:
            self.runner.drop_shadow(challenger)
            self.notify("info", MODEL_LIFECYCLE + "challenger refused: not better at the stated significance", fields)
        self.challenger = None

    async def stop(self) -> None:
        self._stopping.set()
        if self.training is not None:
            self.training.cancel()
            try:
                await self.training
            except (asyncio.CancelledError, Exception):
                pass
        if self._pool is not None:
            # a fit still running is abandoned: its process is ended, not waited for
            procs = list(getattr(self._pool, "_processes", {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.terminate()
            await asyncio.to_thread(lambda: [proc.join(5) for proc in procs])
            self._pool = None
