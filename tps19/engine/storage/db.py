"""One SQLite file in WAL mode, opened through SQLAlchemy's async engine on aiosqlite.

The schema is versioned: ``SCHEMA_VERSION`` is what this code writes; ``MIGRATIONS`` maps a
version to the statements that bring the previous version up to it, so a later issue adds a
column by appending a migration, never by asking users to delete their database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel

from . import models  # noqa: F401  (registers the tables)
from .models import SchemaVersion

SCHEMA_VERSION = 1
MIGRATIONS: dict[int, list[str]] = {}


class SchemaTooNew(RuntimeError):
    pass


class Database:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///{self.path}"

    async def open(self) -> None:
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_async_engine(self.url, connect_args={"timeout": 30})

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

    async def schema_version(self) -> int:
        assert self.engine is not None
        async with self.engine.connect() as conn:
            return int((await conn.execute(text("SELECT version FROM schema_version"))).scalar_one())

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("database is not open")
        async with self._sessions() as s:
            yield s

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None
            self._sessions = None
