"""Unmodified ccxt `cryptocom` against the running simulated exchange over HTTP."""

from __future__ import annotations

import json
from decimal import Decimal as D

import aiohttp
import ccxt
import pytest

from tps19.simex.signing import params_to_string, rest_signature

from .conftest import KEY, SECRET, _client


def test_params_to_string_and_signature_match_ccxt():
    ex = ccxt.cryptocom({"apiKey": "k", "secret": "s"})
    cases = [{}, {"instrument_name": "BTC_USDT", "quantity": "0.1", "price": "100", "exec_inst": ["POST_ONLY"],
                  "flag": True, "none": None, "count": 5, "f": 1.5, "nested": {"a": 1}},
             {"order_list": [{"b": "2", "a": "1"}, {"c": "3"}]}]
    for params in cases:
        req = ex.sign("private/create-order", ["v1", "private"], "POST", params)
        body = json.loads(req["body"])
        assert params_to_string(body["params"], 0) == ex.params_to_string(params, 0)
        assert rest_signature("s", body["method"], body["id"], body["api_key"], body["params"], body["nonce"]) == body["sig"]


async def test_load_markets_precision(ex):
    assert {"BTC/USDT", "ETH/USDT", "SOL/USDT"} <= set(ex.symbols)
    m = ex.market("BTC/USDT")
    assert m["id"] == "BTC_USDT" and m["spot"] and m["active"]
    assert m["precision"]["price"] == 0.01 and m["precision"]["amount"] == 0.00001
    assert ex.market("SOL/USDT")["precision"]["price"] == 0.001
    assert ex.amount_to_precision("BTC/USDT", 0.123456789) == "0.12345"


async def test_fetch_order_book_and_ticker(ex):
    ob = await ex.fetch_order_book("BTC/USDT", 10)
    assert len(ob["bids"]) == 10 and len(ob["asks"]) == 10
    assert ob["bids"][0][0] < ob["asks"][0][0]
    assert [b[0] for b in ob["bids"]] == sorted((b[0] for b in ob["bids"]), reverse=True)
    assert [a[0] for a in ob["asks"]] == sorted(a[0] for a in ob["asks"])
    assert 40000 < ob["bids"][0][0] < 90000
    t = await ex.fetch_ticker("ETH/USDT")
    assert t["symbol"] == "ETH/USDT" and t["bid"] < t["ask"] and 1500 < t["last"] < 5000


