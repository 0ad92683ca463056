"""Backup and restore of the configured database, safe while an engine writes to it.

SQLite: the online backup API copies the whole file in one step, i.e. inside one read
transaction, so the copy is one consistent moment (WAL readers do not block the writer).
PostgreSQL: ``pg_dump`` (a consistent snapshot by design), custom format, data as INSERT
statements so a restore can run as one transaction through asyncpg: a failed restore leaves the
database as it was.

A backup is written beside its destination as ``NAME.partial`` (0600) and renamed when complete,
so a crash never leaves a half backup under the real name.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from .db import create_private
from .errors import StorageError, one_line
from .target import Target, parse

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"

Progress = Callable[[int, int], None]  # (done, total) in pages or bytes


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: Path
    kind: str  # "sqlite" | "pg_dump"
    size: int


def kind_of(path: Path) -> str:
    """What a backup file is, from its first bytes (refusing anything else in one line)."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as err:
        raise StorageError(f"backup {path}: cannot read: {err.strerror or err}") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "pg_dump"
    raise StorageError(f"backup {path} is neither a SQLite database nor a pg_dump archive")


def _partial(dest: Path) -> Path:
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    create_private(tmp)
    return tmp


def _finish(tmp: Path, dest: Path, kind: str) -> BackupInfo:
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dest)
    return BackupInfo(dest, kind, dest.stat().st_size)


def _check_dest(dest: Path, force: bool) -> None:
    if dest.exists() and not force:
        raise StorageError(f"backup {dest} exists: give another path, or --force to overwrite it")
    if not dest.parent.is_dir():
        raise StorageError(f"backup {dest}: directory {dest.parent} does not exist")


async def backup(target: str | Path, dest: Path, *, force: bool = False, progress: Progress | None = None) -> BackupInfo:
    t = parse(target)
    _check_dest(dest, force)
    if t.path is not None:
        if not t.path.is_file():
            raise StorageError(f"database {t.name} does not exist")
        return await asyncio.to_thread(_sqlite_backup, t.path, dest, progress)
    return await _pg_dump(t, dest, progress)


def _sqlite_backup(src_path: Path, dest: Path, progress: Progress | None) -> BackupInfo:
    tmp = _partial(dest)
    try:
        src = sqlite3.connect(src_path, timeout=30)
        dst = sqlite3.connect(tmp)
        try:
            # pages=-1: the whole database in one step, one read transaction: one consistent moment
            src.backup(dst, pages=-1, progress=(lambda _s, rem, tot: progress(tot - rem, tot)) if progress else None)
            if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise StorageError(f"backup {dest}: the copy failed its integrity check")
        finally:
            dst.close()
            src.close()
        return _finish(tmp, dest, "sqlite")
    except sqlite3.Error as err:
        raise StorageError(f"backup of {src_path} failed: {one_line(str(err))}") from None
    finally:
        tmp.unlink(missing_ok=True)


def libpq(t: Target) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password (it goes in PGPASSWORD: argv is visible to `ps`)."""
    u = make_url(t.url)
    env = {**os.environ}
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return u.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


async def _run_tool(name: str, *args: str, env: dict[str, str], what: str) -> bytes:
    from .pgtools import find_tool

    exe = find_tool(name)
    proc = await asyncio.create_subprocess_exec(exe, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        lines = [l for l in err.decode(errors="replace").splitlines() if l.strip()]
        raise StorageError(f"{what}: {name} failed: {one_line(lines[-1] if lines else f'exit {proc.returncode}')}")
    return out


async def _pg_dump(t: Target, dest: Path, progress: Progress | None) -> BackupInfo:
    url, env = libpq(t)
    tmp = _partial(dest)
    try:
        await _run_tool("pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--inserts",
                        "--rows-per-insert=500", "--file", str(tmp), "--dbname", url, env=env,
                        what=f"backup of {t.name}")
        size = tmp.stat().st_size
        if progress:
            progress(size, size)
        return _finish(tmp, dest, "pg_dump")
    finally:
        tmp.unlink(missing_ok=True)
