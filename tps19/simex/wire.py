"""The simulated exchange's wire format: Crypto.com Exchange v1 codes, envelopes and JSON shapes.

Everything here turns the matching engine's state into the exact strings a ccxt `cryptocom`
client parses (prices and sizes as the instrument's decimal strings, times in ms); the REST and
websocket sides only decide what to send and to whom.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from aiohttp import web

from .engine import ZERO, Account, Fill, Order, Trade
from .instruments import Instrument

# Crypto.com Exchange v1 response codes (see README)
BAD_REQUEST = (40001, "BAD_REQUEST")
METHOD_NOT_FOUND = (40002, "METHOD_NOT_FOUND")
INVALID_REQUEST = (40003, "INVALID_REQUEST")
MISSING_OR_INVALID_ARGUMENT = (40004, "MISSING_OR_INVALID_ARGUMENT")
DUPLICATE_REQUEST = (40006, "DUPLICATE_REQUEST")  # the same signed body seen again within the nonce window
UNAUTHORIZED = (40101, "UNAUTHORIZED")
INVALID_NONCE = (40102, "INVALID_NONCE")
NOT_FOUND = (40401, "NOT_FOUND")
TOO_MANY_REQUESTS = (42901, "TOO_MANY_REQUESTS")
ERR_INTERNAL = (50001, "ERR_INTERNAL")
DUPLICATE_CLORDID = (204, "DUPLICATE_CLORDID")
INVALID_INSTRUMENT = (209, "INVALID_INSTRUMENT")
INVALID_ORDERQTY = (213, "INVALID_ORDERQTY")
INVALID_ORDTYPE = (218, "INVALID_ORDTYPE")
INVALID_PRICE = (308, "INVALID_PRICE")
INVALID_EXECINST = (219, "INVALID_EXECINST")
NO_ACTIVE_ORDER = (316, "NO_ACTIVE_ORDER")

# HTTP status per reason code, from the v1 "Response and Reason Codes" table (anything else: 400)
HTTP_STATUS = {40401: 200, 43012: 200, 40101: 401, 40103: 401, 40104: 401, 40801: 408, 42901: 429,
               306: 500, 212: 500, 219: 500, 316: 500, 415: 500, 43003: 500, 43004: 500, 43005: 500}


class ApiError(Exception):
    def __init__(self, code_msg: tuple[int, str], result: dict | None = None) -> None:
        super().__init__(f"{code_msg[0]} {code_msg[1]}")
        self.code, self.message = code_msg
        self.result = result


def fmt(d: Decimal) -> str:
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def wall_ms() -> int:
    return int(time.time() * 1000)


class WireFormat:
    """Mixin of SimExchange: the venue's state as Exchange v1 JSON."""

    engine: Any  # MatchingEngine
    stats24: dict[str, Any]
    last: dict[str, int]
    clock: Any
    _by_symbol: dict[str, Instrument]

    def _envelope(self, result: dict) -> str:
        return json.dumps({"id": -1, "method": "subscribe", "code": 0, "result": result}, separators=(",", ":"))

    def _view(self, symbol: str, depth: int) -> tuple[dict, dict]:
        book = self.engine.books[symbol]
        bids = {p: (q, c) for p, q, c in book.top("BUY", depth)}
        asks = {p: (q, c) for p, q, c in book.top("SELL", depth)}
        return bids, asks

    @staticmethod
    def _levels(inst: Instrument, view: dict, reverse: bool) -> list[list[str]]:
        return [[inst.price_str(p), inst.qty_str(q), str(c)] for p, (q, c) in sorted(view.items(), reverse=reverse)]

    @staticmethod
    def _diff(inst: Instrument, old: dict, new: dict, reverse: bool) -> list[list[str]]:
        out = []
        for p in old.keys() - new.keys():
            out.append((p, [inst.price_str(p), "0", "0"]))
        for p, qc in new.items():
            if old.get(p) != qc:
                out.append((p, [inst.price_str(p), inst.qty_str(qc[0]), str(qc[1])]))
        out.sort(key=lambda x: x[0], reverse=reverse)
        return [x[1] for x in out]

    def _public_trade_json(self, t: Trade) -> dict:
        inst = t.inst
        return {"d": t.id, "t": t.time, "tn": str(t.time * 1_000_000), "q": inst.qty_str(t.qty),
                "p": inst.price_str(t.price), "s": t.taker_side, "i": inst.id, "m": t.id}

    def _ticker_json(self, inst: Instrument) -> dict:
        book = self.engine.books[inst.symbol]
        s = self.stats24[inst.symbol]
        last = self.last[inst.symbol]
        bb, ba = book.top("BUY", 1), book.top("SELL", 1)
        change = Decimal(last - s.open) / Decimal(s.open) if s.open else ZERO
        d = {"i": inst.id, "h": inst.price_str(s.high), "l": inst.price_str(s.low), "a": inst.price_str(last),
             "v": inst.qty_str(s.vol_lots), "vv": fmt(s.quote_vol.quantize(Decimal("0.01"))),
             "c": fmt(change.quantize(Decimal("0.0001"))), "oi": "0", "t": self.clock()}
        if bb:
            d["b"], d["bs"] = inst.price_str(bb[0][0]), inst.qty_str(bb[0][1])
        if ba:
            d["k"], d["ks"] = inst.price_str(ba[0][0]), inst.qty_str(ba[0][1])
        return d

    def _order_json(self, o: Order) -> dict:
        inst = o.inst
        filled_q = inst.qty(o.filled)
        avg = (o.cum_value / filled_q) if o.filled else ZERO
        d: dict[str, Any] = {
            "account_id": o.account.account_id if o.account else "",
            "order_id": o.id,
            "order_type": o.kind or o.type,
            "time_in_force": o.tif,
            "side": o.side,
            "exec_inst": ["POST_ONLY"] if o.post_only else [],
            "quantity": inst.qty_str(o.qty),
            "order_value": fmt(o.notional) if o.notional is not None else (
                fmt(inst.price(o.price) * inst.qty(o.qty)) if o.price is not None else "0"),
            "maker_fee_rate": fmt(o.maker_fee_rate),
            "taker_fee_rate": fmt(o.taker_fee_rate),
            "avg_price": fmt(avg.quantize(Decimal(1).scaleb(-(inst.price_decimals + 4)))) if o.filled else "0",
            "cumulative_quantity": inst.qty_str(o.filled),
            "cumulative_value": fmt(o.cum_value),
            "cumulative_fee": fmt(o.cum_fee),
            "status": o.status,
            "update_user_id": o.account.account_id if o.account else "",
            "order_date": datetime.fromtimestamp(o.create_time / 1000, tz=timezone.utc).strftime("%Y-%m-%d"),
            "instrument_name": inst.id,
            "fee_instrument_name": o.fee_ccy,
            "create_time": o.create_time,
            "create_time_ns": str(o.create_time * 1_000_000),
            "update_time": o.update_time,
        }
        if o.client_oid is not None:
            d["client_oid"] = o.client_oid
        if o.price is not None:
            d["limit_price"] = inst.price_str(o.price)
        if o.reason is not None:
            d["reason"] = o.reason
        if o.ref_price is not None:  # a trigger order: its level, and the print that triggered it ("0": waiting)
            d["ref_price"] = inst.price_str(o.ref_price)
            d["ref_price_type"] = o.ref_price_type or "MARK_PRICE"
            d["trigger_price"] = inst.price_str(o.trigger_price) if o.trigger_price is not None else "0"
        if o.list_id is not None:
            d["contingency_type"] = o.contingency or "OCO"
            d["list_id"] = o.list_id
        return d

    def _fill_json(self, f: Fill) -> dict:
        o, inst = f.order, f.order.inst
        d = {"account_id": o.account.account_id if o.account else "",
             "event_date": datetime.fromtimestamp(f.time / 1000, tz=timezone.utc).strftime("%Y-%m-%d"),
             "journal_type": "TRADING", "side": o.side, "instrument_name": inst.id, "fees": fmt(-f.fee),
             "trade_id": f.trade_id, "trade_match_id": f.match_id, "create_time": f.time,
             "traded_price": inst.price_str(f.price), "traded_quantity": inst.qty_str(f.qty),
             "fee_instrument_name": o.fee_ccy, "taker_side": f.liquidity, "order_id": o.id,
             "create_time_ns": str(f.time * 1_000_000)}
        if o.client_oid is not None:
            d["client_oid"] = o.client_oid
        return d

    def _usd_price(self, ccy: str) -> Decimal:
        if ccy in ("USDT", "USD", "USDC"):
            return Decimal(1)
        inst = self._by_symbol.get(f"{ccy}/USDT")
        return inst.price(self.last[inst.symbol]) if inst else ZERO

    def _balance_json(self, a: Account) -> dict:
        rows, total = [], ZERO
        for ccy in sorted(set(a.balances) | set(a.holds)):
            qty, held = a.balances.get(ccy, ZERO), a.holds.get(ccy, ZERO)
            mv = qty * self._usd_price(ccy)
            total += mv
            rows.append({"quantity": fmt(qty), "reserved_qty": fmt(held), "collateral_weight": "1.0",
                         "collateral_amount": fmt(mv.quantize(Decimal("0.00000001"))),
                         "market_value": fmt(mv.quantize(Decimal("0.00000001"))),
                         "max_withdrawal_balance": fmt(qty - held), "instrument_name": ccy, "hourly_interest_rate": "0"})
        tot = fmt(total.quantize(Decimal("0.00000001")))
        return {"total_available_balance": tot, "total_margin_balance": tot, "total_initial_margin": "0",
                "total_maintenance_margin": "0", "total_position_cost": "0", "total_cash_balance": tot,
                "total_collateral_value": tot, "total_session_unrealized_pnl": "0", "instrument_name": "USD",
                "total_session_realized_pnl": "0", "position_balances": rows, "total_effective_leverage": "0",
                "position_limit": "3000000", "used_position_limit": "0", "total_borrow": "0", "margin_score": "0",
                "is_liquidating": False, "has_risk": False, "terminatable": True}

    def _reply(self, req_id: Any, method: str, code_msg: tuple[int, str] | None = None, result: Any = None,
               status: int | None = None) -> web.Response:
        body: dict[str, Any] = {"id": req_id, "method": method, "code": code_msg[0] if code_msg else 0}
        if code_msg:
            body["message"] = code_msg[1]
        if result is not None:
            body["result"] = result
        if status is None:
            status = 200 if not code_msg else HTTP_STATUS.get(code_msg[0], 400)
        return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, separators=(",", ":")))
