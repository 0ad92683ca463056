"""The one feature function: training, backtests and live inference all call ``compute_features``.

Every feature at bar i is a function of bars ``i - LOOKBACK + 1 .. i`` only (closes included,
nothing after the bar's close), and every window is reduced on its own (a
contiguous row, never a running sum), so computing the whole history at once and computing it on the
last ``LOOKBACK`` bars give the *same floats*: ``FeatureWindow`` (the live path) is nothing but
this function on a rolling window. Exponential averages are finite (truncated, renormalised)
for the same reason: an infinite memory would make a feature depend on where the data began.

The set is named and versioned (``FEATURE_VERSION``); a model records it, and a model trained on
another version is refused at load time. Changing any formula here means bumping the version.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


FEATURE_VERSION = "bars-1"
RETURN_HORIZONS = (1, 5, 15, 60)
FEATURE_NAMES: tuple[str, ...] = (
    *(f"ret_{h}" for h in RETURN_HORIZONS),
    "rvol_20",
    "rsi_14",
    "macd",
    "macd_hist",
    "bb_pctb_20",
    "atr_14",
    "vol_z_20",
    "tod_sin",
    "tod_cos",
    "dow_sin",
    "dow_cos",
)
_EMA_SPAN_FAST, _EMA_SPAN_SLOW, _EMA_SPAN_SIGNAL = 12, 26, 9
_EMA_TRUNC = 3  # an EMA of span s keeps 3*s weights (the rest is < 0.3 % of the mass)
#: bars a feature row needs (the slow EMA's window, then the signal EMA over it)
LOOKBACK = _EMA_TRUNC * _EMA_SPAN_SLOW + _EMA_TRUNC * _EMA_SPAN_SIGNAL - 1
_DAY_MS = 86_400_000
_WEEK_DAYS = 7


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


_CHUNK = 16_384  # rows per block: a block of windows is copied, so memory stays small on long histories


def _window_reduce(x: np.ndarray, k: int, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``fn`` over every length-``k`` window ending at i (NaN before k-1). Each window is a
    contiguous row reduced on its own, so row i's float does not depend on how many rows (or
    which block) it was computed with: the whole history and the live window give the same bits."""
    x = np.asarray(x, dtype=float)
    out = np.full(len(x), np.nan)
    m = len(x) - k + 1
    if k < 1 or m <= 0:
        return out
    cols = np.arange(k)
    for s in range(0, m, _CHUNK):
        # fancy indexing copies the windows into a contiguous block (cheaper per call than
        # sliding_window_view, which costs ~70 us of Python on every live bar)
        block = x[np.arange(s, min(s + _CHUNK, m))[:, None] + cols]
        out[k - 1 + s : k - 1 + s + len(block)] = fn(block)
    return out


def window_sum(x: np.ndarray, k: int) -> np.ndarray:
    return _window_reduce(x, k, lambda b: np.add.reduce(b, axis=1))


def rolling_std(x: np.ndarray, k: int) -> np.ndarray:
    """Population standard deviation (ddof=0), two-pass per window."""
    def std(b: np.ndarray) -> np.ndarray:
        d = b - (np.add.reduce(b, axis=1) / k)[:, None]
        return np.sqrt(np.add.reduce(d * d, axis=1) / k)

    return _window_reduce(x, k, std)


def ema_fir(x: np.ndarray, span: int) -> np.ndarray:
    """A truncated exponential average over the last 3*span values, weights renormalised to 1
    (same floats on any window that holds them)."""
    k = _EMA_TRUNC * span
    alpha = 2.0 / (span + 1.0)
    w = alpha * (1.0 - alpha) ** np.arange(k - 1, -1, -1, dtype=float)  # oldest .. newest
    w = w / w.sum()
    return _window_reduce(x, k, lambda b: np.add.reduce(b * w, axis=1))


def _rsi(close: np.ndarray, n: int) -> np.ndarray:
    """Cutler's RSI (simple averages over n changes), centred: (RSI - 50) / 50 in -1..1."""
    d = close - _shift(close, 1)
    gain = window_sum(np.where(d > 0, d, 0.0), n)
    loss = window_sum(np.where(d < 0, -d, 0.0), n)
    gain[: n] = np.nan  # the first change needs the bar before the window
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(total > 0, gain / total, 0.5)
    return np.where(np.isnan(total), np.nan, (r - 0.5) * 2.0)


