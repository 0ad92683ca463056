"""Checking OHLCV bars: bad rows and gaps are counted and listed, then dropped (bad rows) or
left as they are (gaps) — never silently used. Every test is a numpy expression over whole
columns; the clean bars are views of the input when nothing is dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .bars import COLUMNS as COLUMNS
from .bars import Bars as Bars
from .bars import DataError as DataError
from .bars import median
from .bars import normalise as normalise
from .bars import read_ohlcv as read_ohlcv

TIMEFRAME_MS = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "1w": 604_800_000,
}


def timeframe_ms(tf: str) -> int:
    try:
        return TIMEFRAME_MS[tf]
    except KeyError:
        raise DataError(f"unknown timeframe {tf!r} (known: {', '.join(TIMEFRAME_MS)})") from None


@dataclass
class QualityReport:
    rows_in: int = 0
    rows_out: int = 0
    nan_rows: list[int] = field(default_factory=list)  # row numbers in the input (0-based, data rows)
    high_below_low: list[int] = field(default_factory=list)
    bad_prices: list[int] = field(default_factory=list)  # <= 0 prices, negative volume, open/close outside [low, high]
    non_monotonic: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    gaps: list[tuple[int, int, int]] = field(default_factory=list)  # (after_ts, next_ts, missing bars)
    interval_ms: int | None = None
    # rows that came before an earlier time in the file: the rows were sorted by time (the row
    # numbers above are then those of the sorted rows)
    unsorted: int = 0

    @property
    def missing_bars(self) -> int:
        return sum(g[2] for g in self.gaps)

    @property
    def bad_rows(self) -> int:
        return len(self.nan_rows) + len(self.high_below_low) + len(self.bad_prices) + len(self.non_monotonic) + len(self.duplicates)

    @property
    def clean(self) -> bool:
        return self.bad_rows == 0 and not self.gaps and not self.unsorted

    def warnings(self) -> list[str]:
        """What every command that reads bar files says before its figures (the same words in
        each): the rows were not in time order, or rows were dropped."""
        return [line for line in self.lines() if line.startswith(("not in time order", "dropped"))]

    def lines(self, limit: int = 5) -> list[str]:
        """Human summary: counts plus the first few offending rows/gaps."""
        from datetime import UTC, datetime

        def t(ms: int) -> str:
            return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")

        out = [f"{self.rows_in} rows read, {self.rows_out} used"]
        if self.unsorted:
            out.append(f"not in time order: {self.unsorted} rows came after a later one; sorted by time")
        for label, rows in (
            ("NaN/missing values", self.nan_rows),
            ("high < low", self.high_below_low),
            ("bad prices (<=0, negative volume, open/close outside high-low)", self.bad_prices),
            ("non-monotonic timestamps", self.non_monotonic),
            ("duplicate timestamps", self.duplicates),
        ):
            if rows:
                shown = ", ".join(str(r) for r in rows[:limit]) + (" ..." if len(rows) > limit else "")
                out.append(f"dropped {len(rows)} rows with {label}: rows {shown}")
        if self.gaps:
            shown = "; ".join(f"{t(a)} -> {t(b)} ({m} missing)" for a, b, m in self.gaps[:limit])
            more = " ..." if len(self.gaps) > limit else ""
            out.append(f"{len(self.gaps)} gaps, {self.missing_bars} missing bars: {shown}{more}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "nan_rows": len(self.nan_rows),
            "high_below_low": len(self.high_below_low),
            "bad_prices": len(self.bad_prices),
            "non_monotonic": len(self.non_monotonic),
            "duplicates": len(self.duplicates),
            "gaps": len(self.gaps),
            "missing_bars": self.missing_bars,
            "unsorted": self.unsorted,
        }


def check(data: Any, interval_ms: int | None = None) -> tuple[Bars, QualityReport]:
    """Drop bad rows (reported), detect gaps (reported, kept), return (clean bars, report).

    Order: a row whose ts equals the last kept ts is a duplicate, below it non-monotonic (the
    last kept ts is the running maximum of the rows that passed the value checks)."""
    import numpy as np

    bars = Bars.of(data)
    n = len(bars)
    rep = QualityReport(rows_in=n)
    order = None
    if n > 1 and not bool(np.all(bars.ts[1:] >= bars.ts[:-1])):
        # a shuffled file used to lose every row behind its running maximum (3,000 rows -> 8):
        # sorted by time instead, and said so; equal times keep their file order (stable sort)
        with np.errstate(invalid="ignore"):
            rep.unsorted = int(np.count_nonzero(bars.ts[1:] < np.maximum.accumulate(bars.ts[:-1])))
        order = np.argsort(bars.ts, kind="stable")
        bars = bars.take(order)

    def rows(idx: Any) -> list[int]:
        """Row numbers as in the file, whatever the sort did."""
        return sorted(order[idx].tolist()) if order is not None else idx.tolist()

    ts, o, h, lo, c, v = bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume
    nan = np.isnan(o) | np.isnan(h) | np.isnan(lo) | np.isnan(c) | np.isnan(v)
    if ts.dtype.kind == "f":
        nan |= np.isnan(ts)
    with np.errstate(invalid="ignore"):
        hl = ~nan & (h < lo)
        bad = nan | hl
        bp = ~bad & ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0) | (v < 0) | (o > h) | (o < lo) | (c > h) | (c < lo))
        bad |= bp
    rep.nan_rows, rep.high_below_low, rep.bad_prices = (rows(np.flatnonzero(m)) for m in (nan, hl, bp))
    del nan, hl, bp
    if bad.any() or not bool(np.all(ts[1:] > ts[:-1])):  # else: in order, nothing to drop
        _order(rep, ts, bad, rows)
    clean = bars if not bad.any() else bars.take(~bad)
    del bad
    if clean.ts.dtype != np.int64:
        clean = Bars(clean.ts.astype(np.int64), clean.open, clean.high, clean.low, clean.close, clean.volume)
    rep.rows_out = len(clean)
    _gaps(rep, clean.ts, interval_ms)
    return clean, rep


def _order(rep: QualityReport, ts: Any, bad: Any, rows: Any) -> None:
    """Duplicates and rows going back in time, among the rows that passed the value checks."""
    import numpy as np

    good = np.flatnonzero(~bad)
    t = ts[good]
    if not len(t):
        return
    before = np.empty(len(t), dtype=float)
    before[0] = -np.inf
    np.maximum.accumulate(t[:-1], out=before[1:])
    dup, back = good[t == before], good[t < before]
    rep.duplicates, rep.non_monotonic = rows(dup), rows(back)
    bad[dup] = True
    bad[back] = True


def _gaps(rep: QualityReport, t: Any, interval_ms: int | None) -> None:
    import numpy as np

    if len(t) < 2:
        return
    d = np.diff(t)
    if interval_ms:
        step = int(interval_ms)
    else:  # the median by partitioning d in place, then d again: one temporary, not two
        step = int(median(d, in_place=True))
        np.subtract(t[1:], t[:-1], out=d)
    rep.interval_ms = step
    if step > 0:
        idx = np.flatnonzero(d > step)
        rep.gaps = [(int(t[i]), int(t[i + 1]), int(d[i] // step) - 1) for i in idx.tolist()]
