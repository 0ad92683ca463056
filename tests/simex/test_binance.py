"""The simulated exchange's Binance dialect, driven by ccxt's own `binance` client (REST + ccxt.pro)
over real HTTP and websockets on 127.0.0.1, checked against the venue's own state."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from decimal import Decimal

import aiohttp
import ccxt
import pytest

from tps19.engine.venue import BINANCE_SPOT_OPTIONS, point_ccxt_binance
from tps19.simex.binance import BinanceSimExchange

from .conftest import BALANCES, KEY, SECRET, closing, running, wait_for


def _sim(**kw) -> BinanceSimExchange:
    return BinanceSimExchange(port=0, seed=19, accounts={KEY: (SECRET, dict(BALANCES))}, **kw)


@pytest.fixture
async def bsim():
    """No autonomous flow: the book changes only through `await sim.step(n)` and our own orders."""
    async with running(_sim(autoplay=False)) as s:
        yield s


async def _client(s: BinanceSimExchange, key: str | None = KEY, secret: str | None = SECRET, load: bool = True):
    import ccxt.pro

    cfg: dict = {"enableRateLimit": False, "options": dict(BINANCE_SPOT_OPTIONS)}
    if key:
        cfg |= {"apiKey": key, "secret": secret}
    ex = ccxt.pro.binance(cfg)
    point_ccxt_binance(ex, s.base_url)
    if load:
        await ex.load_markets()
    return ex


@pytest.fixture
async def bex(bsim):
    async with closing(await _client(bsim)) as client:
        yield client


def _levels(side):
    return [[float(p), float(q)] for p, q, _ in side]


async def test_markets_book_trades_candles_and_tickers_through_ccxt(bsim, bex):
    assert sorted(bex.markets) == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    m = bex.market("BTC/USDT")
    assert m["id"] == "BTCUSDT" and m["spot"] and m["precision"]["price"] == 0.01 and m["limits"]["amount"]["min"] == 0.00001
    await bsim.step(200)
    ob = await bex.fetch_order_book("ETH/USDT", 1000)
    venue = bsim.order_book("ETH/USDT", 1000)
    assert ob["bids"] == _levels(venue["bids"]) and ob["asks"] == _levels(venue["asks"])
    assert ob["nonce"] == bsim._bn_last_u["ETH/USDT"]
    trades = await bex.fetch_trades("ETH/USDT")
    assert trades and [t["id"] for t in trades] == sorted((t["id"] for t in trades), key=int)
    assert {t["id"] for t in trades} == {str(int(t["d"])) for t in bsim.trades("ETH/USDT")[:len(trades)]}
    candles = await bex.fetch_ohlcv("BTC/USDT", "5m", limit=10)
    assert len(candles) == 10 and all(b[0] - a[0] == 300_000 for a, b in zip(candles, candles[1:]))
    since = candles[2][0]
    page = await bex.fetch_ohlcv("BTC/USDT", "5m", since=since, limit=3)
    assert [c[0] for c in page] == [c[0] for c in candles[2:5]]  # startTime: the first `limit` candles from it
    t = await bex.fetch_ticker("SOL/USDT")
    top = bsim.order_book("SOL/USDT", 1)
    assert (t["bid"], t["ask"]) == (float(top["bids"][0][0]), float(top["asks"][0][0]))
    assert set(await bex.fetch_tickers()) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert abs(await bex.fetch_time() - time.time() * 1000) < 5000


async def test_orders_fills_balances_and_history_match_the_venue(bsim, bex):
    ob = await bex.fetch_order_book("BTC/USDT", 5)
    bid = ob["bids"][0][0]
    resting = await bex.create_order("BTC/USDT", "limit", "buy", 0.01, round(bid * 0.95, 2), {"clientOrderId": "tps19-a1"})
    assert resting["status"] == "open" and resting["clientOrderId"] == "tps19-a1"
    assert [o["id"] for o in await bex.fetch_open_orders("BTC/USDT")] == [resting["id"]]
    bal = await bex.fetch_balance()
    venue = bsim.account_balances(KEY)
    assert Decimal(str(bal["USDT"]["used"])) == venue["USDT"]["used"] > 0
    filled = await bex.create_order("BTC/USDT", "market", "buy", 0.002)
    assert filled["status"] == "closed" and filled["filled"] == 0.002 and len(filled["trades"]) >= 1
    fee = sum(Decimal(str(t["fee"]["cost"])) for t in filled["trades"])
    assert fee == (Decimal("0.002") * Decimal("0.001")).quantize(Decimal("0.00000001"))  # 0.1 % in BTC received
    canceled = await bex.cancel_order(resting["id"], "BTC/USDT")
    assert canceled["status"] == "canceled"
    fetched = await bex.fetch_order(resting["id"], "BTC/USDT")
    assert fetched["status"] == "canceled" and fetched["filled"] == 0
    mine = await bex.fetch_my_trades("BTC/USDT")
    assert {t["order"] for t in mine} == {filled["id"]} and sum(t["amount"] for t in mine) == pytest.approx(0.002)
    orders = await bex.fetch_orders("BTC/USDT")
    assert {o["id"]: o["status"] for o in orders} == {resting["id"]: "canceled", filled["id"]: "closed"}
    bal = await bex.fetch_balance()
    venue = bsim.account_balances(KEY)
    for ccy in ("USDT", "BTC"):
        assert Decimal(str(bal[ccy]["total"])) == venue[ccy]["total"]
        assert bal[ccy]["used"] == 0
    fees = await bex.fetch_trading_fees()
    assert (fees["ETH/USDT"]["maker"], fees["ETH/USDT"]["taker"]) == (0.001, 0.001)


async def test_rejections_are_the_venues_codes_and_create_nothing(bsim, bex):
    ob = await bex.fetch_order_book("BTC/USDT", 5)
    ask = ob["asks"][0][0]
    with pytest.raises(ccxt.InsufficientFunds):
        await bex.create_order("BTC/USDT", "limit", "buy", 100, ask)
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # LIMIT_MAKER that would take
        await bex.create_order("BTC/USDT", "limit", "buy", 0.001, ask, {"postOnly": True})
    with pytest.raises(ccxt.InvalidOrder):  # off the tick grid: PRICE_FILTER
        await bex.private_post_order({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                      "quantity": "0.001", "price": "50000.001"})
    with pytest.raises(ccxt.BadSymbol):
        await bex.private_get_openorders({"symbol": "DOGEUSDT"})
    with pytest.raises(ccxt.OrderNotFound):
        await bex.fetch_order("424242", "BTC/USDT")
    with pytest.raises(ccxt.OrderNotFound):
        await bex.cancel_order("424242", "BTC/USDT")
    assert bsim.open_orders(KEY) == [] and bsim.account_balances(KEY)["USDT"]["used"] == 0


async def _raw(sim, method: str, path: str, params: dict, secret: str = SECRET, key: str = KEY, **extra):
    q = "&".join(f"{k}={v}" for k, v in params.items())
    sig = hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()
    async with aiohttp.ClientSession() as s:
        async with s.request(method, f"{sim.base_url}{path}?{q}&signature={sig}",
                             headers={"X-MBX-APIKEY": key}, **extra) as r:
            return r.status, dict(r.headers), await r.json()


async def test_signed_requests_check_signature_key_and_recv_window(bsim, bex):
    def now() -> int:  # each request stamped when it is made: a slow machine spends seconds on the series
        return int(time.time() * 1000)

    st, _, body = await _raw(bsim, "GET", "/api/v3/account", {"timestamp": now()})
    assert st == 200 and {b["asset"] for b in body["balances"]} == set(BALANCES)
    st, _, body = await _raw(bsim, "GET", "/api/v3/account", {"timestamp": now()}, secret="wrong")
    assert (st, body["code"]) == (400, -1022)
    st, _, body = await _raw(bsim, "GET", "/api/v3/account", {"timestamp": now()}, key="nobody")
    assert (st, body["code"]) == (401, -2015)
    st, _, body = await _raw(bsim, "GET", "/api/v3/account", {"timestamp": now() - 6000})
    assert (st, body["code"]) == (400, -1021)  # outside the default 5000 ms recvWindow
    st, _, body = await _raw(bsim, "GET", "/api/v3/account", {"timestamp": now() - 6000, "recvWindow": 10000})
    assert st == 200
    st, _, body = await _raw(bsim, "GET", "/api/v3/account", {"timestamp": now() + 5000})
    assert (st, body["code"]) == (400, -1021)  # ahead of the server
    st, _, body = await _raw(bsim, "GET", "/api/v3/account", {"timestamp": now(), "recvWindow": 70000})
    assert (st, body["code"]) == (400, -1131)
    wrong = await _client(bsim, secret="not-the-secret", load=False)
    try:
        with pytest.raises(ccxt.AuthenticationError):
            await wrong.fetch_balance()
    finally:
        await wrong.close()
    assert bsim.stats["auth_failures"] >= 5


async def test_request_weight_429_with_retry_after_then_418_for_a_client_that_does_not_wait():
    sim = _sim(autoplay=False, weight_limit=30)
    await sim.start()
    try:
        async with aiohttp.ClientSession() as s:
            statuses, headers = [], []
            for _ in range(3):  # exchangeInfo weighs 20
                async with s.get(f"{sim.base_url}/api/v3/exchangeInfo") as r:
                    statuses.append(r.status)
                    headers.append(dict(r.headers))
                    body = await r.json()
            assert statuses == [200, 429, 418]
            assert headers[0]["X-MBX-USED-WEIGHT-1M"] == "20"
            assert 1 <= int(headers[1]["Retry-After"]) <= 60 and body["code"] == -1003
            assert int(headers[2]["Retry-After"]) >= 60  # banned: at least the first ban's 2 minutes left
        client = await _client(sim, key=None, load=False)
        try:
            with pytest.raises(ccxt.DDoSProtection):
                await client.fetch_time()
        finally:
            await client.close()
        assert sim.limits.bans == 1
    finally:
        await sim.stop()


async def test_diff_depth_stream_keeps_ccxts_book_equal_to_the_venue(bsim, bex):
    ob = await asyncio.wait_for(bex.watch_order_book("SOL/USDT"), 5)
    assert ob["nonce"] is not None
    await bsim.step(400)
    await bex.create_order("SOL/USDT", "market", "sell", 3)  # our own order moves the book too
    target = bsim._bn_last_u["SOL/USDT"]
    while ob["nonce"] != target:
        ob = await asyncio.wait_for(bex.watch_order_book("SOL/USDT"), 5)
    venue = bsim.order_book("SOL/USDT", 1000)
    assert ob["bids"] == _levels(venue["bids"]) and ob["asks"] == _levels(venue["asks"])
    assert bsim.stats["book_messages"] > 50


async def test_a_sequence_gap_fails_the_watch_and_a_fresh_watch_resyncs(bsim, bex):
    await asyncio.wait_for(bex.watch_order_book("BTC/USDT"), 5)
    bsim.faults.skip_sequence("BTC/USDT")
    await bsim.step(60)
    with pytest.raises(ccxt.ChecksumError):
        for _ in range(100):
            await asyncio.wait_for(bex.watch_order_book("BTC/USDT"), 5)
    await bsim.step(5)
    ob = await asyncio.wait_for(bex.watch_order_book("BTC/USDT"), 5)  # a fresh REST snapshot + stream
    venue = bsim.order_book("BTC/USDT", 1000)
    target = bsim._bn_last_u["BTC/USDT"]
    while ob["nonce"] != target:
        ob = await asyncio.wait_for(bex.watch_order_book("BTC/USDT"), 5)
    assert ob["bids"] == _levels(venue["bids"])


async def test_public_streams_trades_klines_tickers(bsim, bex):
    watches = [asyncio.ensure_future(bex.watch_trades("ETH/USDT")), asyncio.ensure_future(bex.watch_ohlcv("ETH/USDT", "1m")),
               asyncio.ensure_future(bex.watch_ticker("ETH/USDT"))]
    # ccxt 4.5.90's watch_ticker subscribes the 24 h mini ticker
    await wait_for(lambda: all(s in bsim._bn_subs for s in ("ethusdt@trade", "ethusdt@kline_1m", "ethusdt@miniTicker")))
    await bex.create_order("ETH/USDT", "market", "buy", 0.5)
    trades, candles, ticker = await asyncio.wait_for(asyncio.gather(*watches), 5)
    last = bsim.trades("ETH/USDT")[0]
    venue = {t["d"]: float(t["p"]) for t in bsim.trades("ETH/USDT")}
    assert trades and all(venue[t["id"]] == t["price"] for t in trades)
    ts, o, h, lo, c, v = candles[-1]
    assert ts % 60_000 == 0 and lo <= min(o, c) <= max(o, c) <= h
    assert ticker["last"] == float(last["p"])


async def test_user_data_stream_reports_orders_trades_and_balances(bsim, bex):
    orders = asyncio.ensure_future(bex.watch_orders("BTC/USDT"))
    await wait_for(lambda: any(getattr(c, "user_sub_id", None) for c in bsim._conns))
    placed = await bex.create_order("BTC/USDT", "market", "buy", 0.003)
    seen = await asyncio.wait_for(orders, 5)
    assert seen[0]["id"] == placed["id"]
    while seen[-1]["status"] != "closed":
        seen = await asyncio.wait_for(bex.watch_orders("BTC/USDT"), 5)
    assert seen[-1]["filled"] == 0.003
    mine = asyncio.ensure_future(bex.watch_my_trades("BTC/USDT"))
    balance = asyncio.ensure_future(bex.watch_balance())
    await asyncio.sleep(0)
    sold = await bex.create_order("BTC/USDT", "market", "sell", 0.003)
    trades = await asyncio.wait_for(mine, 5)
    sells = [t for t in trades if t["order"] == sold["id"]]  # ccxt's cache also holds the earlier buy's
    assert sells and all(t["side"] == "sell" and t["fee"]["currency"] == "USDT" for t in sells)
    bal = await asyncio.wait_for(balance, 5)
    assert Decimal(str(bal["BTC"]["total"])) == bsim.account_balances(KEY)["BTC"]["total"]


async def test_listen_key_stream_delivers_execution_reports(bsim, bex):
    key = (await bex.public_post_userdatastream())["listenKey"]
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{bsim.base_url.replace('http', 'ws')}/ws/{key}") as ws:
            await wait_for(lambda: any(getattr(c, "listen_key", None) == key for c in bsim._conns))
            placed = await bex.create_order("ETH/USDT", "market", "buy", 0.1)
            kinds = []
            while "TRADE" not in kinds:
                ev = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
                if ev["e"] == "executionReport":
                    assert ev["i"] == int(placed["id"])
                    kinds.append(ev["x"])
            assert kinds[0] == "NEW"


async def test_stop_loss_limit_waits_then_triggers_when_price_trades_through(bsim, bex):
    await bsim.step(50)
    ob = await bex.fetch_order_book("BTC/USDT", 1000)
    last = float(bsim._ticker24(bsim._bn_by_id["BTCUSDT"])["lastPrice"])
    cum, level = 0.0, ob["bids"][0][0]
    for price, size in ob["bids"]:  # the price a 0.5 BTC market sell reaches
        level, cum = price, cum + size
        if cum >= 0.2:
            break
    stop = round(min(level, last - 0.01), 2)
    limit = round(stop * 0.99, 2)
    o = await bex.create_order("BTC/USDT", "STOP_LOSS_LIMIT", "sell", 0.01, limit, {"stopPrice": stop})
    assert o["status"] == "open" and o["info"]["workingTime"] == -1  # not working until triggered
    assert bsim.account_balances(KEY)["BTC"]["used"] == Decimal("0.01")  # held while waiting
    assert limit not in [lvl[0] for lvl in (await bex.fetch_order_book("BTC/USDT", 1000))["asks"]]
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # a sell stop above the last price would trigger at once
        await bex.create_order("BTC/USDT", "STOP_LOSS_LIMIT", "sell", 0.01, round(last * 1.01, 2),
                               {"stopPrice": round(last * 1.02, 2)})
    await bex.create_order("BTC/USDT", "market", "sell", 0.5)  # trades through the stop
    got = await bex.fetch_order(o["id"], "BTC/USDT")
    assert got["info"]["isWorking"] is True and got["triggerPrice"] == stop
    assert got["status"] == "closed" or limit in [lvl[0] for lvl in (await bex.fetch_order_book("BTC/USDT", 1000))["asks"]]


async def test_oco_limit_leg_fill_expires_the_stop_leg(bsim, bex):
    await bsim.step(50)
    last = float(bsim._ticker24(bsim._bn_by_id["BTCUSDT"])["lastPrice"])
    above = next(p for p, _ in (await bex.fetch_order_book("BTC/USDT", 1000))["asks"] if p > last)
    below = round(last * 0.99, 2)
    res = await bex.private_post_orderlist_oco({
        "symbol": "BTCUSDT", "side": "SELL", "quantity": "0.01", "aboveType": "LIMIT_MAKER", "abovePrice": str(above),
        "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": str(below), "belowPrice": str(round(below * 0.99, 2)),
        "belowTimeInForce": "GTC"})
    assert res["listOrderStatus"] == "EXECUTING" and len(res["orders"]) == 2
    limit_id, stop_id = (r["orderId"] for r in sorted(res["orderReports"], key=lambda r: r["type"] != "LIMIT_MAKER"))
    assert bsim.account_balances(KEY)["BTC"]["used"] == Decimal("0.01")  # one hold for the list
    through = sum(q for p, q in (await bex.fetch_order_book("BTC/USDT", 1000))["asks"] if p <= above)
    await bex.create_order("BTC/USDT", "limit", "buy", round(through, 5), above)  # fills up to the LIMIT_MAKER leg
    legs = {o["orderId"]: o["status"] for o in await bex.private_get_allorders({"symbol": "BTCUSDT"})}
    assert legs[limit_id] == "FILLED" and legs[stop_id] == "EXPIRED"
    assert bsim.account_balances(KEY)["BTC"]["used"] == 0
    lst = await bex.private_get_orderlist({"orderListId": res["orderListId"]})
    assert lst["listOrderStatus"] == "ALL_DONE"


async def test_faults_of_the_shared_switchboard_work_in_this_dialect(bsim, bex):
    bsim.faults.fail_next_requests(1, 503)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await bex.fetch_ticker("BTC/USDT")
    bsim.faults.reply_429(1)
    with pytest.raises(ccxt.DDoSProtection):
        await bex.fetch_ticker("BTC/USDT")
    assert (await bex.fetch_ticker("BTC/USDT"))["last"] > 0
    bsim.faults.accept_then_fail(1, 504)
    with pytest.raises(ccxt.RequestTimeout):  # ccxt's binance maps HTTP statuses (its cryptocom does not)
        await bex.create_order("BTC/USDT", "limit", "buy", 0.001, 30000)
    assert len(bsim.open_orders(KEY)) == 1  # the order is live on the venue all the same
    await asyncio.wait_for(bex.watch_order_book("BTC/USDT"), 5)
    assert bsim.faults.drop_connections() >= 1
    with pytest.raises(ccxt.NetworkError):
        for _ in range(50):
            await asyncio.wait_for(bex.watch_order_book("BTC/USDT"), 5)
            await bsim.step(5)
