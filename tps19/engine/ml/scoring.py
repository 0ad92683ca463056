"""Figures of a set of predictions: classification scores, and the ``ml`` strategy's position rule
(trading them: baselines.py)."""

from __future__ import annotations

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
