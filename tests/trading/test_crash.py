"""Crash test: the process running the live broker is SIGKILLed between placing an order and
its fill; after a restart the order and its fill are in the database exactly once and the
positions match the venue's balances."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from tps19.engine.bus import EventBus
from tps19.engine.storage import Database, Fill, Order, OrderEvent
from tps19.engine.trading import BalanceDiscrepancy
from tps19.engine.assembly import build_trading

from .helpers import settings
from .simhelp import KEY, KEY2, SECRET2, make_client, make_sim, inside_spread_price, venue_totals

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


async def restart(path, sim):
    client = await make_client(sim.base_url)
    db = Database(path)
    await db.open()
    bus = EventBus()
    sub = bus.subscribe(BalanceDiscrepancy)
    s = await build_trading(mode="live", bus=bus, db=db, client=client, markets=client.markets, settings=settings(),
                            snapshot_interval_s=0, use_watch=False, poll_interval_s=30)
    await s.start()
    return s, db, client, sub


async def child_line(proc, stderr_path) -> dict:
    """The child's next JSON line; if it died first, fail with what it wrote to stderr."""
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if not line.strip():
        await asyncio.wait_for(proc.wait(), 30)
        tail = stderr_path.read_text(errors="replace")[-2000:]
        raise AssertionError(f"the live child exited ({proc.returncode}) before answering; its stderr:\n{tail}")
    return json.loads(line)


async def test_sigkill_between_place_and_fill(tmp_path, db_target):
    sim = make_sim()
    await sim.start()
    other = await make_client(sim.base_url, KEY2, SECRET2)
    path = db_target  # a SQLite file or a PostgreSQL database (tests/conftest.py)
    proc = None
    try:
        price = await inside_spread_price(other)
        with (tmp_path / "child.err").open("wb") as err:  # the child keeps its own copy of the handle
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.trading.live_child", sim.base_url, str(path), str(price),
                cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT)})
        placed = await child_line(proc, tmp_path / "child.err")
        assert placed["status"] == "open"
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        cid = placed["cid"]
        [vo] = sim.open_orders(KEY)
        assert vo["client_oid"] == cid
        # while we are dead, the order fills on the venue
        await other.create_order("BTC/USDT", "limit", "sell", 0.01, float(price))
        assert sim.open_orders(KEY) == []

        for round_ in range(2):  # restart twice: the second must change nothing
            s, db, client, sub = await restart(path, sim)
            async with db.session() as ses:
                orders = (await ses.execute(select(Order))).scalars().all()
                fills = (await ses.execute(select(Fill))).scalars().all()
                evs = (await ses.execute(select(OrderEvent.to_status).where(OrderEvent.client_order_id == cid)
                                         .order_by(OrderEvent.id))).scalars().all()
            assert [(o.client_order_id, o.status, o.filled, o.adopted) for o in orders] == [(cid, "filled", D("0.01"), False)]
            assert len(fills) == 1 and fills[0].client_order_id == cid and fills[0].amount == D("0.01")
            assert evs == ["new", "open", "filled"]
            assert s.portfolio.balances == venue_totals(sim)
            assert s.portfolio.position("BTC/USDT").qty == venue_totals(sim)["BTC"] - D("1")
            assert sub.drain() == []  # the fill explains the balance: no discrepancy
            assert s.broker.open_orders() == []
            await s.stop()
            await client.close()
            await db.close()
    finally:
        if proc is not None and proc.returncode is None:  # a failed test leaves no child behind
            proc.kill()
            await proc.wait()
        await other.close()
        await sim.stop()


async def test_sigkill_after_send_before_reply(tmp_path, db_target):
    """The order reached the venue but the process died before the reply: only the TPS19
    record (status new, no venue id) exists locally. The restart finds it by client order id."""
    sim = make_sim()
    await sim.start()
    other = await make_client(sim.base_url, KEY2, SECRET2)
    path = db_target
    proc = None
    try:
        price = await inside_spread_price(other)
        with (tmp_path / "child.err").open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.trading.live_child", sim.base_url, str(path), str(price), "wait",
                cwd=str(ROOT), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert await child_line(proc, tmp_path / "child.err") == {"ready": True}
        # the venue processes the create-order but the reply is lost, and every later request of
        # the child (its lookup by client order id) hangs: it dies knowing only its own record
        sim.faults.drop_next_create_order_reply(1)

        def stall(kind, payload):
            if kind == "order" and getattr(payload, "account", None) is sim.accounts[KEY]:
                sim.faults.delay_replies(2_000)
        sim.engine.listeners.append(stall)
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        for _ in range(500):
            if sim.open_orders(KEY):
                break
            await asyncio.sleep(0.01)
        [vo] = sim.open_orders(KEY)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        sim.engine.listeners.remove(stall)
        sim.faults.delay_replies(0)
        cid = vo["client_oid"]
        ro = Database(path)
        await ro.open()
        async with ro.session() as ses:
            [row] = (await ses.execute(select(Order))).scalars().all()
        await ro.close()
        assert (row.client_order_id, row.venue_order_id) == (cid, None) and row.status in ("new", "unknown")
        s, db, client, sub = await restart(path, sim)
        [o] = s.broker.open_orders()
        assert o.client_order_id == cid and o.venue_order_id == vo["order_id"] and not o.adopted
        assert o.status.value == "open"
        await other.create_order("BTC/USDT", "limit", "sell", 0.01, float(price))
        await s.broker.poll()
        async with db.session() as ses:
            orders = (await ses.execute(select(Order))).scalars().all()
            fills = (await ses.execute(select(Fill))).scalars().all()
        assert [(x.client_order_id, x.status) for x in orders] == [(cid, "filled")]
        assert len(fills) == 1
        assert s.portfolio.balances == venue_totals(sim) and sub.drain() == []
        await s.stop()
        await client.close()
        await db.close()
    finally:
        if proc is not None and proc.returncode is None:  # a failed test leaves no child behind
            proc.kill()
            await proc.wait()
        await other.close()
        await sim.stop()
