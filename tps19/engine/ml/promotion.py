"""The rule that decides whether a challenger replaces the champion: one test, at a fixed number
of paired decisions, never a fixed-level test repeated after every decision.

Evidence: the decisions both models made on the same bars (same symbol and bar time), resolved,
in time order; the first ``n`` of them, once there are ``n``. Each pair gives the difference of
their log losses (challenger minus champion: below zero, the challenger was better). Outcomes
``horizon`` bars long overlap, so neighbouring differences are correlated: the differences are
averaged in consecutive batches of ``horizon`` pairs (batch means) and a one-sided t-test asks
whether the batch means are below zero. The challenger is promoted when p < ``alpha``; otherwise
it is refused. Either way the decision is final for that challenger and stored with its evidence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PromotionRule:
    pairs: int = 200  # paired resolved decisions at which the one test is made
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.pairs < 4:
            raise ValueError("the promotion test needs at least 4 paired decisions")
        if not 0 < self.alpha < 0.5:
            raise ValueError("alpha must be within (0, 0.5)")


@dataclass(frozen=True)
class Verdict:
    decided: bool
    promote: bool
    pairs: int  # paired resolved decisions available (the test uses the first rule.pairs)
    evidence: dict[str, Any]

    @property
    def word(self) -> str:
        return "pending" if not self.decided else ("promote" if self.promote else "refuse")


def _log_loss(p: np.ndarray, up: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.asarray(-(up * np.log(p) + (1 - up) * np.log(1 - p)))


def decide(champion: list[Any], challenger: list[Any], rule: PromotionRule, horizon: int) -> Verdict:
    """``champion`` / ``challenger``: resolved outcomes (evaluation.Outcome: symbol, ts,
    probability, up, hit)."""
    from scipy import stats

    ib = {(r.symbol, r.ts): r for r in challenger}
    pairs = sorted(((a, ib[(a.symbol, a.ts)]) for a in champion if (a.symbol, a.ts) in ib), key=lambda x: (x[0].ts, x[0].symbol))
    if len(pairs) < rule.pairs:
        return Verdict(False, False, len(pairs), {"needed": rule.pairs})
    used = pairs[: rule.pairs]
    up = np.array([a.up for a, _ in used], dtype=float)
    la = _log_loss(np.array([a.probability for a, _ in used]), up)
    lb = _log_loss(np.array([b.probability for _, b in used]), up)
    diff = lb - la
    batch = max(1, int(horizon))
    m = len(diff) // batch
    means = diff[: m * batch].reshape(m, batch).mean(axis=1)
    if m >= 2 and float(np.std(means)) > 0:
        res = stats.ttest_1samp(means, 0.0, alternative="less")
        t, p = float(res.statistic), float(res.pvalue)
    elif m >= 2:  # every batch the same: better (or not) every time
        t, p = math.nan, 0.0 if float(means[0]) < 0 else 1.0
    else:
        t, p = math.nan, 1.0
    promote = bool(p < rule.alpha)
    evidence = {
        "test": "one-sided t-test on batch means of the per-decision log-loss difference (challenger - champion)",
        "rule": asdict(rule), "horizon": horizon, "batch": batch, "batches": m, "pairs_used": len(used),
        "first_ts": int(used[0][0].ts), "last_ts": int(used[-1][0].ts),
        "mean_log_loss_diff": float(diff.mean()), "t": None if math.isnan(t) else t, "p_value": p,
        "champion_log_loss": float(la.mean()), "challenger_log_loss": float(lb.mean()),
        "champion_hit_rate": float(np.mean([a.hit for a, _ in used])),
        "challenger_hit_rate": float(np.mean([b.hit for _, b in used])),
    }
    return Verdict(True, promote, len(pairs), evidence)
