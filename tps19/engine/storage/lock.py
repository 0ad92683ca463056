"""One engine per database and mode: an OS file lock beside the database.

Two engines on one file each write absolute balances from their own memory, so the second
one's bookings silently overwrite the first's. ``flock`` is released by the kernel when the
holder dies (even by SIGKILL), so a crash never leaves a stale lock; the file's content (who
holds it) is only there to name the holder in the refusal.

Paper and live book into separate rows (balances, orders, fills, kill switch and snapshots
are all keyed or filtered by mode; paper fill ids are ``paper-...`` and paper orders have no
venue id), so one paper and one live engine may share a file: the lock is per mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from collections.abc import AsyncIterator
from typing import Any

from .errors import DatabaseInUse, StorageError

__all__ = ["DatabaseInUse", "InstanceLock", "describe_holder", "instance_lock", "lock_path"]


def lock_path(db_path: str | Path, mode: str) -> Path:
    """``tps19.db`` -> ``tps19.db.paper.lock``, beside the real file (symlinks resolved, so
    two spellings of one database share one lock)."""
    real = Path(db_path).expanduser().resolve()
    return real.with_name(f"{real.name}.{mode}.lock")


def describe_holder(info: dict[str, Any]) -> str:
    since = info.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if isinstance(since, (int, float)) else "?"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, {info.get('mode', '?')} since {when}"


class InstanceLock:
    """Held from :meth:`acquire` to :meth:`release` (or the process's end)."""

    def __init__(self, db_path: str | Path, mode: str) -> None:
        self.db_path = Path(db_path)
        self.mode = mode
        self.path = lock_path(db_path, mode)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DatabaseInUse` naming the holder (never waits)."""
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # no O_TRUNC: until we hold the lock, the file names the current holder
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise StorageError(f"database {self.db_path}: cannot create lock file {self.path}: "
                               f"{err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read(fd)
            os.close(fd)
            who = describe_holder(holder) if holder else "another process"
            raise DatabaseInUse(f"database {self.db_path} is in use by another {self.mode} engine ({who}); "
                                f"stop it or use another --db") from None
        except OSError as err:
            os.close(fd)
            raise StorageError(f"database {self.db_path}: cannot lock {self.path}: {err.strerror or err}") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "mode": self.mode, "since": round(time.time(), 3),
                "db": str(self.db_path)}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError:
            pass  # the lock holds regardless; only the holder's name in a refusal is lost
        self._fd = fd

    async def acquire_async(self) -> None:
        await asyncio.to_thread(self.acquire)

    async def release_async(self) -> None:
        self.release()

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the flock

    @staticmethod
    def _read(fd: int) -> dict[str, Any] | None:
        try:
            data = json.loads(os.pread(fd, 4096, 0) or b"null")
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


@contextlib.asynccontextmanager
async def engine_locks(db: Any, modes: tuple[str, ...] = ("paper", "live")) -> AsyncIterator[None]:
    """Hold the engine lock of every mode on ``db`` (a Database): no engine may run while
    the schema changes or a backup is restored."""
    held: list[Any] = []
    try:
        for mode in modes:
            lk = instance_lock(db, mode)
            await lk.acquire_async()
            held.append(lk)
        yield
    finally:
        for lk in reversed(held):
            await lk.release_async()


def instance_lock(db: Any, mode: str) -> Any:
    """The engine lock for ``db`` (a Database) in ``mode``: a file lock beside a SQLite file, an
    advisory lock on a PostgreSQL server."""
    if db.path is not None:
        return InstanceLock(db.path, mode)
    from .server_lock import ServerLock

    return ServerLock(db.url, db.name, mode)
