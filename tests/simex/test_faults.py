"""Each fault switch does what it says."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import ccxt
import pytest
from ccxt.base.errors import ChecksumError

from .conftest import KEY, wait_for


async def _raw_market(sim, session, channels):
    ws = await session.ws_connect(sim.base_url + "/exchange/v1/market")
    await ws.send_str(json.dumps({"id": 1, "method": "subscribe", "params": {"channels": channels}, "nonce": 1}))
    return ws


async def _until_ack(ws, ack_id, sink):
    """Read messages (into sink) until the reply with id=ack_id: a barrier, since replies are in order."""
    while True:
        msg = await ws.receive_json(timeout=5)
        if msg.get("id") == ack_id and "result" not in msg:
            return
        sink.append(msg)


async def test_skip_sequence_makes_ccxt_see_a_gap(paused_sim, pex):
    sim, ex = paused_sim, pex
    gaps = []
    original = ex.handle_order_book

    def spy(client, message):
        try:
            original(client, message)
        except ChecksumError as e:  # ccxt raises this inside its receive loop on pu != previous u
            gaps.append(e)
            raise

    ex.handle_order_book = spy
    await asyncio.wait_for(ex.watch_order_book("SOL/USDT"), 5)
    await sim.step(40)
    assert not gaps
    sim.faults.skip_sequence("SOL/USDT")
    await sim.step(40)
    await wait_for(lambda: gaps)
    assert "SOL/USDT" in str(gaps[0])


async def test_skip_sequence_on_the_wire(paused_sim):
    sim = paused_sim
    async with aiohttp.ClientSession() as s:
        ws = await _raw_market(sim, s, ["book.BTC_USDT.50", "book.ETH_USDT.50"])
        msgs = []
        await _until_ack(ws, 1, msgs)
        sim.faults.skip_sequence("BTC/USDT")
        await sim.step(200)
        await ws.send_str(json.dumps({"id": 7, "method": "subscribe", "params": {"channels": ["trade.SOL_USDT"]}}))
        await _until_ack(ws, 7, msgs)
        await ws.close()
    last, breaks = {}, {}
    for m in msgs:
        r = m.get("result") or {}
        if not r.get("channel", "").startswith("book"):
            continue
        d = r["data"][0]
        sym = r["instrument_name"]
        if r["channel"] == "book.update" and d["pu"] != last[sym]:
            breaks[sym] = breaks.get(sym, 0) + 1
        last[sym] = d["u"]
    assert breaks == {"BTC_USDT": 1}  # exactly one gap, only on the chosen symbol


async def test_drop_connections_closes_websockets_and_ccxt_recovers(sim, ex):
    async with aiohttp.ClientSession() as s:
        raw = await _raw_market(sim, s, ["ticker.BTC_USDT"])
        await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 5)
        before = sim.stats["ws_connections"]
        dropped = set(sim._conns)
        assert sim.faults.drop_connections() == 2
        async for _ in raw:  # the raw client is closed by the venue
            pass
        assert raw.closed
    errors = []
    while sim.stats["ws_connections"] == before:  # ccxt notices the close and reconnects on the next watch
        try:
            await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 5)
        except ccxt.NetworkError as e:
            errors.append(e)
        except Exception as e:  # aiohttp's ClientConnectionResetError can leak through ccxt here
            errors.append(e)
    ob = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 5)
    assert ob["bids"][0][0] < ob["asks"][0][0]
    assert sim._conns and not (set(sim._conns) & dropped)  # only fresh connections remain


async def test_stop_stream_silences_only_that_stream(paused_sim):
    sim = paused_sim
    async with aiohttp.ClientSession() as s:
        ws = await _raw_market(sim, s, ["book.BTC_USDT.50", "book.ETH_USDT.50"])
        pre = []
        await _until_ack(ws, 1, pre)
        sim.faults.stop_stream("book", "BTC/USDT")
        await sim.step(300)
        await ws.send_str(json.dumps({"id": 8, "method": "subscribe", "params": {"channels": ["trade.SOL_USDT"]}}))
        msgs = []
        await _until_ack(ws, 8, msgs)
        seen = {m["result"]["instrument_name"] for m in msgs if m.get("result", {}).get("channel") == "book.update"}
        assert seen == {"ETH_USDT"}
        assert not ws.closed  # silent: the connection stays up
        sim.faults.resume_stream("book", "BTC/USDT")
        await sim.step(300)
        await ws.send_str(json.dumps({"id": 9, "method": "subscribe", "params": {"channels": ["trade.BTC_USDT"]}}))
        msgs = []
        await _until_ack(ws, 9, msgs)
        assert any(m.get("result", {}).get("instrument_name") == "BTC_USDT" for m in msgs)
        await ws.close()


async def test_delay_replies(sim, ex):
    sim.faults.delay_replies(300)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await ex.fetch_ticker("BTC/USDT")
    assert loop.time() - t0 >= 0.3
    sim.faults.delay_replies(0)


async def test_http_error_injection(sim, ex):
    sim.faults.reply_429(1)
    with pytest.raises(ccxt.RateLimitExceeded):
        await ex.fetch_ticker("BTC/USDT")
    sim.faults.fail_next_requests(1, 500)
    with pytest.raises(ccxt.ExchangeError, match="50001"):
        await ex.fetch_ticker("BTC/USDT")
    sim.faults.reply_5xx(2, 503)
    for _ in range(2):  # ccxt's cryptocom.handle_errors turns a non-JSON 503 into a plain ExchangeError
        with pytest.raises(ccxt.ExchangeError):
            await ex.fetch_order_book("BTC/USDT")
    assert (await ex.fetch_ticker("BTC/USDT"))["bid"] > 0  # only the next N calls
    assert sim.stats["injected_http_errors"] == 4


async def test_dropped_create_order_reply_then_resend_is_refused(sim, ex):
    sim.faults.drop_next_create_order_reply()
    with pytest.raises(ccxt.NetworkError):
        await ex.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"client_oid": "once-1"})
    venue = sim.open_orders(KEY)
    assert [o["client_oid"] for o in venue] == ["once-1"]  # processed although unanswered
    with pytest.raises(ccxt.ExchangeError, match="DUPLICATE_CLORDID"):
        await ex.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"client_oid": "once-1"})
    assert len(sim.open_orders(KEY)) == 1
    found = await ex.fetch_open_orders("BTC/USDT")
    assert [o["clientOrderId"] for o in found] == ["once-1"]


async def test_client_that_cannot_keep_up_is_disconnected(paused_sim, monkeypatch):
    from tps19.simex import server

    monkeypatch.setattr(server, "MAX_QUEUED", 50)
    sim = paused_sim
    async with aiohttp.ClientSession() as s:
        ws = await _raw_market(sim, s, ["book.BTC_USDT.50", "book.ETH_USDT.50", "book.SOL_USDT.50"])
        await _until_ack(ws, 1, [])
        await sim.step(400)  # one burst: far more than 50 messages queue up before any is written
        async for _ in ws:
            pass
        assert ws.closed
    assert sim.stats["slow_consumer_disconnects"] == 1 and not sim._conns


async def test_accept_then_fail_processes_the_order_then_answers_504(sim, ex):
    sim.faults.accept_then_fail(1, 504)
    with pytest.raises(ccxt.ExchangeError):  # a plain-text 504: ccxt cannot tell it was processed
        await ex.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"client_oid": "atf-1"})
    assert [o["client_oid"] for o in sim.open_orders(KEY)] == ["atf-1"]  # yet the venue has it
    await ex.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"client_oid": "atf-2"})  # only the next N
    assert len(sim.open_orders(KEY)) == 2


async def test_garbage_frames_reach_every_market_connection(paused_sim):
    sim = paused_sim
    async with aiohttp.ClientSession() as s:
        ws = await _raw_market(sim, s, ["book.BTC_USDT.50"])
        await _until_ack(ws, 1, [])
        assert sim.faults.garbage(4) == 1
        binary = bad_text = 0
        while binary + bad_text < 4:  # ordinary frames (a book snapshot) may come first
            msg = await asyncio.wait_for(ws.receive(), 5)
            if msg.type == aiohttp.WSMsgType.BINARY:
                binary += 1
                continue
            try:
                json.loads(msg.data)
            except ValueError:
                bad_text += 1
        assert (binary, bad_text) == (2, 2)
        await ws.close()


async def test_silence_ends_by_itself(paused_sim):
    sim = paused_sim
    async with aiohttp.ClientSession() as s:
        ws = await _raw_market(sim, s, ["book.BTC_USDT.50"])
        await _until_ack(ws, 1, [])
        sim.faults.silence(0.5, "BTC/USDT")
        await sim.step(100)
        await ws.send_str(json.dumps({"id": 5, "method": "subscribe", "params": {"channels": ["trade.ETH_USDT"]}}))
        msgs = []
        await _until_ack(ws, 5, msgs)
        assert not [m for m in msgs if m.get("result", {}).get("channel") == "book.update"]
        while sim.faults.stopped:  # the switch turns itself off; no wall-clock guess about when
            await asyncio.sleep(0.05)
        await sim.step(100)
        await ws.send_str(json.dumps({"id": 6, "method": "subscribe", "params": {"channels": ["trade.SOL_USDT"]}}))
        msgs = []
        await _until_ack(ws, 6, msgs)
        assert [m for m in msgs if m.get("result", {}).get("channel") == "book.update"]
        await ws.close()
    with pytest.raises(ValueError):
        sim.faults.silence(float("inf"))


async def test_market_lag_delivers_frames_late(paused_sim):
    sim = paused_sim
    async with aiohttp.ClientSession() as s:
        ws = await _raw_market(sim, s, ["book.BTC_USDT.50"])
        await _until_ack(ws, 1, [])
        sim.faults.lag_market(400)
        await sim.step(20)
        while True:
            msg = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
            if msg.get("result", {}).get("channel") == "book.update":
                break
        assert sim.clock() - msg["result"]["data"][0]["t"] >= 400
        await ws.close()
