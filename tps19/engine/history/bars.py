"""OHLCV bars as plain numpy columns, and reading them from CSV or Parquet files.

A backtest needs six arrays, not a DataFrame: numeric CSV files are parsed by numpy (small
files) or pyarrow's streaming reader (large ones, block by block into the columns), Parquet
columns come out of pyarrow row group by row group, and pandas is imported only for what those
cannot read (date strings, gzip).
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = ("ts", "open", "high", "low", "close", "volume")
TS_NAMES = ("ts", "timestamp", "timestamp_ms", "time", "date", "datetime", "open_time")
_BIG_CSV = 16 << 20  # bytes: above this pyarrow's parser pays for its import
_BLOCK = 1 << 20  # bytes of CSV parsed at a time by the streaming reader


class DataError(ValueError):
    """A file that cannot be read as OHLCV, worded as one line."""


@dataclass(frozen=True)
class Bars:
    """Columns ts (ms; float with NaN before ``check``, int64 after), open, high, low, close, volume."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in COLUMNS:
            raise KeyError(key)
        return getattr(self, key)  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        return key in COLUMNS

    @classmethod
    def of(cls, data: Any) -> Bars:
        """Bars from a Bars, a DataFrame or a mapping with the six columns."""
        if isinstance(data, Bars):
            return data
        return cls(*(np.asarray(data[k], dtype=np.int64 if k == "ts" and np.asarray(data[k]).dtype.kind in "iu" else float)
                     for k in COLUMNS))

    def take(self, rows: Any) -> Bars:
        """The rows selected by a mask, an index array or a slice (a slice gives views)."""
        return Bars(*(getattr(self, f.name)[rows] for f in fields(self)))

    def window(self, since: int | None, until: int | None) -> Bars:
        """Bars with since <= ts < until (ts sorted, as after ``check``): views, no copy."""
        lo = 0 if since is None else int(np.searchsorted(self.ts, since, side="left"))
        hi = len(self) if until is None else int(np.searchsorted(self.ts, until, side="left"))
        return self.take(slice(lo, max(lo, hi)))

    def nbytes(self) -> int:
        return sum(getattr(self, f.name).nbytes for f in fields(self))


def median(x: np.ndarray, in_place: bool = False) -> float:
    """np.median without its first-call import of numpy.ma (~50 ms of a short command's start);
    ``in_place`` reorders ``x`` instead of copying it."""
    n = len(x)
    if n == 0:
        return float("nan")
    k = n // 2
    part = x if in_place else x.copy()
    part.partition((k - 1, k) if n % 2 == 0 else k)
    return float(part[k]) if n % 2 else float((part[k - 1] + part[k]) / 2)


