"""Signed requests sent side by side each carry their own nonce (unmodified ccxt 4.5.90 against the
simulated exchange on loopback, its replay guard on): identical reads fired together are all
answered, while a body sent again byte for byte is still refused as a replay.

ccxt's cryptocom signs with the millisecond as both request id and nonce, so two identical reads
signed in one millisecond were the same bytes and the venue refused the second (40006): an OCO's
two legs looked up together stayed ``unknown``. Measured before the fix with this client: 9 of 10
pairs of concurrent identical reads had one refused."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import pytest

from tps19.config import Settings
from tps19.engine.trading import OrderRequest
from tps19.engine.venue import open_venue

from .simhelp import KEY, SECRET
from .test_stops_live import live_stack

D = Decimal
pytestmark = pytest.mark.slow
SYM = "BTC/USDT"


@pytest.mark.parametrize("db_target", ["sqlite"], indirect=True)
async def test_identical_signed_requests_sent_together_are_all_answered_and_a_true_replay_is_refused(
        sim, clients, bus, db):
    mine, _ = clients  # ccxt without its rate limiter: nothing spaces the requests apart
    s = await live_stack(bus, db, mine)
    order = await s.broker.place(OrderRequest(SYM, "buy", "limit", D("0.01"), price=D("1000")))
    assert order.status.value == "open", order.reason
    refused = sim.stats["replays_refused"]
    # what the engine does when several lookups, a poll and a refresh meet: the same signed reads at once
    answers = await asyncio.gather(*(s.broker.call("fetch_open_orders", SYM) for _ in range(6)),
                                   *(s.broker.call("fetch_order", order.venue_order_id, SYM) for _ in range(4)),
                                   *(s.broker.call("fetch_balance") for _ in range(4)),
                                   return_exceptions=True)
    errors = [a for a in answers if isinstance(a, BaseException)]
    assert errors == [] and sim.stats["replays_refused"] == refused
    assert all([o["clientOrderId"] for o in a] == [order.client_order_id] for a in answers[:6])
    assert {a["clientOrderId"] for a in answers[6:10]} == {order.client_order_id}
    assert {str(a["USDT"]["used"]) for a in answers[10:]} == {"10.0"}  # 0.01 BTC at 1,000 reserved
    await s.stop()
    # a true replay is still refused: the very body the client just sent, sent again
    await mine.fetch_balance()
    url, raw = mine.last_request_url, mine.last_request_body
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=raw, headers={"Content-Type": "application/json"}) as r:
            status, reply = r.status, await r.json(content_type=None)
    assert (status, reply["code"], reply["message"]) == (400, 40006, "DUPLICATE_REQUEST")
    assert sim.stats["replays_refused"] == refused + 1


@pytest.mark.parametrize("venue", ["sim", "sim-binance"])
async def test_the_engines_venue_client_never_signs_two_requests_with_one_nonce(venue):
    """The client the engine opens (``open_venue``) draws strictly increasing nonces on the venue's
    own millisecond clock (Binance's minus its time difference), for REST and websocket alike."""
    settings = Settings(exchange={"id": venue, "rest_url": "http://127.0.0.1:9", "api_key": KEY, "secret": SECRET})
    v = await open_venue(settings)
    try:
        c = v.client
        t0 = int(time.time() * 1000)
        drawn = [c.nonce() if i % 2 else c.incrementing_nonce() for i in range(2000)]
        t1 = int(time.time() * 1000)
        assert all(a < b for a, b in zip(drawn, drawn[1:]))
        # never behind the clock (a stale nonce is refused), ahead of it only by the burst's excess
        assert t0 <= drawn[0] and drawn[-1] <= t1 + len(drawn)
        if venue == "sim":
            # a second client of the same key in this process continues the same sequence
            w = await open_venue(settings)
            try:
                assert w.client.nonce() > drawn[-1]
            finally:
                await w.close()
    finally:
        await v.close()
