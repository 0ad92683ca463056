"""For developers: a new Alembic revision from the models (``tps19 db revision -m MESSAGE``)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from . import migrate


def next_rev_id(message: str) -> str:
    """``0003_add_ml_models`` after ``0002_…``: ordered, readable ids."""
    numbers = [int(m.group(1)) for rev, _, _ in migrate.history() if (m := re.match(r"(\d{4})_", rev))]
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "revision"
    return f"{max(numbers, default=0) + 1:04d}_{slug}"


def new_revision(message: str, rev_id: str | None = None) -> Path:
    """Autogenerate against a scratch SQLite database at the head; returns the new file."""
    migrate.head()  # refuses to stack a revision on two heads
    rev = rev_id or next_rev_id(message)
    if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", rev):
        raise ValueError(f"revision id {rev!r}: letters, digits and _ only, at most 32")
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/scratch.db")
        try:
            with engine.connect() as conn:
                command.upgrade(migrate.config(conn), "head")
                conn.commit()
                script = command.revision(migrate.config(conn), message=message, autogenerate=True, rev_id=rev)
        finally:
            engine.dispose()
    migrate.scripts.cache_clear()
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic wrote no single revision")
    return Path(script.path)
