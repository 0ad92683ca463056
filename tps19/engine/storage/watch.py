"""What the engine stands on, watched while it runs: its lock and its database file.

- PostgreSQL: the advisory lock lives in one session. A server restart or
  ``pg_terminate_backend`` ends that session and the lock with it, silently: a second engine
  could start beside this one. The session is checked every second (and its end is noticed at
  once when the server closes it); on loss the engine halts orders, tries to take the lock back,
  and resumes only once it holds it again -- unless another engine held it meanwhile (then this
  engine's view of the database is stale: it stays halted until restarted).
- SQLite: the file opened at start must stay the file at that path (device and inode). Deleted
  or replaced (a restore copied over it, a cleanup script), the engine would book into a file no
  one sees, or into someone else's database: it halts until restarted. The lock file is checked
  the same way (deleted, a second engine would lock a new one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import DatabaseInUse

INTERVAL_S = 1.0


def file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class StorageWatch:
    """Calls ``on_change(reason)`` when the engine must stop placing orders, and
    ``on_change(None)`` when it may again."""

    def __init__(self, db: Any, lock: Any, on_change: Callable[[str | None], None],
                 interval_s: float = INTERVAL_S) -> None:
        self.db = db
        self.lock = lock
        self.on_change = on_change
        self.interval_s = interval_s
        self.problem: str | None = None
        self.permanent = False  # needs a restart
        self.identity = file_identity(db.path) if db.path is not None else None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.contested = False

    def start(self) -> None:
        if hasattr(self.lock, "on_lost"):
            self.lock.on_lost = self._wake.set  # the server closed the session: look now
        self._task = asyncio.create_task(self._run(), name="engine:storage-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self.problem is None:
                    reason = await self.check()
                    if reason is not None:
                        self._set(reason)
                elif not self.permanent:
                    await self._retake()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the watch itself must never die silently
                self._set(f"database {self.db.name}: the storage watch failed: {type(err).__name__}: {err}")

    async def check(self) -> str | None:
        """Why the engine may not trade on this database now, or None."""
        if self.db.path is not None:
            now = file_identity(self.db.path)
            if now is None:
                self.permanent = True
                return f"database file {self.db.path} was deleted under the running engine"
            if self.identity is not None and now != self.identity:
                self.permanent = True
                return f"database file {self.db.path} was replaced under the running engine"
            reason = await self.lock.problem()
            if reason is not None:
                self.permanent = True
            return reason
        return await self.lock.problem()

    async def _retake(self) -> None:
        self.lock.release()  # the dead session's connection
        try:
            await self.lock.acquire_async()
        except DatabaseInUse as err:
            self.contested = True
            self._set(f"{self.problem_root()}; another engine holds it now: {err}")
            return
        except Exception:  # the server is still down: keep trying, still halted
            return
        if self.contested:
            self.permanent = True
            self._set(f"{self.problem_root()}; taken back, but another engine held it meanwhile: "
                      "restart this engine (its view of the database may be stale)")
            return
        self._set(None)

    def problem_root(self) -> str:
        return (self.problem or "").split("; ")[0]

    def _set(self, reason: str | None) -> None:
        if reason == self.problem:
            return
        self.problem = reason
        self.on_change(reason)
