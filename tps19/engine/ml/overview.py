"""What the desk's models screen shows, gathered in one read: each registered model's validation
figures beside its live/paper decisions (hit rate, log loss, calibration) and the drift of its
features (PSI per feature against training; a warning above the configured threshold)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import evaluation, registry


@dataclass(frozen=True)
class ModelOverview:
    id: str
    kind: str
    start_ms: int
    end_ms: int
    bars: int
    validation: dict[str, Any]  # the CV figures: roc_auc, accuracy, log_loss
    live: dict[str, Any]  # evaluation.live_summary
    psi: dict[str, float | None] = field(default_factory=dict)
    drifting: tuple[str, ...] = ()  # features whose PSI passes the threshold
    drift_n: int = 0  # live decisions the PSI is computed from (none below drift.MIN_SAMPLE)
    lineage: dict[str, Any] | None = None  # parent, trigger, data range (models trained by the lifecycle)
    verdicts: tuple[dict[str, Any], ...] = ()  # promotion-rule verdicts where it was the challenger

    @property
    def proposed(self) -> dict[str, Any] | None:
        """A verdict that promotes it but was not applied (no --auto-promote): the desk proposes it."""
        return next((v for v in reversed(self.verdicts) if v["decision"] == "promote" and not v["applied"]), None)


async def gather(target: str | Path, psi_warn: float) -> list[ModelOverview]:
    """Every model of the database at ``target``, newest first."""
    from ..storage import Database

    db = Database(target)
    await db.open(create=False)
    try:
        from sqlmodel import col, select

        from ..storage.models_ml import MLPromotion

        async with db.session() as s:
            promos = (await s.execute(select(MLPromotion).order_by(col(MLPromotion.created_ms)))).scalars().all()
        out = []
        for rec in reversed(await registry.list_models(db)):
            live = evaluation.live_summary(await evaluation.outcomes(db, rec.id))
            psi = await evaluation.drift(db, rec)
            drifting = tuple(k for k, v in psi.items() if v is not None and v > psi_warn)
            out.append(ModelOverview(rec.id, rec.kind, rec.start_ms, rec.end_ms, rec.bars,
                                     {k: rec.cv.get(k) for k in ("roc_auc", "accuracy", "log_loss")}, live, psi,
                                     drifting, await evaluation.drift_sample(db, rec), rec.lineage,
                                     tuple({"champion": p.champion, "decision": p.decision, "applied": p.applied,
                                            "p_value": p.p_value, "pairs": p.pairs, "created_ms": p.created_ms}
                                           for p in promos if p.challenger == rec.id)))
        return out
    finally:
        await db.close()
