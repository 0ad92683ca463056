"""`tps19 db backup` while trades are being booked, `tps19 db restore`, every table compared."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel
from typer.testing import CliRunner

from tps19.cli import app
from tps19.engine.storage import Database
from tps19.engine.trading.orders import OrderState, OrderStatus, OrderType, Side
from tps19.engine.trading.store import FillRecord, TradingStore

pytestmark = pytest.mark.slow
PRICE = Decimal("50000.01")
AMOUNT = Decimal("0.00012345")


async def tables(target: str | Path) -> dict[str, list[tuple]]:
    """Every table's rows (as the models read them: money as Decimal), in a stable order."""
    d = Database(target)
    await d.open()
    assert d.engine is not None
    try:
        async with d.engine.connect() as conn:
            return {name: sorted((tuple(r) for r in (await conn.execute(select(table))).all()), key=repr)
                    for name, table in sorted(SQLModel.metadata.tables.items())}
    finally:
        await d.close()


async def book(store: TradingStore, i: int) -> None:
    """Order i filled: its row, events, fill and the balances it moves, in one transaction."""
    cid = f"bk-{i:05d}"
    o = OrderState(client_order_id=cid, mode="paper", exchange="sim", symbol="BTC/USDT", side=Side.BUY,
                   type=OrderType.LIMIT, amount=AMOUNT, price=PRICE, created_ms=1_732_924_800_000 + i,
                   updated_ms=1_732_924_800_000 + i)
    await store.save(o, insert=True, to_status=OrderStatus.NEW, detail="placed")
    o.status, o.filled, o.avg_price = OrderStatus.FILLED, AMOUNT, PRICE
    fill = FillRecord(fill_id=f"paper-{cid}", client_order_id=cid, venue_order_id=None, symbol="BTC/USDT",
                      side="buy", price=PRICE, amount=AMOUNT, fee=Decimal("0.000000001"), fee_currency="USDT",
                      liquidity="maker", ts=1_732_924_800_000 + i)
    n = i + 1
    await store.save(o, from_status=OrderStatus.NEW, to_status=OrderStatus.FILLED, fills=[fill],
                     balances={"BTC": AMOUNT * n, "USDT": Decimal(100_000) - PRICE * AMOUNT * n})


def cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.output


async def test_backup_while_booking_then_restore_every_table(db_target, tmp_path, request):
    source = db_target
    if isinstance(source, Path):
        restored: str | Path = tmp_path / "restored.db"
    else:
        restored = request.getfixturevalue("pg_server").new_empty_database("restored")
    db = Database(source)
    await db.open(probe_write=True)
    store = TradingStore(db, mode="paper", exchange="sim")
    booked = 0
    stop = asyncio.Event()

    async def book_gap() -> None:
        seen = booked
        while booked == seen:  # let the writer be mid-way again before the next try
            await asyncio.sleep(0.001)

    async def writer() -> None:
        nonlocal booked
        while not stop.is_set():
            await book(store, booked)
            booked += 1

    task = asyncio.create_task(writer())
    try:
        while booked < 20:
            await asyncio.sleep(0.01)
        # a small database's backup can finish between two writes (the CI run of stop 17 saw it):
        # back up again until one overlapped a write, so the copy below is one taken mid-booking
        for _attempt in range(20):
            at_start = booked
            code, out = await asyncio.to_thread(cli, "db", "backup", str(tmp_path / "during.bak"), "--db",
                                                str(source), "--force")
            assert code == 0, out
            at_end = booked
            if at_end > at_start:
                break
            await book_gap()
        while booked < at_end + 5:  # writes go on after the backup
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task
    assert at_end > at_start, "no write happened during the backup: the test proves nothing"

    code, out = await asyncio.to_thread(cli, "db", "restore", str(tmp_path / "during.bak"), "--db", str(restored))
    assert code == 0, out
    during = await tables(restored)
    # one consistent moment: a prefix of the orders; each filled one with both events, its fill and
    # its share of the balances; at most the last one caught between its two transactions (placed)
    orders = {r[0]: r for r in during["orders"]}
    assert at_start <= len(orders) < booked
    assert sorted(orders) == [f"bk-{i:05d}" for i in range(len(orders))]
    filled = sorted(c for c, r in orders.items() if r[12] == "filled")
    assert filled == sorted(orders)[:len(filled)] and len(orders) - len(filled) <= 1
    assert sorted(r[4] for r in during["fills"]) == sorted(filled)  # fill.client_order_id
    events: dict[str, list[str]] = {}
    for e in sorted(during["order_events"]):
        events.setdefault(e[1], []).append(e[4])
    assert events == {c: ["new", "filled"] if c in filled else ["new"] for c in orders}
    k = len(filled)
    balances = {r[2]: r[3] for r in during["trading_balances"]}
    assert balances == {"BTC": AMOUNT * k, "USDT": Decimal(100_000) - PRICE * AMOUNT * k}

    # at rest: a backup restored over the first (--force) is the source, table for table
    code, out = await asyncio.to_thread(cli, "db", "backup", str(tmp_path / "rest.bak"), "--db", str(source))
    assert code == 0, out
    code, out = await asyncio.to_thread(cli, "db", "restore", str(tmp_path / "rest.bak"), "--db", str(restored))
    assert code == 2 and "--force" in out and len(out.strip().splitlines()) == 1, out
    assert await tables(restored) == during  # the refusal changed nothing
    code, out = await asyncio.to_thread(cli, "db", "restore", str(tmp_path / "rest.bak"), "--db", str(restored),
                                        "--force")
    assert code == 0, out
    source_rows = await tables(source)
    await db.close()
    assert len(source_rows["orders"]) == booked
    assert await tables(restored) == source_rows


