"""Reading a recording back in the order it was received.

Each partition's files are ordered by (session, gseq) already; partitions are merged on that key,
so channels and symbols come back interleaved exactly as the engine received them. Files are read
one record batch at a time: memory stays bounded by the number of partitions, not the recording.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .format import META, data_files, partitions

# A row as read: (session, gseq, recv_ns, venue_ts, kind, symbol, seq, prev_seq,
#                 bid_px, bid_qty, ask_px, ask_qty, raw)
ReadRow = tuple[Any, ...]
NAMES = ("session", "gseq", "recv_ns", "venue_ts", "kind", "symbol", "seq", "prev_seq",
         "bid_px", "bid_qty", "ask_px", "ask_qty", "raw")


class RecordingError(Exception):
    """Not a recording, or one that cannot be read (the message names the directory or file)."""


def _rows_of_file(path: Path, start_ns: int | None, end_ns: int | None, kinds: frozenset[str] | None,
                  batch_rows: int) -> Iterator[ReadRow]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as err:
        raise RecordingError(f"unreadable recording file {path}: {err}") from None
    wanted = None if kinds is None else pa.array(sorted(kinds), type=pa.string())
    for batch in pf.iter_batches(batch_size=batch_rows):
        if wanted is not None or start_ns is not None or end_ns is not None:
            # chosen in Arrow before any row becomes Python objects: most passes want a few kinds
            # (the meta row, orders, signals) out of millions of book frames, and converting the
            # rest only to drop them was most of a divergence's time
            mask = None
            if wanted is not None:
                kind = batch.column(4)
                if hasattr(kind, "dictionary_decode"):
                    kind = kind.dictionary_decode()
                mask = pc.is_in(kind, value_set=wanted)
            for op, bound in ((pc.greater_equal, start_ns), (pc.less_equal, end_ns)):
                if bound is not None:
                    m = op(batch.column(2), bound)
                    mask = m if mask is None else pc.and_(mask, m)
            batch = batch.filter(mask)
            if not batch.num_rows:
                continue
        yield from zip(*(_pylist(batch.column(i)) for i in range(batch.num_columns)))


def _pylist(arr: Any) -> list[Any]:
    # a dictionary column converts much faster decoded first (the kind of every row), and a list
    # column as one flat list cut at its offsets (a null list reads as [])
    if hasattr(arr, "dictionary_decode"):
        arr = arr.dictionary_decode()
    elif hasattr(arr, "offsets") and hasattr(arr, "values"):
        offs = arr.offsets.to_pylist()
        # (a batch may be a slice: its offsets then index the child from offs[0], and .values
        # would be the whole child)
        flat = arr.values.slice(offs[0], offs[-1] - offs[0]).to_pylist()
        base = offs[0]
        return [flat[a - base:b - base] for a, b in zip(offs, offs[1:])]
    return arr.to_pylist()  # type: ignore[no-any-return]


def _rows_of_partition(part_dir: Path, start_ns: int | None, end_ns: int | None,
                       kinds: frozenset[str] | None, batch_rows: int) -> Iterator[ReadRow]:
    for f in data_files(part_dir):
        yield from _rows_of_file(f.path, start_ns, end_ns, kinds, batch_rows)


def _not_a_recording(root: Path, why: str | None = None) -> str:
    """Why ``root`` is not a recording; a run with several venues (--record DIR) records each venue
    to DIR/VENUE, so DIR itself is the parent of recordings: say which to give."""
    inside = sorted(d.name for d in root.iterdir() if d.is_dir() and partitions(d)) if root.is_dir() else []
    if inside:
        return (f"no recording at {root}: it holds one recording per venue ({', '.join(inside)}); "
                f"replay one, e.g. {root / inside[0]}")
    return f"no recording at {root}" + (f" ({why})" if why else "")


def read_rows(root: Path, *, start_ns: int | None = None, end_ns: int | None = None,
              symbols: Iterable[str] | None = None, kinds: Iterable[str] | None = None,
              batch_rows: int = 32_768) -> Iterator[ReadRow]:
    """Every row of the recording at ``root`` in receive order (session, then global sequence)."""
    root = Path(root)
    if not root.is_dir():
        raise RecordingError(f"no recording at {root} (not a directory)")
    parts = partitions(root)
    if not parts:
        raise RecordingError(_not_a_recording(root, "no venue=/symbol=/date= partitions"))
    from .format import symbol_dir

    wanted = None if symbols is None else {symbol_dir(s) for s in symbols} | {"_"}
    kind_set = None if kinds is None else frozenset(kinds)
    its = [_rows_of_partition(d, start_ns, end_ns, kind_set, batch_rows)
           for _, sym, _, d in parts if wanted is None or sym in wanted]
    yield from heapq.merge(*its, key=lambda r: (r[0], r[1]))


@dataclass
class RecordingInfo:
    root: Path
    venues: list[str] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    days: list[str] = field(default_factory=list)
    rows: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    first_ns: int | None = None
    last_ns: int | None = None
    first_venue_ms: int | None = None
    last_venue_ms: int | None = None
    sessions: int = 0
    bytes: int = 0
    files: int = 0
    meta: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "venues": self.venues, "symbols": self.symbols, "days": self.days,
                "rows": self.rows, "by_kind": self.by_kind, "first_ns": self.first_ns, "last_ns": self.last_ns,
                "first_venue_ms": self.first_venue_ms, "last_venue_ms": self.last_venue_ms,
                "sessions": self.sessions, "bytes": self.bytes, "files": self.files, "meta": self.meta}


def inspect(root: Path) -> RecordingInfo:
    """What a recording holds, from the files' columns (no full read of the raw frames)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = Path(root)
    if not root.is_dir() or not partitions(root):
        raise RecordingError(_not_a_recording(root))
    info = RecordingInfo(root=root)
    sessions: set[int] = set()
    symbols: set[str] = set()
    for venue, _, day, d in partitions(root):
        if venue not in info.venues:
            info.venues.append(venue)
        if day not in info.days:
            info.days.append(day)
        for f in data_files(d):
            try:
                t = pq.read_table(f.path, columns=["session", "recv_ns", "venue_ts", "kind", "symbol"])
            except Exception as err:
                raise RecordingError(f"unreadable recording file {f.path}: {err}") from None
            info.files += 1
            info.bytes += f.path.stat().st_size
            info.rows += t.num_rows
            if t.num_rows == 0:
                continue
            sessions.update(pc.unique(t["session"]).to_pylist())
            symbols.update(s for s in pc.unique(t["symbol"]).to_pylist() if s and s != "_")
            for k, n in zip(*_value_counts(t["kind"])):
                info.by_kind[k] = info.by_kind.get(k, 0) + n
            lo, hi = pc.min(t["recv_ns"]).as_py(), pc.max(t["recv_ns"]).as_py()
            info.first_ns = lo if info.first_ns is None else min(info.first_ns, lo)
            info.last_ns = hi if info.last_ns is None else max(info.last_ns, hi)
            vts = pc.min_max(t["venue_ts"]).as_py()
            if vts["min"] is not None:
                info.first_venue_ms = vts["min"] if info.first_venue_ms is None else min(info.first_venue_ms, vts["min"])
                info.last_venue_ms = vts["max"] if info.last_venue_ms is None else max(info.last_venue_ms, vts["max"])
    info.sessions = len(sessions)
    info.symbols = sorted(symbols)
    info.days.sort()
    if info.by_kind.get(META):
        info.meta = [json.loads(r[12]) for r in read_rows(root, kinds=[META])]
    return info


def _value_counts(col: Any) -> tuple[list[str], list[int]]:
    import pyarrow.compute as pc

    vc = pc.value_counts(col.cast("string") if hasattr(col.type, "value_type") else col)
    return vc.field("values").to_pylist(), vc.field("counts").to_pylist()
