"""The recording's background writer: bounded memory, closed files only, survives SIGKILL.

The event loop only appends a row to the open batch (a list, under a lock held for an append).
A writer thread takes the open batch when it is full or old enough, turns it into one Parquet
file per partition under a temporary name, fsyncs it, renames it and fsyncs the directory: a
file a reader can see is complete. SIGKILL therefore loses the open batch and the one being
written at most (``max_unwritten_rows``); a batch spanning several partitions may be killed
between its files, so its rows are then in some partitions and not in others (never a partial
file, never an older row missing). When the batches of a partition pass the rotation
size, at day end and at close they are compacted into one segment (the same temporary name,
fsync, rename dance; the parts go only after the segment is in place). Retention removes day
partitions older than ``retention_days``.

If the disk cannot keep up, batches waiting for the thread are bounded (``max_pending``); past
that a batch is dropped, counted and reported, never allowed to grow memory or block the loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .format import COLUMNS, Row, covered_parts, data_files, partition, partitions, schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriterSettings:
    batch_rows: int = 5000  # a batch is written when it holds this many rows ...
    batch_s: float = 1.0  # ... or is this old
    max_pending: int = 2  # batches waiting for the thread; past that they are merged into the last
    max_buffered_rows: int = 200_000  # rows waiting for the thread before new batches are dropped
    rotate_bytes: int = 64 << 20  # parts of a partition are compacted once they pass this size
    retention_days: int | None = None  # day partitions older than this are removed
    compression_level: int = 3

    @property
    def max_unwritten_rows(self) -> int:
        """What SIGKILL can lose at most: the open batch, the pending ones, the one being written
        (while the disk keeps up: the open batch and the one being written)."""
        return self.batch_rows + self.max_buffered_rows


@dataclass
class WriterStats:
    rows: int = 0
    files: int = 0
    segments: int = 0
    bytes: int = 0
    dropped_rows: int = 0
    errors: int = 0
    last_error: str = ""
    write_s: float = 0.0  # time the thread spent encoding and writing


def _day(recv_ns: int) -> str:
    return dt.datetime.fromtimestamp(recv_ns / 1e9, tz=dt.timezone.utc).strftime("%Y-%m-%d")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_closed(table: Any, dest: Path, level: int = 3) -> int:
    """Write ``table`` to ``dest`` so that ``dest`` exists only complete: temporary name, fsync,
    rename, fsync of the directory. Returns the file's size."""
    import pyarrow.parquet as pq

    tmp = dest.with_name("." + dest.name + ".tmp")
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh, compression="zstd", compression_level=level)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, dest)
    _fsync_dir(dest.parent)
    return dest.stat().st_size


