"""Loading OHLCV files and checking them: bad rows and gaps are counted and listed, then
dropped (bad rows) or left as they are (gaps) — never silently used."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMEFRAME_MS = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "1w": 604_800_000,
}

COLUMNS = ("ts", "open", "high", "low", "close", "volume")
_TS_NAMES = ("ts", "timestamp", "timestamp_ms", "time", "date", "datetime", "open_time")


class DataError(ValueError):
    """A file that cannot be read as OHLCV, worded as one line."""


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

    @property
    def missing_bars(self) -> int:
        return sum(g[2] for g in self.gaps)

    @property
    def bad_rows(self) -> int:
        return len(self.nan_rows) + len(self.high_below_low) + len(self.bad_prices) + len(self.non_monotonic) + len(self.duplicates)

    @property
    def clean(self) -> bool:
        return self.bad_rows == 0 and not self.gaps

    def lines(self, limit: int = 5) -> list[str]:
        """Human summary: counts plus the first few offending rows/gaps."""
        from datetime import UTC, datetime

        def t(ms: int) -> str:
            return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")

        out = [f"{self.rows_in} rows read, {self.rows_out} used"]
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
        }


def _ts_to_ms(col: Any) -> Any:
    import numpy as np
    import pandas as pd

    if pd.api.types.is_numeric_dtype(col):
        v = pd.to_numeric(col, errors="coerce").astype(float)
        med = float(np.nanmedian(v)) if len(v) and not np.isnan(v).all() else 0.0
        if med < 1e11:  # seconds
            v = v * 1000.0
        elif med > 1e14:  # micro/nanoseconds
            v = v / (1000.0 if med < 1e17 else 1_000_000.0)
        return v
    dt = pd.to_datetime(col, utc=True, errors="coerce")
    out = pd.Series(np.nan, index=col.index)
    good = ~dt.isna()
    out[good] = dt[good].map(lambda d: d.value // 1_000_000).astype(float)  # Timestamp.value is ns
    return out


def normalise(df: Any) -> Any:
    """Rename columns to ts/open/high/low/close/volume (ts in ms, float)."""
    import pandas as pd

    cols = {str(c).strip().lower(): c for c in df.columns}
    ts_name = next((cols[n] for n in _TS_NAMES if n in cols), None)
    if ts_name is None and isinstance(df.index, pd.DatetimeIndex):
        df = df.reset_index()
        cols = {str(c).strip().lower(): c for c in df.columns}
        ts_name = df.columns[0]
    if ts_name is None:
        raise DataError(f"no timestamp column (expected one of {', '.join(_TS_NAMES)}); columns are {list(df.columns)}")
    out = pd.DataFrame({"ts": _ts_to_ms(df[ts_name])})
    for c in ("open", "high", "low", "close", "volume"):
        if c not in cols:
            if c == "volume":
                out[c] = 0.0
                continue
            raise DataError(f"missing column {c!r}; columns are {list(df.columns)}")
        out[c] = pd.to_numeric(df[cols[c]], errors="coerce").astype(float)
    return out.reset_index(drop=True)


def read_ohlcv(path: str | Path) -> Any:
    """Read a CSV or Parquet file into a normalised DataFrame (no cleaning yet)."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataError(f"no such file: {p}")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            try:
                df = pd.read_parquet(p)
            except ImportError as err:
                raise DataError(f"cannot read parquet ({err.__class__.__name__}: install pyarrow)") from None
        elif suffix in (".csv", ".txt", ".gz"):
            df = pd.read_csv(p)
        else:
            raise DataError(f"unsupported file type {suffix or '(none)'}: use .csv or .parquet")
    except DataError:
        raise
    except Exception as err:  # parser errors, encoding, empty file
        raise DataError(f"cannot read {p.name}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    if len(df) == 0:
        raise DataError(f"{p.name} has no rows")
    return normalise(df)


def check(df: Any, interval_ms: int | None = None) -> tuple[Any, QualityReport]:
    """Drop bad rows (reported), detect gaps (reported, kept), return (clean frame, report)."""
    import numpy as np

    rep = QualityReport(rows_in=len(df))
    ts = df["ts"].to_numpy(dtype=float)
    o, h, lo, c, v = (df[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close", "volume"))
    n = len(df)
    bad = np.zeros(n, dtype=bool)
    nan = np.isnan(ts) | np.isnan(o) | np.isnan(h) | np.isnan(lo) | np.isnan(c) | np.isnan(v)
    rep.nan_rows = np.flatnonzero(nan).tolist()
    bad |= nan
    with np.errstate(invalid="ignore"):
        hl = ~bad & (h < lo)
        rep.high_below_low = np.flatnonzero(hl).tolist()
        bad |= hl
        bp = ~bad & ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0) | (v < 0) | (o > h) | (o < lo) | (c > h) | (c < lo))
        rep.bad_prices = np.flatnonzero(bp).tolist()
        bad |= bp
    # Order: a row whose ts equals the last kept ts is a duplicate, below it non-monotonic.
    last = -np.inf
    dup, nonmono = [], []
    for i in np.flatnonzero(~bad).tolist():
        t = ts[i]
        if t == last:
            dup.append(i)
        elif t < last:
            nonmono.append(i)
        else:
            last = t
    rep.duplicates, rep.non_monotonic = dup, nonmono
    if dup or nonmono:
        bad[dup] = True
        bad[nonmono] = True
    out = df.loc[~bad].reset_index(drop=True)
    out["ts"] = out["ts"].astype("int64")
    rep.rows_out = len(out)
    t = out["ts"].to_numpy()
    if len(t) > 1:
        d = np.diff(t)
        step = int(interval_ms) if interval_ms else int(np.median(d))
        rep.interval_ms = step
        if step > 0:
            idx = np.flatnonzero(d > step)
            rep.gaps = [(int(t[i]), int(t[i + 1]), int(d[i] // step) - 1) for i in idx]
    return out, rep
