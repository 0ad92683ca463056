"""The engine lock on a PostgreSQL server: session advisory locks on their own connection.

Advisory locks are per database, so the key (database, mode, venue) is the database the lock is
taken in and (LOCK_CLASS, key of mode and venue). Every engine also holds (LOCK_CLASS, 0) shared;
maintenance (`tps19 db upgrade|restore`) takes it exclusively. The server releases them when the
holding connection ends (a crash, a SIGKILL, a lost network, a server restart,
``pg_terminate_backend``): the engine watches that connection (:meth:`ServerLock.problem`,
storage/watch.py), because a lock lost that way is silently gone and a second engine could start.
The holder is named from pg_stat_activity.
"""

from __future__ import annotations

import asyncio
import os
import socket
import zlib
from collections.abc import Callable
from typing import Any

from .errors import DatabaseInUse, StorageError, cause_of

LOCK_CLASS = 0x7195  # first key of pg_advisory_lock(int, int): "TPS19"
DATABASE_KEY = 0  # second key of the database-wide lock (shared by engines)
CHECK_TIMEOUT_S = 5.0

_HOLDERS = ("SELECT a.application_name AS app, a.client_addr::text AS addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.classid = $1 "
            "AND l.objid = $2 AND l.granted AND l.database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) AND a.pid <> pg_backend_pid()")


def lock_key(mode: str, venue: str = "sim") -> int:
    return zlib.crc32(f"{mode}:{venue}".encode()) & 0x7FFFFFFF or 1


async def _connect(url: str, name: str, app: str) -> Any:
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    try:
        return await asyncpg.connect(user=u.username, password=u.password, host=u.host, port=u.port or 5432,
                                     database=u.database, timeout=30, server_settings={"application_name": app[:63]})
    except Exception as err:
        raise StorageError(f"database {name}: connect for the engine lock failed: {cause_of(err)}") from None


def _who(row: Any) -> str:
    if row is None:
        return "another session"
    return (f"{row['app'] or 'a session'} from {row['addr'] or 'a local socket'}, since "
            f"{row['backend_start']:%Y-%m-%d %H:%M:%S %Z}")


class ServerLock:
    def __init__(self, url: str, name: str, mode: str, venue: str = "sim") -> None:
        self.url = url
        self.name = name
        self.mode = mode
        self.venue = venue
        self._conn: Any = None
        self.on_lost: Callable[[], None] | None = None  # called (on the loop) when the connection ends

    @property
    def held(self) -> bool:
        return self._conn is not None

    def holder_name(self) -> str:
        """What a refused engine is told about this one (pg_stat_activity.application_name)."""
        return f"pid {os.getpid()} on {socket.gethostname()}, {self.mode} on {self.venue}"

    async def acquire_async(self) -> None:
        """Take the lock or raise :class:`DatabaseInUse` naming the holder (never waits)."""
        if self._conn is not None:
            return
        conn = await _connect(self.url, self.name, self.holder_name())
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock_shared($1, $2)", LOCK_CLASS, DATABASE_KEY):
                raise DatabaseInUse(f"database {self.name} is being upgraded or restored (`tps19 db ...` holds it); "
                                    "start the engine when that is done")
            key = lock_key(self.mode, self.venue)
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, key):
                holder = await conn.fetchrow(_HOLDERS, LOCK_CLASS, key)
                raise DatabaseInUse(f"database {self.name} is in use by another {self.mode} engine on {self.venue} "
                                    f"({_who(holder)}); stop it or use another database")
        except BaseException as err:
            conn.terminate()
            if isinstance(err, Exception) and not isinstance(err, StorageError):
                raise StorageError(f"database {self.name}: taking the engine lock failed: {cause_of(err)}") from None
            raise
        conn.add_termination_listener(self._terminated)
        self._conn = conn

    def _terminated(self, conn: Any) -> None:
        if conn is self._conn and self.on_lost is not None:
            self.on_lost()

    async def problem(self) -> str | None:
        """Why the lock is no longer held (its session ended or does not answer), or None."""
        conn = self._conn
        if conn is None:
            return "the engine lock is not held"
        if conn.is_closed():
            return f"database {self.name}: the engine lock's session ended (server restarted or session terminated)"
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await conn.fetchval("SELECT 1")
        except TimeoutError:
            return f"database {self.name}: the engine lock's session did not answer within {CHECK_TIMEOUT_S:g}s"
        except Exception as err:
            return f"database {self.name}: the engine lock's session ended: {cause_of(err)}"
        return None

    async def release_async(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                async with asyncio.timeout(CHECK_TIMEOUT_S):
                    await conn.close()  # ending the session releases the lock
            except Exception:  # noqa: S110  (the server drops the lock with the session anyway)
                conn.terminate()

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()


class ServerMaintenanceLock:
    """(LOCK_CLASS, 0) exclusively: no engine of any mode or venue runs on the database meanwhile."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self._conn: Any = None

    async def acquire_async(self) -> None:
        conn = await _connect(self.url, self.name, f"pid {os.getpid()} on {socket.gethostname()}, tps19 db")
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, DATABASE_KEY):
                holder = await conn.fetchrow(_HOLDERS, LOCK_CLASS, DATABASE_KEY)
                app = (holder["app"] or "") if holder is not None else ""
                mode = "paper" if ", paper" in app else "live" if ", live" in app else "TPS19"
                raise DatabaseInUse(f"database {self.name} is in use by another {mode} engine ({_who(holder)})")
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn

    async def release_async(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: S110
                conn.terminate()
