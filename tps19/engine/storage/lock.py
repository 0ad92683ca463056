"""One engine per database, mode and venue: OS file locks beside the database.

Two engines on one file each write absolute balances from their own memory, so the second
one's bookings silently overwrite the first's. ``flock`` is released by the kernel when the
holder dies (even by SIGKILL), so a crash never leaves a stale lock; the file's content (who
holds it) is only there to name the holder in the refusal.

The key is (database, mode, venue): paper and live book into separate rows (balances, orders,
fills, kill switch and snapshots are all keyed or filtered by mode), and so do two venues
(rows carry the exchange), so one engine per mode and venue may share a file. Every engine also
holds the database's own lock shared; maintenance (`tps19 db upgrade|restore`) takes it
exclusively, so it waits for no venue it does not know of.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import socket
import time
from pathlib import Path
from collections.abc import AsyncIterator
from typing import Any

from .errors import DatabaseInUse, StorageError

__all__ = ["DatabaseInUse", "InstanceLock", "MaintenanceLock", "describe_holder", "engine_locks", "instance_lock",
           "lock_path"]


def _venue_part(venue: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", venue) or "venue"


def lock_path(db_path: str | Path, mode: str, venue: str = "sim") -> Path:
    """``tps19.db`` -> ``tps19.db.paper.sim.lock``, beside the real file (symlinks resolved, so
    two spellings of one database share one lock)."""
    real = Path(db_path).expanduser().resolve()
    return real.with_name(f"{real.name}.{mode}.{_venue_part(venue)}.lock")


def db_lock_path(db_path: str | Path) -> Path:
    """``tps19.db`` -> ``tps19.db.lock``: shared by every engine, exclusive for maintenance."""
    real = Path(db_path).expanduser().resolve()
    return real.with_name(f"{real.name}.lock")


def _open_lock_file(path: Path, db_path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # no O_TRUNC: until we hold the lock, the file names the current holder
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as err:
        raise StorageError(f"database {db_path}: cannot create lock file {path}: {err.strerror or err}") from None


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def engine_holders(db_path: str | Path) -> list[dict[str, Any]]:
    """Who holds an engine lock on this file now (each lock file that is locked)."""
    real = Path(db_path).expanduser().resolve()
    found = []
    for path in sorted(real.parent.glob(f"{real.name}.*.*.lock")):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)  # nobody holds it
        except BlockingIOError:
            found.append(_read_holder(fd) or {"mode": path.name.split(".")[-3]})
        except OSError:
            pass
        finally:
            os.close(fd)
    return found


def describe_holder(info: dict[str, Any]) -> str:
    since = info.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since)) if isinstance(since, (int, float)) else "?"
    venue = f" on {info['venue']}" if info.get("venue") else ""
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, {info.get('mode', '?')}{venue} since {when}"


class InstanceLock:
    """Held from :meth:`acquire` to :meth:`release` (or the process's end)."""

    def __init__(self, db_path: str | Path, mode: str, venue: str = "sim") -> None:
        self.db_path = Path(db_path)
        self.mode = mode
        self.venue = venue
        self.path = lock_path(db_path, mode, venue)
        self.shared_path = db_lock_path(db_path)
        self._fd: int | None = None
        self._shared_fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DatabaseInUse` naming the holder (never waits)."""
        if self._fd is not None:
            return
        shared = _open_lock_file(self.shared_path, self.db_path)
        try:
            fcntl.flock(shared, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(shared)
            raise DatabaseInUse(f"database {self.db_path} is being upgraded or restored (`tps19 db ...` holds it); "
                                "start the engine when that is done") from None
        except OSError as err:
            os.close(shared)
            raise StorageError(f"database {self.db_path}: cannot lock {self.shared_path}: {err.strerror or err}") from None
        fd = _open_lock_file(self.path, self.db_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            os.close(shared)
            who = describe_holder(holder) if holder else "another process"
            raise DatabaseInUse(f"database {self.db_path} is in use by another {self.mode} engine on {self.venue} "
                                f"({who}); stop it or use another --db") from None
        except OSError as err:
            os.close(fd)
            os.close(shared)
            raise StorageError(f"database {self.db_path}: cannot lock {self.path}: {err.strerror or err}") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "mode": self.mode, "venue": self.venue,
                "since": round(time.time(), 3), "db": str(self.db_path)}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError:
            pass  # the lock holds regardless; only the holder's name in a refusal is lost
        self._fd = fd
        self._shared_fd = shared

    async def acquire_async(self) -> None:
        await asyncio.to_thread(self.acquire)

    async def release_async(self) -> None:
        self.release()

    def release(self) -> None:
        fd, self._fd = self._fd, None
        shared, self._shared_fd = self._shared_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the flock
        if shared is not None:
            os.close(shared)

    async def problem(self) -> str | None:
        """Why this lock no longer keeps other engines out (its file deleted or replaced, so a
        second engine would lock a new file), or None."""
        fd = self._fd
        if fd is None:
            return "the engine lock is not held"
        try:
            mine = os.fstat(fd)
            now = os.stat(self.path)
        except FileNotFoundError:
            return f"lock file {self.path} was deleted"
        except OSError as err:
            return f"lock file {self.path}: {err.strerror or err}"
        if (mine.st_dev, mine.st_ino) != (now.st_dev, now.st_ino):
            return f"lock file {self.path} was replaced"
        return None


class MaintenanceLock:
    """The database's own lock, exclusively: no engine (of any mode or venue) runs meanwhile."""

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self.path = db_lock_path(db_path)
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = _open_lock_file(self.path, self.db_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holders = engine_holders(self.db_path)
            if holders:
                h = holders[0]
                raise DatabaseInUse(f"database {self.db_path} is in use by another {h.get('mode', '?')} engine "
                                    f"({describe_holder(h)})") from None
            raise DatabaseInUse(f"database {self.db_path} is in use by another engine or `tps19 db` command") from None
        except OSError as err:
            os.close(fd)
            raise StorageError(f"database {self.db_path}: cannot lock {self.path}: {err.strerror or err}") from None
        self._fd = fd

    async def acquire_async(self) -> None:
        await asyncio.to_thread(self.acquire)

    async def release_async(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


@contextlib.asynccontextmanager
async def engine_locks(db: Any) -> AsyncIterator[None]:
    """Hold ``db`` (a Database) against every engine, whatever its mode or venue: no engine may
    run while the schema changes or a backup is restored."""
    if db.path is not None:
        lk: Any = MaintenanceLock(db.path)
    else:
        from .server_lock import ServerMaintenanceLock

        lk = ServerMaintenanceLock(db.url, db.name)
    await lk.acquire_async()
    try:
        yield
    finally:
        await lk.release_async()


def instance_lock(db: Any, mode: str, venue: str = "sim") -> Any:
    """The engine lock for ``db`` (a Database) in ``mode`` on ``venue``: a file lock beside a
    SQLite file, an advisory lock on a PostgreSQL server."""
    if db.path is not None:
        return InstanceLock(db.path, mode, venue)
    from .server_lock import ServerLock

    return ServerLock(db.url, db.name, mode, venue)
