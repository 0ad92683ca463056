"""Storage errors as one line each: the operation and its cause, never SQL or parameters.

SQLAlchemy's exceptions carry the statement, its bound parameters and a "Background on this
error" link over several lines; a trader needs to know what failed and why, and bound
parameters must not leak into logs. :func:`install` converts every error raised through an
engine at that boundary, so no caller has to remember to.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine as SyncEngine


class StorageError(Exception):
    """A database operation failed; ``str()`` is one line naming the operation and the cause."""

    def __init__(self, message: str, cause: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause if cause is not None else message


class DatabaseInUse(StorageError):
    """Another engine holds the database in this mode (both lock backends raise it)."""


class DatabaseReadOnly(StorageError):
    """The database (or its directory) cannot be written."""


_DETAIL = re.compile(r"\s*\b(?:DETAIL|HINT):")
_DBAPI_CLASS = re.compile(r"^<class '[\w.]+'>:\s*")
_TARGET = re.compile(r"\b(?:into|from|update|table|exists)\s+[\"`\[]?(\w+)", re.IGNORECASE)


def operation_of(statement: str | None, connected: bool = False) -> str:
    """``INSERT INTO fills (...) VALUES ...`` -> ``insert into fills``; no statement: ``commit``
    on a connection (SQLAlchemy passes none for commit/rollback), else ``connect``."""
    if not statement:
        return "commit" if connected else "connect"
    words = statement.split()
    verb = words[0].lower() if words else "statement"
    if verb == "pragma" and len(words) > 1:
        return f"pragma {words[1].split('=')[0].lower()}"
    m = _TARGET.search(statement)
    if m is None:
        return verb
    prep = {"insert": "into", "select": "from", "delete": "from", "update": "", "create": "table"}.get(verb, "on")
    return " ".join(p for p in (verb, prep, m.group(1)) if p)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def cause_of(err: BaseException) -> str:
    """The driver's own message (sqlite3's are one line) rather than SQLAlchemy's wrapper."""
    orig = getattr(err, "orig", None)
    inner = orig if isinstance(orig, BaseException) else err
    text = str(inner).split("\n(Background on this error")[0].split("\n[SQL:")[0]
    # PostgreSQL's DETAIL/HINT lines quote the row's values ("Key (exchange, fill_id)=(sim, T-1)")
    text = one_line(_DETAIL.split(text)[0])
    text = _DBAPI_CLASS.sub("", text)
    return text or type(inner).__name__


def storage_error(path: Path | str, operation: str, err: BaseException) -> StorageError:
    if isinstance(err, StorageError):
        return err
    cause = cause_of(err)
    kind = DatabaseReadOnly if "readonly" in cause.replace("-", "").replace(" ", "").lower() else StorageError
    return kind(f"database {path}: {operation} failed: {cause}", cause)


def install(engine: SyncEngine, path: Path | str) -> None:
    """Every error raised through ``engine`` becomes a one-line :class:`StorageError`."""

    @event.listens_for(engine, "handle_error")
    def _one_line(context: Any) -> StorageError | None:
        if not isinstance(context.original_exception, Exception):
            # a cancellation (shutdown) stays one: as a StorageError, the "except Exception: report"
            # around every trading write would swallow it and the cancelled task would never end
            return None
        operation = operation_of(context.statement, context.connection is not None)
        return storage_error(path, operation, context.original_exception)


class SchemaTooNew(StorageError):
    """The database was migrated by a newer TPS19 (a revision this code does not know)."""


class SchemaOutdated(StorageError):
    """The database is at an older revision: ``tps19 db upgrade`` brings it up."""
