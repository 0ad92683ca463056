"""Alembic migrations: a database written by the last hand-versioned release upgrades without
losing a row, the models and the migrations agree, and an older schema is refused in one line."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, create_engine
from sqlmodel import SQLModel
from typer.testing import CliRunner

from tps19.cli import app
from tps19.engine.storage import Database, SchemaOutdated, migrate
from tps19.engine.trading.store import TradingStore

FIXTURE = Path(__file__).parent / "fixtures" / "release_v1.db"
# every table of release v1 except its own version bookkeeping
V1_TABLES = ["ai_decisions", "backtest_results", "bars", "fills", "kill_switch", "order_events", "orders",
             "paper_order_state", "portfolio_snapshots", "position_adjustments", "trading_balances",
             "trading_signals"]


def _rows(path: Path, table: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    finally:
        con.close()


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    path.chmod(0o600)  # as the release created it (git checks files out 0644)
    return path


def test_fixture_is_a_release_v1_database_with_rows_in_every_table():
    for table in V1_TABLES:
        assert _rows(FIXTURE, table), f"fixture has no {table} rows"
    assert _rows(FIXTURE, "schema_version") == [(1, 1)]


async def test_release_v1_database_is_refused_until_upgraded_then_loses_no_row(old_db):
    before = {t: _rows(old_db, t) for t in V1_TABLES}
    db = Database(old_db)
    with pytest.raises(SchemaOutdated) as refused:
        await db.open(probe_write=True)
    message = str(refused.value)
    assert "\n" not in message and "tps19 db upgrade" in message and str(old_db) in message
    assert {t: _rows(old_db, t) for t in V1_TABLES} == before  # a refusal changes nothing

    assert await db.upgrade() == (migrate.BASELINE, migrate.head())
    await db.close()
    for table in V1_TABLES:
        after = _rows(old_db, table)
        # columns added since (e.g. the protective orders' trigger columns) are empty on old rows
        width = len(before[table][0]) if before[table] else 0
        assert [r[:width] for r in after] == before[table], table
        assert all(v is None for r in after for v in r[width:]), table
    db = Database(old_db)
    await db.open(probe_write=True)
    try:
        assert await db.revision() == migrate.head()
        # the trading layer reads the upgraded rows back, money exact
        store = TradingStore(db, mode="paper", exchange="sim")
        assert await store.balances() == {"USDT": Decimal("93827.160494"), "BTC": Decimal("1.12345678")}
        fills = await store.fills()
        assert len(fills) == 2 and {f.fee for f in fills} == {Decimal("0.000012345678901234")}
        assert [o.client_order_id for o in await store.working_orders()] == ["paper-cid-1"]
        assert await TradingStore(db, mode="live", exchange="sim").kill_state() == (True, "fixture: engaged by hand")
    finally:
        await db.close()
    assert oct(old_db.stat().st_mode & 0o777) == "0o600"


def _diff_against(metadata, url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    finally:
        engine.dispose()


def test_the_migrations_build_exactly_the_models_schema(tmp_path):
    """Fails when someone adds or changes a table without a revision (see docs/database.md)."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = create_engine(url)
    with engine.connect() as conn:
        migrate.upgrade(conn)
        conn.commit()
    engine.dispose()
    assert _diff_against(SQLModel.metadata, url) == []
    # and the check can fail: a table the migrations do not create is reported
    extra = MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(extra)
    Table("not_migrated", extra, Column("id", Integer, primary_key=True))
    assert any(d[0] == "add_table" and d[1].name == "not_migrated" for d in _diff_against(extra, url))


def test_the_migrations_have_a_single_head():
    assert len(migrate.scripts().get_heads()) == 1
    revs = [r for r, _, _ in migrate.history()]
    assert revs[-1] == migrate.BASELINE and revs[0] == migrate.head()


def test_the_head_read_without_alembic_is_alembics():
    """Opening a database compares its revision with heads read from the scripts' constants
    (Alembic is not imported for that): they must be Alembic's own, also when a landed revision
    makes two heads."""
    assert migrate.declared_heads() == sorted(migrate.scripts().get_heads())


def test_two_heads_read_without_alembic_are_still_refused(tmp_path, monkeypatch):
    versions = tmp_path / "versions"
    versions.mkdir()
    for rev, down in (("0001_a", None), ("0002_b", "0001_a"), ("0002_c", "0001_a")):
        (versions / f"{rev}.py").write_text(f"revision: str = {rev!r}\ndown_revision: str | None = {down!r}\n")
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    assert migrate.declared_heads() == ["0002_b", "0002_c"]
    with pytest.raises(RuntimeError, match="migrations have 2 heads"):
        migrate.head()


def test_opening_a_database_at_the_head_does_not_import_alembic(tmp_path):
    """~0.25 s of CPU on every command that opens a database (train, backtest, fetch...); creating
    one still stamps it with Alembic, and an older one is still refused (above)."""
    path = tmp_path / "h.db"
    code = ("import asyncio, sys\nfrom tps19.engine.storage import Database\n"
            f"async def go():\n    d = Database({str(path)!r})\n    await d.open(probe_write=True)\n"
            "    print(await d.revision())\n    await d.close()\n"
            "asyncio.run(go())\nprint('alembic' in sys.modules)\n")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
            for _ in range(2)]
    assert runs[0] == [migrate.head(), "True"]  # created and stamped
    assert runs[1] == [migrate.head(), "False"]  # at the head: opened without Alembic


def test_db_cli_current_upgrade_history(old_db):
    runner = CliRunner()
    r = runner.invoke(app, ["db", "current", "--db", str(old_db)])
    assert r.exit_code == 0 and migrate.BASELINE in r.output and "tps19 db upgrade" in r.output
    before = {t: _rows(old_db, t) for t in V1_TABLES}
    r = runner.invoke(app, ["db", "upgrade", "--db", str(old_db)])
    assert r.exit_code == 0 and f"{migrate.BASELINE} -> {migrate.head()}" in r.output
    kept = old_db.with_name(f"{old_db.name}.before-{migrate.head()}")  # the file as it was, kept first
    assert str(kept) in r.output and _rows(kept, "schema_version") == [(1, 1)]
    assert {t: _rows(kept, t) for t in V1_TABLES} == before
    r = runner.invoke(app, ["db", "current", "--db", str(old_db)])
    assert r.exit_code == 0 and r.output.strip() == f"{migrate.head()} (head)"
    r = runner.invoke(app, ["db", "history"])
    assert r.exit_code == 0 and f"<base> -> {migrate.BASELINE}" in r.output and "(head)" in r.output


def test_db_upgrade_is_refused_while_an_engine_holds_the_database(old_db):
    from tps19.engine.storage import InstanceLock

    lock = InstanceLock(old_db, "paper")
    lock.acquire()
    try:
        r = CliRunner().invoke(app, ["db", "upgrade", "--db", str(old_db)])
    finally:
        lock.release()
    assert r.exit_code == 2 and "in use by another paper engine" in r.output
    assert _rows(old_db, "schema_version") == [(1, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("how", [["--no-ui"], []], ids=["headless", "desk"])
def test_desk_and_headless_refuse_an_older_schema_in_one_line(old_db, tmp_path, how):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPS19_")}
    r = subprocess.run([sys.executable, "-m", "tps19.cli", "paper", *how, "--symbol", "BTC/USDT", "--db", str(old_db)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "run `tps19 db upgrade`" in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert _rows(old_db, "schema_version") == [(1, 1)]
