"""SIGKILL at each point of a protective order's life (armed; triggered, not sent; sent, not
acknowledged; one OCO leg filled, the other not yet cancelled): after a restart each is acted on
exactly once, on the simulated exchange through the unmodified ccxt client."""

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
from tps19.engine.events import Trade, TradeEvent
from tps19.engine.storage import Database, Order, OrderEvent
from tps19.engine.assembly import build_trading
from tps19.engine.trading import TradingIssue

from .helpers import settings, until
from .simhelp import KEY, KEY2, SECRET2, make_client, make_sim, venue_totals

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_target", ["sqlite"], indirect=True)]


class Child:
    def __init__(self, proc: asyncio.subprocess.Process, err: Path) -> None:
        self.proc, self.err = proc, err

    async def line(self) -> dict:
        raw = await asyncio.wait_for(self.proc.stdout.readline(), 60)  # type: ignore[union-attr]
        if not raw.strip():
            await asyncio.wait_for(self.proc.wait(), 30)
            raise AssertionError(f"the child exited ({self.proc.returncode}); stderr:\n{self.err.read_text()[-2000:]}")
        return json.loads(raw)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()


async def spawn(tmp_path, sim, path, *args: str) -> Child:
    err = tmp_path / "child.err"
    with err.open("wb") as f:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.trading.stops_child", sim.base_url, str(path), *args, cwd=str(ROOT),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=f,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
    return Child(proc, err)


async def restart(path, sim, bus=None):
    client = await make_client(sim.base_url)
    db = Database(path)
    await db.open()
    bus = bus or EventBus()
    s = await build_trading(mode="live", bus=bus, db=db, client=client, markets=client.markets, settings=settings(),
                            snapshot_interval_s=0, use_watch=False, poll_interval_s=30, stop_placement="emulated")
    s.broker.emulator.blind_after_ms = 0  # (2 s by default) any time unwatched is a blind window here
    await s.start()
    return s, db, client


async def stop_all(s, db, client) -> None:
    await s.stop()
    await client.close()
    await db.close()


async def row(db, cid) -> Order:
    async with db.session() as ses:
        return await ses.get(Order, cid)


async def settled(db, cid, status="filled", timeout=15.0) -> Order:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while (r := await row(db, cid)) is None or r.status != status:
        if loop.time() > end:
            raise AssertionError(f"{cid} is {r.status if r else None}, not {status}")
        await asyncio.sleep(0.01)
    return r


@pytest.fixture
async def venue():
    sim = make_sim()
    await sim.start()
    other = await make_client(sim.base_url, KEY2, SECRET2)
    yield sim, other
    await other.close()
    await sim.stop()


async def top(client) -> tuple[D, D]:
    ob = await client.fetch_order_book("BTC/USDT", 5)
    return D(repr(ob["bids"][0][0])), D(repr(ob["asks"][0][0]))


def venue_orders(sim, cid: str) -> int:
    return sum(1 for c in sim.accounts[KEY].by_client_oid if c == cid)


async def test_armed_stop_crossed_while_the_process_was_down_fires_late_once_and_says_how_late(tmp_path, db_target, venue):
    sim, other = venue
    bid, _ = await top(other)
    child = await spawn(tmp_path, sim, db_target, str(bid), "armed")
    try:
        armed = await child.line()
        assert armed["state"] == "armed", armed
    finally:
        await child.kill()
    cid = armed["cid"]
    assert sim.open_orders(KEY) == []  # emulated: nothing was at the venue
    await other.create_order("BTC/USDT", "limit", "sell", 0.05, float(bid - 200))  # prints at and below the stop
    bus = EventBus()
    issues = bus.subscribe(TradingIssue)
    s, db, client = await restart(db_target, sim, bus)
    try:
        r = await settled(db, cid)
        assert r.filled == D("0.01") and venue_orders(sim, cid) == 1
        async with db.session() as ses:
            details = (await ses.execute(select(OrderEvent.detail).where(OrderEvent.client_order_id == cid)
                                         .order_by(OrderEvent.id))).scalars().all()
        fired = next(d for d in details if d and d.startswith("triggered"))
        assert "blind-window prints (restart)" in fired and "s late" in fired and "beyond the level" in fired
        late = [i for i in issues.drain() if i.kind == "stop_late"]
        assert late and late[0].fields["client_order_id"] == cid and late[0].fields["late_ms"] >= 0
        await until(lambda: s.portfolio.balances == venue_totals(sim))
    finally:
        await stop_all(s, db, client)
    s, db, client = await restart(db_target, sim)  # a second restart changes nothing
    try:
        assert venue_orders(sim, cid) == 1 and (await row(db, cid)).status == "filled"
        assert s.broker.open_orders() == []
    finally:
        await stop_all(s, db, client)


