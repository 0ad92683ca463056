"""The fault switchboard (`tps19 exchange --control-port`): every route, its 400s, and each fault's
effect on an unmodified ccxt.pro client talking to a real `tps19 exchange` process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time

import aiohttp
import ccxt
import pytest
from ccxt.base.errors import ChecksumError

from tps19.config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET
from tps19.simex import point_ccxt
from tps19.simex.control import ControlServer

from .conftest import exchange_command, wait_for


def _wall_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- in-process: routes and 400s
@pytest.fixture
async def board(paused_sim):
    ctl = await ControlServer(paused_sim, 0).start()
    try:
        async with aiohttp.ClientSession(ctl.base_url) as http:
            yield paused_sim, ctl, http
    finally:
        await ctl.stop()


ROUTES = [
    ("/faults/gap?symbol=BTC/USDT", lambda f: f["gap_pending"] == ["BTC/USDT"]),
    ("/faults/gap?symbol=eth_usdt", lambda f: f["gap_pending"] == ["ETH/USDT"]),  # the venue id works too
    ("/faults/silence?seconds=30", lambda f: f["stopped"] == ["*:*"] and 0 < f["silenced_s"]["*"] <= 30),
    ("/faults/silence?seconds=2.5&symbol=SOL/USDT", lambda f: f["stopped"] == ["*:SOL/USDT"]),
    ("/faults/http?status=503&count=3", lambda f: f["http_errors"] == {"count": 3, "status": 503}),
    ("/faults/http", lambda f: f["http_errors"] == {"count": 1, "status": 503}),
    ("/faults/accept-then-fail?status=504&count=2", lambda f: f["accept_then_fail"] == {"count": 2, "status": 504}),
    ("/faults/lag?ms=250", lambda f: f["market_lag_ms"] == 250),
    ("/faults/delay?ms=40", lambda f: f["delay_ms"] == 40),
]


@pytest.mark.parametrize("path,check", ROUTES, ids=[r[0] for r in ROUTES])
async def test_each_switch_is_set_and_cleared_over_http(board, path, check):
    sim, _, http = board
    async with http.post(path) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert body["ok"] and check(body["faults"])
    async with http.get("/faults") as r:
        assert check(await r.json())
    assert check(sim.faults.describe())
    async with http.post("/faults/clear") as r:
        cleared = (await r.json())["faults"]
    assert cleared["gap_pending"] == [] and cleared["stopped"] == [] and cleared["silenced_s"] == {}
    assert cleared["http_errors"]["count"] == 0 and cleared["accept_then_fail"]["count"] == 0
    assert cleared["market_lag_ms"] == 0 and cleared["delay_ms"] == 0


async def test_drop_and_garbage_report_the_connections_they_hit(board):
    sim, _, http = board
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(sim.base_url + "/exchange/v1/market")
        await ws.send_str(json.dumps({"id": 1, "method": "subscribe", "params": {"channels": ["ticker.BTC_USDT"]}}))
        while (await ws.receive_json(timeout=10)).get("id") != 1:
            pass
        async with http.post("/faults/garbage?count=2") as r:
            assert (await r.json())["garbage"] == {"count": 2, "connections": 1}
        binary = undecodable = 0
        while binary + undecodable < 2:  # the subscription's first ticker may come before them
            msg = await ws.receive(timeout=10)
            if msg.type == aiohttp.WSMsgType.BINARY:
                binary += 1
            else:
                try:
                    json.loads(msg.data)
                except ValueError:
                    undecodable += 1
        assert (binary, undecodable) == (1, 1)
        async with http.post("/faults/drop") as r:
            assert (await r.json())["dropped_connections"] == 1
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1013


BAD = [
    ("/faults/gap", "symbol"),
    ("/faults/gap?symbol=XRP/USDT", "symbol"),
    ("/faults/silence?seconds=abc", "seconds"),
    ("/faults/silence?seconds=-1", "seconds"),
    ("/faults/silence?seconds=0", "seconds"),
    ("/faults/silence?seconds=inf", "seconds"),
    ("/faults/silence?seconds=nan", "seconds"),
    ("/faults/silence?seconds=1e999", "seconds"),
    ("/faults/silence", "seconds"),
    ("/faults/silence?seconds=5&symbol=DOGE/USDT", "symbol"),
    ("/faults/garbage?count=-3", "count"),
    ("/faults/garbage?count=1e3", "count"),
    ("/faults/garbage?count=0", "count"),
    ("/faults/http?status=abc&count=1", "status"),
    ("/faults/http?status=200&count=1", "status"),
    ("/faults/http?status=503&count=inf", "count"),
    ("/faults/http?status=503&count=2.5", "count"),
    ("/faults/accept-then-fail?status=504&count=-1", "count"),
    ("/faults/accept-then-fail?status=9999", "status"),
    ("/faults/lag?ms=inf", "ms"),
    ("/faults/lag?ms=-5", "ms"),
    ("/faults/lag", "ms"),
    ("/faults/lag?ms=5&ms=6", "ms"),
    ("/faults/drop?symbol=BTC/USDT", "symbol"),
    ("/faults/http?status=503&cuont=5", "cuont"),
]


@pytest.mark.parametrize("path,parameter", BAD, ids=[b[0] for b in BAD])
async def test_bad_parameter_is_a_400_naming_it_and_changes_nothing(board, path, parameter):
    sim, _, http = board
    before = sim.faults.describe()
    async with http.post(path) as r:
        assert r.status == 400
        assert r.content_type == "application/json"
        body = await r.json()
    assert body["parameter"] == parameter
    assert body["error"].startswith(f"{parameter}: ")
    assert sim.faults.describe() == before


async def test_unknown_route_and_wrong_method_answer_json(board):
    _, ctl, http = board
    assert ctl.base_url.startswith("http://127.0.0.1:")
    async with http.post("/faults/explode") as r:
        assert r.status == 404
        assert "POST /faults/drop" in (await r.json())["routes"]
    async with http.get("/faults/drop") as r:
        assert r.status == 405
        assert "405" in (await r.json())["error"]


# ---------------------------------------------------------------- a real `tps19 exchange` process
class Exchange:
    def __init__(self, proc: subprocess.Popen, base_url: str, control_url: str) -> None:
        self.proc, self.base_url, self.control_url = proc, base_url, control_url

    async def post(self, path: str) -> dict:
        async with aiohttp.ClientSession() as s, s.post(self.control_url + path) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def faults(self) -> dict:
        async with aiohttp.ClientSession() as s, s.get(self.control_url + "/faults") as r:
            return await r.json()


@pytest.fixture(scope="module")
def exchange_process():
    with exchange_command("--port", "0", "--control-port", "0", "--rate", "200") as proc:
        lines = [proc.stdout.readline() for _ in range(3)]
        base = re.search(r"(http://127\.0\.0\.1:\d+)/exchange/v1", lines[0])
        control = re.search(r"fault switchboard on (http://127\.0\.0\.1:\d+)/faults", lines[2])
        assert base and control, lines
        yield Exchange(proc, base.group(1), control.group(1))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.fixture
async def venue(exchange_process):
    import ccxt.pro

    await exchange_process.post("/faults/clear")
    client = ccxt.pro.cryptocom({"apiKey": SIM_DEMO_API_KEY, "secret": SIM_DEMO_SECRET})
    point_ccxt(client, exchange_process.base_url)
    await client.load_markets()
    try:
        yield exchange_process, client
    finally:
        await client.close()
        await exchange_process.post("/faults/clear")


async def test_http_fault_fails_the_next_fetch_then_recovers(venue):
    exchange, ex = venue
    await exchange.post("/faults/http?status=503&count=1")
    with pytest.raises(ccxt.ExchangeError, match="503"):
        await ex.fetch_ticker("BTC/USDT")
    assert (await ex.fetch_ticker("BTC/USDT"))["bid"] > 0
    assert (await exchange.faults())["http_errors"]["count"] == 0


async def test_accept_then_fail_leaves_an_open_order_although_create_order_raised(venue):
    exchange, ex = venue
    book = await ex.fetch_order_book("BTC/USDT")
    price = float(ex.price_to_precision("BTC/USDT", book["bids"][0][0] * 0.8))  # far from the market: it rests
    oid = f"atf-{os.getpid()}-{_wall_ms()}"
    await exchange.post("/faults/accept-then-fail?status=504&count=1")
    with pytest.raises(ccxt.ExchangeError, match="504"):
        await ex.create_order("BTC/USDT", "limit", "buy", 0.01, price, {"client_oid": oid})
    open_orders = await ex.fetch_open_orders("BTC/USDT")
    mine = [o for o in open_orders if o["clientOrderId"] == oid]
    assert len(mine) == 1 and mine[0]["price"] == price
    await ex.cancel_order(mine[0]["id"], "BTC/USDT")


async def test_gap_makes_ccxt_raise_checksum_error_on_watch_order_book(venue):
    exchange, ex = venue
    gaps: list[Exception] = []
    original = ex.handle_order_book

    def spy(client, message):  # observes only: ccxt raises inside its receive callback, not from the watch
        try:
            original(client, message)
        except ChecksumError as e:
            gaps.append(e)
            raise

    ex.handle_order_book = spy
    await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 30)
    await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 30)  # deltas are flowing and in sequence
    assert not gaps
    await exchange.post("/faults/gap?symbol=BTC/USDT")
    await wait_for(lambda: gaps, timeout=60)
    assert "BTC/USDT" in str(gaps[0])
    assert (await exchange.faults())["gap_pending"] == []


async def test_drop_closes_ccxts_websocket_and_the_next_watch_reconnects(venue):
    exchange, ex = venue
    closes: list[object] = []
    on_close = ex.on_close

    def spy(client, code):  # observes only: ccxt calls this when the server closes its websocket
        closes.append(code)
        return on_close(client, code)

    ex.on_close = spy  # before the first watch creates the websocket client, which keeps this callback
    await asyncio.wait_for(ex.watch_order_book("ETH/USDT"), 30)
    pending = asyncio.create_task(ex.watch_order_book("ETH/USDT"))
    assert (await exchange.post("/faults/drop"))["dropped_connections"] >= 1
    await wait_for(lambda: closes, timeout=60)
    try:
        await asyncio.wait_for(pending, 30)  # a book already on its way may arrive before the close
    except ccxt.NetworkError as e:
        assert "closed by remote server" in str(e)
    book = await asyncio.wait_for(ex.watch_order_book("ETH/USDT"), 30)
    assert book["bids"] and book["asks"]


async def test_silence_stops_one_symbol_while_others_flow_until_cleared(venue):
    exchange, ex = venue
    await asyncio.wait_for(ex.watch_ticker("ETH/USDT"), 30)
    await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 30)
    await exchange.post("/faults/silence?seconds=600&symbol=ETH/USDT")
    t0 = _wall_ms()  # tickers carry the venue's publication time: none of ETH may be newer than this
    eth_after: list[dict] = []

    async def watch_eth() -> None:
        while True:
            tk = await ex.watch_ticker("ETH/USDT")
            if tk["timestamp"] > t0:
                eth_after.append(tk)

    eth = asyncio.create_task(watch_eth())
    try:
        btc_after = 0
        while btc_after < 5:
            tk = await asyncio.wait_for(ex.watch_ticker("BTC/USDT"), 30)
            btc_after += tk["timestamp"] > t0
        assert eth_after == []
        assert (await exchange.faults())["stopped"] == ["*:ETH/USDT"]
        await exchange.post("/faults/clear")
        await wait_for(lambda: eth_after, timeout=60)
    finally:
        eth.cancel()
        await asyncio.gather(eth, return_exceptions=True)


async def test_lag_delivers_market_data_late(venue):
    exchange, _ = venue
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(exchange.base_url + "/exchange/v1/market")
        await ws.send_str(json.dumps({"id": 1, "method": "subscribe", "params": {"channels": ["ticker.BTC_USDT"]}}))
        await exchange.post("/faults/lag?ms=1500")
        t0 = _wall_ms()
        while True:
            msg = await ws.receive_json(timeout=60)
            data = (msg.get("result") or {}).get("data") or [{}]
            if msg.get("result", {}).get("channel") == "ticker" and data[0]["t"] > t0:
                break
        late_by = _wall_ms() - data[0]["t"]
        await ws.close()
    # A lower bound only: a slow machine can make the frame later still, never earlier.
    assert late_by >= 1400
