"""Is a ``--db`` value a database server URL (rather than a SQLite file)? Dependency-free: the CLI
asks it before importing anything heavy, and run.py asks it too without importing the CLI."""

from __future__ import annotations

from pathlib import Path

SERVER_SCHEMES = ("postgresql://", "postgres://", "postgresql+asyncpg://")


def is_db_url(db: str | Path) -> bool:
    return isinstance(db, str) and db.lower().startswith(SERVER_SCHEMES)
