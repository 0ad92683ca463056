"""Figures of a set of predictions: classification scores, and the ``ml`` strategy's position rule
(trading them: baselines.py)."""

from __future__ import annotations

from typing import Any

import numpy as np


def classification_scores(y: np.ndarray, p: np.ndarray, auc: float | None = None) -> dict[str, Any]:
    """roc_auc, accuracy, precision, recall, log_loss of probabilities ``p`` for labels ``y`` (0/1);
    a score that is undefined (one class only) is None. numpy, not sklearn.metrics: the same
    figures (tests/ml/test_honest_figures.py) without its input checks, which cost more than the
    figures on every fold of every candidate. ``auc``: the AUC when the caller computed it already."""
    from .intervals import placements

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    if len(y) == 0:
        return {"roc_auc": None, "accuracy": None, "precision": None, "recall": None, "log_loss": None, "rows": 0}
    up = y == 1
    pred = p > 0.5
    tp = int(np.count_nonzero(pred & up))
    n_pred, n_up = int(np.count_nonzero(pred)), int(np.count_nonzero(up))
    both = 0 < n_up < len(y)
    return {
        "roc_auc": (auc if auc is not None else placements(up, p)[0]) if both else None,
        "accuracy": float(np.count_nonzero(pred == up)) / len(y),
        "precision": tp / n_pred if n_pred else 0.0,
        "recall": tp / n_up if n_up else 0.0,
        "log_loss": float(-np.mean(np.where(up, np.log(p), np.log1p(-p)))),
        "rows": int(len(y)),
    }


def positions(p: np.ndarray, enter: float, exit_: float) -> np.ndarray:
    """Long (1) from a bar whose probability is above ``enter`` until one falls below ``exit_``:
    the ``ml`` strategy's rule, vectorised (start flat)."""
    ev = np.where(p > enter, 1.0, np.where(p < exit_, 0.0, np.nan))
    idx = np.where(np.isnan(ev), -1, np.arange(len(ev)))
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, ev[np.maximum(idx, 0)], 0.0)