async def test_stop_stored_as_triggered_is_sent_once_after_a_restart_whatever_the_price(tmp_path, db_target, venue):
    sim, other = venue
    bid, _ = await top(other)
    level = bid - 100
    child = await spawn(tmp_path, sim, db_target, str(level), "triggered")
    try:
        got = await child.line()
        assert got["state"] == "triggered", got
    finally:
        await child.kill()
    cid = got["cid"]
    assert venue_orders(sim, cid) == 0  # it died before sending
    s, db, client = await restart(db_target, sim)  # the market is above the level now: sent anyway
    try:
        r = await settled(db, cid)
        assert r.trigger_state == "working" and venue_orders(sim, cid) == 1
    finally:
        await stop_all(s, db, client)
    s, db, client = await restart(db_target, sim)
    try:
        assert venue_orders(sim, cid) == 1
    finally:
        await stop_all(s, db, client)


async def test_stop_sent_but_not_acknowledged_is_found_by_its_id_not_sent_again(tmp_path, db_target, venue):
    sim, other = venue
    bid, _ = await top(other)
    level = bid - 100
    child = await spawn(tmp_path, sim, db_target, str(level), "sent")
    try:
        ready = await child.line()
        assert ready.get("ready"), ready
        cid = ready["cid"]
        # the venue executes the create-order but the reply is lost, and the child's lookup hangs
        sim.faults.drop_next_create_order_reply(1)

        def stall(kind, payload):
            if kind == "order" and getattr(payload, "account", None) is sim.accounts[KEY]:
                sim.faults.delay_replies(2_000)
        sim.engine.listeners.append(stall)
        child.proc.stdin.write(b"go\n")  # type: ignore[union-attr]
        await child.proc.stdin.drain()  # type: ignore[union-attr]
        for _ in range(1000):
            if venue_orders(sim, cid):
                break
            await asyncio.sleep(0.01)
        assert venue_orders(sim, cid) == 1
    finally:
        await child.kill()
    sim.engine.listeners.remove(stall)
    sim.faults.delay_replies(0)
    s, db, client = await restart(db_target, sim)
    try:
        r = await settled(db, cid)
        assert r.filled == D("0.01") and venue_orders(sim, cid) == 1  # found, not sent twice
        await until(lambda: s.portfolio.balances == venue_totals(sim))
    finally:
        await stop_all(s, db, client)


async def test_stop_sent_before_its_trigger_was_written_is_found_on_the_venue_not_sent_again(tmp_path, db_target, venue):
    """The trigger is written while the order goes out: the process dies with the row still armed
    and the order filled on the venue. The restart finds it by client id and books its fill once."""
    sim, other = venue
    bid, _ = await top(other)
    child = await spawn(tmp_path, sim, db_target, str(bid - 100), "unwritten")
    try:
        got = await child.line()
        assert got.get("state") == "sent, row armed", got
    finally:
        await child.kill()
    cid = got["cid"]
    assert venue_orders(sim, cid) == 1
    ro = Database(db_target)
    await ro.open()
    assert (await row(ro, cid)).trigger_state == "armed"
    await ro.close()
    bus = EventBus()
    issues = bus.subscribe(TradingIssue)
    s, db, client = await restart(db_target, sim, bus)
    try:
        r = await settled(db, cid)
        assert r.filled == D("0.01") and r.trigger_state == "working" and venue_orders(sim, cid) == 1
        assert any(i.kind == "stop_found" and i.fields["client_order_id"] == cid for i in issues.drain())
        await until(lambda: s.portfolio.balances == venue_totals(sim))
        assert s.broker.emulator.held == {}
    finally:
        await stop_all(s, db, client)


async def test_oco_leg_filled_while_down_cancels_the_other_leg_at_restart(tmp_path, db_target, venue):
    sim, other = venue
    bid, ask = await top(other)
    # the take-profit's limit order rests as the best ask, where the other trader's buy meets it
    stop_level, take_level, limit = bid - 200, ask + 50, ask - D("0.01")
    assert limit > bid
    child = await spawn(tmp_path, sim, db_target, str(stop_level), "oco", str(take_level), str(limit))
    try:
        got = await child.line()
        assert got.get("take"), got
    finally:
        await child.kill()
    stop_cid, take_cid = got["cid"], got["take"]
    [vo] = sim.open_orders(KEY)
    assert vo["client_oid"] == take_cid
    await other.create_order("BTC/USDT", "limit", "buy", 0.01, float(limit))  # fills our take-profit while we are down
    assert sim.open_orders(KEY) == []
    bus = EventBus()
    s, db, client = await restart(db_target, sim, bus)
    try:
        await settled(db, take_cid)
        r = await settled(db, stop_cid, "cancelled")
        assert "filled" in r.reason
        bus.publish(TradeEvent("BTC/USDT", (Trade(ts=0, side="sell", price=float(stop_level - 10), amount=0.01),)))
        await asyncio.sleep(0.1)
        assert venue_orders(sim, stop_cid) == 0 and s.broker.open_orders() == []
        await until(lambda: s.portfolio.balances == venue_totals(sim))
    finally:
        await stop_all(s, db, client)
