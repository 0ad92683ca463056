"""The recording format: one Parquet (zstd) schema, partitioned venue / symbol / day.

A recording directory holds ``venue=V/symbol=S/date=YYYY-MM-DD/`` partitions (hive style, so
``pyarrow.dataset`` reads it as is). Each partition holds closed files only:

* ``part-<session>-<n>.parquet``: one batch of the background writer (written under a temporary
  name, fsynced, renamed);
* ``seg-<session>-<first>-<last>.parquet``: the batches ``first..last`` of that session compacted
  into one file (at size rotation, day end or close). A part a segment covers is ignored by
  readers (a crash between the segment's rename and the parts' removal leaves both).

Every row carries the recording session's one global receive sequence (``gseq``) across venues,
symbols and channels: ``(session, gseq)`` is the order the engine received things in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Row kinds. Market data as the venue sent it (raw frame in ``raw``, levels parsed for speed):
BOOK = "book"  # a full book (snapshot): the book is reset to these levels
DELTA = "delta"  # changed levels (size 0 deletes)
TRADE = "trade"  # one frame of prints (``raw``)
TICKER = "ticker"
CANDLE = "candle"
# What the engine did with it (JSON in ``raw``):
VIEW_BOOK = "view.book"  # the feed published the book at ``seq`` (what strategies and the broker saw)
VIEW_TRADES = "view.trades"  # the feed published these prints (ids in raw)
VIEW_BAR = "view.bar"  # a bar the feed published (closed or forming)
WARMUP = "warmup"  # closed candles a strategy warmed up on
SIGNAL = "signal"  # a strategy's decision
DECISION = "decision"  # the order plan a target became (side, amount, the mark it was sized on)
ORDER = "order"  # an order's state change (OrderUpdate)
FILL = "fill"  # a fill (FillEvent)
EXECUTION = "execution"  # the book an order executed against (seq, ts) and why
BROKER_BOOK = "broker.book"  # the paper broker judged its resting orders on the book at ``seq``
BROKER_TRADES = "broker.trades"  # ... on these prints (ids in raw)
META = "meta"  # what was recorded: venue, symbols, markets, strategy, mode
MARKET_KINDS = frozenset({BOOK, DELTA, TRADE, TICKER, CANDLE})
ENGINE_KINDS = frozenset({VIEW_BOOK, VIEW_TRADES, VIEW_BAR, WARMUP, SIGNAL, DECISION, ORDER, FILL, EXECUTION, META,
                          BROKER_BOOK, BROKER_TRADES})

COLUMNS = ("gseq", "recv_ns", "venue_ts", "kind", "symbol", "seq", "prev_seq",
           "bid_px", "bid_qty", "ask_px", "ask_qty", "raw")
# One row as the writer receives it: the COLUMNS in order (levels as lists of floats or None).
Row = tuple[int, int, "int | None", str, str, "int | None", "int | None",
            "list[float] | None", "list[float] | None", "list[float] | None", "list[float] | None", str]

_PART = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
_SEG = re.compile(r"^seg-(\d+)-(\d+)-(\d+)\.parquet$")


def schema() -> Any:
    import pyarrow as pa

    levels = pa.list_(pa.float64())
    return pa.schema([
        ("session", pa.int64()), ("gseq", pa.int64()), ("recv_ns", pa.int64()), ("venue_ts", pa.int64()),
        ("kind", pa.dictionary(pa.int8(), pa.string())), ("symbol", pa.string()), ("seq", pa.int64()),
        ("prev_seq", pa.int64()), ("bid_px", levels), ("bid_qty", levels), ("ask_px", levels),
        ("ask_qty", levels), ("raw", pa.string()),
    ])


def symbol_dir(symbol: str) -> str:
    """A unified symbol as a directory name (BTC/USDT -> BTC_USDT; ':' of derivatives too)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", symbol) or "_"


def partition(root: Path, venue: str, symbol: str, day: str) -> Path:
    return root / f"venue={symbol_dir(venue)}" / f"symbol={symbol_dir(symbol)}" / f"date={day}"


@dataclass(frozen=True)
class DataFile:
    path: Path
    session: int
    first: int  # batch numbers covered
    last: int
    segment: bool


def data_files(part_dir: Path) -> list[DataFile]:
    """The closed files of one partition a reader should read: temporary files are never listed,
    and parts covered by a segment of their session are left out."""
    parts: list[DataFile] = []
    segs: list[DataFile] = []
    try:
        names = sorted(p.name for p in part_dir.iterdir())
    except FileNotFoundError:
        return []
    for name in names:
        if m := _PART.match(name):
            s, n = int(m.group(1)), int(m.group(2))
            parts.append(DataFile(part_dir / name, s, n, n, False))
        elif m := _SEG.match(name):
            segs.append(DataFile(part_dir / name, int(m.group(1)), int(m.group(2)), int(m.group(3)), True))
    covered = [f for f in parts if any(s.session == f.session and s.first <= f.first <= s.last for s in segs)]
    return sorted(segs + [f for f in parts if f not in covered], key=lambda f: (f.session, f.first))


def covered_parts(part_dir: Path) -> list[Path]:
    """Parts a segment already holds (left behind by a crash during compaction)."""
    listed = {f.path for f in data_files(part_dir)}
    return [p for p in part_dir.glob("part-*.parquet") if p not in listed and _PART.match(p.name)]


def partitions(root: Path) -> list[tuple[str, str, str, Path]]:
    """(venue, symbol dir, day, path) of every partition under ``root``."""
    out = []
    for v in sorted(root.glob("venue=*")):
        for s in sorted(v.glob("symbol=*")):
            for d in sorted(s.glob("date=*")):
                out.append((v.name[6:], s.name[7:], d.name[5:], d))
    return out
