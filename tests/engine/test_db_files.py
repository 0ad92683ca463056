"""The database files: private (0600), refused at start when they cannot be written, and every
database error one line naming the operation and its cause."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.engine.helpers import wait_for
from tps19.engine.engine import Engine
from tps19.engine.storage import Database
from tps19.engine.storage.errors import DatabaseReadOnly, StorageError
from tps19.engine.storage.lock import InstanceLock

SQLALCHEMY_NOISE = ("Background on this error", "[SQL:", "[parameters:", "sqlalche.me")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


async def test_database_files_are_created_private(tmp_path):
    old = os.umask(0o022)  # the usual default, which would leave them world-readable
    try:
        db = Database(tmp_path / "t.db")
        await db.open()
        async with db.session() as s:  # a write, so the -wal and -shm exist
            from tps19.engine.storage import Bar

            s.add(Bar(exchange="sim", symbol="BTC/USDT", timeframe="1m", ts=1, open=1, high=1, low=1, close=1, volume=1))
            await s.commit()
        files = [tmp_path / n for n in ("t.db", "t.db-wal", "t.db-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: oct(_mode(f)) for f in files} == {f.name: "0o600" for f in files}
        await db.close()
        lock = InstanceLock(tmp_path / "t.db", "paper")
        lock.acquire()
        lock.release()
        assert oct(_mode(lock.path)) == "0o600"
    finally:
        os.umask(old)


class _ReadOnlyDatabase(Database):
    """The same file through a read-only SQLite connection: what a read-only file or directory
    gives a non-root process (as root, file modes do not stop writes, so tests cannot use them)."""

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///file:{self.path}?mode=ro&uri=true"


async def test_a_database_that_cannot_be_written_is_refused_at_open_in_one_line(tmp_path):
    path = tmp_path / "t.db"
    db = Database(path)
    await db.open()
    await db.close()
    ro = _ReadOnlyDatabase(path)
    with pytest.raises(DatabaseReadOnly) as info:
        await ro.open(probe_write=True)
    await ro.close()
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "readonly" in message.replace(" ", "").replace("-", "")
    assert not any(n in message for n in SQLALCHEMY_NOISE)


async def test_a_reader_still_opens_a_read_only_history_file(tmp_path):
    from tps19.engine.storage import Bar

    path = tmp_path / "t.db"
    db = Database(path)
    await db.open()
    async with db.session() as s:
        s.add(Bar(exchange="sim", symbol="BTC/USDT", timeframe="1m", ts=1, open=1, high=2, low=1, close=2, volume=1))
        await s.commit()
    await db.close()
    ro = _ReadOnlyDatabase(path)
    await ro.open()  # a backtest reading shared history must not need write access
    try:
        async with ro.session() as s:
            assert (await s.get(Bar, ("sim", "BTC/USDT", "1m", 1))).close == 2
    finally:
        await ro.close()


def _cli(tmp_path: Path, db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPS19_")}
    # a database that opened would run until stopped; the timeout ends that case (a failure)
    return subprocess.run([sys.executable, "-m", "tps19.cli", "paper", "--no-ui", "--symbol", "BTC/USDT", "--db", str(db)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def _refusal(r: subprocess.CompletedProcess[str]) -> str:
    records = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    assert "started" not in [x["event"] for x in records]
    errors = [x["message"] for x in records if x["event"] == "error"]
    assert r.returncode == 2 and len(errors) == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "\n" not in errors[0] and not any(n in errors[0] for n in SQLALCHEMY_NOISE), errors[0]
    return errors[0]


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: file modes do not stop root's writes "
                    "(the read-only probe is tested through a read-only SQLite connection instead)")
@pytest.mark.parametrize("what", ["file", "directory"])
def test_read_only_database_is_refused_at_start_by_the_cli(tmp_path, what):
    import asyncio

    d = tmp_path / "ro"
    d.mkdir()
    path = d / "t.db"

    async def make() -> None:
        db = Database(path)
        await db.open()
        await db.close()

    asyncio.run(make())
    target = path if what == "file" else d
    target.chmod(0o444 if what == "file" else 0o555)
    try:
        message = _refusal(_cli(tmp_path, path))
    finally:
        target.chmod(0o600 if what == "file" else 0o755)
    assert str(path) in message


@pytest.mark.slow
@pytest.mark.parametrize("case", ["not a database", "under a file"])
def test_database_errors_reach_the_trader_as_one_line(tmp_path, case):
    if case == "not a database":
        path = tmp_path / "t.db"
        path.write_bytes(b"this is a spreadsheet, not a database " * 200)
    else:
        (tmp_path / "afile").write_text("x")
        path = tmp_path / "afile" / "t.db"
    message = _refusal(_cli(tmp_path, path))
    assert str(path) in message


@pytest.mark.slow
async def test_a_database_error_while_trading_is_one_line_counted_and_survived(sim_settings):
    from tps19.engine.trading import OrderStatus, TradingIssue

    engine = Engine(sim_settings)
    issues: list[TradingIssue] = []
    engine.bus.on(TradingIssue, issues.append)
    await engine.start()
    try:
        broker = engine.trading.broker
        assert await wait_for(lambda: "BTC/USDT" in broker.books, timeout=60)
        # a real SQLite failure on the order's write, from outside the process, as a full disk would give
        outside = sqlite3.connect(sim_settings.database.path)
        outside.execute("CREATE TRIGGER full BEFORE INSERT ON orders BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        outside.commit()
        o = await broker.place_order("BTC/USDT", "buy", "market", Decimal("0.001"))
        assert o.status is OrderStatus.REJECTED
        assert issues and sum(broker.issues.values()) >= 1
        for text in [o.reason or ""] + [i.message for i in issues]:
            assert "\n" not in text and not any(n in text for n in SQLALCHEMY_NOISE), text
        assert "insert into orders" in issues[-1].message and "database or disk is full" in issues[-1].message

        outside.execute("DROP TRIGGER full")
        outside.commit()
        outside.close()
        o = await broker.place_order("BTC/USDT", "buy", "market", Decimal("0.001"))
        assert await wait_for(lambda: (broker.orders.get(o.client_order_id) or o).status is OrderStatus.FILLED
                              or o.status is OrderStatus.FILLED, timeout=60), o
        assert await engine.trading.store.fills_for(o.client_order_id)
    finally:
        await engine.stop()


async def test_storage_error_names_the_operation_not_the_sql(tmp_path):
    db = Database(tmp_path / "t.db")
    await db.open()
    from sqlalchemy import text

    with pytest.raises(StorageError) as info:
        async with db.session() as s:
            await s.execute(text("INSERT INTO no_such_table (secret) VALUES (:v)"), {"v": "hunter2"})
    await db.close()
    message = str(info.value)
    assert message == f"database {tmp_path / 't.db'}: insert into no_such_table failed: no such table: no_such_table"


async def test_a_failed_commit_is_named_as_such(tmp_path):
    from sqlalchemy import text

    path = tmp_path / "t.db"
    raw = sqlite3.connect(path)
    # a deferred foreign key is checked only at COMMIT: the statement succeeds, the commit fails
    raw.executescript("CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                      "CREATE TABLE child (pid INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);")
    raw.close()
    db = Database(path)
    await db.open()
    with pytest.raises(StorageError) as info:
        async with db.session() as s:
            await s.execute(text("INSERT INTO child (pid) VALUES (42)"))
            await s.commit()
    await db.close()
    assert str(info.value) == f"database {path}: commit failed: FOREIGN KEY constraint failed"


async def test_a_cancelled_database_call_stays_a_cancellation(tmp_path):
    """Shutdown cancels tasks that may be inside a database call: that must not turn into a
    StorageError (a task that swallows its cancellation never ends)."""
    import asyncio

    from sqlalchemy import text

    path = tmp_path / "t.db"
    db = Database(path)
    await db.open()
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # our write now waits in SQLite's busy handler
    inside = asyncio.Event()

    async def write() -> None:
        inside.set()  # the task's next suspension is inside the database call
        async with db.session() as s:
            await s.execute(text("UPDATE alembic_version SET version_num = version_num"))
            await s.commit()

    task = asyncio.create_task(write())
    try:
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        blocker.rollback()
        blocker.close()
        await db.close()
