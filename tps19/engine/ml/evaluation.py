"""How a model's stored decisions turned out: live hit rate, log loss, calibration, the P&L of its
signals, feature drift; and two models compared on the decisions both made."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlmodel import col, select

from ..storage import AIDecision
from ..storage.models_ml import AIDecisionOutcome
from .drift import psi_table


@dataclass(frozen=True)
class Outcome:
    symbol: str
    ts: int
    probability: float
    target: float  # position after the decision (1 long, 0 flat)
    ret: float
    up: bool
    hit: bool


async def decisions(db: Any, model_id: str, limit: int = 5000) -> list[AIDecision]:
    async with db.session() as s:
        q = select(AIDecision).where(AIDecision.model == model_id).order_by(col(AIDecision.ts).desc()).limit(limit)
        return list((await s.execute(q)).scalars().all())


async def outcomes(db: Any, model_id: str, since_ts: int | None = None) -> list[Outcome]:
    """Resolved decisions of ``model_id`` in bar-time order (from bar ``since_ts`` on, if given)."""
    q = (select(AIDecision, AIDecisionOutcome)
         .join(AIDecisionOutcome, col(AIDecisionOutcome.decision_id) == col(AIDecision.id))
         .where(AIDecision.model == model_id).order_by(col(AIDecision.ts)))
    if since_ts is not None:
        q = q.where(col(AIDecision.ts) >= since_ts)
    async with db.session() as s:
        rows = (await s.execute(q)).all()
    return [Outcome(d.symbol, d.ts, d.confidence, float((d.features or {}).get("target", 0.0)), o.outcome_return, o.up,
                    o.hit) for d, o in rows]


def _log_loss(p: np.ndarray, up: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -(up * np.log(p) + (1 - up) * np.log(1 - p))


def live_summary(rows: list[Outcome], bins: int = 5) -> dict[str, Any]:
    """Hit rate, log loss, signal P&L and calibration (mean P(up) vs share up, per probability bin)."""
    if not rows:
        return {"resolved": 0, "hit_rate": None, "log_loss": None, "signal_pnl": None, "calibration": []}
    p = np.array([r.probability for r in rows])
    up = np.array([r.up for r in rows], dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    cal = [{"p_mean": float(p[which == b].mean()), "up_rate": float(up[which == b].mean()), "n": int((which == b).sum())}
           for b in range(bins) if (which == b).any()]
    return {"resolved": len(rows), "hit_rate": float(np.mean([r.hit for r in rows])),
            "log_loss": float(_log_loss(p, up).mean()), "signal_pnl": float(sum(r.target * r.ret for r in rows)),
            "calibration": cal}


async def drift(db: Any, record: Any, limit: int = 500) -> dict[str, float | None]:
    """PSI per feature of the model's latest live decisions against its training distribution
    (None per feature below ``drift.MIN_SAMPLE`` decisions; ``drift_sample`` says how many)."""
    rows = [d.features.get("values", {}) for d in await decisions(db, record.id, limit) if d.features]
    return psi_table(record.feature_stats or {}, rows) if rows else {}


async def drift_sample(db: Any, record: Any, limit: int = 500) -> int:
    """How many live decisions (with features) the drift figures are computed from."""
    return sum(1 for d in await decisions(db, record.id, limit) if d.features)


def compare(a: list[Outcome], b: list[Outcome]) -> dict[str, Any]:
    """Both models on the decisions both made (same symbol and bar): hit rate, log loss, signal P&L,
    and paired tests: McNemar's exact test on the hits, a paired t-test on per-decision log loss."""
    from scipy import stats

    ib = {(r.symbol, r.ts): r for r in b}
    pairs = [(r, ib[(r.symbol, r.ts)]) for r in a if (r.symbol, r.ts) in ib]
    out: dict[str, Any] = {"paired_decisions": len(pairs)}
    if not pairs:
        return out | {"a": live_summary([]), "b": live_summary([]), "mcnemar_p": None, "log_loss_t_p": None}
    ra, rb = [x for x, _ in pairs], [y for _, y in pairs]
    out["a"], out["b"] = live_summary(ra, 1), live_summary(rb, 1)
    only_a = sum(1 for x, y in pairs if x.hit and not y.hit)
    only_b = sum(1 for x, y in pairs if y.hit and not x.hit)
    out["only_a_right"], out["only_b_right"] = only_a, only_b
    out["mcnemar_p"] = float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else None
    up = np.array([x.up for x in ra], dtype=float)
    la = _log_loss(np.array([x.probability for x in ra]), up)
    lb = _log_loss(np.array([y.probability for y in rb]), up)
    diff = la - lb
    if len(pairs) > 1 and np.std(diff) > 0:
        p = float(stats.ttest_rel(la, lb).pvalue)
        out["log_loss_t_p"] = p if not math.isnan(p) else None
    else:
        out["log_loss_t_p"] = None
    out["log_loss_diff"] = float(diff.mean())  # < 0: A is better
    return out
