"""INSERT … ON CONFLICT DO UPDATE on either backend (SQLite and PostgreSQL spell it the same)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite


def insert(bind: Any, table: Any) -> Any:
    """The dialect's INSERT for ``table`` (a model or Table) on ``bind`` (a connection, async
    connection or session): it has ``on_conflict_do_update`` and ``excluded``."""
    name = bind.dialect.name if hasattr(bind, "dialect") else bind.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)
