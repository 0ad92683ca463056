"""A signed request is accepted once; the exchange never prints its API key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import aiohttp
import ccxt
import pytest

from tps19.config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET
from tps19.simex.replay_guard import ReplayGuard
from tps19.simex.signing import auth_signature, rest_signature

from .conftest import KEY, SECRET


def _signed(method: str, params: dict, nonce: int | None = None) -> bytes:
    n = int(time.time() * 1000) if nonce is None else nonce
    body = {"id": n, "method": method, "params": params, "api_key": KEY, "nonce": n}
    body["sig"] = rest_signature(SECRET, method, n, KEY, params, n)
    return json.dumps(body).encode()


async def _post(session: aiohttp.ClientSession, sim, method: str, raw: bytes) -> tuple[int, dict]:
    async with session.post(f"{sim.base_url}/exchange/v1/{method}", data=raw,
                            headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.json(content_type=None)


async def test_replayed_signed_body_is_refused_and_a_fresh_call_still_works(sim, ex):
    raw = _signed("private/user-balance", {})
    async with aiohttp.ClientSession() as s:
        status, first = await _post(s, sim, "private/user-balance", raw)
        assert (status, first["code"]) == (200, 0)
        status, again = await _post(s, sim, "private/user-balance", raw)
    assert status == 400
    assert (again["code"], again["message"]) == (40006, "DUPLICATE_REQUEST")
    assert sim.stats["replays_refused"] == 1
    bal = await ex.fetch_balance()  # a freshly signed request from an unmodified ccxt client
    assert bal["USDT"]["total"] == 100000


async def test_replayed_create_order_places_one_order(sim, ex):
    params = {"instrument_name": "BTC_USDT", "side": "BUY", "type": "LIMIT", "price": "1000",
              "quantity": "0.01", "client_oid": "replay-1"}
    raw = _signed("private/create-order", params)
    async with aiohttp.ClientSession() as s:
        assert (await _post(s, sim, "private/create-order", raw))[1]["code"] == 0
        for _ in range(3):
            status, reply = await _post(s, sim, "private/create-order", raw)
            assert (status, reply["code"]) == (400, 40006)
    assert [o["client_oid"] for o in sim.open_orders(KEY)] == ["replay-1"]


async def test_ccxt_client_repeating_a_nonce_gets_bad_request(sim, ex):
    # Two identical calls in the same millisecond sign identical bodies: the second is a replay.
    fixed = ex.milliseconds()
    ex.nonce = lambda: fixed
    await ex.fetch_balance()
    with pytest.raises(ccxt.BadRequest, match="40006"):
        await ex.fetch_balance()
    del ex.nonce  # back to ccxt's own (millisecond) nonce
    assert (await ex.fetch_balance())["USDT"]["total"] == 100000


@pytest.mark.parametrize("offset_ms", [-120_000, 120_000])
async def test_nonce_outside_the_window_is_refused(sim, offset_ms):
    raw = _signed("private/user-balance", {}, nonce=int(time.time() * 1000) + offset_ms)
    async with aiohttp.ClientSession() as s:
        status, reply = await _post(s, sim, "private/user-balance", raw)
    assert (status, reply["code"], reply["message"]) == (400, 40102, "INVALID_NONCE")


async def test_replayed_websocket_auth_is_refused(sim):
    n = int(time.time() * 1000)
    auth = {"id": n, "method": "public/auth", "api_key": KEY, "nonce": n,
            "sig": auth_signature(SECRET, "public/auth", n, KEY, n)}
    replies = []
    async with aiohttp.ClientSession() as s:
        for _ in range(2):  # the second connection replays the first one's login
            ws = await s.ws_connect(sim.base_url + "/exchange/v1/user")
            await ws.send_str(json.dumps(auth))
            while True:
                msg = await ws.receive_json(timeout=10)
                if msg.get("method") == "public/auth":
                    replies.append(msg["code"])
                    break
            await ws.close()
    assert replies == [0, 40006]


def test_seen_signatures_are_forgotten_when_their_nonce_leaves_the_window():
    now = [1_000_000]
    guard = ReplayGuard(60_000, clock=lambda: now[0])
    for i in range(1000):
        assert guard.first_use("k", f"sig{i}", now[0])
        now[0] += 10
    assert not guard.first_use("k", "sig999", now[0])
    assert len(guard) == 1000
    now[0] += 60_001  # every nonce is now too old for the nonce check: nothing to remember
    assert guard.first_use("k", "fresh", now[0])
    assert len(guard) == 1


def _run_exchange(*args: str) -> str:
    proc = subprocess.Popen([sys.executable, "-c", "from tps19.cli import main; main()", "exchange", "--port", "0",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = proc.stdout.readline()
        assert "http://127.0.0.1:" in first, first
        proc.send_signal(signal.SIGTERM)
        # Read through the same buffered file as readline() (communicate() would skip what it buffered).
        out, err = proc.stdout.read(), proc.stderr.read()
        assert proc.wait(timeout=30) == 0, err
        return first + out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_exchange_startup_does_not_print_the_api_key_or_secret():
    text = _run_exchange("--api-key", "k-7f3a9c-private", "--secret", "s-very-secret")
    assert "k-7f3a9c-private" not in text and "s-very-secret" not in text
    assert "TPS19_EXCHANGE__API_KEY" in text  # says where the key goes instead

    text = _run_exchange()
    assert SIM_DEMO_API_KEY not in text and SIM_DEMO_SECRET not in text
    assert "SIM_DEMO_API_KEY" in text
