"""SQLite storage: a real file, exact money, versioned schema (Alembic)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest
from sqlalchemy import select

from tps19.engine.storage import Database, Fill, Order
from tps19.engine.storage import migrate
from tps19.engine.storage.db import SchemaTooNew


def _order(**kw):
    base = dict(client_order_id="t19-1", exchange="sim", mode="paper", symbol="BTC/USDT", side="buy", type="limit",
                amount=Decimal("0.00012345"), price=Decimal("60123.45"), status="open", created_ms=1, updated_ms=1)
    return Order(**(base | kw))


async def test_money_round_trips_exactly_and_is_stored_as_text(tmp_path):
    path = tmp_path / "t.db"
    db = Database(path)
    await db.open()
    async with db.session() as s:
        s.add(_order())
        s.add(Fill(exchange="sim", mode="paper", fill_id="f1", client_order_id="t19-1", symbol="BTC/USDT", side="buy",
                   price=Decimal("0.1"), amount=Decimal("0.2"), fee=Decimal("0.00000001"), ts=1))
        await s.commit()
    async with db.session() as s:
        o = (await s.execute(select(Order))).scalars().one()
        f = (await s.execute(select(Fill))).scalars().one()
    await db.close()
    assert o.amount * o.price == Decimal("0.00012345") * Decimal("60123.45")
    assert f.price + f.amount == Decimal("0.3")  # would be 0.30000000000000004 as floats
    raw = sqlite3.connect(path).execute("SELECT price, typeof(price) FROM orders").fetchone()
    assert raw == ("60123.45", "text")
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_float_money_is_refused(tmp_path):
    db = Database(tmp_path / "t.db")
    await db.open()
    with pytest.raises(Exception, match="Decimal"):
        async with db.session() as s:
            s.add(_order(price=60123.45))
            await s.commit()
    await db.close()


async def test_fill_is_booked_once(tmp_path):
    db = Database(tmp_path / "t.db")
    await db.open()
    fill = dict(exchange="sim", mode="live", fill_id="T-1", symbol="BTC/USDT", side="buy", price=Decimal(1),
                amount=Decimal(1), ts=1)
    async with db.session() as s:
        s.add(Fill(**fill))
        await s.commit()
    with pytest.raises(Exception, match="UNIQUE"):
        async with db.session() as s:
            s.add(Fill(**fill))
            await s.commit()
    await db.close()


async def test_schema_is_versioned_and_a_newer_database_is_refused(tmp_path):
    path = tmp_path / "t.db"
    db = Database(path)
    await db.open()
    assert await db.revision() == migrate.head()
    await db.close()
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    con.commit()
    con.close()
    db = Database(path)
    with pytest.raises(SchemaTooNew):
        await db.open()
    await db.close()