def ts_to_ms(v: np.ndarray) -> np.ndarray:
    """Numeric timestamps in seconds, ms, us or ns -> ms, judged by the median (integer ms stay
    int64 and are not copied; floats keep NaN for unreadable values)."""
    v = np.asarray(v)
    if v.dtype.kind not in "iu":
        v = v.astype(float, copy=False)
    finite = v[np.isfinite(v)] if v.dtype.kind == "f" else v
    med = median(finite[:: max(1, len(finite) // 100_001)]) if len(finite) else 0.0  # a sample says the unit
    if med < 1e11:  # seconds
        return v * 1000.0
    if med > 1e14:  # micro/nanoseconds
        return v / (1000.0 if med < 1e17 else 1_000_000.0)
    return v


def _pick(names: list[str]) -> tuple[int, list[int | None]] | None:
    """Column positions of the timestamp and of open/high/low/close/volume (volume may be absent)."""
    low = [n.strip().lower() for n in names]
    ts = next((low.index(n) for n in TS_NAMES if n in low), None)
    cols = [low.index(c) if c in low else None for c in COLUMNS[1:]]
    if ts is None or any(c is None for c in cols[:4]):
        return None
    return ts, cols


def _from_columns(ts: np.ndarray, cols: list[np.ndarray | None], n: int) -> Bars:
    arrays = [np.ascontiguousarray(c, dtype=float) if c is not None else np.zeros(n) for c in cols]
    return Bars(ts_to_ms(ts), *arrays)


def _read_csv_numeric(p: Path) -> Bars | None:
    """A CSV of numbers only (no empty field): numpy or pyarrow. None: let pandas try."""
    with p.open("rb") as f:
        line = f.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n")
    header = next(csv.reader([line]), [])  # names may be quoted ("ts","open",...: pyarrow's own writer)
    picked = _pick(header)
    if picked is None:
        return None
    ts_i, cols = picked
    if p.stat().st_size > _BIG_CSV:
        return _read_csv_arrow(p, header, ts_i, cols)
    used = [ts_i] + [c for c in cols if c is not None]
    try:
        with warnings.catch_warnings():
            # a header-only file: numpy warns "input contained no data"; read_ohlcv says "has no rows"
            warnings.simplefilter("ignore", UserWarning)
            arr = np.loadtxt(p, delimiter=",", skiprows=1, usecols=used, dtype=float, ndmin=2, encoding="utf-8")
    except ValueError:  # text (dates), an empty field: pandas knows more formats
        return None
    pos = {c: i for i, c in enumerate(used)}
    return _from_columns(arr[:, 0], [arr[:, pos[c]] if c is not None else None for c in cols], len(arr))


def _read_csv_arrow(p: Path, header: list[str], ts_i: int, cols: list[int | None]) -> Bars | None:
    """pyarrow's streaming reader, block by block copied into the final numpy columns: the peak
    is the bars' own numbers plus one block in flight, never a parsed table beside them."""
    import pyarrow as pa

    names = [header[ts_i]] + [header[c] for c in cols if c is not None]
    try:
        columns = _stream_csv(p, names, None)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # the first block's inferred type did not hold further on (say integer times, then a
        # fraction): once more with every column read as float64
        try:
            columns = _stream_csv(p, names, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError):
            return None
    except OSError:
        return None
    if columns is None:
        return None
    by_name = dict(zip(names, columns, strict=True))
    return _from_columns(by_name[names[0]], [by_name[header[c]] if c is not None else None for c in cols],
                         len(columns[0]))


def _stream_csv(p: Path, names: list[str], force: Any) -> list[np.ndarray] | None:
    """The named columns, numeric; None if one is not (dates: pandas reads those).

    The columns are allocated once, for the rows the file should hold (its size over the first
    block's bytes per row) and a margin: pages never written are never resident, the result is a
    view of the rows read, and a file with longer lines further on grows them (a copy, rare). ts
    stays int64 unless a block brings fractions or gaps."""
    import pyarrow.csv as pcsv

    opts = pcsv.ConvertOptions(include_columns=names,
                               column_types={n: force for n in names} if force is not None else None)
    size = p.stat().st_size
    out: list[np.ndarray] = []
    rows = 0
    block = _BLOCK
    with pcsv.open_csv(p, read_options=pcsv.ReadOptions(block_size=block), convert_options=opts) as reader:
        for batch in reader:
            if batch.num_rows == 0:
                continue
            maybe = [_numeric(batch.column(name)) for name in names]
            del batch
            blocks = [b for b in maybe if b is not None]
            if len(blocks) < len(maybe):
                return None
            need = rows + len(blocks[0])
            if not out:
                per_row = min(block, size) / need
                cap = max(need, int(size / per_row * 1.25) + 1024)
                out = [np.empty(cap, dtype=b.dtype) for b in blocks]
            for i, b in enumerate(blocks):
                if need > len(out[i]):  # more rows than estimated: grow (rare)
                    grown = np.empty(max(need, len(out[i]) * 3 // 2), dtype=out[i].dtype)
                    grown[:rows] = out[i][:rows]
                    out[i] = grown
                if b.dtype != out[i].dtype:  # integers so far, now floats (or the reverse): floats
                    if out[i].dtype != np.float64:
                        out[i] = out[i].astype(np.float64)
                out[i][rows:need] = b
            rows = need
    if not out:
        return [np.zeros(0) for _ in names]
    return [a[:rows] for a in out]


def _numeric(col: Any) -> np.ndarray | None:
    """An arrow column as a numpy array: integers stay int64, floats float64 (NaN for nulls);
    None for any other type."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.timestamp("ms")).cast(pa.int64())
    if pa.types.is_integer(col.type) and col.null_count == 0:
        return np.asarray(col.cast(pa.int64()).to_numpy())
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        return None
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False))


def _from_arrow(table: Any, ts_name: str, col_names: list[str | None]) -> Bars | None:
    ts = _numeric(table.column(ts_name))
    arrays = [_numeric(table.column(c)) if c is not None else None for c in col_names]
    if ts is None or any(a is None for a in arrays[:4]):
        return None
    return _from_columns(ts, arrays, table.num_rows)


def _read_parquet(p: Path) -> Bars | None:
    """Column by column, each arrow column released once copied out: the peak is the bars plus
    one column, not twice the file."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("cannot read parquet (ImportError: install pyarrow)") from None
    pf = pq.ParquetFile(p)
    names = list(pf.schema_arrow.names)
    picked = _pick(names)
    if picked is None:
        return None
    ts_i, cols = picked
    ts = _column(pf, names[ts_i])
    arrays = [None if i is None else _column(pf, names[i]) for i in cols]
    if ts is None or any(a is None for a in arrays[:4]):
        return None
    return _from_columns(ts, arrays, pf.metadata.num_rows)


def _column(pf: Any, name: str) -> np.ndarray | None:
    """One Parquet column, row group by row group into one array (no second full-size copy)."""
    groups = [_numeric(pf.read_row_group(g, columns=[name]).column(0)) for g in range(min(1, pf.num_row_groups))]
    if pf.num_row_groups <= 1:
        return groups[0] if groups else np.zeros(0)
    first = groups[0]
    if first is None:
        return None
    out = np.empty(pf.metadata.num_rows, dtype=first.dtype)
    pos = 0
    for g in range(pf.num_row_groups):
        part = first if g == 0 else _numeric(pf.read_row_group(g, columns=[name]).column(0))
        if part is None or part.dtype != out.dtype:  # a type that changes between groups: one read
            return _numeric(pf.read(columns=[name]).column(0))
        out[pos : pos + len(part)] = part
        pos += len(part)
    return out


def read_ohlcv(path: str | Path) -> Bars:
    """Read a CSV or Parquet file into Bars (no cleaning yet)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"no such file: {p}")
    suffix = p.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".txt", ".gz"):
        raise DataError(f"unsupported file type {suffix or '(none)'}: use .csv or .parquet")
    try:
        if suffix in (".parquet", ".pq"):
            bars = _read_parquet(p)
        elif suffix == ".gz":
            bars = None
        else:
            bars = _read_csv_numeric(p)
        if bars is None:
            bars = _read_with_pandas(p, suffix)
    except DataError:
        raise
    except Exception as err:  # parser errors, encoding, empty file
        raise DataError(f"cannot read {p.name}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    if len(bars) == 0:
        raise DataError(f"{p.name} has no rows")
    _release_arrow_memory()
    return bars


def _release_arrow_memory() -> None:
    """Hand the memory pyarrow's allocator kept from parsing back to the system: the backtest
    that follows needs it, and the process's peak counts it."""
    import sys

    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()


def _read_with_pandas(p: Path, suffix: str) -> Bars:
    import pandas as pd

    if suffix in (".parquet", ".pq"):
        df = pd.read_parquet(p)
    else:
        df = pd.read_csv(p)
    if len(df) == 0:
        raise DataError(f"{p.name} has no rows")
    return normalise(df)


def normalise(df: Any) -> Bars:
    """A DataFrame with a timestamp column (or DatetimeIndex) and open/high/low/close[/volume]."""
    import pandas as pd

    cols = {str(c).strip().lower(): c for c in df.columns}
    ts_name = next((cols[n] for n in TS_NAMES if n in cols), None)
    if ts_name is None and isinstance(df.index, pd.DatetimeIndex):
        df = df.reset_index()
        cols = {str(c).strip().lower(): c for c in df.columns}
        ts_name = df.columns[0]
    if ts_name is None:
        raise DataError(f"no timestamp column (expected one of {', '.join(TS_NAMES)}); columns are {list(df.columns)}")
    out = []
    for c in COLUMNS[1:]:
        if c not in cols:
            if c == "volume":
                out.append(np.zeros(len(df)))
                continue
            raise DataError(f"missing column {c!r}; columns are {list(df.columns)}")
        out.append(pd.to_numeric(df[cols[c]], errors="coerce").to_numpy(dtype=float, na_value=np.nan))
    return Bars(_pandas_ts(df[ts_name]), *out)


def _pandas_ts(col: Any) -> np.ndarray:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(col):
        return ts_to_ms(pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan))
    dt = pd.to_datetime(col, utc=True, errors="coerce")
    out = np.full(len(col), np.nan)
    good = ~dt.isna().to_numpy()
    out[good] = dt[good].map(lambda d: d.value // 1_000_000).to_numpy(dtype=float)  # Timestamp.value is ns
    return out