def test_backup_refuses_to_overwrite_and_restore_refuses_the_wrong_kind(tmp_path):
    db, bak = tmp_path / "a.db", tmp_path / "a.bak"
    assert cli("db", "upgrade", "--db", str(db))[0] == 0
    assert cli("db", "backup", str(bak), "--db", str(db))[0] == 0
    code, out = cli("db", "backup", str(bak), "--db", str(db))
    assert code == 2 and "exists" in out and "--force" in out
    code, out = cli("db", "restore", str(bak), "--db", "postgresql+asyncpg://u@127.0.0.1:9/x")
    assert code == 2 and "SQLite database" in out and len(out.strip().splitlines()) == 1
    (tmp_path / "junk.bak").write_text("not a backup")
    code, out = cli("db", "restore", str(tmp_path / "junk.bak"), "--db", str(tmp_path / "b.db"))
    assert code == 2 and "neither a SQLite database nor a pg_dump archive" in out
    assert oct(bak.stat().st_mode & 0o777) == "0o600"


def test_restoring_a_backup_from_a_newer_tps19_is_refused_naming_both_versions(db_target, tmp_path, request):
    """It used to exit 0 and advise `tps19 db upgrade`, which then failed: the database was
    replaced by one no command of this TPS19 can open."""
    from sqlalchemy import text

    from tps19.engine.storage import migrate

    async def set_revision(target, rev: str) -> None:
        d = Database(target)
        await d.open()
        async with d.session() as s:
            await s.execute(text(f"UPDATE alembic_version SET version_num = '{rev}'"))
            await s.commit()
        await d.close()

    asyncio.run(set_revision(db_target, "9999_future"))
    try:
        bak = tmp_path / "future.bak"
        code, out = cli("db", "backup", str(bak), "--db", str(db_target))
        assert code == 0, out
        if isinstance(db_target, Path):
            into: str | Path = tmp_path / "into.db"
        else:
            into = request.getfixturevalue("pg_server").new_empty_database("into")
        code, out = cli("db", "restore", str(bak), "--db", str(into))
        assert code == 2, out
        lines = out.strip().splitlines()
        assert len(lines) == 1 and "9999_future" in lines[0] and migrate.head() in lines[0], out
        assert "written by a newer TPS19" in lines[0] and "tps19 db upgrade" not in out
        code, out = cli("db", "current", "--db", str(into))
        assert code == 0 and "9999_future" not in out  # nothing was restored
    finally:
        # leave it at the head (a PostgreSQL database is reused by the next test)
        fix = Database(db_target)
        fix._connect()

        async def back() -> None:
            assert fix.engine is not None
            async with fix.engine.begin() as conn:
                await conn.execute(text(f"UPDATE alembic_version SET version_num = '{migrate.head()}'"))
            await fix.close()

        asyncio.run(back())