class RecordingWriter:
    def __init__(self, root: Path, venue: str, settings: WriterSettings | None = None,
                 on_problem: Callable[[str, dict[str, Any]], None] | None = None,
                 convert: Callable[[list[Any]], list[Row]] | None = None) -> None:
        self.root = Path(root)
        self.venue = venue
        self.settings = settings or WriterSettings()
        self.session = time.time_ns()
        self.stats = WriterStats()
        self.on_problem = on_problem
        # items added -> rows, run in the thread (the loop only appends what it received)
        self.convert = convert
        self._rows: list[Any] = []
        self._opened = time.monotonic()
        self._lock = threading.Lock()
        self._pending: deque[list[Any]] = deque()
        self._wake = threading.Condition()
        self._batch_no = 0
        # per partition: parts written this session not yet compacted, with their sizes
        self._open_parts: dict[Path, list[tuple[int, Path, int]]] = {}
        self._closing = False
        self._writing = False
        self._thread: threading.Thread | None = None
        self._today = ""

    # -- the loop side ---------------------------------------------------------------
    def start(self) -> RecordingWriter:
        import pyarrow.parquet  # noqa: F401  (imported once here, not inside the first batch)

        self.root.mkdir(parents=True, exist_ok=True)
        self._sweep()
        self._apply_retention()
        self._thread = threading.Thread(target=self._run, name="tps19-recorder", daemon=True)
        self._thread.start()
        return self

    def add(self, row: Any) -> None:
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= self.settings.batch_rows
        if full:
            self._hand_over()

    def _hand_over(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
            self._opened = time.monotonic()
        if not rows:
            return
        with self._wake:
            buffered = sum(len(b) for b in self._pending)
            if buffered + len(rows) > self.settings.max_buffered_rows:
                self.stats.dropped_rows += len(rows)
                self._problem("recording writer behind: batch dropped", rows=len(rows),
                              dropped_total=self.stats.dropped_rows)
                return
            if len(self._pending) >= self.settings.max_pending:
                self._pending[-1].extend(rows)  # a burst: fewer, larger files
            else:
                self._pending.append(rows)
            self._wake.notify()

    def sync(self, timeout: float | None = None) -> bool:
        """Hand over the open batch and wait until every batch is in a closed file (not from the
        event loop: it blocks). False if ``timeout`` passed first."""
        self._hand_over()
        with self._wake:
            return self._wake.wait_for(lambda: not self._pending and not self._writing, timeout)

    def close(self) -> None:
        """Write what is open, compact every partition of this session, stop the thread."""
        self._hand_over()
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _problem(self, message: str, **fields: Any) -> None:
        log.warning("%s %s", message, fields)
        if self.on_problem is not None:
            try:
                self.on_problem(message, fields)
            except Exception:  # a listener must not break recording
                pass

    # -- the thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closing:
                    self._wake.wait(timeout=self.settings.batch_s)
                    if not self._pending and time.monotonic() - self._opened >= self.settings.batch_s:
                        break  # an old open batch on a quiet market: write it too
                batch = self._pending.popleft() if self._pending else None
                closing = self._closing and not self._pending
                self._writing = batch is not None
            if batch is None and not closing:
                with self._lock:
                    old = self._rows and time.monotonic() - self._opened >= self.settings.batch_s
                if old:
                    self._hand_over()
                continue
            if batch is not None:
                self._guarded(self._write_batch, batch)
                with self._wake:
                    self._writing = False
                    self._wake.notify_all()
            if closing:
                self._guarded(self._compact_all)
                return

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as err:  # a full disk must not end the thread: report, keep going
            self.stats.errors += 1
            self.stats.last_error = f"{type(err).__name__}: {err}"[:200]
            self._problem("recording write failed", error=self.stats.last_error)

    def _write_batch(self, items: list[Any]) -> None:
        import pyarrow as pa

        t0 = time.perf_counter()
        rows: list[Row] = self.convert(items) if self.convert is not None else items
        self._batch_no += 1
        n = self._batch_no
        by_key: dict[tuple[str, int], list[Row]] = {}
        for r in rows:  # (symbol, UTC day number): one Path per partition, not one per row
            key = (r[4], r[1] // 86_400_000_000_000)
            group = by_key.get(key)
            if group is None:
                group = by_key[key] = []
            group.append(r)
        groups: dict[Path, list[Row]] = {}
        for (symbol, _), group in by_key.items():
            groups.setdefault(partition(self.root, self.venue, symbol, _day(group[0][1])), []).extend(group)
        sch = schema()
        day_changed = False
        if not groups:
            self.stats.write_s += time.perf_counter() - t0
            return
        for part_dir, group in groups.items():
            part_dir.mkdir(parents=True, exist_ok=True)
            cols = list(zip(*group))
            arrays = [pa.array([self.session] * len(group), pa.int64())]
            arrays += [pa.array(cols[i], sch.field(i + 1).type) for i in range(len(COLUMNS))]
            table = pa.Table.from_arrays(arrays, schema=sch)
            dest = part_dir / f"part-{self.session}-{n:08d}.parquet"
            size = write_closed(table, dest, self.settings.compression_level)
            self.stats.files += 1
            self.stats.bytes += size
            self.stats.rows += len(group)
            parts = self._open_parts.setdefault(part_dir, [])
            parts.append((n, dest, size))
            if sum(s for _, _, s in parts) >= self.settings.rotate_bytes:
                self._compact(part_dir)
            day = part_dir.name[5:]
            if day > self._today:
                day_changed = bool(self._today)
                self._today = day
        if day_changed:  # day end: yesterday's partitions become one segment each, old days go
            for part_dir in [p for p in self._open_parts if p.name[5:] < self._today]:
                self._compact(part_dir)
            self._apply_retention()
        self.stats.write_s += time.perf_counter() - t0

    def _compact(self, part_dir: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = self._open_parts.pop(part_dir, [])
        if len(parts) < 2:
            return  # one part is already one closed file
        tables = [pq.read_table(p) for _, p, _ in parts]
        table = pa.concat_tables(tables)
        dest = part_dir / f"seg-{self.session}-{parts[0][0]:08d}-{parts[-1][0]:08d}.parquet"
        size = write_closed(table, dest, self.settings.compression_level)
        self.stats.segments += 1
        self.stats.bytes += size - sum(s for _, _, s in parts)
        for _, p, _ in parts:  # only once the segment holding them is in place
            p.unlink(missing_ok=True)
        _fsync_dir(part_dir)

    def _compact_all(self) -> None:
        for part_dir in list(self._open_parts):
            self._compact(part_dir)

    def _sweep(self) -> None:
        """Leftovers of a crashed writer: temporary files, and parts a segment already holds."""
        for _, _, _, part_dir in partitions(self.root):
            for tmp in part_dir.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
            for p in covered_parts(part_dir):
                p.unlink(missing_ok=True)

    def _apply_retention(self) -> None:
        days = self.settings.retention_days
        if days is None:
            return
        cutoff = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=days)).isoformat()
        import shutil

        for _, _, day, part_dir in partitions(self.root):
            if day < cutoff and part_dir not in self._open_parts:
                shutil.rmtree(part_dir, ignore_errors=True)


def files_of(root: Path) -> list[Path]:
    """Every closed data file a reader uses, all partitions."""
    return [f.path for _, _, _, d in partitions(root) for f in data_files(d)]
