"""ccxt.pro websockets (market + user channels) against the simulated exchange."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp

from tps19.simex import SimExchange

from .conftest import BALANCES, KEY, SECRET, running, wait_for


@contextlib.asynccontextmanager
async def raw_market_socket(**heartbeats: float) -> AsyncIterator[tuple[SimExchange, aiohttp.ClientWebSocketResponse]]:
    """A simulated exchange with these heartbeat settings and one bare websocket on its market
    endpoint: no ccxt, so nothing answers a heartbeat unless the test does."""
    async with running(SimExchange(port=0, seed=19, accounts={KEY: (SECRET, dict(BALANCES))}, **heartbeats)) as sim:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(sim.base_url + "/exchange/v1/market") as ws:
                yield sim, ws


async def test_watch_order_book_stays_uncrossed_for_seconds(sim, ex):
    loop = asyncio.get_running_loop()
    end = loop.time() + 2.0
    nonces = []
    while loop.time() < end:
        ob = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 5)
        assert ob["bids"][0][0] < ob["asks"][0][0]
        assert len(ob["bids"]) <= 50 and len(ob["asks"]) <= 50
        nonces.append(ob["nonce"])
    assert len(nonces) > 10 and nonces == sorted(nonces)


async def test_local_book_equals_venue_book_after_deltas(paused_sim, pex):
    sim, ex = paused_sim, pex
    await asyncio.wait_for(ex.watch_order_book("ETH/USDT"), 5)
    ch = sim._book_channels[("ETH/USDT", 50)]
    await sim.step(300)
    await pex.create_order("ETH/USDT", "market", "sell", 0.5)  # our own order moves the book too
    target = ch.last_u
    assert sim.stats["book_updates"] > 50
    while True:
        ob = await asyncio.wait_for(ex.watch_order_book("ETH/USDT"), 5)
        if ob["nonce"] == target:
            break
    venue = sim.order_book("ETH/USDT", 50)
    assert [[float(p), float(q)] for p, q, _ in venue["bids"]] == [lvl[:2] for lvl in ob["bids"]]
    assert [[float(p), float(q)] for p, q, _ in venue["asks"]] == [lvl[:2] for lvl in ob["asks"]]


async def test_watch_trades_ticker_and_ohlcv(sim, ex):
    trades = await asyncio.wait_for(ex.watch_trades("SOL/USDT"), 10)
    assert trades and all(t["symbol"] == "SOL/USDT" and t["amount"] > 0 for t in trades)
    t = await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 5)
    assert t["bid"] < t["ask"] and t["last"] > 0
    candles = await asyncio.wait_for(ex.watch_ohlcv("ETH/USDT", "1m"), 5)
    ts, o, h, l, c, v = candles[-1]
    assert ts % 60_000 == 0 and l <= min(o, c) and max(o, c) <= h


async def test_watch_orders_sees_open_then_canceled(sim, ex):
    watcher = asyncio.create_task(ex.watch_orders("BTC/USDT"))
    await asyncio.wait_for(ex.authenticate(), 5)
    await wait_for(lambda: any("user.order.BTC_USDT" in c.subs for c in sim._conns))
    order = await ex.create_order("BTC/USDT", "limit", "buy", 0.001, 40000)
    seen = await asyncio.wait_for(watcher, 5)
    assert [(o["id"], o["status"]) for o in seen] == [(order["id"], "open")]
    await ex.cancel_order(order["id"])
    seen = await asyncio.wait_for(ex.watch_orders("BTC/USDT"), 5)
    assert seen[-1]["id"] == order["id"] and seen[-1]["status"] == "canceled"


async def test_watch_my_trades_and_balance(sim, ex):
    watcher = asyncio.create_task(ex.watch_my_trades())
    await asyncio.wait_for(ex.authenticate(), 5)
    await wait_for(lambda: any("user.trade" in c.subs for c in sim._conns))
    order = await ex.create_order("ETH/USDT", "market", "buy", 0.2)
    trades = await asyncio.wait_for(watcher, 5)
    assert trades and {t["order"] for t in trades} == {order["id"]}
    assert all(t["symbol"] == "ETH/USDT" and t["side"] == "buy" and t["takerOrMaker"] == "taker" for t in trades)
    # ccxt appends each user.trade message twice (see README); the trade ids are still the venue's
    assert len({t["id"] for t in trades}) == len(sim.accounts[KEY].trades)
    bal = await asyncio.wait_for(ex.watch_balance(), 5)
    assert float(sim.account_balances(KEY)["ETH"]["total"]) == bal["ETH"]["total"]


async def test_heartbeats_are_answered_by_ccxt(sim, ex):
    await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 5)
    await wait_for(lambda: sim.stats["heartbeat_responses"] >= 2)
    assert sim.stats["heartbeat_disconnects"] == 0
    t = await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 5)
    assert t["symbol"] == "BTC/USDT"


async def test_unanswered_heartbeat_closes_connection():
    # the venue's default answer window: until the next heartbeat is due
    async with raw_market_socket(heartbeat_interval=0.3) as (sim, ws):
        got = []
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                got.append(json.loads(msg.data)["method"])
        assert "public/heartbeat" in got and ws.closed
        assert sim.stats["heartbeat_disconnects"] >= 1


async def test_a_heartbeat_answered_late_but_inside_its_window_keeps_the_connection():
    # a heartbeat every 0.05 s, 1 s to answer each: answered after 0.1 s (two ticks late) it still
    # counts; the next one, never answered, closes the connection once its own second has passed
    async with raw_market_socket(heartbeat_interval=0.05, heartbeat_timeout=1.0) as (sim, ws):
        got = []
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                hb = json.loads(msg.data)
                got.append(hb["method"])
                if len(got) == 1:
                    await asyncio.sleep(0.1)
                    await ws.send_str(json.dumps({"id": hb["id"], "method": "public/respond-heartbeat"}))
        assert got == ["public/heartbeat", "public/heartbeat"] and ws.closed
        assert sim.stats["heartbeat_responses"] == 1 and sim.stats["heartbeat_disconnects"] == 1


async def _reply(ws) -> dict:
    """The next message that is not a heartbeat (one comes every 0.3 s, between any two replies)."""
    while (msg := await ws.receive_json(timeout=5)).get("method") == "public/heartbeat":
        pass
    return msg


async def test_user_channel_requires_auth_and_bad_messages_are_answered(sim):
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(sim.base_url + "/exchange/v1/user") as ws:
            await ws.send_str('{"id": 1, "method": "subscribe", "params": {"channels": ["user.order"]}}')
            assert (await _reply(ws))["code"] == 40101
            await ws.send_str('{"id": 2, "method": "public/auth", "api_key": "test-key", "sig": "00", "nonce": 1}')
            assert (await _reply(ws))["code"] == 40101
            await ws.send_str("not json")
            assert (await _reply(ws))["code"] == 40001
            await ws.send_str('{"id": 3, "method": "no/such"}')
            assert (await _reply(ws))["code"] == 40002
    assert sim.stats["bad_requests"] >= 2 and sim.stats["internal_errors"] == 0


async def test_create_order_ws_and_cancel_all_orders(sim, ex):
    o = await asyncio.wait_for(ex.create_order_ws("SOL/USDT", "limit", "buy", 1, 100, {"client_oid": "ws-1"}), 5)
    assert o["id"] and o["clientOrderId"] == "ws-1"
    await ex.create_order("ETH/USDT", "limit", "buy", 0.1, 1000)
    assert len(sim.open_orders(KEY)) == 2
    await ex.cancel_all_orders("SOL/USDT")
    assert [x["instrument_name"] for x in sim.open_orders(KEY)] == ["ETH_USDT"]
    await ex.cancel_all_orders()
    assert sim.open_orders(KEY) == [] and sim.account_balances(KEY)["USDT"]["used"] == 0
