"""The engine watches what it stands on: a PostgreSQL lock lost (server restart, a terminated
session) or a SQLite file deleted or replaced under it halts every order at once, named in the
log and /healthz; a lost lock is taken back and trading resumes, unless another engine held it
meanwhile."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat

import pytest

from tps19.engine.engine import Engine
from tps19.engine.events import LogEvent, StorageAlert
from tps19.engine.health import check_health
from tps19.engine.metrics import EngineMetrics
from tps19.engine.storage.server_lock import LOCK_CLASS, lock_key

DEADLINE_S = 60.0


async def _next_alert(sub) -> StorageAlert:
    async with asyncio.timeout(DEADLINE_S):
        while True:
            for e in await sub.wait():
                if isinstance(e, StorageAlert):
                    return e


async def _buy(engine: Engine):
    assert engine.trading is not None
    return await engine.trading.broker.place_order("BTC/USDT", "buy", "market", "0.001")


@pytest.fixture
async def engine(sim_settings):
    e = Engine(sim_settings.model_copy(update={"symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]})}))
    await e.start()
    try:
        yield e
    finally:
        await e.stop()


async def _ready(engine: Engine) -> None:
    """Until the book is there (an order needs a price)."""
    async with asyncio.timeout(DEADLINE_S):
        while engine.books["BTC/USDT"].best_ask() is None:
            await asyncio.sleep(0.05)


async def test_a_deleted_lock_file_halts_the_engine(engine):
    """Deleted, the lock file no longer keeps a second engine out (it would lock a new file)."""
    await _ready(engine)
    scrape = EngineMetrics(engine).render
    assert b"\ntps19_storage_halt 0.0\n" in scrape()
    sub = engine.bus.subscribe(StorageAlert, coalesce=None)
    engine.db_lock.path.unlink()
    alert = await _next_alert(sub)
    assert alert.halted and alert.reason == f"lock file {engine.db_lock.path} was deleted"
    assert "trading halted: lock file" in ((await _buy(engine)).reason or "")
    assert b"\ntps19_storage_halt 1.0\n" in scrape()  # what Prometheus alerts on


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_sqlite_file_deleted_or_replaced_under_the_engine_halts_it(engine, how, tmp_path):
    await _ready(engine)
    path = engine.db.path
    assert path is not None
    sub = engine.bus.subscribe(StorageAlert, LogEvent, coalesce=None)
    if how == "deleted":
        os.unlink(path)
    else:
        other = tmp_path / "other.db"
        shutil.copy(path, other)
        os.replace(other, path)
    alert = await _next_alert(sub)
    assert alert.halted and f"database file {path} was {how} under the running engine" == alert.reason
    order = await _buy(engine)
    assert order.status.value == "rejected" and f"trading halted: database file {path} was {how}" in (order.reason or "")
    health = await check_health(engine)
    assert any(r.startswith(f"trading halted: database file {path} was {how}") for r in health.reasons), health
    # nothing creates a database implicitly after start: writes go nowhere new, and no 0644 file appears
    await engine.trading.portfolio.snapshot() if engine.trading else None
    if how == "deleted":
        assert not path.exists(), "a new database file was created under the running engine"
    else:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.fixture
async def pg_engine(sim_settings, pg_server):
    url = pg_server.lease()
    settings = sim_settings.model_copy(update={
        "database": sim_settings.database.model_copy(update={"url": __import__("pydantic").SecretStr(url)}),
        "symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]})})
    e = Engine(settings)
    await e.start()
    try:
        yield e, url
    finally:
        await e.stop()
        pg_server.give_back(url)


async def _admin(url: str):
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return await asyncpg.connect(host=u.host, port=u.port, user=u.username, database=u.database)


async def test_a_lost_postgresql_lock_halts_orders_then_is_taken_back(pg_engine):
    engine, url = pg_engine
    await _ready(engine)
    sub = engine.bus.subscribe(StorageAlert, coalesce=None)
    admin = await _admin(url)
    try:
        pid = engine.db_lock._conn.get_server_pid()
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        alert = await _next_alert(sub)
        assert alert.halted and "engine lock's session ended" in alert.reason and engine.db.name in alert.reason
        assert "trading halted: database " in ((await _buy(engine)).reason or "")
        assert any("trading halted" in r for r in (await check_health(engine)).reasons)
        alert = await _next_alert(sub)  # taken back on a new session
        assert not alert.halted
        assert engine.storage_problem is None
        assert (await _buy(engine)).status.value != "rejected"
        held = await admin.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 "
                                    "AND objid = $2 AND granted", LOCK_CLASS, lock_key("paper", "sim"))
        assert held == 1
    finally:
        await admin.close()


async def test_a_lock_another_engine_took_meanwhile_keeps_the_first_halted(pg_engine):
    engine, url = pg_engine
    await _ready(engine)
    sub = engine.bus.subscribe(StorageAlert, coalesce=None)
    rival, admin = await _admin(url), await _admin(url)
    try:
        # the rival waits for the lock; the server grants it the moment the engine's session ends
        waiting = asyncio.ensure_future(rival.fetchval("SELECT pg_advisory_lock($1, $2)", LOCK_CLASS,
                                                       lock_key("paper", "sim")))
        async with asyncio.timeout(DEADLINE_S):
            while not await admin.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"):
                await asyncio.sleep(0.05)
        await admin.fetchval("SELECT pg_terminate_backend($1)", engine.db_lock._conn.get_server_pid())
        await waiting
        alert = await _next_alert(sub)
        assert alert.halted
        alert = await _next_alert(sub)
        assert alert.halted and "another engine holds it now" in alert.reason
        await rival.close()  # the rival goes: the lock is free again, the first takes it ...
        alert = await _next_alert(sub)
        assert alert.halted and "restart this engine" in alert.reason  # ... but its state may be stale
        assert (await _buy(engine)).status.value == "rejected"
    finally:
        if not rival.is_closed():
            await rival.close()
        await admin.close()
