"""The control API over HTTP on a running engine (the simulated venue): the bearer token on every
route and its throttle, each read route, orders of every kind through the order path, idempotent
client order ids, every refusal, read-only live mode, the docs page, and the CLI's wiring."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal

import aiohttp
import pytest

from tests.engine.conftest import settings, sim, sim_settings  # noqa: F401  (a paper engine on the simulated venue)
from tps19.config import ApiSettings

from .conftest import clean_env, read_until, stop, tps19

TOKEN = "t0ken-for-the-api-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
pytestmark = pytest.mark.slow


async def _engine(sim_settings, mode: str = "paper"):
    from tps19.engine.engine import Engine

    e = Engine(sim_settings.model_copy(update={"symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]})}),
               mode)
    await e.start()
    import asyncio

    async with asyncio.timeout(60):
        while e.books["BTC/USDT"].best_ask() is None or e.trading.portfolio.mark("BTC/USDT") is None:
            await asyncio.sleep(0.05)
    return e


async def _serve(engine, **kw):
    from tps19.engine.api.server import ApiServer

    api = ApiServer(engine, ApiSettings(token=TOKEN, port=0, **kw))
    return api, await api.start() + "/api/v1"


@pytest.fixture
async def paper(sim_settings):
    engine = await _engine(sim_settings)
    api, url = await _serve(engine)
    async with aiohttp.ClientSession() as http:
        try:
            yield engine, url, http
        finally:
            await api.stop()
            await engine.stop()


async def call(http, method: str, url: str, body=None, headers=AUTH):
    async with http.request(method, url, json=body, headers=headers) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text), r.headers
        except ValueError:
            return r.status, text, r.headers


async def test_reads_orders_of_every_kind_idempotence_and_refusals(paper):
    engine, url, http = paper
    broker = engine.trading.broker
    mid = engine.trading.portfolio.mark("BTC/USDT")
    # every route needs the token; openapi.json too, the docs page not (it carries no data)
    for method, path in [("GET", "/status"), ("GET", "/balances"), ("GET", "/positions"), ("GET", "/orders"),
                         ("GET", "/fills"), ("POST", "/orders"), ("DELETE", "/orders/x"), ("POST", "/kill"),
                         ("POST", "/release"), ("GET", "/openapi.json")]:
        status, body, headers = await call(http, method, url + path, headers={})
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer", path
        assert body["detail"].startswith("a bearer token is required"), body
    status, page, _ = await call(http, "GET", url + "/docs", headers={})
    assert status == 200 and "/api/v1/orders" in page and "<script" not in page and "<link" not in page
    assert "100000" not in page  # no account figure on the public page
    status, spec, _ = await call(http, "GET", url + "/openapi.json")
    assert status == 200 and "/api/v1/orders/{client_order_id}" in spec["paths"]

    status, st, _ = await call(http, "GET", url + "/status")
    assert status == 200 and st["mode"] == "paper" and st["kill_switch"]["engaged"] is False
    assert {s["stream"] for s in st["streams"]} >= {"book", "trades"} and st["read_only"] is False
    status, bal, _ = await call(http, "GET", url + "/balances")
    assert Decimal(bal["balances"]["USDT"]["total"]) == engine.trading.portfolio.balances["USDT"]

    # a market order, then the same client order id again: the existing order, never a second
    body = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001", "client_order_id": "api-buy-1"}
    status, first, _ = await call(http, "POST", url + "/orders", body)
    assert status == 201 and first["client_order_id"] == "api-buy-1" and first["status"] == "filled", first
    bought = sum(f.amount for f in await engine.trading.store.fills_for("api-buy-1"))
    status, again, _ = await call(http, "POST", url + "/orders", body)
    assert status == 200 and again["client_order_id"] == "api-buy-1" and again["status"] == "filled"
    assert sum(f.amount for f in await engine.trading.store.fills_for("api-buy-1")) == bought == Decimal("0.001")
    status, fills, _ = await call(http, "GET", url + "/fills")
    assert any(f["client_order_id"] == "api-buy-1" for f in fills["fills"])
    status, pos, _ = await call(http, "GET", url + "/positions")
    assert any(p["symbol"] == "BTC/USDT" and Decimal(p["qty"]) > 0 for p in pos["positions"])

    # every kind the order path has
    low, high = (mid * Decimal("0.9")).quantize(Decimal("0.01")), (mid * Decimal("1.1")).quantize(Decimal("0.01"))
    kinds = [
        {"type": "limit", "side": "buy", "price": str(low)},
        {"type": "post_only", "side": "buy", "price": str(low)},
        {"type": "ioc", "side": "buy", "price": str(low)},
        {"type": "stop_market", "side": "sell", "trigger_price": str(low)},
        {"type": "stop_limit", "side": "sell", "trigger_price": str(low), "price": str(low)},
        {"type": "take_profit", "side": "sell", "trigger_price": str(high)},
        {"type": "take_profit_limit", "side": "sell", "trigger_price": str(high), "price": str(high)},
        {"type": "trailing_stop", "side": "sell", "trailing_pct": "2"},
        {"type": "oco", "side": "sell", "stop_loss_price": str(low), "take_profit_price": str(high)},
        {"type": "limit", "side": "buy", "price": str(low), "stop_loss_price": str(low * Decimal("0.95")),
         "take_profit_price": str(high)},  # a bracket
    ]
    placed = {}
    for k in kinds:
        status, o, _ = await call(http, "POST", url + "/orders", {"symbol": "BTC/USDT", "amount": "0.0001", **k})
        assert status == 201, (k, o)
        placed[k["type"] + ("+bracket" if "stop_loss_price" in k and k["type"] == "limit" else "")] = o
    status, working, _ = await call(http, "GET", url + "/orders")
    ids = {o["client_order_id"] for o in working["orders"]}
    assert placed["limit"]["client_order_id"] in ids and placed["stop_market"]["client_order_id"] in ids
    # cancel: one, then again (nothing to cancel), then an unknown id
    cid = placed["limit"]["client_order_id"]
    status, o, _ = await call(http, "DELETE", f"{url}/orders/{cid}")
    assert status == 200 and o["status"] == "cancelled"
    assert (await call(http, "DELETE", f"{url}/orders/{cid}"))[0] == 409
    assert (await call(http, "DELETE", f"{url}/orders/no-such-order"))[0] == 404

    # refusals name the field or the limit
    base = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
    for change, said in [
        ({"amount": 0.001}, "amount"),  # a JSON number: money is a string
        ({"amount": "abc"}, "amount is not a number"),
        ({"amount": "5"}, "per-order cap"),
        ({"type": "stop"}, "stop"),
        ({"venue": "binance"}, "venue 'binance'"),
        ({"type": "stop_market", "side": "sell"}, "trigger"),
        ({"bogus": "1"}, "bogus"),
        ({"symbol": "NOPE/USDT"}, "NOPE/USDT"),
    ]:
        status, o, _ = await call(http, "POST", url + "/orders", base | change)
        assert status == 422 and said in json.dumps(o), (change, o)

    # the kill switch, from the API; orders refused while engaged; released
    status, k, _ = await call(http, "POST", url + "/kill", {"reason": "leaving for the airport"})
    assert status == 200 and k["kill_switch"] is True and broker.killed
    status, o, _ = await call(http, "POST", url + "/orders", base)
    assert status == 422 and "kill switch" in o["detail"]
    assert (await call(http, "POST", url + "/release"))[0] == 200 and not broker.killed


async def test_wrong_tokens_are_throttled_and_logged(paper):
    engine, url, http = paper
    from tps19.engine.events import LogEvent

    sub = engine.bus.subscribe(LogEvent, coalesce=None)
    for _ in range(5):
        status, body, _ = await call(http, "GET", url + "/status", headers={"Authorization": "Bearer guess"})
        # a wrong token is told apart from a missing one, and the guess is never echoed
        assert status == 401 and body["detail"].startswith("the bearer token is wrong") and "guess" not in str(body)
    status, _, headers = await call(http, "GET", url + "/status")  # the right token waits too
    assert status == 429 and int(headers["Retry-After"]) >= 1
    logged = [e for e in sub.drain() if "without the right token" in e.message]
    assert len(logged) == 5 and all("guess" not in json.dumps(e.fields) for e in logged)


async def test_live_mode_is_read_only_unless_live_orders_is_set(sim_settings):
    engine = await _engine(sim_settings, "live")
    api, url = await _serve(engine)
    api2, url2 = await _serve(engine, live_orders=True)
    body = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.0001"}
    try:
        async with aiohttp.ClientSession() as http:
            status, st, _ = await call(http, "GET", url + "/status")
            assert status == 200 and st["mode"] == "live" and st["read_only"] is True
            status, o, _ = await call(http, "POST", url + "/orders", body)
            assert status == 403 and "TPS19_API__LIVE_ORDERS=true" in o["detail"]
            assert (await call(http, "DELETE", url + "/orders/x"))[0] == 403
            assert (await call(http, "POST", url + "/kill"))[0] == 200  # stopping trading is always allowed
            assert (await call(http, "POST", url + "/release"))[0] == 403
            assert (await call(http, "POST", url2 + "/release"))[0] == 200
            status, o, _ = await call(http, "POST", url2 + "/orders", body)
            assert status == 201 and o["mode"] == "live", o
    finally:
        await api.stop()
        await api2.stop()
        await engine.stop()


@pytest.mark.parametrize(("env", "args", "said"), [
    ({}, [], "TPS19_API__TOKEN"),
    ({"TPS19_API__TOKEN": "short"}, [], "shorter than 16"),
    ({"TPS19_API__TOKEN": TOKEN, "TPS19_API__HOST": "0.0.0.0"}, [], "--allow-remote"),
])
def test_the_engine_refuses_to_start_an_unguarded_api(tmp_path, env, args, said):
    r = subprocess.run(tps19("paper", "--no-ui", "--api-port", "0", *args), cwd=tmp_path, env=clean_env(**env),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and said in r.stderr and r.stderr.startswith("tps19: refusing to start the API"), r.stderr


def test_a_headless_engine_serves_the_api_it_was_asked_for(tmp_path):
    import urllib.request

    proc = subprocess.Popen(tps19("paper", "--no-ui", "--symbol", "BTC/USDT", "--api-port", "0"), cwd=tmp_path,
                            env=clean_env(TPS19_API__TOKEN=TOKEN, TPS19_DATABASE__PATH=str(tmp_path / "api.db")),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = json.loads(read_until(proc, r'"event": ?"api"').string)
        read_until(proc, r'"event": ?"started"')
        req = urllib.request.Request(line["url"] + "/status", headers=AUTH)
        with urllib.request.urlopen(req, timeout=30) as r:
            st = json.loads(r.read())
        assert st["mode"] == "paper" and st["started"] is True and line["read_only"] is False
        assert TOKEN not in "".join([json.dumps(line)])
    finally:
        assert stop(proc) == 0


async def test_an_oco_answers_both_legs_a_cancel_answers_the_state_after_it_and_refusals_read_as_the_ticket(paper):
    from tps19.desk.screens.ticket import ticket_order
    from tps19.engine.trading.orders import OrderRejected

    engine, url, http = paper
    mid = engine.trading.portfolio.mark("BTC/USDT")
    low, high = (mid * Decimal("0.9")).quantize(Decimal("0.01")), (mid * Decimal("1.1")).quantize(Decimal("0.01"))
    body = {"symbol": "BTC/USDT", "side": "sell", "type": "oco", "amount": "0.0001", "stop_loss_price": str(low),
            "take_profit_price": str(high), "client_order_id": "api-oco-1"}
    status, o, _ = await call(http, "POST", url + "/orders", body)
    assert status == 201, o
    # the answer names both orders the OCO made: the stop-loss under the given id, then the take-profit
    legs = o["legs"]
    assert [(x["type"], Decimal(x["trigger_price"]), x["trigger_state"], x["oco_group"]) for x in legs] == [
        ("stop_market", low, "armed", o["oco_group"]), ("take_profit", high, "armed", o["oco_group"])]
    assert legs[0]["client_order_id"] == o["client_order_id"] == "api-oco-1"
    take_id = legs[1]["client_order_id"]
    status, working, _ = await call(http, "GET", url + "/orders")
    assert {"api-oco-1", take_id} <= {x["client_order_id"] for x in working["orders"]}
    status, again, _ = await call(http, "POST", url + "/orders", body)  # the same id again: the same two legs
    assert status == 200 and [x["client_order_id"] for x in again["legs"]] == ["api-oco-1", take_id]

    # cancelling one leg cancels the group; the answer is each order as it is after the cancel
    status, c, _ = await call(http, "DELETE", f"{url}/orders/{take_id}")
    assert status == 200 and c["client_order_id"] == take_id
    assert (c["status"], c["trigger_state"]) == ("cancelled", "disarmed")
    assert sorted((x["client_order_id"], x["status"], x["trigger_state"]) for x in c["legs"]) == sorted(
        [("api-oco-1", "cancelled", "disarmed"), (take_id, "cancelled", "disarmed")])
    status, working, _ = await call(http, "GET", url + "/orders")
    assert not {"api-oco-1", take_id} & {x["client_order_id"] for x in working["orders"]}

    # refusals in the ticket's words: the same sentence the desk shows for the same fields
    market = engine.markets["BTC/USDT"]
    for fields, ticket in [
        ({"stop_loss_price": str(low)}, {"sl": str(low)}),
        ({"stop_loss_price": "abc", "take_profit_price": str(high)}, {"sl": "abc", "tp": str(high)}),
        ({"stop_loss_price": str(high), "take_profit_price": str(low)}, {"sl": str(high), "tp": str(low)}),
    ]:
        status, r, _ = await call(http, "POST", url + "/orders", {"symbol": "BTC/USDT", "side": "sell", "type": "oco",
                                                                  "amount": "0.0001", **fields})
        with pytest.raises(OrderRejected) as desk:
            ticket_order("BTC/USDT", "sell", "oco", "0.0001", "", market, mid, ticket)
        assert status == 422 and r["detail"] == desk.value.reason, (r, desk.value.reason)
        assert "_price" not in r["detail"] and "_" not in r["detail"].split(":")[0], r["detail"]
    assert (await call(http, "POST", url + "/orders", {"symbol": "BTC/USDT", "side": "sell", "type": "oco",
                                                       "amount": "0.0001", "stop_loss_price": str(low)}))[1]["detail"] \
        == "an OCO needs both a stop-loss and a take-profit"
