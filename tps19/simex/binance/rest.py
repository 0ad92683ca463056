"""The Binance dialect's REST side: /api/v3 (public, API-key and signed endpoints), the few /sapi
endpoints ccxt's binance client calls for spot, request weights, and the fault switchboard.

A signed call carries ``timestamp`` (and optionally ``recvWindow``, default 5000 ms, at most
60000) and ``signature`` = HMAC-SHA256(secret, query string + body without the signature), with
the key in the ``X-MBX-APIKEY`` header, exactly as the venue documents it and ccxt sends it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from ..candles import INTERVALS, next_bucket
from ..engine import ZERO, Account, EngineError, Order
from ..instruments import Instrument
from ..wire import wall_ms
from .limits import RateLimits
from .orders import LIMIT_TYPES, TRIGGER_TYPES, BinanceBook, BnOrder, OrderList, engine_tif
from .wire import (BAD_API_KEY_FMT, BAD_RECV_WINDOW, CANCEL_REJECTED, DISCONNECTED, DUPLICATE_ORDER, FILTER_FAILURE,
                   ILLEGAL_CHARS, INSUFFICIENT_BALANCE, INVALID_INTERVAL, INVALID_LISTEN_KEY, INVALID_ORDER_TYPE,
                   INVALID_PARAM, INVALID_SIDE, INVALID_SIGNATURE, INVALID_SYMBOL, INVALID_TIF, INVALID_TIMESTAMP,
                   AHEAD_OF_SERVER, MANDATORY_PARAM, NEW_ORDER_REJECTED, NO_SUCH_ORDER, NOT_FOUND, NOT_REQUIRED,
                   ORDER_TYPES, REJECTED_MBX_KEY, WOULD_TAKE, WOULD_TRIGGER, BinanceError, agg_trade, balances, d8,
                   kline_row, my_trade, public_trade, px, qty, symbol_id, symbol_info)

log = logging.getLogger("tps19.simex")

# Binance interval -> the shared candle store's interval
KLINE_INTERVALS = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h", "2h": "2h", "4h": "4h",
                   "6h": "6h", "12h": "12h", "1d": "1D", "1w": "7D", "1M": "1M"}
CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_SIG = re.compile(r"(^|&)signature=[^&]*")

Params = dict[str, str]
Handler = Callable[[Account | None, Params], Any]


def _depth_weight(p: Params) -> int:
    limit = _int_or(p.get("limit"), 100)
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def _w(n: int, all_symbols: int | None = None) -> Callable[[Params], int]:
    def weight(p: Params) -> int:
        if all_symbols is not None and "symbol" not in p and "symbols" not in p:
            return all_symbols
        return n
    return weight


def _int_or(v: str | None, default: int) -> int:
    try:
        return int(v) if v not in (None, "") else default
    except ValueError:
        return default


class BinanceRest:
    """Mixin of BinanceSimExchange: REST requests answered from the shared venue state."""

    accounts: dict[str, Account]
    stats: dict[str, int]
    faults: Any
    engine: Any
    instruments: list[Instrument]
    public_trades: dict[str, Any]
    candles: dict[str, Any]
    stats24: dict[str, Any]
    last: dict[str, int]
    clock: Callable[[], int]
    bn: BinanceBook
    limits: RateLimits
    listen_keys: dict[str, Account]
    _bn_by_id: dict[str, Instrument]
    _bn_events: list[tuple[str, Any]]
    _flush: Callable[[], None]
    _bn_last_u: dict[str, int]

    # ---- routing -----------------------------------------------------------------------
    def _bn_routes(self) -> dict[tuple[str, str], tuple[Handler, Callable[[Params], int], str, int]]:
        """(HTTP method, path) -> (handler, weight, security NONE/API_KEY/SIGNED, orders counted)."""
        return {
            ("GET", "/api/v3/ping"): (self._b_ping, _w(1), "NONE", 0),
            ("GET", "/api/v3/time"): (self._b_time, _w(1), "NONE", 0),
            ("GET", "/api/v3/exchangeInfo"): (self._b_exchange_info, _w(20), "NONE", 0),
            ("GET", "/api/v3/depth"): (self._b_depth, _depth_weight, "NONE", 0),
            ("GET", "/api/v3/trades"): (self._b_trades, _w(25), "NONE", 0),
            ("GET", "/api/v3/historicalTrades"): (self._b_trades, _w(25), "API_KEY", 0),
            ("GET", "/api/v3/aggTrades"): (self._b_agg_trades, _w(4), "NONE", 0),
            ("GET", "/api/v3/klines"): (self._b_klines, _w(2), "NONE", 0),
            ("GET", "/api/v3/uiKlines"): (self._b_klines, _w(2), "NONE", 0),
            ("GET", "/api/v3/ticker/24hr"): (self._b_ticker24, _w(2, 80), "NONE", 0),
            ("GET", "/api/v3/ticker/price"): (self._b_ticker_price, _w(2, 4), "NONE", 0),
            ("GET", "/api/v3/ticker/bookTicker"): (self._b_book_ticker, _w(2, 4), "NONE", 0),
            ("GET", "/api/v3/avgPrice"): (self._b_avg_price, _w(2), "NONE", 0),
            ("POST", "/api/v3/order"): (self._b_new_order, _w(1), "SIGNED", 1),
            ("POST", "/api/v3/order/test"): (self._b_test_order, _w(1), "SIGNED", 0),
            ("GET", "/api/v3/order"): (self._b_get_order, _w(4), "SIGNED", 0),
            ("DELETE", "/api/v3/order"): (self._b_cancel_order, _w(1), "SIGNED", 0),
            ("GET", "/api/v3/openOrders"): (self._b_open_orders, _w(6, 80), "SIGNED", 0),
            ("DELETE", "/api/v3/openOrders"): (self._b_cancel_all, _w(1), "SIGNED", 0),
            ("GET", "/api/v3/allOrders"): (self._b_all_orders, _w(20), "SIGNED", 0),
            ("GET", "/api/v3/myTrades"): (self._b_my_trades, _w(20), "SIGNED", 0),
            ("GET", "/api/v3/account"): (self._b_account, _w(20), "SIGNED", 0),
            ("GET", "/api/v3/account/commission"): (self._b_commission, _w(20), "SIGNED", 0),
            ("GET", "/api/v3/rateLimit/order"): (self._b_order_rate, _w(40), "SIGNED", 0),
            ("POST", "/api/v3/orderList/oco"): (self._b_new_oco, _w(1), "SIGNED", 2),
            ("POST", "/api/v3/order/oco"): (self._b_new_oco_legacy, _w(1), "SIGNED", 2),
            ("GET", "/api/v3/orderList"): (self._b_get_list, _w(4), "SIGNED", 0),
            ("DELETE", "/api/v3/orderList"): (self._b_cancel_list, _w(1), "SIGNED", 0),
            ("GET", "/api/v3/openOrderList"): (self._b_open_lists, _w(6), "SIGNED", 0),
            ("GET", "/api/v3/allOrderList"): (self._b_all_lists, _w(20), "SIGNED", 0),
            ("POST", "/api/v3/userDataStream"): (self._b_listen_key_new, _w(2), "API_KEY", 0),
            ("PUT", "/api/v3/userDataStream"): (self._b_listen_key_keep, _w(2), "API_KEY", 0),
            ("DELETE", "/api/v3/userDataStream"): (self._b_listen_key_close, _w(2), "API_KEY", 0),
            ("GET", "/sapi/v1/system/status"): (self._b_system_status, _w(1), "NONE", 0),
            ("GET", "/sapi/v1/asset/tradeFee"): (self._b_trade_fee, _w(1), "SIGNED", 0),
            ("GET", "/sapi/v1/capital/config/getall"): (self._b_currencies, _w(10), "SIGNED", 0),
            # no margin trading on the simulated venue: empty pair lists (ccxt asks when keys are set)
            ("GET", "/sapi/v1/margin/allPairs"): (self._b_no_margin, _w(1), "API_KEY", 0),
            ("GET", "/sapi/v1/margin/isolated/allPairs"): (self._b_no_margin, _w(10), "SIGNED", 0),
            ("GET", "/sapi/v1/margin/interestHistory"): (self._b_no_rows, _w(1), "SIGNED", 0),
            # a simulated account is funded at start: no deposits, withdrawals or transfers ever
            ("GET", "/sapi/v1/capital/deposit/hisrec"): (self._b_no_margin, _w(1), "SIGNED", 0),
            ("GET", "/sapi/v1/capital/withdraw/history"): (self._b_no_margin, _w(1), "SIGNED", 0),
            ("GET", "/sapi/v1/asset/transfer"): (self._b_no_rows, _w(1), "SIGNED", 0),
        }

    def _bn_reply(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(text=json.dumps(body, separators=(",", ":")), status=status,
                            content_type="application/json", headers=headers)

    def _bn_error(self, e: BinanceError, headers: dict[str, str] | None = None) -> web.Response:
        h = dict(headers or {})
        if e.retry_after is not None:
            h["Retry-After"] = str(e.retry_after)
        if e.code in (-1100, -1102, -1104, -1106, -1111, -1115, -1116, -1117, -1120, -1121, -1130, -1131):
            self.stats["bad_requests"] += 1
        if e.code in (-1021, -1022, -2014, -2015):
            self.stats["auth_failures"] += 1
        return self._bn_reply(e.body(), e.status, h)

    async def _bn_rest(self, request: web.Request) -> web.StreamResponse:
        self.stats["rest_requests"] += 1
        route = self._bn_routes().get((request.method, request.path))
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        if self.faults.http_error_count > 0:
            self.faults.http_error_count -= 1
            self.stats["injected_http_errors"] += 1
            st = self.faults.http_error_status
            if st in (418, 429):
                e = BinanceError((st, -1003, "Too many requests; injected by the fault switchboard."))
                e.retry_after = 1
                return self._bn_error(e)
            if st == 500:
                return self._bn_error(BinanceError(DISCONNECTED))
            return web.Response(status=st, text=f"{st} Service Unavailable", content_type="text/html")
        if route is None:
            return self._bn_error(BinanceError(NOT_FOUND, path=request.path))
        handler, weight, security, orders = route
        raw_body = await request.text() if request.method in ("POST", "PUT") else ""
        headers: dict[str, str] = {}
        try:
            params = self._bn_params(request.query_string, raw_body)
            headers = self.limits.charge(request.remote or "?", weight(params), wall_ms(),
                                         orders if security == "SIGNED" else 0)
            acct = None
            if security != "NONE":
                acct = self._bn_authenticate(request, params, raw_body, signed=security == "SIGNED")
            try:
                result = handler(acct, params)
            finally:
                self._flush()
        except BinanceError as e:
            return self._bn_error(e, headers)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats["internal_errors"] += 1
            log.exception("simex binance: %s %s failed", request.method, request.path)
            return self._bn_error(BinanceError(DISCONNECTED), headers)
        if request.path == "/api/v3/order" and request.method == "POST":
            if self.faults.accept_then_fail_count > 0:
                self.faults.accept_then_fail_count -= 1
                self.stats["injected_http_errors"] += 1
                st = self.faults.accept_then_fail_status
                return web.Response(status=st, text=f"{st} Gateway Timeout", content_type="text/html")
            if self.faults.drop_create_order_replies > 0:
                self.faults.drop_create_order_replies -= 1
                self.stats["dropped_replies"] += 1
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError
        return self._bn_reply(result, 200, headers)

    @staticmethod
    def _bn_params(query: str, body: str) -> Params:
        out: Params = {}
        for part in (query, body):
            try:
                pairs = parse_qsl(part, keep_blank_values=True, strict_parsing=False)
            except ValueError:
                raise BinanceError(INVALID_PARAM) from None
            for k, v in pairs:
                out[k] = v
        return out

    def _bn_account_of_key(self, request: web.Request) -> Account:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise BinanceError(BAD_API_KEY_FMT)
        acct = self.accounts.get(key)
        if acct is None:
            raise BinanceError(REJECTED_MBX_KEY)
        return acct

    def _bn_authenticate(self, request: web.Request, params: Params, raw_body: str, signed: bool) -> Account:
        acct = self._bn_account_of_key(request)
        if not signed:
            return acct
        self._bn_check_time(params)
        sig = params.get("signature")
        if not sig:
            raise BinanceError(MANDATORY_PARAM, name="signature")
        payload = _SIG.sub("", request.query_string).lstrip("&") + _SIG.sub("", raw_body).lstrip("&")
        expected = hmac.new(acct.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig.lower()):
            raise BinanceError(INVALID_SIGNATURE)
        return acct

    @staticmethod
    def _bn_check_time(params: Params) -> None:
        ts = params.get("timestamp")
        if ts is None or ts == "":
            raise BinanceError(MANDATORY_PARAM, name="timestamp")
        try:
            t = int(ts)
            window = int(params.get("recvWindow") or 5000)
        except ValueError:
            raise BinanceError(ILLEGAL_CHARS, name="timestamp", legal="^[0-9]{1,20}$") from None
        if window > 60_000 or window <= 0:
            raise BinanceError(BAD_RECV_WINDOW)
        now = wall_ms()
        if t >= now + 1000:
            raise BinanceError(AHEAD_OF_SERVER)
        if now - t > window:
            raise BinanceError(INVALID_TIMESTAMP)

    # ---- parameters --------------------------------------------------------------------
    def _p_inst(self, p: Params, required: bool = True) -> Instrument | None:
        v = p.get("symbol")
        if v is None or v == "":
            if required:
                raise BinanceError(MANDATORY_PARAM, name="symbol")
            return None
        inst = self._bn_by_id.get(v.upper())
        if inst is None:
            raise BinanceError(INVALID_SYMBOL)
        return inst

    def _p_insts(self, p: Params) -> list[Instrument]:
        """``symbol`` or ``symbols`` (a JSON list) or every instrument."""
        if "symbols" in p:
            try:
                names = json.loads(p["symbols"])
            except ValueError:
                raise BinanceError(ILLEGAL_CHARS, name="symbols", legal="a JSON list") from None
            if not isinstance(names, list) or not names:
                raise BinanceError(INVALID_PARAM)
            out = []
            for n in names:
                inst = self._bn_by_id.get(str(n).upper())
                if inst is None:
                    raise BinanceError(INVALID_SYMBOL)
                out.append(inst)
            return out
        inst = self._p_inst(p, required=False)
        return [inst] if inst is not None else list(self.instruments)

    @staticmethod
    def _p_int(p: Params, name: str, default: int | None = None, lo: int | None = None,
               hi: int | None = None) -> int | None:
        v = p.get(name)
        if v is None or v == "":
            return default
        try:
            n = int(v)
        except ValueError:
            raise BinanceError(ILLEGAL_CHARS, name=name, legal="^[0-9]{1,20}$") from None
        if lo is not None and n < lo:
            raise BinanceError(INVALID_PARAM)
        if hi is not None and n > hi:
            n = hi
        return n

    @staticmethod
    def _p_dec(p: Params, name: str) -> Decimal | None:
        v = p.get(name)
        if v is None or v == "":
            return None
        try:
            d = Decimal(v)
        except (InvalidOperation, ValueError):
            raise BinanceError(ILLEGAL_CHARS, name=name, legal="^([0-9]{1,20})(\\.[0-9]{1,20})?$") from None
        if not d.is_finite() or d < 0:
            raise BinanceError(ILLEGAL_CHARS, name=name, legal="^([0-9]{1,20})(\\.[0-9]{1,20})?$")
        return d

    # ---- public ------------------------------------------------------------------------
    def _b_ping(self, acct: Account | None, p: Params) -> dict:
        return {}

    def _b_time(self, acct: Account | None, p: Params) -> dict:
        return {"serverTime": wall_ms()}

    def _b_exchange_info(self, acct: Account | None, p: Params) -> dict:
        insts = self._p_insts(p)
        return {"timezone": "UTC", "serverTime": wall_ms(), "rateLimits": self.limits.rate_limits_json(),
                "exchangeFilters": [], "symbols": [symbol_info(i) for i in insts]}

    def _b_depth(self, acct: Account | None, p: Params) -> dict:
        inst = self._p_inst(p)
        assert inst is not None
        limit = self._p_int(p, "limit", 100, 1, 5000)
        assert limit is not None
        self._flush()  # the stream has published every change this snapshot contains
        book = self.engine.books[inst.symbol]
        return {"lastUpdateId": self._bn_last_u[inst.symbol],
                "bids": [[px(inst, pr), qty(inst, q)] for pr, q, _ in book.top("BUY", limit)],
                "asks": [[px(inst, pr), qty(inst, q)] for pr, q, _ in book.top("SELL", limit)]}

    def _b_trades(self, acct: Account | None, p: Params) -> list:
        inst = self._p_inst(p)
        assert inst is not None
        limit = self._p_int(p, "limit", 500, 1, 1000)
        from_id = self._p_int(p, "fromId")
        trades = list(self.public_trades[inst.symbol])  # newest first
        if from_id is not None:
            rows = [t for t in reversed(trades) if int(t.id) >= from_id][:limit]
        else:
            rows = list(reversed(trades[:limit]))
        return [public_trade(t) for t in rows]

    def _b_agg_trades(self, acct: Account | None, p: Params) -> list:
        inst = self._p_inst(p)
        assert inst is not None
        limit = self._p_int(p, "limit", 500, 1, 1000)
        assert limit is not None
        from_id, start, end = self._p_int(p, "fromId"), self._p_int(p, "startTime"), self._p_int(p, "endTime")
        rows = []
        for t in reversed(self.public_trades[inst.symbol]):  # oldest first
            if from_id is not None and int(t.id) < from_id:
                continue
            if start is not None and t.time < start:
                continue
            if end is not None and t.time > end:
                break
            rows.append(agg_trade(t))
        return rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]

    def _b_klines(self, acct: Account | None, p: Params) -> list:
        inst = self._p_inst(p)
        assert inst is not None
        iv_name = p.get("interval")
        if not iv_name:
            raise BinanceError(MANDATORY_PARAM, name="interval")
        iv = KLINE_INTERVALS.get(iv_name)
        if iv is None:
            raise BinanceError(INVALID_INTERVAL)
        limit = self._p_int(p, "limit", 500, 1, 1000)
        start, end = self._p_int(p, "startTime"), self._p_int(p, "endTime")
        assert limit is not None
        now = self.clock()
        if start is not None and end is None:
            # Binance answers the first `limit` candles from startTime on
            end_excl = start + INTERVALS[iv] * limit if iv != "1M" else start + INTERVALS[iv] * (limit + 1)
        else:
            end_excl = (end + 1) if end is not None else now + 1
        rows = self.candles[inst.symbol].rows(iv, start, end_excl, limit if start is None else 100_000, now)
        if start is not None:
            rows = rows[:limit]
        return [kline_row(inst, r, next_bucket(iv, r["t"]) - r["t"]) for r in rows]

    def _ticker24(self, inst: Instrument, mini: bool = False) -> dict:
        s = self.stats24[inst.symbol]
        last = self.last[inst.symbol]
        book = self.engine.books[inst.symbol]
        bb, ba = book.top("BUY", 1), book.top("SELL", 1)
        now = self.clock()
        vol = inst.qty(s.vol_lots)
        op, la = inst.price(s.open), inst.price(last)
        change = la - op
        d: dict[str, Any] = {"symbol": symbol_id(inst), "openPrice": d8(op), "highPrice": px(inst, s.high),
                             "lowPrice": px(inst, s.low), "lastPrice": d8(la), "volume": d8(vol),
                             "quoteVolume": d8(s.quote_vol), "openTime": now - 86_400_000, "closeTime": now,
                             "firstId": -1, "lastId": -1, "count": 0}
        if mini:
            return d
        d.update({"priceChange": d8(change), "priceChangePercent": str((change / op * 100).quantize(Decimal("0.001"))) if op else "0.000",
                  "weightedAvgPrice": d8(s.quote_vol / vol) if vol else d8(la), "prevClosePrice": d8(op),
                  "lastQty": d8(ZERO),
                  "bidPrice": px(inst, bb[0][0]) if bb else d8(ZERO), "bidQty": qty(inst, bb[0][1]) if bb else d8(ZERO),
                  "askPrice": px(inst, ba[0][0]) if ba else d8(ZERO), "askQty": qty(inst, ba[0][1]) if ba else d8(ZERO)})
        trades = self.public_trades[inst.symbol]
        if trades:
            d["lastQty"] = qty(inst, trades[0].qty)
            d["firstId"], d["lastId"], d["count"] = int(trades[-1].id), int(trades[0].id), len(trades)
        return d

    def _b_ticker24(self, acct: Account | None, p: Params) -> Any:
        mini = p.get("type", "FULL").upper() == "MINI"
        if "symbol" in p:
            inst = self._p_inst(p)
            assert inst is not None
            return self._ticker24(inst, mini)
        return [self._ticker24(i, mini) for i in self._p_insts(p)]

    def _b_ticker_price(self, acct: Account | None, p: Params) -> Any:
        rows = [{"symbol": symbol_id(i), "price": px(i, self.last[i.symbol])} for i in self._p_insts(p)]
        return rows[0] if "symbol" in p else rows

    def _book_ticker(self, inst: Instrument) -> dict:
        book = self.engine.books[inst.symbol]
        bb, ba = book.top("BUY", 1), book.top("SELL", 1)
        return {"symbol": symbol_id(inst), "bidPrice": px(inst, bb[0][0]) if bb else d8(ZERO),
                "bidQty": qty(inst, bb[0][1]) if bb else d8(ZERO), "askPrice": px(inst, ba[0][0]) if ba else d8(ZERO),
                "askQty": qty(inst, ba[0][1]) if ba else d8(ZERO)}

    def _b_book_ticker(self, acct: Account | None, p: Params) -> Any:
        rows = [self._book_ticker(i) for i in self._p_insts(p)]
        return rows[0] if "symbol" in p else rows

    def _b_avg_price(self, acct: Account | None, p: Params) -> dict:
        inst = self._p_inst(p)
        assert inst is not None
        return {"mins": 5, "price": px(inst, self.last[inst.symbol]), "closeTime": self.clock()}

    def _b_no_margin(self, acct: Account | None, p: Params) -> list:
        return []

    def _b_no_rows(self, acct: Account | None, p: Params) -> dict:
        return {"total": 0, "rows": []}

    def _b_system_status(self, acct: Account | None, p: Params) -> dict:
        return {"status": 0, "msg": "normal"}

    # ---- account -----------------------------------------------------------------------
    def _commission_rates(self) -> dict[str, str]:
        return {"maker": d8(self.engine.maker_fee), "taker": d8(self.engine.taker_fee), "buyer": d8(ZERO),
                "seller": d8(ZERO)}

    def _b_account(self, acct: Account | None, p: Params) -> dict:
        assert acct is not None
        omit_zero = p.get("omitZeroBalances", "false").lower() == "true"
        rows = [b for b in balances(acct) if not (omit_zero and Decimal(b["free"]) == 0 and Decimal(b["locked"]) == 0)]
        bps = lambda r: int(r * 10_000)  # noqa: E731
        return {"makerCommission": bps(self.engine.maker_fee), "takerCommission": bps(self.engine.taker_fee),
                "buyerCommission": 0, "sellerCommission": 0, "commissionRates": self._commission_rates(),
                "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
                "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self.clock(),
                "accountType": "SPOT", "balances": rows, "permissions": ["SPOT"],
                "uid": int(hashlib.sha1(acct.api_key.encode()).hexdigest()[:8], 16)}

    def _b_commission(self, acct: Account | None, p: Params) -> dict:
        inst = self._p_inst(p)
        assert inst is not None
        return {"symbol": symbol_id(inst), "standardCommission": self._commission_rates(),
                "taxCommission": {"maker": d8(ZERO), "taker": d8(ZERO), "buyer": d8(ZERO), "seller": d8(ZERO)},
                "discount": {"enabledForAccount": False, "enabledForSymbol": False, "discountAsset": "BNB",
                             "discount": "0.75000000"}}

    def _b_trade_fee(self, acct: Account | None, p: Params) -> list:
        return [{"symbol": symbol_id(i), "makerCommission": str(self.engine.maker_fee.normalize()),
                 "takerCommission": str(self.engine.taker_fee.normalize())} for i in self._p_insts(p)]

    def _b_currencies(self, acct: Account | None, p: Params) -> list:
        ccys = sorted({i.base for i in self.instruments} | {i.quote for i in self.instruments})
        assert acct is not None
        out = []
        for c in ccys:
            free = acct.available(c)
            out.append({"coin": c, "name": c, "depositAllEnable": False, "withdrawAllEnable": False,
                        "free": d8(free), "locked": d8(acct.holds.get(c, ZERO)), "freeze": "0", "withdrawing": "0",
                        "ipoing": "0", "ipoable": "0", "storage": "0", "isLegalMoney": False, "trading": True,
                        "networkList": [{"network": "SIM", "coin": c, "name": "simulated", "isDefault": True,
                                         "depositEnable": False, "withdrawEnable": False, "withdrawFee": "0",
                                         "withdrawMin": "0", "withdrawMax": "0", "withdrawIntegerMultiple": "0.00000001",
                                         "minConfirm": 0, "unLockConfirm": 0}]})
        return out

    def _b_order_rate(self, acct: Account | None, p: Params) -> list:
        return [r | {"count": 0} for r in self.limits.rate_limits_json() if r["rateLimitType"] == "ORDERS"]

    # ---- listen keys (the REST user-data-stream flow) ---------------------------------------
    def _b_listen_key_new(self, acct: Account | None, p: Params) -> dict:
        assert acct is not None
        for key, a in self.listen_keys.items():
            if a is acct:  # Binance returns the account's existing key while it is valid
                return {"listenKey": key}
        key = secrets.token_hex(32)
        self.listen_keys[key] = acct
        return {"listenKey": key}

    def _b_listen_key_keep(self, acct: Account | None, p: Params) -> dict:
        if self.listen_keys.get(p.get("listenKey", "")) is not acct:
            raise BinanceError(INVALID_LISTEN_KEY)
        return {}

    def _b_listen_key_close(self, acct: Account | None, p: Params) -> dict:
        if self.listen_keys.get(p.get("listenKey", "")) is not acct:
            raise BinanceError(INVALID_LISTEN_KEY)
        del self.listen_keys[p["listenKey"]]
        return {}

    # ---- orders ------------------------------------------------------------------------
    def _bn_order_json(self, bn: BnOrder) -> dict:
        inst = bn.inst
        o = bn.engine
        orig = o.qty if o is not None and bn.quote_qty is not None else bn.qty
        return {"symbol": symbol_id(inst), "orderId": bn.id, "orderListId": bn.list_id, "clientOrderId": bn.client_id,
                "price": px(inst, bn.price) if bn.price is not None else d8(ZERO), "origQty": qty(inst, orig),
                "executedQty": qty(inst, bn.filled), "cummulativeQuoteQty": d8(bn.cum_quote), "status": bn.status,
                "timeInForce": bn.tif or "GTC", "type": bn.type, "side": bn.side,
                "stopPrice": px(inst, bn.stop) if bn.stop is not None else d8(ZERO), "icebergQty": d8(ZERO),
                "time": bn.time, "updateTime": bn.last_update, "isWorking": bn.engine is not None,
                "workingTime": bn.working_time, "origQuoteOrderQty": d8(bn.quote_qty or ZERO),
                "selfTradePreventionMode": "NONE"}

    def _order_result(self, bn: BnOrder, resp_type: str, fills: list) -> dict:
        base = {"symbol": symbol_id(bn.inst), "orderId": bn.id, "orderListId": bn.list_id,
                "clientOrderId": bn.client_id, "transactTime": bn.time}
        if resp_type == "ACK":
            return base
        full = self._bn_order_json(bn)
        for k in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking"):
            if not (k == "stopPrice" and bn.stop is not None):
                full.pop(k, None)
        out = base | full
        if resp_type == "FULL":
            out["fills"] = [{"price": px(bn.inst, f.price), "qty": qty(bn.inst, f.qty), "commission": d8(f.fee),
                             "commissionAsset": f.order.fee_ccy, "tradeId": int(f.trade_id)} for f in fills]
        return out

    def _validate_order(self, acct: Account, p: Params, inst: Instrument, prefix: str = "") -> BnOrder:
        """A new order's parameters (``prefix``: an OCO leg's ``above``/``below``) as a BnOrder not
        yet placed, or the BinanceError the venue answers."""
        def g(name: str) -> str:
            return f"{prefix}{name[0].upper()}{name[1:]}" if prefix else name

        side = p.get("side", "").upper()
        if not side:
            raise BinanceError(MANDATORY_PARAM, name="side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(INVALID_SIDE)
        type_ = p.get(g("type"), "").upper()
        if not type_:
            raise BinanceError(MANDATORY_PARAM, name=g("type"))
        if type_ not in ORDER_TYPES:
            raise BinanceError(INVALID_ORDER_TYPE)
        tif = p.get(g("timeInForce"), "").upper() or None
        needs_tif = type_ in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
        if needs_tif and tif is None:
            raise BinanceError(MANDATORY_PARAM, name=g("timeInForce"))
        if not needs_tif and tif is not None:
            raise BinanceError(NOT_REQUIRED, name=g("timeInForce"))
        if tif is not None and tif not in ("GTC", "IOC", "FOK"):
            raise BinanceError(INVALID_TIF)
        quantity = self._p_dec(p, "quantity")
        quote_qty = self._p_dec(p, "quoteOrderQty") if not prefix else None
        price = self._p_dec(p, g("price"))
        stop = self._p_dec(p, g("stopPrice"))
        if type_ == "MARKET":
            if (quantity is None) == (quote_qty is None):
                raise BinanceError(MANDATORY_PARAM, name="quantity' or 'quoteOrderQty")
            if quote_qty is not None and side == "SELL":
                raise BinanceError(NEW_ORDER_REJECTED, reason="quoteOrderQty is taken for MARKET BUY orders only "
                                                              "on the simulated venue.")
        elif quantity is None:
            raise BinanceError(MANDATORY_PARAM, name="quantity")
        if type_ in LIMIT_TYPES and price is None:
            raise BinanceError(MANDATORY_PARAM, name=g("price"))
        if type_ not in LIMIT_TYPES and price is not None:
            raise BinanceError(NOT_REQUIRED, name=g("price"))
        if type_ in TRIGGER_TYPES and stop is None:
            raise BinanceError(MANDATORY_PARAM, name=g("stopPrice"))
        lots = 0
        if quantity is not None:
            q = inst.to_lots(quantity)
            if q is None or q <= 0 or quantity < inst.min_qty:
                raise BinanceError(FILTER_FAILURE, filter="LOT_SIZE")
            lots = q
        ticks = stop_ticks = None
        if price is not None:
            ticks = inst.to_ticks(price)
            if ticks is None or ticks <= 0:
                raise BinanceError(FILTER_FAILURE, filter="PRICE_FILTER")
        if stop is not None:
            stop_ticks = inst.to_ticks(stop)
            if stop_ticks is None or stop_ticks <= 0:
                raise BinanceError(FILTER_FAILURE, filter="PRICE_FILTER")
        ref = ticks if ticks is not None else stop_ticks if stop_ticks is not None else self.last[inst.symbol]
        if quote_qty is not None:
            if quote_qty < inst.min_notional:
                raise BinanceError(FILTER_FAILURE, filter="NOTIONAL")
        elif inst.price(ref) * inst.qty(lots) < inst.min_notional:
            raise BinanceError(FILTER_FAILURE, filter="NOTIONAL")
        cid_key = g("clientOrderId") if prefix else "newClientOrderId"
        cid = p.get(cid_key) or f"sim{secrets.token_hex(10)}"
        if not CLIENT_ID.match(cid):
            raise BinanceError(ILLEGAL_CHARS, name=cid_key, legal="^[\\.A-Z\\:/a-z0-9_-]{1,36}$")
        prev = self.bn.by_client.get((acct.api_key, cid))
        if prev is not None and prev.is_open:
            raise BinanceError(NEW_ORDER_REJECTED, reason=DUPLICATE_ORDER)
        now = self.clock()
        return BnOrder(id=0, inst=inst, account=acct, client_id=cid, side=side, type=type_,
                       tif=tif if needs_tif else ("GTC" if type_ == "LIMIT_MAKER" else None), qty=lots, price=ticks,
                       stop=stop_ticks, quote_qty=quote_qty, time=now, update_time=now)

    def _crosses(self, bn: BnOrder) -> bool:
        book = self.engine.books[bn.inst.symbol]
        best = book.best_ask() if bn.side == "BUY" else book.best_bid()
        assert bn.price is not None
        return best is not None and (bn.price >= best if bn.side == "BUY" else bn.price <= best)

    def _place(self, bn: BnOrder) -> list:
        """Accept a validated order: to the engine (or wait for its trigger). Returns its fills."""
        inst, acct = bn.inst, bn.account
        if bn.type == "LIMIT_MAKER" and self._crosses(bn):
            raise BinanceError(NEW_ORDER_REJECTED, reason=WOULD_TAKE)
        if bn.type in TRIGGER_TYPES:
            if self.bn.triggers_at(bn, self.last[inst.symbol]):
                raise BinanceError(NEW_ORDER_REJECTED, reason=WOULD_TRIGGER)
            if acct.available(inst.base if bn.side == "SELL" else inst.quote) < self.bn.hold_for_trigger(bn):
                raise BinanceError(NEW_ORDER_REJECTED, reason=INSUFFICIENT_BALANCE)
            bn.id = self.bn.next_id()
            self.bn.place_hold(bn)
            self.bn.add(bn)
            self._bn_events.append(("new", bn))
            self.engine._emit("balance", acct)
            return []
        bn.id = self.bn.next_id()
        mark = len(self._bn_events)
        n_trades = len(acct.trades)
        order_type = "MARKET" if bn.type == "MARKET" else "LIMIT"
        tif = engine_tif(bn.tif) if order_type == "LIMIT" else "GOOD_TILL_CANCEL"
        try:
            o = self.engine.new_order(acct, inst.symbol, bn.side, order_type, bn.qty, bn.price, tif,
                                      bn.type == "LIMIT_MAKER", None, bn.quote_qty)
        except EngineError as e:
            del self._bn_events[mark:]
            if e.code == 306:
                raise BinanceError(NEW_ORDER_REJECTED, reason=INSUFFICIENT_BALANCE) from None
            raise BinanceError(FILTER_FAILURE, filter="NOTIONAL" if e.code == 415 else "LOT_SIZE") from None
        bn.engine = o
        bn.working_time = bn.time
        self.bn.add(bn)
        self._bn_events.insert(mark, ("new", bn))
        return [f for f in acct.trades[n_trades:] if f.order is o]

    def _b_new_order(self, acct: Account | None, p: Params) -> dict:
        assert acct is not None
        inst = self._p_inst(p)
        assert inst is not None
        bn = self._validate_order(acct, p, inst)
        resp = p.get("newOrderRespType", "").upper() or ("FULL" if bn.type in ("LIMIT", "MARKET") else "ACK")
        if resp not in ("ACK", "RESULT", "FULL"):
            raise BinanceError(INVALID_PARAM)
        fills = self._place(bn)
        return self._order_result(bn, resp, fills)

    def _b_test_order(self, acct: Account | None, p: Params) -> dict:
        assert acct is not None
        inst = self._p_inst(p)
        assert inst is not None
        self._validate_order(acct, p, inst)
        return {}

    def _find(self, acct: Account, p: Params, inst: Instrument) -> BnOrder:
        oid, cid = self._p_int(p, "orderId"), p.get("origClientOrderId")
        if oid is None and not cid:
            raise BinanceError(MANDATORY_PARAM, name="orderId' or 'origClientOrderId")
        bn = self.bn.orders.get(oid) if oid is not None else self.bn.by_client.get((acct.api_key, cid or ""))
        if bn is None or bn.account is not acct or bn.inst is not inst:
            raise BinanceError(NO_SUCH_ORDER)
        return bn

    def _b_get_order(self, acct: Account | None, p: Params) -> dict:
        assert acct is not None
        inst = self._p_inst(p)
        assert inst is not None
        return self._bn_order_json(self._find(acct, p, inst))

    def _cancel_bn(self, bn: BnOrder) -> list[BnOrder]:
        """Cancel an order (all legs of its list). Returns the orders canceled."""
        now = self.clock()
        ol = self.bn.lists.get(bn.list_id) if bn.list_id >= 0 else None
        legs = ol.legs if ol is not None else [bn]
        done = []
        for leg in legs:
            was_waiting = leg.waiting
            if self.bn.cancel(leg, now):
                done.append(leg)
                if was_waiting:  # no engine event for a stop that never triggered
                    self._bn_events.append(("order", leg))
                    self.engine._emit("balance", leg.account)
        if ol is not None:
            ol.done = True
        return done

    def _b_cancel_order(self, acct: Account | None, p: Params) -> dict:
        assert acct is not None
        inst = self._p_inst(p)
        assert inst is not None
        try:
            bn = self._find(acct, p, inst)
        except BinanceError:
            raise BinanceError(CANCEL_REJECTED) from None
        if not self._cancel_bn(bn):
            raise BinanceError(CANCEL_REJECTED)
        out = self._bn_order_json(bn)
        for k in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking", "workingTime", "origQuoteOrderQty"):
            out.pop(k, None)
        return {"symbol": out.pop("symbol"), "origClientOrderId": bn.client_id, "orderId": bn.id,
                "orderListId": bn.list_id, "clientOrderId": p.get("newClientOrderId") or f"cancel{secrets.token_hex(8)}",
                "transactTime": self.clock(), **{k: v for k, v in out.items() if k not in ("orderId", "orderListId", "clientOrderId")}}

    def _b_cancel_all(self, acct: Account | None, p: Params) -> list:
        assert acct is not None
        inst = self._p_inst(p)
        out = []
        for bn in self.bn.of_account(acct):
            if bn.inst is inst and bn.is_open:
                for done in self._cancel_bn(bn):
                    out.append(self._bn_order_json(done))
        return out

    def _b_open_orders(self, acct: Account | None, p: Params) -> list:
        assert acct is not None
        inst = self._p_inst(p, required=False)
        return [self._bn_order_json(bn) for bn in self.bn.of_account(acct)
                if bn.is_open and (inst is None or bn.inst is inst)]

    def _b_all_orders(self, acct: Account | None, p: Params) -> list:
        assert acct is not None
        inst = self._p_inst(p)
        limit = self._p_int(p, "limit", 500, 1, 1000)
        oid, start, end = self._p_int(p, "orderId"), self._p_int(p, "startTime"), self._p_int(p, "endTime")
        rows = [bn for bn in self.bn.of_account(acct) if bn.inst is inst and (oid is None or bn.id >= oid)
                and (start is None or bn.time >= start) and (end is None or bn.time <= end)]
        rows.sort(key=lambda b: b.id)
        rows = rows[:limit] if (oid is not None or start is not None) else rows[-(limit or 500):]
        return [self._bn_order_json(bn) for bn in rows]

    def _b_my_trades(self, acct: Account | None, p: Params) -> list:
        assert acct is not None
        inst = self._p_inst(p)
        limit = self._p_int(p, "limit", 500, 1, 1000)
        assert limit is not None
        oid, from_id = self._p_int(p, "orderId"), self._p_int(p, "fromId")
        start, end = self._p_int(p, "startTime"), self._p_int(p, "endTime")
        rows = []
        for f in acct.trades:  # oldest first
            bn = self.bn.by_engine.get(f.order.id)
            if f.order.inst is not inst or bn is None:
                continue
            if (oid is not None and bn.id != oid) or (from_id is not None and int(f.trade_id) < from_id):
                continue
            if (start is not None and f.time < start) or (end is not None and f.time > end):
                continue
            rows.append(my_trade(f, bn.id, bn.list_id))
        return rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]

    # ---- order lists (OCO) --------------------------------------------------------------
    def _list_json(self, ol: OrderList, with_reports: bool = False) -> dict:
        done = ol.done or not any(leg.is_open for leg in ol.legs)
        out: dict[str, Any] = {"orderListId": ol.id, "contingencyType": "OCO",
                               "listStatusType": "ALL_DONE" if done else "EXEC_STARTED",
                               "listOrderStatus": "ALL_DONE" if done else "EXECUTING", "listClientOrderId": ol.client_id,
                               "transactionTime": ol.time, "symbol": symbol_id(ol.inst),
                               "orders": [{"symbol": symbol_id(ol.inst), "orderId": leg.id,
                                           "clientOrderId": leg.client_id} for leg in ol.legs]}
        if with_reports:
            reports = []
            for leg in ol.legs:
                r = self._order_result(leg, "RESULT", [])
                if leg.stop is not None:
                    r["stopPrice"] = px(leg.inst, leg.stop)
                reports.append(r)
            out["orderReports"] = reports
        return out

    def _b_new_oco(self, acct: Account | None, p: Params) -> dict:
        assert acct is not None
        inst = self._p_inst(p)
        assert inst is not None
        legs = [self._validate_order(acct, p, inst, prefix) for prefix in ("above", "below")]
        above, below = legs
        limit_legs = [leg for leg in legs if leg.type == "LIMIT_MAKER"]
        if len(limit_legs) > 1 or not all(leg.type in TRIGGER_TYPES or leg.type == "LIMIT_MAKER" for leg in legs):
            raise BinanceError(NEW_ORDER_REJECTED, reason="Unsupported order combination.")
        ref = self.last[inst.symbol]
        for leg, is_above in ((above, True), (below, False)):
            level = leg.stop if leg.stop is not None else leg.price
            assert level is not None
            if (is_above and level <= ref) or (not is_above and level >= ref):
                raise BinanceError(NEW_ORDER_REJECTED, reason="Order would trigger immediately.")
        hold_ccy = inst.base if above.side == "SELL" else inst.quote
        need = max(self.bn.hold_for_trigger(leg) if leg.type in TRIGGER_TYPES else
                   (inst.qty(leg.qty) if leg.side == "SELL" else inst.price(leg.price or 0) * inst.qty(leg.qty))
                   for leg in legs)
        if acct.available(hold_ccy) < need:
            raise BinanceError(NEW_ORDER_REJECTED, reason=INSUFFICIENT_BALANCE)
        ol = OrderList(id=self.bn.next_list_id(), client_id=p.get("listClientOrderId") or f"sim{secrets.token_hex(10)}",
                       inst=inst, account=acct, legs=legs, time=self.clock())
        self.bn.lists[ol.id] = ol
        for leg in legs:
            leg.list_id = ol.id
        # the limit leg reserves the funds in the engine; with two stop legs, the first holds them
        first_hold = True
        for leg in sorted(legs, key=lambda leg: leg.type != "LIMIT_MAKER"):
            if leg.type == "LIMIT_MAKER":
                self._place(leg)
                first_hold = False
            else:
                leg.id = self.bn.next_id()
                if first_hold:
                    self.bn.place_hold(leg)
                    first_hold = False
                self.bn.add(leg)
                self._bn_events.append(("new", leg))
        self.engine._emit("balance", acct)
        return self._list_json(ol, with_reports=True)

    def _b_new_oco_legacy(self, acct: Account | None, p: Params) -> dict:
        """POST /api/v3/order/oco (deprecated by Binance): price = the LIMIT_MAKER leg, stopPrice
        (+ stopLimitPrice) = the stop leg; mapped onto orderList/oco."""
        side = p.get("side", "").upper()
        mapped = dict(p)
        stop_type = "STOP_LOSS_LIMIT" if p.get("stopLimitPrice") else "STOP_LOSS"
        limit_leg = {"Type": "LIMIT_MAKER", "Price": p.get("price", ""), "ClientOrderId": p.get("limitClientOrderId", "")}
        stop_leg = {"Type": stop_type, "StopPrice": p.get("stopPrice", ""), "Price": p.get("stopLimitPrice", ""),
                    "TimeInForce": p.get("stopLimitTimeInForce", ""), "ClientOrderId": p.get("stopClientOrderId", "")}
        # a sell OCO takes profit above and stops out below; a buy OCO the other way round
        above, below = (limit_leg, stop_leg) if side == "SELL" else (stop_leg, limit_leg)
        for prefix, leg in (("above", above), ("below", below)):
            for k, v in leg.items():
                if v:
                    mapped[prefix + k] = v
        return self._b_new_oco(acct, mapped)

    def _find_list(self, acct: Account, p: Params) -> OrderList:
        lid, cid = self._p_int(p, "orderListId"), p.get("origClientOrderId") or p.get("listClientOrderId")
        for ol in self.bn.lists.values():
            if ol.account is acct and (ol.id == lid or (lid is None and ol.client_id == cid)):
                return ol
        raise BinanceError((400, -2011, "Order list does not exist."))

    def _b_get_list(self, acct: Account | None, p: Params) -> dict:
        assert acct is not None
        return self._list_json(self._find_list(acct, p))

    def _b_cancel_list(self, acct: Account | None, p: Params) -> dict:
        assert acct is not None
        self._p_inst(p)
        ol = self._find_list(acct, p)
        if ol.done or not any(leg.is_open for leg in ol.legs):
            raise BinanceError(CANCEL_REJECTED)
        self._cancel_bn(ol.legs[0])
        return self._list_json(ol, with_reports=True)

    def _b_open_lists(self, acct: Account | None, p: Params) -> list:
        return [self._list_json(ol) for ol in self.bn.lists.values()
                if ol.account is acct and not ol.done and any(leg.is_open for leg in ol.legs)]

    def _b_all_lists(self, acct: Account | None, p: Params) -> list:
        limit = self._p_int(p, "limit", 500, 1, 1000) or 500
        return [self._list_json(ol) for ol in self.bn.lists.values() if ol.account is acct][-limit:]

    def _bn_order_of(self, o: Order) -> BnOrder | None:
        return self.bn.by_engine.get(o.id)
