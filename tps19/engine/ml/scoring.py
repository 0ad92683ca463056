"""Figures of a set of predictions: classification scores, and what trading them would have made."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def classification_scores(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """roc_auc, accuracy, precision, recall, log_loss of probabilities ``p`` for labels ``y`` (0/1);
    a score that is undefined (one class only) is None."""
    from sklearn.metrics import accuracy_score, log_loss, precision_score, recall_score, roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    if len(y) == 0:
        return {"roc_auc": None, "accuracy": None, "precision": None, "recall": None, "log_loss": None, "rows": 0}
    pred = (p > 0.5).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "rows": int(len(y)),
    }


def positions(p: np.ndarray, enter: float, exit_: float) -> np.ndarray:
    """Long (1) from a bar whose probability is above ``enter`` until one falls below ``exit_``:
    the ``ml`` strategy's rule, vectorised (start flat)."""
    ev = np.where(p > enter, 1.0, np.where(p < exit_, 0.0, np.nan))
    idx = np.where(np.isnan(ev), -1, np.arange(len(ev)))
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, ev[np.maximum(idx, 0)], 0.0)


def trade_return(pos: np.ndarray, close: np.ndarray, fee: float) -> float:
    """Compounded return of holding ``pos[i]`` from close i to close i+1, paying ``fee`` on every
    change of position, flat again after the last bar."""
    if len(pos) < 2:
        return 0.0
    r = close[1:] / close[:-1] - 1.0
    held = pos[:-1]
    changes = np.abs(np.diff(np.concatenate(([0.0], pos[:-1], [0.0]))))
    log_growth = np.sum(np.log1p(held * r)) + np.sum(np.log1p(-fee * changes))
    return float(math.expm1(log_growth))


def oos_figures(segments: list[tuple[np.ndarray, np.ndarray]], fee: float, enter: float, exit_: float,
                seed: int = 19, draws: int = 20) -> dict[str, Any]:
    """Trading the out-of-fold predictions, fold by fold (each starts and ends flat), beside buying
    and holding every fold and a coin flip through the same rule (mean of ``draws`` seeded draws)."""
    rng = np.random.default_rng(seed)
    model = hold = 1.0
    flips = np.ones(draws)
    bars = 0
    for p, close in segments:
        bars += len(p)
        model *= 1 + trade_return(positions(p, enter, exit_), close, fee)
        hold *= 1 + trade_return(np.ones(len(p)), close, fee)
        for d in range(draws):
            flips[d] *= 1 + trade_return(positions(rng.random(len(p)), enter, exit_), close, fee)
    return {"total_return": model - 1, "buy_and_hold": hold - 1, "coin_flip": float(flips.mean() - 1),
            "bars": bars, "fee": fee, "enter": enter, "exit": exit_}