async def test_fetch_ohlcv_pagination_is_contiguous_and_repeatable(ex):
    hour = 3_600_000
    since = (ex.milliseconds() // hour - 72) * hour
    page1 = await ex.fetch_ohlcv("BTC/USDT", "1h", since=since, limit=24)
    page2 = await ex.fetch_ohlcv("BTC/USDT", "1h", since=page1[-1][0] + hour, limit=24)
    stamps = [c[0] for c in page1 + page2]
    assert len(page1) == 24 and len(page2) == 24
    assert stamps == list(range(since, since + 48 * hour, hour))
    for o, h, l, c in ((x[1], x[2], x[3], x[4]) for x in page1 + page2):
        assert l <= min(o, c) <= max(o, c) <= h
    assert await ex.fetch_ohlcv("BTC/USDT", "1h", since=since, limit=24) == page1  # same request, same candles
    # ccxt's own pagination (several requests of <= 300 candles)
    minute = 60_000
    start = (ex.milliseconds() // minute - 2000) * minute
    many = await ex.fetch_ohlcv("ETH/USDT", "1m", since=start, limit=650, params={"paginate": True})
    ts = [c[0] for c in many]
    assert len(ts) == len(set(ts)) and ts[:650] == list(range(start, start + 650 * minute, minute))


async def test_create_cancel_order_and_balance_holds(sim, ex):
    order = await ex.create_order("BTC/USDT", "limit", "buy", 0.01, 40000, {"client_oid": "t-1"})
    assert order["clientOrderId"] == "t-1"
    assert [o["order_id"] for o in sim.open_orders(KEY)] == [order["id"]]
    fetched = await ex.fetch_order(order["id"])
    assert fetched["status"] == "open" and fetched["price"] == 40000 and fetched["amount"] == 0.01
    assert [o["id"] for o in await ex.fetch_open_orders("BTC/USDT")] == [order["id"]]
    bal = await ex.fetch_balance()
    assert bal["USDT"]["used"] == 400 and bal["USDT"]["free"] == 100000 - 400
    await ex.cancel_order(order["id"])
    assert (await ex.fetch_order(order["id"]))["status"] == "canceled"
    assert sim.open_orders(KEY) == []
    assert sim.account_balances(KEY)["USDT"]["used"] == 0
    closed = await ex.fetch_orders()
    assert order["id"] in [o["id"] for o in closed]


async def test_fetch_balance_changes_after_fill(sim, ex):
    before = await ex.fetch_balance()
    o = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
    detail = await ex.fetch_order(o["id"])
    assert detail["status"] == "closed" and detail["filled"] == 0.01
    trades = await ex.fetch_my_trades("BTC/USDT")
    mine = [t for t in trades if t["order"] == o["id"]]
    assert mine and all(t["takerOrMaker"] == "taker" for t in mine)
    cost = sum(D(str(t["price"])) * D(str(t["amount"])) for t in mine)
    fee = sum(D(str(t["fee"]["cost"])) for t in mine)
    after = await ex.fetch_balance()
    venue = sim.account_balances(KEY)
    assert venue["BTC"]["total"] == D("1") + D("0.01") - fee
    assert venue["USDT"]["total"] == D("100000") - cost
    assert after["BTC"]["total"] > before["BTC"]["total"] and after["USDT"]["total"] < before["USDT"]["total"]
    assert o["id"] in [x["id"] for x in await ex.fetch_closed_orders()]


async def test_duplicate_client_oid_does_not_create_second_order(sim, ex):
    await ex.create_order("ETH/USDT", "limit", "buy", 0.1, 1000, {"client_oid": "dup-1"})
    with pytest.raises(ccxt.ExchangeError, match="DUPLICATE_CLORDID"):
        await ex.create_order("ETH/USDT", "limit", "buy", 0.1, 1000, {"client_oid": "dup-1"})
    assert len(sim.open_orders(KEY)) == 1


async def test_post_only_that_would_cross_is_rejected(sim, ex):
    ob = await ex.fetch_order_book("SOL/USDT", 1)
    o = await ex.create_order("SOL/USDT", "limit", "buy", 1, ob["asks"][0][0] + 5, {"postOnly": True})
    detail = await ex.fetch_order(o["id"])
    assert detail["status"] == "rejected" and detail["filled"] == 0 and detail["postOnly"] is True
    assert sim.open_orders(KEY) == []


async def test_order_errors_map_to_ccxt_exceptions(ex):
    with pytest.raises(ccxt.InsufficientFunds):
        await ex.create_order("BTC/USDT", "limit", "buy", 5, 60000)
    with pytest.raises(ccxt.InvalidOrder):  # below minimum size
        await ex.create_order("BTC/USDT", "limit", "buy", 0.00001, 1)
    with pytest.raises(ccxt.OrderNotFound):
        await ex.fetch_order("123")


async def test_bad_signature_unknown_key_and_stale_nonce_rejected(sim):
    bad = await _client(sim)  # load_markets itself is private with keys (fetch_currencies)
    bad.secret = "wrong-secret"
    try:
        with pytest.raises(ccxt.AuthenticationError):
            await bad.fetch_balance()
        bad.apiKey = "nobody"
        with pytest.raises(ccxt.AuthenticationError):
            await bad.fetch_balance()
        bad.apiKey, bad.secret = KEY, SECRET
        assert (await bad.fetch_balance())["USDT"]["total"] == 100000  # right credentials work
        bad.nonce = lambda: bad.milliseconds() - 120_000
        with pytest.raises(ccxt.InvalidNonce):
            await bad.fetch_balance()
    finally:
        await bad.close()
    assert sim.stats["auth_failures"] >= 3


async def test_malformed_requests_get_error_replies_and_are_counted(sim):
    url = sim.base_url + "/exchange/v1"
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/private/user-balance", data="{not json") as r:
            assert r.status == 400 and (await r.json())["code"] == 40001
        async with s.post(url + "/private/no-such-method", json={"id": 1, "params": {}}) as r:
            assert (await r.json())["code"] == 40002
        async with s.get(url + "/public/get-book", params={"instrument_name": "NOPE_USDT"}) as r:
            assert (await r.json())["code"] != 0
        async with s.get(url + "/public/get-book", params={"instrument_name": "BTC_USDT", "depth": "x"}) as r:
            assert (await r.json())["code"] == 40004
        async with s.get(url + "/public/get-instruments") as r:  # still serving
            assert r.status == 200 and (await r.json())["code"] == 0
    assert sim.stats["bad_requests"] >= 3 and sim.stats["internal_errors"] == 0


async def test_cancel_of_filled_order_is_refused(sim, ex):
    o = await ex.create_order("BTC/USDT", "market", "sell", 0.001)
    with pytest.raises(ccxt.ExchangeError, match="NO_ACTIVE_ORDER"):
        await ex.cancel_order(o["id"])
    with pytest.raises(ccxt.OrderNotFound):
        await ex.cancel_order("999")


async def test_absurd_order_params_are_rejected_not_crashing(sim):
    import time as _time

    url = sim.base_url + "/exchange/v1/private/create-order"
    base = {"instrument_name": "BTC_USDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "50000"}
    cases = [({"exec_inst": 5}, 219), ({"quantity": "1e400"}, 213), ({"quantity": "NaN"}, 213),
             ({"price": "-1"}, 308), ({"price": "50000.005"}, 308), ({"type": "STOP_LIMIT"}, 40004), ({"type": "TRAILING_STOP"}, 218),
             ({"type": "STOP_LIMIT", "ref_price": "-5"}, 229),
             ({"side": "UP"}, 220), ({"instrument_name": "XRP_USDT"}, 209)]
    async with aiohttp.ClientSession() as s:
        for extra, code in cases:
            params = {**base, **extra}
            n = int(_time.time() * 1000)
            body = {"id": n, "method": "private/create-order", "params": params, "api_key": KEY, "nonce": n,
                    "sig": rest_signature(SECRET, "private/create-order", n, KEY, params, n)}
            async with s.post(url, data=json.dumps(body)) as r:
                assert (await r.json())["code"] == code, extra
    assert sim.stats["internal_errors"] == 0 and sim.open_orders(KEY) == []
