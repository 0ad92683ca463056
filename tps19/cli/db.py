"""`tps19 db upgrade | current | history | revision`: the database's schema (Alembic revisions).

Only typer at module level. Every failure is one line on stderr (exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .common import DB_HELP, db_label, db_path, fail

db_app = typer.Typer(help="The database: schema revisions (Alembic), backup and restore.", no_args_is_help=True)


def _run(coro: Any) -> Any:
    from ..engine.storage import StorageError

    try:
        import asyncio  # here, not at module level: every tps19 command imports this module

        return asyncio.run(coro)
    except StorageError as err:
        fail(str(err))


@db_app.command("upgrade")
def upgrade(db: str = typer.Option(None, "--db", help=DB_HELP)) -> None:
    """Migrate the database to this TPS19's schema (no engine may be running on it)."""
    from ..engine.storage import Database, DatabaseInUse, migrate
    from ..engine.storage.backup import backup as run_backup
    from ..engine.storage.lock import engine_locks

    saved: list[Path] = []

    async def go() -> tuple[str | None, str]:
        d = Database(db_path(db))
        try:
            async with engine_locks(d):
                rev = await d.peek_revision()
                await d.close()
                if d.path is not None and rev is not None and rev != migrate.head():
                    # SQLite runs DDL outside transactions: a migration that fails halfway has no
                    # rollback, so the file as it was is kept beside it first
                    copy = d.path.with_name(f"{d.path.name}.before-{migrate.head()}")
                    saved.append((await run_backup(d.path, copy, force=True)).path)
                return await d.upgrade()
        finally:
            await d.close()

    try:
        before, after = _run(go())
    except DatabaseInUse as err:
        fail(f"{err} (stop it before upgrading)")
    for copy in saved:
        typer.echo(f"the database as it was: {copy}")
    if before == after:
        typer.echo(f"database is at {after} (head): nothing to do")
    else:
        typer.echo(f"database upgraded {before or '(empty)'} -> {after}")


@db_app.command("current")
def current(db: str = typer.Option(None, "--db", help=DB_HELP)) -> None:
    """The database's schema revision, and whether it is this TPS19's head."""
    from ..engine.storage import Database, migrate

    async def go() -> str | None:
        d = Database(db_path(db))
        try:
            return await d.peek_revision()
        finally:
            await d.close()

    rev = _run(go())
    head = migrate.head()
    if rev is None:
        typer.echo(f"(empty) — `tps19 db upgrade` or the first start creates it at {head}")
    elif rev == head:
        typer.echo(f"{rev} (head)")
    else:
        typer.echo(f"{rev} (this TPS19's head is {head}: run `tps19 db upgrade`)")


@db_app.command("history")
def history() -> None:
    """Every schema revision this TPS19 knows, newest first."""
    from ..engine.storage import migrate

    head = migrate.head()
    for rev, down, doc in migrate.history():
        mark = " (head)" if rev == head else ""
        typer.echo(f"{down or '<base>'} -> {rev}{mark}: {doc}")


@db_app.command("backup")
def backup(path: Path = typer.Argument(..., help="File to write (SQLite: a database file; PostgreSQL: a pg_dump archive)."),
           db: str = typer.Option(None, "--db", help=DB_HELP),
           force: bool = typer.Option(False, "--force", help="Overwrite PATH if it exists.")) -> None:
    """Back up the database, also while an engine is writing to it (a consistent moment)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from ..engine.storage.backup import backup as run_backup

    target = db_path(db)
    with Progress(TextColumn("backup"), BarColumn(), DownloadColumn(), transient=True) as bar:
        task = bar.add_task("backup", total=None)
        info = _run(run_backup(target, path, force=force,
                               progress=lambda done, total: bar.update(task, completed=done, total=total)))
    typer.echo(f"backed up {db_label(target)} -> {info.path} ({info.kind}, {info.size:,} bytes)")


@db_app.command("restore")
def restore(path: Path = typer.Argument(..., help="A backup written by `tps19 db backup`."),
            db: str = typer.Option(None, "--db", help=DB_HELP),
            force: bool = typer.Option(False, "--force", help="Replace a database that already holds data.")) -> None:
    """Restore a backup into the database (refused while an engine runs on it, and, without
    --force, when it already holds data)."""
    from ..engine.storage import Database, DatabaseInUse, migrate
    from ..engine.storage.lock import engine_locks
    from ..engine.storage.restore import check_kind
    from ..engine.storage.restore import restore as run_restore

    target = db_path(db)

    async def go() -> str | None:
        check_kind(path, target)
        d = Database(target)
        try:
            async with engine_locks(d):
                await run_restore(path, target, force=force)
            return await d.peek_revision()
        finally:
            await d.close()

    try:
        rev = _run(go())
    except DatabaseInUse as err:
        fail(f"{err} (stop it before restoring)")
    typer.echo(f"restored {path} -> {db_label(target)}")
    if rev != migrate.head():
        typer.echo(f"its schema is at {rev}, this TPS19's is {migrate.head()}: run `tps19 db upgrade`")


@db_app.command("revision")
def revision(message: str = typer.Option(..., "-m", "--message", help="What the revision changes."),
             rev_id: str = typer.Option(None, "--rev-id", help="Revision id (default: NNNN_slug after the head).")) -> None:
    """For developers: write a new revision from the difference between the models and the head
    (autogenerate, on a scratch SQLite database). Review the file before committing it."""
    from ..engine.storage.devtools import new_revision

    try:
        path = new_revision(message, rev_id)
    except (RuntimeError, ValueError) as err:
        fail(str(err))
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
