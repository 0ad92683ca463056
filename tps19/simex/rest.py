"""The simulated exchange's REST side: /exchange/v1/public/* and signed /exchange/v1/private/*."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from aiohttp import web

from .account_api import AccountApi
from .candles import ALIASES, INTERVALS
from .engine import INSUFFICIENT_AVAILABLE_BALANCE, Account, EngineError, Order
from .instruments import Instrument
from .signing import rest_signature
from .triggers import INVALID_REF_PRICE, REF_PRICE_TYPES, TRIGGER_TYPES, TriggerDesk
from .wire import (BAD_REQUEST, DUPLICATE_CLORDID, DUPLICATE_REQUEST, ERR_INTERNAL, INVALID_EXECINST, INVALID_INSTRUMENT,
                   INVALID_NONCE, INVALID_ORDERQTY, INVALID_ORDTYPE, INVALID_PRICE, INVALID_REQUEST, METHOD_NOT_FOUND,
                   MISSING_OR_INVALID_ARGUMENT, NO_ACTIVE_ORDER, NOT_FOUND, TOO_MANY_REQUESTS, UNAUTHORIZED, ApiError,
                   WireFormat, wall_ms)

log = logging.getLogger("tps19.simex")


class RestApi(AccountApi, WireFormat):
    """Mixin of SimExchange: REST requests, authenticated like the venue, answered from its state."""

    accounts: dict[str, Account]
    stats: dict[str, int]
    faults: Any
    replays: Any
    nonce_window_ms: int
    instruments: list[Instrument]
    public_trades: dict[str, Any]
    candles: dict[str, Any]
    start_ms: int
    _by_id: dict[str, Instrument]
    _seq: dict[str, int]
    _flush: Callable[[], None]  # the websocket side publishes what a request changed
    triggers: TriggerDesk
    engine: Any  # MatchingEngine
    last: dict[str, int]
    _order_updates: dict[str, Order]

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        self.stats["rest_requests"] += 1
        kind, name = request.match_info["kind"], request.match_info["name"]
        method = f"{kind}/{name}"
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        if self.faults.http_error_count > 0:
            self.faults.http_error_count -= 1
            self.stats["injected_http_errors"] += 1
            st = self.faults.http_error_status
            if st == 429:
                return self._reply(-1, method, TOO_MANY_REQUESTS, status=429)
            if st == 500:
                return self._reply(-1, method, ERR_INTERNAL, status=500)
            return web.Response(status=st, text=f"{st} Service Unavailable", content_type="text/html")
        req_id: Any = -1
        try:
            if kind == "public":
                handler = self._public_handlers().get(name)
                if handler is None:
                    raise ApiError(METHOD_NOT_FOUND)
                result = handler(dict(request.query))
                return self._reply(-1, method, result=result)
            if request.method != "POST":
                raise ApiError(BAD_REQUEST)
            raw = await request.read()
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(BAD_REQUEST) from None
            if not isinstance(body, dict):
                raise ApiError(BAD_REQUEST)
            req_id = body.get("id", -1)
            if isinstance(req_id, str) and req_id.isdigit():
                req_id = int(req_id)
            private = self._private_handlers().get(name)
            if private is None:
                raise ApiError(METHOD_NOT_FOUND)
            acct = self._authenticate(body, method)
            params = body.get("params") or {}
            if not isinstance(params, dict):
                raise ApiError(INVALID_REQUEST)
            try:
                result = private(acct, params)
            finally:
                self._flush()
            placing = name in ("create-order", "create-order-list")  # a list is placed (or lost) whole
            if placing and self.faults.accept_then_fail_count > 0:
                self.faults.accept_then_fail_count -= 1
                self.stats["injected_http_errors"] += 1
                st = self.faults.accept_then_fail_status
                return web.Response(status=st, text=f"{st} Gateway Timeout", content_type="text/html")
            if placing and self.faults.drop_create_order_replies > 0:
                self.faults.drop_create_order_replies -= 1
                self.stats["dropped_replies"] += 1
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError  # aiohttp drops the request silently
            return self._reply(req_id, method, result=result)
        except ApiError as e:
            if e.code in (40001, 40002, 40003, 40004):
                self.stats["bad_requests"] += 1
            if e.code in (40101, 40102):
                self.stats["auth_failures"] += 1
            if e.code == DUPLICATE_REQUEST[0]:
                self.stats["replays_refused"] += 1
            return self._reply(req_id, method, (e.code, e.message), result=e.result)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats["internal_errors"] += 1
            log.exception("simex: %s failed", method)
            return self._reply(req_id, method, ERR_INTERNAL)

    def _authenticate(self, body: dict, method: str) -> Account:
        api_key, sig, nonce = body.get("api_key"), body.get("sig"), body.get("nonce")
        if not isinstance(api_key, str) or not isinstance(sig, str) or nonce is None:
            raise ApiError(UNAUTHORIZED)
        acct = self.accounts.get(api_key)
        if acct is None:
            raise ApiError(UNAUTHORIZED)
        try:
            n = int(nonce)
        except (TypeError, ValueError):
            raise ApiError(INVALID_NONCE) from None
        if abs(wall_ms() - n) > self.nonce_window_ms:
            raise ApiError(INVALID_NONCE)
        try:
            expected = rest_signature(acct.secret, str(body.get("method", method)), body.get("id", ""), api_key,
                                      body.get("params") or {}, nonce)
        except Exception:
            raise ApiError(UNAUTHORIZED) from None
        if expected != sig or body.get("method", method) != method:
            raise ApiError(UNAUTHORIZED)
        if not self.replays.first_use(api_key, sig, n):
            raise ApiError(DUPLICATE_REQUEST)
        return acct

    def _inst_param(self, params: dict, required: bool = True) -> Instrument | None:
        v = params.get("instrument_name")
        if v is None:
            if required:
                raise ApiError(MISSING_OR_INVALID_ARGUMENT)
            return None
        inst = self._by_id.get(str(v))
        if inst is None:
            raise ApiError(INVALID_INSTRUMENT)
        return inst

    @staticmethod
    def _int_param(params: dict, key: str, default: int | None = None, lo: int | None = None, hi: int | None = None) -> int | None:
        v = params.get(key)
        if v is None or v == "":
            return default
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise ApiError(MISSING_OR_INVALID_ARGUMENT) from None
        if lo is not None and n < lo:
            raise ApiError(MISSING_OR_INVALID_ARGUMENT)
        if hi is not None:
            n = min(n, hi)
        return n

    @staticmethod
    def _dec_param(params: dict, key: str, err: tuple[int, str]) -> Decimal | None:
        v = params.get(key)
        if v is None:
            return None
        try:
            d = Decimal(str(v))
        except (InvalidOperation, ValueError):
            raise ApiError(err) from None
        if not d.is_finite() or d <= 0:
            raise ApiError(err)
        return d

    def _public_handlers(self) -> dict[str, Callable[[dict], dict]]:
        return {"get-instruments": self._h_instruments, "get-book": self._h_book, "get-candlestick": self._h_candles,
                "get-trades": self._h_trades, "get-tickers": self._h_tickers}

    def _h_instruments(self, params: dict) -> dict:
        return {"data": [i.as_api() for i in self.instruments]}

    def _h_book(self, params: dict) -> dict:
        inst = self._inst_param(params)
        assert inst is not None
        depth = self._int_param(params, "depth", 50, 1, 50)
        assert depth is not None
        bids, asks = self._view(inst.symbol, depth)
        now = self.clock()
        return {"depth": depth, "data": [{"bids": self._levels(inst, bids, True), "asks": self._levels(inst, asks, False),
                                          "t": now, "tt": now, "u": self._seq[inst.symbol]}], "instrument_name": inst.id}

    def _h_candles(self, params: dict) -> dict:
        inst = self._inst_param(params)
        assert inst is not None
        tf = str(params.get("timeframe") or "1m")
        tf = tf if tf in INTERVALS else ALIASES.get(tf, "")
        if tf not in INTERVALS:
            raise ApiError(MISSING_OR_INVALID_ARGUMENT)
        count = self._int_param(params, "count", 25, 1, 300)
        now = self.clock()
        start = self._int_param(params, "start_ts")
        end = self._int_param(params, "end_ts", now + 1)
        assert count is not None and end is not None
        if start is not None and start < 0:
            start = 0
        rows = self.candles[inst.symbol].rows(tf, start, end, count, now)
        return {"interval": tf, "data": rows, "instrument_name": inst.id}

    def _h_trades(self, params: dict) -> dict:
        inst = self._inst_param(params)
        assert inst is not None
        count = self._int_param(params, "count", 25, 1, 150)
        start = self._int_param(params, "start_ts")
        end = self._int_param(params, "end_ts")
        out = []
        for t in self.public_trades[inst.symbol]:  # newest first
            if end is not None and t.time > end:
                continue
            if start is not None and t.time < start:
                break
            out.append(self._public_trade_json(t))
            if len(out) >= (count or 25):
                break
        return {"data": out}

    def _h_tickers(self, params: dict) -> dict:
        inst = self._inst_param(params, required=False)
        insts = [inst] if inst else self.instruments
        return {"data": [self._ticker_json(i) for i in insts]}

    def _private_handlers(self) -> dict[str, Callable[[Account, dict], dict]]:
        return {"create-order": self._h_create, "cancel-order": self._h_cancel, "cancel-all-orders": self._h_cancel_all,
                "create-order-list": self._h_create_list, "cancel-order-list": self._h_cancel_list,
                "get-open-orders": self._h_open_orders, "get-order-detail": self._h_order_detail,
                "user-balance": self._h_balance, "get-trades": self._h_my_trades,
                "get-order-history": self._h_order_history, "get-currency-networks": self._h_currency_networks,
                **self._account_handlers()}

    def _h_create(self, acct: Account, params: dict) -> dict:
        o = self._place_order(acct, self._order_args(acct, params))
        out = {"order_id": o.id}
        if o.client_oid is not None:
            out["client_oid"] = o.client_oid
        return out

    def _order_args(self, acct: Account, params: dict) -> dict[str, Any]:
        """One order's parameters, checked (private/create-order, or a leg of create-order-list)."""
        inst = self._inst_param(params)
        assert inst is not None
        client_oid = params.get("client_oid")
        if client_oid is not None:
            client_oid = str(client_oid)
            if not client_oid or len(client_oid) > 36:
                raise ApiError(MISSING_OR_INVALID_ARGUMENT)
            if client_oid in acct.by_client_oid:
                raise ApiError(DUPLICATE_CLORDID, {"client_oid": client_oid})
        side = str(params.get("side", "")).upper()
        type_ = str(params.get("type", "")).upper()
        if type_ not in ("LIMIT", "MARKET") and type_ not in TRIGGER_TYPES:
            raise ApiError(INVALID_ORDTYPE)
        exec_type = TRIGGER_TYPES.get(type_, type_)
        tif = str(params.get("time_in_force") or "GOOD_TILL_CANCEL").upper()
        exec_inst = params.get("exec_inst") or []
        if isinstance(exec_inst, str):
            exec_inst = [exec_inst]
        if not isinstance(exec_inst, list) or not all(x in ("POST_ONLY",) for x in exec_inst):
            raise ApiError(INVALID_EXECINST)
        post_only = "POST_ONLY" in exec_inst
        if post_only and (tif != "GOOD_TILL_CANCEL" or type_ in TRIGGER_TYPES):
            raise ApiError((43005, "POST_ONLY_REJ"))
        qty = self._dec_param(params, "quantity", INVALID_ORDERQTY)
        notional = self._dec_param(params, "notional", INVALID_ORDERQTY)
        price = self._dec_param(params, "price", INVALID_PRICE)
        lots, ticks = 0, None
        if qty is not None:
            in_lots = inst.to_lots(qty)
            if in_lots is None:
                raise ApiError(INVALID_ORDERQTY)
            lots = in_lots
        elif notional is None:
            raise ApiError(INVALID_ORDERQTY)
        if qty is not None:
            notional = None
        elif exec_type != "MARKET" or side != "BUY":
            raise ApiError(INVALID_ORDERQTY)  # only a market buy spends a notional
        if exec_type == "LIMIT":
            if price is None:
                raise ApiError(INVALID_PRICE)
            ticks = inst.to_ticks(price)
            if ticks is None:
                raise ApiError(INVALID_PRICE)
        ref, ref_type = None, None
        if type_ in TRIGGER_TYPES:
            raw = params.get("ref_price")
            if raw is None:
                raise ApiError(MISSING_OR_INVALID_ARGUMENT, {"client_oid": client_oid} if client_oid else None)
            ref_dec = self._dec_param(params, "ref_price", INVALID_REF_PRICE)
            ref = inst.to_ticks(ref_dec) if ref_dec is not None else None
            if ref is None or ref <= 0:
                raise ApiError(INVALID_REF_PRICE)
            ref_type = str(params.get("ref_price_type") or "MARK_PRICE").upper()
            if ref_type not in REF_PRICE_TYPES:
                raise ApiError(MISSING_OR_INVALID_ARGUMENT)
        return {"inst": inst, "side": side, "type": type_, "exec_type": exec_type, "lots": lots, "ticks": ticks,
                "tif": tif, "post_only": post_only, "client_oid": client_oid, "notional": notional, "ref": ref,
                "ref_type": ref_type}

    def _place_order(self, acct: Account, a: dict[str, Any], hold: bool = True) -> Order:
        try:
            if a["ref"] is not None:
                return self.triggers.place(acct, a["inst"], a["side"], a["type"], a["lots"], a["ticks"], a["tif"],
                                           a["client_oid"], a["notional"], a["ref"], a["ref_type"], hold=hold)
            return self.engine.new_order(acct, a["inst"].symbol, a["side"], a["type"], a["lots"], a["ticks"], a["tif"],
                                         a["post_only"], a["client_oid"], a["notional"])
        except EngineError as e:
            raise ApiError((e.code, e.message), {"client_oid": a["client_oid"]} if a["client_oid"] else None) from None

    def _h_create_list(self, acct: Account, params: dict) -> Any:
        """private/create-order-list: ``OCO`` (two legs, one reserve, one fill or trigger cancels
        the other; result ``{"list_id"}``) or ``LIST`` (up to 10 independent orders; one result
        per index, refused ones with their code)."""
        contingency = str(params.get("contingency_type") or "LIST").upper()
        legs = params.get("order_list")
        if not isinstance(legs, list) or not legs or not all(isinstance(x, dict) for x in legs):
            raise ApiError(INVALID_REQUEST)
        if contingency == "LIST":
            if len(legs) > 10:
                raise ApiError(INVALID_REQUEST)
            out: list[dict[str, Any]] = []
            for i, leg in enumerate(legs):
                try:
                    o = self._place_order(acct, self._order_args(acct, leg))
                    out.append({"index": i, "code": 0, "order_id": o.id, "client_oid": o.client_oid or ""})
                except ApiError as e:
                    out.append({"index": i, "code": e.code, "message": e.message,
                                "client_oid": str(leg.get("client_oid") or "")})
            return out
        if contingency != "OCO" or len(legs) != 2:
            raise ApiError(INVALID_REQUEST)
        args = [self._order_args(acct, leg) for leg in legs]
        first, second = args
        if first["inst"] is not second["inst"] or first["side"] != second["side"]:
            raise ApiError(INVALID_REQUEST)
        waiting = [a for a in args if a["ref"] is not None]
        if not waiting:
            raise ApiError(INVALID_ORDTYPE)  # an OCO needs a trigger leg
        if first["client_oid"] is not None and first["client_oid"] == second["client_oid"]:
            raise ApiError(DUPLICATE_CLORDID, {"client_oid": first["client_oid"]})
        inst, side = first["inst"], first["side"]
        for a in waiting:  # refused before anything is placed
            if self.triggers.would_trigger(inst, side, a["type"], a["ref"]):
                raise ApiError(INVALID_REF_PRICE)
        ccy = inst.base if side == "SELL" else inst.quote
        need = max(self._leg_need(a) for a in args)
        if acct.available(ccy) < need:
            raise ApiError(INSUFFICIENT_AVAILABLE_BALANCE)
        other = second if waiting[0] is first else first
        if other["ref"] is None:
            # a working leg (LIMIT) reserves on the book; the waiting leg shares it
            held = self._place_order(acct, waiting[0], hold=False)
            try:
                placed = {id(waiting[0]): held, id(other): self._place_order(acct, other)}
            except ApiError:
                self._discard(held)
                raise
        else:
            held = self._place_order(acct, waiting[0])
            extra = need - held.hold_left
            if extra > 0:  # one reserve for both: the larger of what either needs
                held.hold_left += extra
                acct.hold(ccy, extra)
            try:
                placed = {id(waiting[0]): held, id(other): self._place_order(acct, other, hold=False)}
            except ApiError:
                self._discard(held)
                raise
        ol = self.triggers.new_list("OCO", [placed[id(a)] for a in args])
        for leg in ol.legs:
            if leg.filled:  # the working leg traded at once: the list is done
                self.triggers.close_list(leg)
        return {"list_id": ol.id}

    def _discard(self, o: Order) -> None:
        self.triggers.discard(o)
        self._order_updates.pop(o.id, None)  # never published: the client never had it

    def _leg_need(self, a: dict[str, Any]) -> Decimal:
        inst = a["inst"]
        if a["side"] == "SELL":
            return inst.qty(a["lots"])
        if a["notional"] is not None:
            return a["notional"]
        ticks = a["ticks"] if a["ticks"] is not None else a["ref"]
        if ticks is None:  # a market buy by quantity: what the book asks now
            book = self.engine.books[inst.symbol]
            ticks = book.best_ask() or self.last[inst.symbol]
        return inst.price(ticks) * inst.qty(a["lots"])

    def _h_cancel_list(self, acct: Account, params: dict) -> Any:
        """private/cancel-order-list: ``OCO`` by ``list_id``, or ``LIST`` of order ids."""
        contingency = str(params.get("contingency_type") or "LIST").upper()
        if contingency == "OCO":
            ol = self.triggers.lists.get(str(params.get("list_id") or ""))
            if ol is None or ol.legs[0].account is not acct:
                raise ApiError(NOT_FOUND)
            if ol.done or not any(leg.is_open for leg in ol.legs):
                raise ApiError(NO_ACTIVE_ORDER)
            for leg in ol.legs:
                if leg.is_open:
                    self.triggers.cancel(leg)
            return {}
        items = params.get("order_list")
        if contingency != "LIST" or not isinstance(items, list) or not items or len(items) > 10:
            raise ApiError(INVALID_REQUEST)
        out: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise ApiError(INVALID_REQUEST)
                o = self._find_order(acct, item)
                if not self.triggers.cancel(o):
                    raise ApiError(NO_ACTIVE_ORDER)
                out.append({"index": i, "code": 0})
            except ApiError as e:
                out.append({"index": i, "code": e.code, "message": e.message})
        return out

    def _find_order(self, acct: Account, params: dict) -> Order:
        oid, coid = params.get("order_id"), params.get("client_oid")
        o = None
        if oid is not None:
            o = acct.orders.get(str(oid))
        elif coid is not None:
            o = acct.by_client_oid.get(str(coid))
        else:
            raise ApiError(MISSING_OR_INVALID_ARGUMENT)
        if o is None:
            raise ApiError(NOT_FOUND)
        return o

    def _h_cancel(self, acct: Account, params: dict) -> dict:
        o = self._find_order(acct, params)
        if not self.triggers.cancel(o):
            raise ApiError(NO_ACTIVE_ORDER)
        out = {"order_id": o.id}
        if o.client_oid is not None:
            out["client_oid"] = o.client_oid
        return out

    def _h_cancel_all(self, acct: Account, params: dict) -> dict:
        inst = self._inst_param(params, required=False)
        self.engine.cancel_all(acct, inst.symbol if inst else None)
        return {}

    def _h_open_orders(self, acct: Account, params: dict) -> dict:
        inst = self._inst_param(params, required=False)
        data = [self._order_json(o) for o in reversed(list(acct.orders.values()))
                if o.is_open and (inst is None or o.inst is inst)]
        return {"data": data}

    def _h_order_detail(self, acct: Account, params: dict) -> dict:
        return self._order_json(self._find_order(acct, params))

    def _h_balance(self, acct: Account, params: dict) -> dict:
        return {"data": [self._balance_json(acct)]}

    def _window(self, params: dict) -> tuple[int, int, int]:
        now = self.clock()
        end = self._int_param(params, "end_time", now)
        start = self._int_param(params, "start_time", (end or now) - 86_400_000)
        limit = self._int_param(params, "limit", 100, 1, 100)
        assert end is not None and start is not None and limit is not None
        # the real API takes ns too; accept both
        if end > 10**15:
            end //= 1_000_000
        if start > 10**15:
            start //= 1_000_000
        return start, end, limit

    def _h_my_trades(self, acct: Account, params: dict) -> dict:
        inst = self._inst_param(params, required=False)
        start, end, limit = self._window(params)
        out = []
        for f in reversed(acct.trades):
            if f.time > end or (inst is not None and f.order.inst is not inst):
                continue
            if f.time < start:
                break
            out.append(self._fill_json(f))
            if len(out) >= limit:
                break
        return {"data": out}

    def _h_order_history(self, acct: Account, params: dict) -> dict:
        inst = self._inst_param(params, required=False)
        start, end, limit = self._window(params)
        orders = sorted((o for o in acct.orders.values() if not o.is_open and (inst is None or o.inst is inst)
                         and start <= o.update_time <= end), key=lambda o: o.update_time, reverse=True)
        return {"data": [self._order_json(o) for o in orders[:limit]]}

    def _h_currency_networks(self, acct: Account, params: dict) -> dict:
        ccys = sorted({i.base for i in self.instruments} | {i.quote for i in self.instruments})
        return {"update_time": self.start_ms, "currency_map": {
            c: {"full_name": c, "default_network": "SIM", "network_list": [
                {"network_id": "SIM", "withdrawal_fee": "0", "withdraw_enabled": False, "min_withdrawal_amount": "0",
                 "deposit_enabled": False, "confirmation_required": "0"}]} for c in ccys}}
