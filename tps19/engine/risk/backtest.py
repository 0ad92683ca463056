"""Risk in a backtest: position sizing and the drawdown breaker, as transforms of the
strategy's target vector before the simulator (``backtest/engine.py``'s ``simulate``, used as is).

The drawdown breaker: equity at each bar's close is the simulator's; the first bar whose close
is ``max_drawdown_pct`` or more below the running peak trips it. From that bar's decision on, no
order that adds risk passes: the target may only shrink towards 0 on its side (a flip is cut
at flat), or with ``flatten`` it is 0. Bars before the trip are untouched, so their equity, and
hence the trip bar, are the same in the second simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backtest.config import BacktestConfig
from ..backtest.stops import simulate_target
from ..strategies.base import target_changes
from .sizing import Sizing, banded, rolling_daily_vol, size_fraction


@dataclass(frozen=True)
class BacktestRisk:
    sizing: Sizing | None = None
    max_drawdown_pct: float | None = None
    flatten: bool = False

    def describe(self) -> dict[str, Any]:
        return {"sizing": self.sizing.describe() if self.sizing else None,
                "max_drawdown_pct": self.max_drawdown_pct, "flatten_on_halt": self.flatten}


def sized_targets(sizing: Sizing, target: np.ndarray, close: np.ndarray, ts: np.ndarray) -> np.ndarray:
    if sizing.name != "vol_target":
        return np.asarray(size_fraction(sizing, np.asarray(target, dtype=float)), dtype=float)
    sigma = rolling_daily_vol(close, ts, int(sizing.p["lookback"]))
    sized = np.asarray(size_fraction(sizing, np.asarray(target, dtype=float), sigma_daily=sigma), dtype=float)
    return banded(sized, sizing.p["band"])  # re-sized only outside the band, as in paper/live


def no_new_risk(target: np.ndarray, held: float) -> np.ndarray:
    """Targets after a halt when ``held`` is in force: each may only shrink towards 0 on held's side."""
    side = np.sign(held)
    allowed = np.where(np.sign(target) == side, np.abs(target), 0.0) if side != 0 else np.zeros(len(target))
    return side * np.minimum.accumulate(np.concatenate(([abs(held)], allowed)))[1:]


def trip_bar(equity: np.ndarray, max_drawdown_pct: float) -> int | None:
    """The first bar whose equity is ``max_drawdown_pct`` or more below its running peak."""
    if not len(equity):
        return None
    hit = np.flatnonzero(1.0 - equity / np.maximum.accumulate(equity) >= max_drawdown_pct / 100.0 - 1e-12)
    return int(hit[0]) if hit.size else None


def halted(target: np.ndarray, k: int, flatten: bool) -> np.ndarray:
    """One symbol's targets once the breaker tripped at bar ``k``."""
    out = np.array(target, dtype=float)
    held = float(out[k - 1]) if k > 0 else 0.0
    out[k:] = 0.0 if flatten else no_new_risk(out[k:], held)
    return out


def halt_on_drawdown(ts: np.ndarray, cols: dict[str, np.ndarray], target: np.ndarray, config: BacktestConfig,
                     max_drawdown_pct: float, *, flatten: bool = False, raw_at: np.ndarray | None = None,
                     columns: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, int | None]:
    """(targets with the breaker applied, the bar it tripped at or None). The equity it watches
    is the simulator's with the run's protective exits (``config.protection``; ``raw_at``: the
    strategy's own change bars, by default the target's)."""
    target = np.asarray(target, dtype=float)
    raw = target_changes(target)[0] if raw_at is None else raw_at
    k = trip_bar(simulate_target(ts, cols, target, config, raw, columns)[0], max_drawdown_pct)
    return (target, None) if k is None else (halted(target, k, flatten), k)


@dataclass(frozen=True)
class RiskedTargets:
    target: np.ndarray  # after sizing and the breaker: what the simulator fills
    sized: np.ndarray  # after sizing only (a change of ``target`` where this one has none is the breaker's)
    info: dict[str, Any]


def apply_risk(risk: BacktestRisk, ts: np.ndarray, cols: dict[str, np.ndarray], target: np.ndarray,
               config: BacktestConfig, *, raw_at: np.ndarray | None = None,
               columns: dict[str, np.ndarray] | None = None) -> RiskedTargets:
    """The strategy's targets after sizing and the breaker, and what risk did (for the report)."""
    t = np.asarray(target, dtype=float)
    if risk.sizing is not None:
        t = sized_targets(risk.sizing, t, cols["close"], ts)
    sized = t
    info: dict[str, Any] = {"halted_at_bar": None, "halted_at_ts": None}
    if risk.max_drawdown_pct is not None:
        raw = target_changes(np.asarray(target, dtype=float))[0] if raw_at is None else raw_at
        t, k = halt_on_drawdown(ts, cols, t, config, risk.max_drawdown_pct, flatten=risk.flatten,
                                raw_at=raw, columns=columns)
        if k is not None:
            info = {"halted_at_bar": k, "halted_at_ts": int(ts[k])}
    return RiskedTargets(t, sized, info)
