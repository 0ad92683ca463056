"""The database, opened through SQLAlchemy's async engine: a SQLite file (aiosqlite, WAL mode)
or a PostgreSQL server (asyncpg).

The SQLite files are private (0600): the database file is created before SQLite opens it, and
SQLite gives its -wal and -shm files the database file's mode. The engine has a write probed at
open, so a database that cannot be written is refused at start rather than at the first fill.
Every error leaves this module as one line (``errors.StorageError``).

The schema is versioned with Alembic (``migrate.py``, ``migrations/``): a new database is created
at the head revision; one at an older revision is refused with a line saying to run
``tps19 db upgrade`` (which calls :meth:`Database.upgrade`), one at an unknown (newer) revision
is refused as well.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from . import errors, migrate
from .errors import DatabaseReadOnly, SchemaOutdated, SchemaTooNew, StorageError, one_line, storage_error
from .target import Target, parse

__all__ = ["Database", "SchemaOutdated", "SchemaTooNew", "create_private"]

# A write that changes nothing, on a table every database at any revision has (health checks use it).
PROBE = text("UPDATE alembic_version SET version_num = version_num")


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
    def __init__(self, target: str | Path) -> None:
        self.target: Target = parse(target)
        self.engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def path(self) -> Path | None:
        """The SQLite file (None on a server)."""
        return self.target.path

    @property
    def name(self) -> str:
        """The path, or the URL without its password: what messages name."""
        return self.target.name

    @property
    def url(self) -> str:
        return self.target.url

    @property
    def dialect(self) -> str:
        return "sqlite" if self.target.is_sqlite else "postgresql"

    async def open(self, *, probe_write: bool = False, create: bool = True) -> None:
        """Open (creating a new database at the head revision); raises a one-line StorageError,
        :class:`SchemaOutdated` / :class:`SchemaTooNew` on another revision.

        ``probe_write``: refuse now if the database cannot be written (a read-only file or
        directory opens and reads fine, so only a write shows it). Off for readers such as a
        backtest on a read-only history file.

        ``create`` False (commands that only read: `tps19 models`, a backtest of stored bars): a
        missing file or an empty database is refused in one line instead of being created and
        migrated (a mistyped --db used to leave a new database behind and say "no models yet")."""
        if not create and self.target.path is not None:
            if not self.target.path.exists():
                raise StorageError(f"database {self.name} does not exist (this command only reads and creates none: "
                                   "check --db / TPS19_DATABASE__PATH)")
            if self.target.path.is_file() and self.target.path.stat().st_size == 0:
                # not even opened: SQLite's WAL pragma would write a header into it
                raise StorageError(f"database {self.name} is empty: it holds no TPS19 schema (this command only "
                                   "reads and creates none: check --db / TPS19_DATABASE__PATH)")
        await self._run(self._open, probe_write, create, create=create)

    async def upgrade(self) -> tuple[str | None, str]:
        """Migrate to the head revision (``tps19 db upgrade``); returns (from, to) revisions.
        The database stays open."""
        return await self._run(self._upgrade)

    async def _run(self, step, *args, create: bool = True):  # type: ignore[no-untyped-def]
        if self.target.path is not None and create:
            try:
                await asyncio.to_thread(create_private, self.target.path)
            except OSError as err:
                raise StorageError(f"database {self.name}: cannot create: "
                                   f"{one_line(err.strerror or str(err))}") from None
        try:
            return await step(*args)
        except Exception as err:
            await self.close()
            raise self._explain(storage_error(self.name, "open", err)) from None

    def _explain(self, err: StorageError) -> StorageError:
        """Name the usual reason a database cannot be written (only on failure: as root,
        ``os.access`` says yes to everything, which is also what root's writes get)."""
        path = self.target.path
        if isinstance(err, (SchemaTooNew, SchemaOutdated)) or path is None:
            return err
        directory = path.parent
        if directory.is_dir() and not os.access(directory, os.W_OK | os.X_OK):
            return DatabaseReadOnly(f"database {path}: its directory {directory} is not writable ({err.cause})",
                                    err.cause)
        if isinstance(err, DatabaseReadOnly) or (path.is_file() and not os.access(path, os.W_OK)):
            return DatabaseReadOnly(f"database {path} is read-only ({err.cause})", err.cause)
        return err

    def _connect(self) -> AsyncEngine:
        if self.target.is_sqlite:
            engine = create_async_engine(self.url, connect_args={"timeout": 30})

            @event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        else:
            engine = create_async_engine(self.url, connect_args={"timeout": 30}, pool_pre_ping=True)
        errors.install(engine.sync_engine, self.name)
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        return engine

    async def _open(self, probe_write: bool, create: bool = True) -> None:
        async with self._connect().begin() as conn:
            st = await conn.run_sync(migrate.state)
            if st.empty and not create:
                raise StorageError(f"database {self.name} is empty: it holds no TPS19 schema (this command only "
                                   "reads and creates none: check --db / TPS19_DATABASE__PATH)")
            if st.empty:
                await conn.run_sync(migrate.create)
            else:
                migrate.check(st, self.name)
            if probe_write:
                await conn.execute(PROBE)

    async def _upgrade(self) -> tuple[str | None, str]:
        async with self._connect().begin() as conn:
            return await conn.run_sync(migrate.upgrade)

    async def probe_write(self) -> None:
        """One no-op write, committed: raises (one line) when the database does not take writes."""
        async with self.session() as s:
            await s.execute(PROBE)
            await s.commit()

    async def peek_revision(self) -> str | None:
        """The revision of a database not opened (``tps19 db current``): neither created nor
        checked; None when it is empty or (a file) does not exist."""
        if self.target.path is not None and not self.target.path.exists():
            return None
        try:
            async with self._connect().connect() as conn:
                return (await conn.run_sync(migrate.state)).effective
        except Exception as err:
            await self.close()
            raise self._explain(storage_error(self.name, "open", err)) from None

    async def check_schema(self) -> None:
        """Raise :class:`SchemaOutdated` / :class:`SchemaTooNew` if the database is at another
        revision than this code's head (an empty or missing one is fine: opening creates it).
        The entry points call it before the desk starts, so the refusal is one line on the
        terminal, not a screen."""
        try:
            rev = await self.peek_revision()
            if rev is not None:
                async with self._connect().connect() as conn:
                    migrate.check(await conn.run_sync(migrate.state), self.name)
        finally:
            await self.close()

    async def revision(self) -> str | None:
        """The schema revision the database is at (a pre-Alembic v1 database: the baseline)."""
        assert self.engine is not None, "database is not open"
        async with self.engine.connect() as conn:
            return (await conn.run_sync(migrate.state)).effective

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        if self._sessions is None:
            raise StorageError(f"database {self.name} is not open")
        async with self._sessions() as s:
            yield s

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None
            self._sessions = None
