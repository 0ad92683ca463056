"""Every paper/live prediction as an ``ai_decisions`` row, and its outcome joined once the
model's horizon has passed (``ai_decision_outcomes``).

A decision made on bar T (open time, its close known) with horizon N is resolved by the first
closed bar whose open time is at least T + N bars: its close against the decision's close.
Decisions still open when the engine stops are picked up again from the database at the next
start (their close, horizon and timeframe are in the row's ``features``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from ..history.quality import timeframe_ms
from ..storage import AIDecision
from ..storage.models_ml import AIDecisionOutcome

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Pending:
    decision_id: int
    symbol: str
    due_ts: int
    close: float
    probability: float


def explain(p: Any, enter: float | None, exit_: float | None) -> str:
    rule = f" (enter > {enter:g}, exit < {exit_:g})" if enter is not None and exit_ is not None else ""
    return f"P(up over {p.horizon} bars) = {p.probability:.3f}{rule}: {p.action}"


class DecisionLog:
    """Writes decisions and outcomes through ``db`` (a ``Database``); one per runner."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.pending: list[Pending] = []
        self.written = 0
        self.resolved = 0
        self._loaded = False

    async def record(self, symbol: str, timeframe: str, pred: Any, *, shadow: bool, book: dict[str, float] | None = None,
                     enter: float | None = None, exit_: float | None = None) -> int:
        row = AIDecision(
            ts=pred.ts, model=pred.model_id, symbol=symbol, decision=pred.action, confidence=pred.probability,
            features={"values": pred.features, "book": book or {}, "close": pred.close, "horizon": pred.horizon,
                      "timeframe": timeframe, "shadow": shadow, "target": pred.target},
            explanation=("shadow: no order. " if shadow else "") + explain(pred, enter, exit_),
        )
        async with self.db.session() as s:
            s.add(row)
            await s.commit()
            await s.refresh(row)
        assert row.id is not None
        self.written += 1
        self.pending.append(Pending(row.id, symbol, pred.ts + pred.horizon * timeframe_ms(timeframe), pred.close,
                                    pred.probability))
        return row.id

    async def load_open(self) -> None:
        """Decisions of earlier runs that have no outcome yet."""
        self._loaded = True
        q = (select(AIDecision).outerjoin(AIDecisionOutcome, col(AIDecisionOutcome.decision_id) == col(AIDecision.id))
             .where(col(AIDecisionOutcome.decision_id).is_(None)))
        async with self.db.session() as s:
            rows = (await s.execute(q)).scalars().all()
        known = {p.decision_id for p in self.pending}
        for r in rows:
            f = r.features or {}
            try:
                due = r.ts + int(f["horizon"]) * timeframe_ms(str(f["timeframe"]))
                close = float(f["close"])
            except (KeyError, TypeError, ValueError):
                continue
            if r.id is not None and r.id not in known:
                self.pending.append(Pending(r.id, r.symbol, due, close, r.confidence))

    async def resolve(self, symbol: str, bar_ts: int, bar_close: float) -> int:
        """Join outcomes to every decision on ``symbol`` that this closed bar completes."""
        if not self._loaded:
            await self.load_open()
        due = [p for p in self.pending if p.symbol == symbol and bar_ts >= p.due_ts]
        if not due:
            return 0
        now = int(time.time() * 1000)
        async with self.db.session() as s:
            for p in due:
                ret = bar_close / p.close - 1.0 if p.close > 0 else 0.0
                up = ret > 0
                s.add(AIDecisionOutcome(decision_id=p.decision_id, resolved_ms=now, close_then=p.close,
                                        close_after=bar_close, outcome_return=ret, up=up,
                                        hit=(p.probability > 0.5) == up))
            await s.commit()
        ids = {p.decision_id for p in due}
        self.pending = [p for p in self.pending if p.decision_id not in ids]
        self.resolved += len(due)
        return len(due)


def book_summary(book: Any, depth: int = 10) -> dict[str, float]:
    """Book features (spread, top and depth imbalance) of a live ``L2Book`` (its ``bids``/``asks``
    levels, best first); {} without one."""
    if book is None:
        return {}
    from .features import BookSnapshot, book_features

    bids, asks = tuple(getattr(book, "bids", ())), tuple(getattr(book, "asks", ()))  # best first
    return {k: round(v, 6) for k, v in book_features(BookSnapshot(bids[:depth], asks[:depth]), depth).items()}
