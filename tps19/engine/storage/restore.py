"""Restore a backup (``backup.py``) into the configured database.

Refused when the database already holds data, unless forced; the caller holds both engine locks
(no engine may write meanwhile). SQLite: the backup API copies the file's pages into the
database. PostgreSQL: the archive's SQL (``pg_restore -f -``) runs after ``DROP SCHEMA public
CASCADE`` in ONE transaction, so a restore that fails leaves the database as it was.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

from .backup import _run_tool, kind_of, libpq
from .db import create_private
from .errors import StorageError, one_line
from .target import Target, parse

# pg_dump >= 15.14 brackets its SQL with psql meta-commands (\restrict KEY / \unrestrict KEY, against
# CVE-2025-8714); the script runs through asyncpg, not psql, so they are dropped
_PSQL_META = re.compile(r"^\\(?:un)?restrict [A-Za-z0-9]+$", re.MULTILINE)
TPS19_TABLES = {"alembic_version", "schema_version"}  # one of them marks a TPS19 database


def check_kind(src: Path, target: str | Path) -> str:
    """The backup's kind, if it can go into ``target`` (a SQLite copy into a file, a pg_dump
    archive into a server); else a one-line refusal."""
    t = parse(target)
    kind = kind_of(src)
    if (kind == "sqlite") != t.is_sqlite:
        want = "a SQLite file (--db PATH)" if kind == "sqlite" else "a PostgreSQL database (--db postgresql+asyncpg://…)"
        raise StorageError(f"backup {src} is a {'SQLite database' if kind == 'sqlite' else 'pg_dump archive'}: "
                           f"restore it into {want}, not {t.name}")
    return kind


async def restore(src: Path, target: str | Path, *, force: bool = False) -> None:
    t = parse(target)
    if check_kind(src, target) == "sqlite":
        await asyncio.to_thread(_sqlite_restore, src, t, force)
    else:
        await _pg_restore(src, t, force)


def check_backup_revision(src: Path, revision: str | None) -> None:
    """A backup written by a newer TPS19 (a schema revision this code does not know) is refused
    before anything is replaced: restoring it would leave a database no command here can open,
    and `tps19 db upgrade` cannot downgrade it."""
    from . import migrate

    if revision is None:
        return
    known = {s.revision for s in migrate.scripts().walk_revisions()}
    if revision not in known:
        raise StorageError(f"backup {src} has schema revision {revision}, this TPS19's newest is {migrate.head()}: "
                           "it was written by a newer TPS19; restore it with that version (nothing was changed)")


# backup.py dumps rows as INSERTs (pg_dump --inserts); COPY as pg_dump writes by default
_PG_REVISION = re.compile(rb"INSERT INTO public\.alembic_version VALUES\s*\(\s*'([^']+)'\)"
                          rb"|COPY public\.alembic_version \(version_num\) FROM stdin;\n([^\n\\]+)\n")


def _refuse_if_full(t: Target, tables: set[str], force: bool) -> None:
    if tables and not force:
        raise StorageError(f"database {t.name} already holds {len(tables)} tables: "
                           "give --force to replace it with the backup (or restore into a new one)")


def _sqlite_tables(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _sqlite_restore(src_path: Path, t: Target, force: bool) -> None:
    assert t.path is not None
    try:
        src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
        try:
            if not _sqlite_tables(src) & TPS19_TABLES:
                raise StorageError(f"backup {src_path} is not a TPS19 database (no alembic_version)")
            if src.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise StorageError(f"backup {src_path} fails SQLite's integrity check")
            if "alembic_version" in _sqlite_tables(src):
                row = src.execute("SELECT version_num FROM alembic_version").fetchone()
                check_backup_revision(src_path, row[0] if row else None)
            create_private(t.path)
            dst = sqlite3.connect(t.path, timeout=30)
            try:
                _refuse_if_full(t, _sqlite_tables(dst), force)
                src.backup(dst, pages=-1)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as err:
        raise StorageError(f"restore of {src_path} into {t.name} failed: {one_line(str(err))}") from None


async def _pg_restore(src_path: Path, t: Target, force: bool) -> None:
    import asyncpg

    url, env = libpq(t)
    script = await _run_tool("pg_restore", "--no-owner", "--no-privileges", "--file", "-", str(src_path),
                             env=env, what=f"restore of {src_path}")
    if b"alembic_version" not in script:
        raise StorageError(f"backup {src_path} is not a TPS19 database (no alembic_version)")
    m = _PG_REVISION.search(script)
    check_backup_revision(src_path, (m.group(1) or m.group(2)).decode() if m else None)
    try:
        conn = await asyncpg.connect(url, password=env.get("PGPASSWORD"), timeout=30)
    except Exception as err:
        raise StorageError(f"database {t.name}: connect failed: {one_line(str(err))}") from None
    try:
        tables = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        _refuse_if_full(t, tables, force)
        async with conn.transaction():
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            await conn.execute(_PSQL_META.sub("", script.decode()))
    except StorageError:
        raise
    except Exception as err:
        raise StorageError(f"restore of {src_path} into {t.name} failed (nothing changed): "
                           f"{one_line(str(err).split('DETAIL:')[0])}") from None
    finally:
        await conn.close()
