"""The engine lock on a PostgreSQL server: a session advisory lock per mode.

The server releases it when the holding connection ends (a crash, a SIGKILL, a lost network), so
like the file lock it never goes stale; the holder is named from pg_stat_activity.
"""

from __future__ import annotations

import os
import socket
import zlib
from typing import Any

from .errors import DatabaseInUse, StorageError, cause_of

LOCK_CLASS = 0x7195  # first key of pg_advisory_lock(int, int): "TPS19"; the second is the mode's


def lock_key(mode: str) -> int:
    return zlib.crc32(mode.encode()) & 0x7FFFFFFF


class ServerLock:
    def __init__(self, url: str, name: str, mode: str) -> None:
        self.url = url
        self.name = name
        self.mode = mode
        self._conn: Any = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def holder_name(self) -> str:
        """What a refused engine is told about this one (pg_stat_activity.application_name)."""
        return f"pid {os.getpid()} on {socket.gethostname()}, {self.mode}"

    async def acquire_async(self) -> None:
        """Take the lock or raise :class:`DatabaseInUse` naming the holder (never waits)."""
        if self._conn is not None:
            return
        import asyncpg
        from sqlalchemy.engine import make_url

        u = make_url(self.url)
        try:
            conn = await asyncpg.connect(user=u.username, password=u.password, host=u.host, port=u.port or 5432,
                                         database=u.database, timeout=30,
                                         server_settings={"application_name": self.holder_name()[:63]})
        except Exception as err:
            raise StorageError(f"database {self.name}: connect failed: {cause_of(err)}") from None
        try:
            got = await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, lock_key(self.mode))
            if not got:
                holder = await conn.fetchrow(
                    "SELECT a.application_name AS app, a.client_addr::text AS addr, a.backend_start FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                    "AND l.classid = $1 AND l.objid = $2 AND l.granted", LOCK_CLASS, lock_key(self.mode))
                who = (f"{holder['app'] or 'a session'} from {holder['addr'] or 'a local socket'}, since "
                       f"{holder['backend_start']:%Y-%m-%d %H:%M:%S %Z}") if holder else "another session"
                raise DatabaseInUse(f"database {self.name} is in use by another {self.mode} engine ({who}); "
                                    "stop it or use another database")
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def release_async(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()  # ending the session releases the lock
            except Exception:  # noqa: S110  (the server drops the lock with the session anyway)
                conn.terminate()

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()