def _time_features(ts: np.ndarray) -> list[np.ndarray]:
    ts = np.asarray(ts, dtype=np.int64)
    day = (ts % _DAY_MS).astype(float) / _DAY_MS * 2 * np.pi
    dow = (((ts // _DAY_MS) + 3) % _WEEK_DAYS).astype(float) / _WEEK_DAYS * 2 * np.pi  # 1970-01-01 was a Thursday
    return [np.sin(day), np.cos(day), np.sin(dow), np.cos(dow)]


def compute_features(
    ts: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> np.ndarray:
    """Features for every bar: shape (n, len(FEATURE_NAMES)); NaN in rows before LOOKBACK bars."""
    c = np.asarray(close, dtype=float)
    h, lo, v = (np.asarray(a, dtype=float) for a in (high, low, volume))
    with np.errstate(invalid="ignore", divide="ignore"):
        logc = np.log(np.where(c > 0, c, np.nan))
        r1 = logc - _shift(logc, 1)
        cols = [logc - _shift(logc, k) for k in RETURN_HORIZONS]
        cols.append(np.sqrt(window_sum(r1 * r1, 20) / 20))
        cols.append(_rsi(c, 14))
        line = ema_fir(c, _EMA_SPAN_FAST) - ema_fir(c, _EMA_SPAN_SLOW)
        signal = ema_fir(line, _EMA_SPAN_SIGNAL)
        cols += [line / c, (line - signal) / c]
        mid, sd = window_sum(c, 20) / 20, rolling_std(c, 20)
        cols.append(np.where(sd > 0, (c - (mid - 2 * sd)) / (4 * sd), 0.5) + 0 * sd)
        prev = _shift(c, 1)
        tr = np.fmax(h - lo, np.fmax(np.abs(h - prev), np.abs(lo - prev)))
        tr[0] = np.nan
        cols.append(window_sum(tr, 14) / 14 / c)
        vm, vs = window_sum(v, 20) / 20, rolling_std(v, 20)
        cols.append(np.where(vs > 0, (v - vm) / vs, 0.0) + 0 * vs)
    cols += _time_features(ts)
    out = np.column_stack(cols)
    out[: min(LOOKBACK - 1, len(out))] = np.nan  # one warm-up for every column: a row is whole or absent
    return out


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """The top levels of a live book, (price, size) best first."""

    bids: Sequence[tuple[float, float]]
    asks: Sequence[tuple[float, float]]


BOOK_FEATURE_NAMES = ("spread_bps", "imbalance_top", "imbalance_depth")


def book_features(book: BookSnapshot, depth: int = 10) -> dict[str, float]:
    """Spread in bps of the mid, top-of-book and depth (``depth`` levels) size imbalance in -1..1."""
    if not book.bids or not book.asks:
        return {}
    (bp, bq), (ap, aq) = book.bids[0], book.asks[0]
    mid = (bp + ap) / 2
    bd = sum(q for _, q in book.bids[:depth])
    ad = sum(q for _, q in book.asks[:depth])
    return {
        "spread_bps": (ap - bp) / mid * 10_000 if mid > 0 else float("nan"),
        "imbalance_top": (bq - aq) / (bq + aq) if bq + aq > 0 else 0.0,
        "imbalance_depth": (bd - ad) / (bd + ad) if bd + ad > 0 else 0.0,
    }


class FeatureWindow:
    """The live path: one closed bar at a time, the last ``LOOKBACK`` bars kept, and the newest
    row of ``compute_features`` over them (None until the window is full)."""

    def __init__(self) -> None:
        self._bars: deque[tuple[int, float, float, float, float, float]] = deque(maxlen=LOOKBACK)

    def __len__(self) -> int:
        return len(self._bars)

    @property
    def last_close(self) -> float | None:
        return self._bars[-1][4] if self._bars else None

    def update(self, ts: int, open_: float, high: float, low: float, close: float, volume: float) -> np.ndarray | None:
        self._bars.append((int(ts), float(open_), float(high), float(low), float(close), float(volume)))
        if len(self._bars) < LOOKBACK:
            return None
        a = np.array(self._bars, dtype=float)
        row = compute_features(a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5])[-1]
        return None if np.isnan(row).any() else row


def feature_frame(df: Any) -> np.ndarray:
    """``compute_features`` over a DataFrame (or dict) with ts/open/high/low/close/volume."""
    g = df.__getitem__
    return compute_features(np.asarray(g("ts")), np.asarray(g("open")), np.asarray(g("high")), np.asarray(g("low")),
                            np.asarray(g("close")), np.asarray(g("volume")))
