"""Schema revisions with Alembic: where the database stands, and bringing it to the head.

The scripts live in ``migrations/`` (package data); the configuration is built here, so nothing
depends on the working directory or an alembic.ini. Every function takes a synchronous
connection (``AsyncConnection.run_sync`` hands one over) and leaves committing to the caller.

A database written before Alembic carries a ``schema_version`` table (v1); its schema is exactly
the baseline revision, so it is stamped with it and then upgraded like any other.

Alembic itself (~0.25 s of CPU to import) is loaded only to create, stamp or upgrade a database,
or to explain a revision that is not the head: opening a database already at the head reads its
``alembic_version`` row with plain SQL and compares it with the head read from the scripts'
``revision`` / ``down_revision`` assignments (``head()``; tests check it against Alembic's).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from . import models  # noqa: F401  (registers the tables)
from .errors import SchemaOutdated, SchemaTooNew
from .types import widen_integers

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

widen_integers(SQLModel.metadata)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BASELINE = "0001_baseline"  # the schema of schema_version v1, the last hand-versioned release
LEGACY_VERSION = 1


def config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(rev)s")
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config())


def declared_heads() -> list[str] | None:
    """The heads of the revision scripts, from their module-level ``revision`` and
    ``down_revision`` constants (no Alembic, nothing executed); None when a script declares them
    in a way this does not read (then Alembic's own answer is used)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
            target: ast.expr
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                try:
                    found[target.id] = ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError):
                    return None
        rev, down = found.get("revision"), found.get("down_revision")
        if not isinstance(rev, str):
            return None
        revisions.add(rev)
        downs = (down,) if isinstance(down, str) or down is None else down
        if not isinstance(downs, (tuple, list)) or not all(isinstance(d, str) or d is None for d in downs):
            return None
        parents.update(d for d in downs if d)
    return sorted(revisions - parents) if revisions else None


def head() -> str:
    heads = declared_heads() or scripts().get_heads()
    if len(heads) != 1:
        # two revisions share a parent: someone landed a revision without rebasing it on the head
        raise RuntimeError(f"migrations have {len(heads)} heads ({', '.join(sorted(heads))}); "
                           "set the newer revision's down_revision to the other")
    return heads[0]


@dataclass(frozen=True, slots=True)
class SchemaState:
    revision: str | None  # None: nothing recorded (an empty database, or a legacy one)
    legacy_version: int | None  # schema_version of a database written before Alembic

    @property
    def empty(self) -> bool:
        return self.revision is None and self.legacy_version is None

    @property
    def effective(self) -> str | None:
        """The revision the schema is at (a legacy v1 database is at the baseline)."""
        if self.revision is None and self.legacy_version == LEGACY_VERSION:
            return BASELINE
        return self.revision


def state(conn: Connection) -> SchemaState:
    tables = set(inspect(conn).get_table_names())
    revision = None
    if "alembic_version" in tables:
        rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
        if len(rows) > 1:  # branches: Alembic's own refusal and words
            from alembic.runtime.migration import MigrationContext

            MigrationContext.configure(conn).get_current_revision()
        revision = rows[0] if rows else None
    legacy = None
    if "schema_version" in tables and revision is None:
        legacy = conn.exec_driver_sql("SELECT version FROM schema_version WHERE id = 1").scalar()
        legacy = int(legacy) if legacy is not None else None
    return SchemaState(revision, legacy)


def check(st: SchemaState, name: str) -> None:
    """Refuse (one line) a database at another revision than this code's head."""
    current, target = st.effective, head()
    if current == target:
        return
    if st.legacy_version is not None and st.legacy_version > LEGACY_VERSION:
        raise SchemaTooNew(f"database {name} has schema v{st.legacy_version}, this TPS19 knows v{LEGACY_VERSION}")
    known = {s.revision for s in scripts().walk_revisions()}
    if current not in known:
        raise SchemaTooNew(f"database {name} has schema revision {current}, unknown to this TPS19 "
                           f"(its newest is {target}): written by a newer TPS19")
    raise SchemaOutdated(f"database {name} has schema revision {current}, this TPS19 needs {target}: "
                         "run `tps19 db upgrade`")


def create(conn: Connection) -> None:
    """A new database: every table from the models, stamped at the head (the migrations build the
    same schema; tests/storage/test_migrations.py keeps it so)."""
    from alembic.runtime.migration import MigrationContext

    SQLModel.metadata.create_all(conn)
    MigrationContext.configure(conn).stamp(scripts(), head())


def upgrade(conn: Connection, target: str = "head") -> tuple[str | None, str]:
    """Bring the database to ``target``; returns (from, to) revisions."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.util import CommandError

    st = state(conn)
    if st.empty:
        command.upgrade(config(conn), target)
        return None, head()
    check_known(st, str(conn.engine.url.render_as_string(hide_password=True)))
    if st.revision is None:
        MigrationContext.configure(conn).stamp(scripts(), BASELINE)
    try:
        command.upgrade(config(conn), target)
    except CommandError as err:
        raise SchemaTooNew(str(err)) from None
    return st.effective, MigrationContext.configure(conn).get_current_revision() or ""


def check_known(st: SchemaState, name: str) -> None:
    try:
        check(st, name)
    except SchemaOutdated:
        pass


def history() -> list[tuple[str, str | None, str]]:
    """(revision, its parent, first line of its message), newest first."""
    out = []
    for s in scripts().walk_revisions():
        down = s.down_revision if isinstance(s.down_revision, str) or s.down_revision is None else ",".join(s.down_revision)
        out.append((s.revision, down, (s.doc or "").splitlines()[0] if s.doc else ""))
    return out
