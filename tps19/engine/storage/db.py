"""One SQLite file in WAL mode, opened through SQLAlchemy's async engine on aiosqlite.

The files are private (0600): the database file is created before SQLite opens it, and SQLite
gives its -wal and -shm files the database file's mode. The engine has a write probed at open,
so a database that cannot be written is refused at start rather than at the first fill. Every
error leaves this module as one line (``errors.StorageError``).

The schema is versioned: ``SCHEMA_VERSION`` is what this code writes; ``MIGRATIONS`` maps a
version to the statements that bring the previous version up to it, so a later issue adds a
column by appending a migration, never by asking users to delete their database.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel

from . import errors, models  # noqa: F401  (models registers the tables)
from .errors import DatabaseReadOnly, StorageError, one_line, storage_error
from .models import SchemaVersion

SCHEMA_VERSION = 1
MIGRATIONS: dict[int, list[str]] = {}


class SchemaTooNew(StorageError):
    pass


def create_private(path: Path) -> None:
    """Create the database file 0600 if it does not exist (SQLite would create it 0644)."""
    if str(path) == ":memory:":
        return
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Database:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///{self.path}"

    async def open(self, *, probe_write: bool = False) -> None:
        """Open (creating, migrating); raises a one-line StorageError.

        ``probe_write``: refuse now if the database cannot be written (a read-only file or
        directory opens and reads fine, so only a write shows it). Off for readers such as a
        backtest on a read-only history file."""
        try:
            await asyncio.to_thread(create_private, self.path)
        except OSError as err:
            raise StorageError(f"database {self.path}: cannot create: {one_line(err.strerror or str(err))}") from None
        try:
            await self._open(probe_write)
        except Exception as err:
            await self.close()
            raise self._explain(storage_error(self.path, "open", err)) from None

    def _explain(self, err: StorageError) -> StorageError:
        """Name the usual reason a database cannot be written (only on failure: as root,
        ``os.access`` says yes to everything, which is also what root's writes get)."""
        if isinstance(err, SchemaTooNew):
            return err
        directory = self.path.parent
        if directory.is_dir() and not os.access(directory, os.W_OK | os.X_OK):
            return DatabaseReadOnly(f"database {self.path}: its directory {directory} is not writable ({err.cause})",
                                    err.cause)
        if isinstance(err, DatabaseReadOnly) or (self.path.is_file() and not os.access(self.path, os.W_OK)):
            return DatabaseReadOnly(f"database {self.path} is read-only ({err.cause})", err.cause)
        return err

    async def _open(self, probe_write: bool) -> None:
        self.engine = create_async_engine(self.url, connect_args={"timeout": 30})
        errors.install(self.engine.sync_engine, self.path)

        @event.listens_for(self.engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
            row = (await conn.execute(text("SELECT version FROM schema_version WHERE id = 1"))).first()
            if row is None:
                await conn.execute(
                    SchemaVersion.__table__.insert().values(id=1, version=SCHEMA_VERSION)  # type: ignore[attr-defined]
                )
            else:
                current = int(row[0])
                if current > SCHEMA_VERSION:
                    raise SchemaTooNew(
                        f"database {self.path} has schema v{current}, this TPS19 knows v{SCHEMA_VERSION}"
                    )
                for v in range(current + 1, SCHEMA_VERSION + 1):
                    for stmt in MIGRATIONS.get(v, []):
                        await conn.execute(text(stmt))
                    await conn.execute(text("UPDATE schema_version SET version = :v WHERE id = 1"), {"v": v})
            if probe_write:
                await conn.execute(text("UPDATE schema_version SET version = version WHERE id = 1"))

    async def schema_version(self) -> int:
        assert self.engine is not None
        async with self.engine.connect() as conn:
            return int((await conn.execute(text("SELECT version FROM schema_version"))).scalar_one())

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        if self._sessions is None:
            raise StorageError(f"database {self.path} is not open")
        async with self._sessions() as s:
            yield s

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None
            self._sessions = None
