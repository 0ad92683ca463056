"""Labels: the sign of the forward return over ``horizon`` bars, beyond a cost threshold.

Row i's label uses closes i and i + horizon, so its *label window* is bars i+1 .. i+horizon;
the cross-validation purges training rows whose window reaches into a test fold."""

from __future__ import annotations

import numpy as np


def forward_return(close: np.ndarray, horizon: int) -> np.ndarray:
    """Simple return from bar i's close to bar i+horizon's close (NaN for the last rows)."""
    c = np.asarray(close, dtype=float)
    out = np.full(len(c), np.nan)
    if horizon < len(c):
        with np.errstate(invalid="ignore", divide="ignore"):
            out[: len(c) - horizon] = c[horizon:] / c[: len(c) - horizon] - 1.0
    return out


def make_labels(close: np.ndarray, horizon: int, threshold_bps: float = 0.0) -> np.ndarray:
    """1.0 up, 0.0 down, NaN for "no trade" (|return| within the threshold) or no future yet."""
    if horizon < 1:
        raise ValueError("horizon must be at least 1 bar")
    if not 0 <= threshold_bps < 10_000:
        raise ValueError("threshold-bps must be within 0..10000")
    fwd = forward_return(close, horizon)
    thr = threshold_bps / 10_000.0
    out = np.full(len(fwd), np.nan)
    out[fwd > thr] = 1.0
    out[fwd < -thr] = 0.0
    return out
