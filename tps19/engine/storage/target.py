"""Where the database is: a SQLite file path, or a PostgreSQL URL (``postgresql+asyncpg://…``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .errors import StorageError

_PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+asyncpg://")
_SQLITE_SCHEMES = ("sqlite:///", "sqlite+aiosqlite:///")


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # what SQLAlchemy's async engine opens (with the password, never shown)
    name: str  # what messages show: the path, or the URL without its password
    path: Path | None  # the SQLite file; None for a server

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None


def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.lower().startswith(_PG_SCHEMES + _SQLITE_SCHEMES)


def parse(target: str | Path) -> Target:
    """A path, ``sqlite:///path`` or a PostgreSQL URL; anything else with ``://`` is refused."""
    text = str(target)
    low = text.lower()
    if isinstance(target, str) and low.startswith(_SQLITE_SCHEMES):
        text = text.split(":///", 1)[1]
    elif isinstance(target, str) and low.startswith(_PG_SCHEMES):
        try:
            url = make_url(text).set(drivername="postgresql+asyncpg")
        except ArgumentError:
            raise StorageError(f"database URL {redact(text)} is not a valid PostgreSQL URL") from None
        if not url.database:
            raise StorageError(f"database URL {redact(text)} names no database (…/DBNAME)")
        return Target(url.render_as_string(hide_password=False), url.render_as_string(hide_password=True), None)
    elif isinstance(target, str) and "://" in text:
        raise StorageError(f"database {redact(text)}: only SQLite paths and postgresql+asyncpg:// URLs are supported")
    path = Path(text).expanduser()
    if text == ":memory:":
        return Target("sqlite+aiosqlite:///:memory:", text, path)
    # mode=rw: SQLite opens the file or fails, never creates one. Database creates a new file
    # itself (0600) before the first open; a file deleted under a running engine must not come
    # back as an empty 0644 database on the pool's next connection.
    return Target(f"sqlite+aiosqlite:///file:{quote(str(path))}?mode=rw&uri=true", str(path), path)


def redact(text: str) -> str:
    """A URL with its password hidden, even one make_url cannot parse."""
    try:
        return make_url(text).render_as_string(hide_password=True)
    except ArgumentError:
        head, sep, tail = text.rpartition("@")
        return f"{head.split(':', 2)[0]}:***{sep}{tail}" if sep else text
