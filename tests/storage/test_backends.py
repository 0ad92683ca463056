"""Every storage guarantee on both backends: a SQLite file and a PostgreSQL server."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text
from sqlmodel import SQLModel
from typer.testing import CliRunner

from tps19.cli import app
from tps19.engine.storage import Bar, Database, DatabaseInUse, Fill, Order, SchemaTooNew, StorageError, migrate
from tps19.engine.storage.lock import instance_lock

MS = 1_732_924_800_123  # an epoch-ms timestamp: does not fit a 32-bit integer


def _order(**kw):
    base = dict(client_order_id="t19-1", exchange="sim", mode="paper", symbol="BTC/USDT", side="buy", type="limit",
                amount=Decimal("0.00012345"), price=Decimal("60123.45"), status="open", created_ms=MS, updated_ms=MS)
    return Order(**(base | kw))


@pytest.fixture
async def db(db_target):
    d = Database(db_target)
    await d.open(probe_write=True)
    yield d
    await d.close()


async def test_money_is_exact_and_stored_as_decimal_text(db):
    async with db.session() as s:
        s.add(_order(fee=Decimal("0.000000000000000001")))
        s.add(Fill(exchange="sim", mode="paper", fill_id="f1", client_order_id="t19-1", symbol="BTC/USDT", side="buy",
                   price=Decimal("0.1"), amount=Decimal("0.2"), fee=Decimal("0.00000001"), ts=MS))
        await s.commit()
    async with db.session() as s:
        o = (await s.execute(select(Order))).scalars().one()
        f = (await s.execute(select(Fill))).scalars().one()
        raw = (await s.execute(text("SELECT price, fee FROM orders"))).one()
    assert o.amount * o.price == Decimal("0.00012345") * Decimal("60123.45")
    assert f.price + f.amount == Decimal("0.3")  # 0.30000000000000004 as floats
    assert o.fee == Decimal("1E-18") and raw == ("60123.45", "0.000000000000000001")
    assert (o.created_ms, f.ts) == (MS, MS)


async def test_epoch_ms_timestamps_and_bars_round_trip(db):
    from tps19.engine.history.store import load_bars, upsert_bars

    rows = [[MS + i * 60_000, 1.0 + i, 2.0, 0.5, 1.5, 10.0] for i in range(3_500)]  # more than one batch
    assert await upsert_bars(db, "sim", "BTC/USDT", "1m", rows) == 3_500
    assert await upsert_bars(db, "sim", "BTC/USDT", "1m", [[MS, 9.0, 9.0, 9.0, 9.0, 9.0]]) == 1  # upsert
    async with db.session() as s:
        first = await s.get(Bar, ("sim", "BTC/USDT", "1m", MS))
        n = len((await s.execute(select(Bar.ts))).all())
    assert first is not None and first.close == 9.0 and n == 3_500


async def test_float_money_is_refused(db):
    with pytest.raises(Exception, match="Decimal"):
        async with db.session() as s:
            s.add(_order(price=60123.45))
            await s.commit()


async def test_a_fill_is_booked_once_and_the_refusal_is_one_line(db):
    fill = dict(exchange="sim", mode="live", fill_id="T-1", symbol="BTC/USDT", side="buy", price=Decimal(1),
                amount=Decimal(1), ts=MS)
    async with db.session() as s:
        s.add(Fill(**fill))
        await s.commit()
    with pytest.raises(StorageError) as err:
        async with db.session() as s:
            s.add(Fill(**fill))
            await s.commit()
    message = str(err.value)
    assert "\n" not in message and "insert into fills" in message and "T-1" not in message
    assert "unique" in message.lower()


async def test_trading_upserts_work_on_both_backends(db):
    from tps19.engine.trading.store import TradingStore

    store = TradingStore(db, mode="paper", exchange="sim")
    await store.save(None, balances={"USDT": Decimal("1.5")})
    await store.save(None, balances={"USDT": Decimal("2.25"), "BTC": Decimal("0.1")})
    await store.set_kill_state(True, "first")
    await store.set_kill_state(False, "second")
    assert await store.balances() == {"USDT": Decimal("2.25"), "BTC": Decimal("0.1")}
    assert await store.kill_state() == (False, "second")


async def test_the_migrations_build_the_models_schema_on_this_backend(db):
    """The head this database was made at (SQLite: the models; PostgreSQL: the template built by
    running every migration) has nothing the models lack or miss."""
    assert db.engine is not None
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(
            MigrationContext.configure(c, opts={"compare_type": True}), SQLModel.metadata))
    assert diff == []


async def test_a_database_from_a_newer_tps19_is_refused(db_target):
    d = Database(db_target)
    await d.open()
    async with d.session() as s:
        await s.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        await s.commit()
    await d.close()
    again = Database(db_target)
    try:
        with pytest.raises(SchemaTooNew, match="9999_future"):
            await again.open()
    finally:
        await again.close()
        # leave it at the head (a PostgreSQL database is reused by the next test)
        fix = Database(db_target)
        fix._connect()
        assert fix.engine is not None
        async with fix.engine.begin() as conn:
            await conn.execute(text(f"UPDATE alembic_version SET version_num = '{migrate.head()}'"))
        await fix.close()


async def test_one_engine_per_mode_on_either_backend(db):
    paper, live, paper2 = (instance_lock(db, m) for m in ("paper", "live", "paper"))
    await paper.acquire_async()
    try:
        await live.acquire_async()  # paper and live may share a database
        with pytest.raises(DatabaseInUse) as err:
            await paper2.acquire_async()
        assert f"pid {os.getpid()}" in str(err.value) and "\n" not in str(err.value)
    finally:
        await live.release_async()
        await paper.release_async()
    await paper2.acquire_async()  # released with its holder
    await paper2.release_async()


async def test_the_lock_key_is_database_mode_and_venue_and_maintenance_excludes_every_engine(db):
    """One engine per (database, mode, venue) on either backend: two venues share a database in
    one mode; `tps19 db upgrade|restore` is refused while any engine runs, and an engine while it runs."""
    from tps19.engine.storage.lock import engine_locks

    sim, binance, sim2 = instance_lock(db, "paper", "sim"), instance_lock(db, "paper", "binance"), \
        instance_lock(db, "paper", "sim")
    await sim.acquire_async()
    try:
        await binance.acquire_async()
        with pytest.raises(DatabaseInUse, match="another paper engine on sim"):
            await sim2.acquire_async()
        await sim.release_async()
        with pytest.raises(DatabaseInUse, match="in use by another paper engine"):
            async with engine_locks(db):
                pass
    finally:
        await sim.release_async()
        await binance.release_async()
    async with engine_locks(db):
        with pytest.raises(DatabaseInUse, match="being upgraded or restored"):
            await sim2.acquire_async()
    await sim2.acquire_async()
    await sim2.release_async()


def test_db_cli_speaks_both_backends(db_target):
    runner = CliRunner()
    r = runner.invoke(app, ["db", "current", "--db", str(db_target)])
    assert r.exit_code == 0 and r.output.strip() in (f"{migrate.head()} (head)",) or "(empty)" in r.output
    r = runner.invoke(app, ["db", "upgrade", "--db", str(db_target)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["db", "current", "--db", str(db_target)])
    assert r.exit_code == 0 and r.output.strip() == f"{migrate.head()} (head)"


@pytest.mark.slow
def test_headless_paper_runs_on_postgresql_and_never_shows_the_password(pg_server, tmp_path):
    """`tps19 paper --no-ui` with TPS19_DATABASE__URL: starts, holds the paper lock on the server
    (a second engine is refused, naming the first), stops cleanly."""
    import json
    import signal
    import subprocess
    import sys
    import time

    secret = "s3cret-pw-19"  # trust auth accepts any password: this one must never be shown
    url = pg_server.lease().replace("tps19@", f"tps19:{secret}@")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPS19_")}
    env.update(TPS19_DATABASE__URL=url, TPS19_LOG__SUMMARY_INTERVAL_S="0.5")
    cmd = [sys.executable, "-m", "tps19.cli", "paper", "--no-ui", "--symbol", "BTC/USDT"]
    first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    try:
        end = time.monotonic() + 90
        assert first.stdout is not None
        while time.monotonic() < end:
            line = first.stdout.readline()
            if not line:
                break
            out.append(line)
            if json.loads(line)["event"] == "started":
                break
        assert any(json.loads(l)["event"] == "started" for l in out), "".join(out)
        second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        refusal = [json.loads(l)["message"] for l in second.stdout.splitlines() if json.loads(l)["event"] == "error"]
        assert len(refusal) == 1 and "in use by another paper engine" in refusal[0], second.stdout
        assert secret not in second.stdout + second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        # through the file readline() used: communicate() reads the raw pipe and would skip the
        # lines readline() had buffered, leaving them unchecked for the password
        rest, err = first.stdout.read(), first.stderr.read()
        first.wait(timeout=60)
    assert first.returncode == 0, err
    assert secret not in "".join(out) + rest + err
    assert url.rsplit("/", 1)[1] in "".join(out)  # the database is named (without the password)
    pg_server.give_back(url)


def test_database_url_setting_is_a_secret_and_checked(monkeypatch):
    from tps19.config import ConfigError, load_settings

    for k in list(os.environ):
        if k.startswith("TPS19_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("TPS19_DATABASE__URL", "postgresql+asyncpg://tps19:pw-19-secret@db.internal:5432/tps19")
    s = load_settings()
    assert s.database.target == "postgresql+asyncpg://tps19:pw-19-secret@db.internal:5432/tps19"
    assert "pw-19-secret" not in repr(s) and "pw-19-secret" not in str(s.model_dump())
    assert Database(s.database.target).name == "postgresql+asyncpg://tps19:***@db.internal:5432/tps19"
    monkeypatch.setenv("TPS19_DATABASE__URL", "mysql://root:pw-19-secret@db.internal/tps19")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "database.url" in str(err.value) and "\n" not in str(err.value) and "pw-19-secret" not in str(err.value)
    monkeypatch.setenv("TPS19_DATABASE__URL", "")
    assert load_settings().database.target == load_settings().database.path  # empty: the SQLite file
