"""Bars handed to optimisation workers once, by memory map: the arrays are written to one file
(on /dev/shm, a RAM file system, where there is one) and every worker maps it read-only. The
workers share the pages; nothing is pickled per worker or per task, whatever the start method
(fork today, forkserver or spawn elsewhere)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MappedBars:
    """Where each array sits in the file: (key, dtype, byte offset, length)."""

    path: str
    columns: tuple[tuple[str, str, int, int], ...]

    def open(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for key, dtype, offset, n in self.columns:
            out[key] = (np.memmap(self.path, dtype=np.dtype(dtype), mode="r", offset=offset, shape=(n,))
                        if n else np.zeros(0, dtype=np.dtype(dtype)))
        return out


def write_mapped(data: dict[str, np.ndarray]) -> MappedBars:
    folder = "/dev/shm" if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else None
    fd, path = tempfile.mkstemp(prefix="tps19-bars-", suffix=".bin", dir=folder)
    columns, offset = [], 0
    with os.fdopen(fd, "wb") as f:
        for key, arr in data.items():
            a = np.ascontiguousarray(arr)
            a.tofile(f)
            columns.append((key, a.dtype.str, offset, len(a)))
            offset += a.nbytes
    return MappedBars(path, tuple(columns))


@contextmanager
def mapped_pool(data: dict[str, np.ndarray], jobs: int,
                initializer: Callable[[Any], None]) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers run ``initializer(MappedBars)`` once; the file goes away
    when the pool is done (mapped pages stay valid until the workers exit)."""
    mapped = write_mapped(data)
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=initializer, initargs=(mapped,))
    try:
        yield pool
    finally:
        pool.shutdown()
        Path(mapped.path).unlink(missing_ok=True)
