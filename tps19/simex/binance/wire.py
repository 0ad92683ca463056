"""Binance spot wire format: error codes, the venue's JSON shapes, symbol ids and decimals.

Binance writes every price and quantity with 8 decimals ("0.35270000"), symbols as BASEQUOTE
("BTCUSDT", lower case in stream names), ids as integers and times in ms.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..engine import ZERO, Account, Fill, Trade
from ..instruments import Instrument

EIGHT = Decimal("0.00000001")

# (HTTP status, code, msg) as the Binance spot API documents them ("Error codes for Binance").
UNKNOWN = (500, -1000, "An unknown error occured while processing the request.")
DISCONNECTED = (500, -1001, "Internal error; unable to process your request. Please try again.")
TOO_MANY_REQUESTS = (429, -1003, "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
                                 "Please use WebSocket Streams for live updates to avoid polling the API.")
IP_BANNED = (418, -1003, "Way too much request weight used; IP banned until {until}. "
                         "Please use WebSocket Streams for live updates to avoid bans.")
TOO_MANY_ORDERS = (429, -1015, "Too many new orders; current limit is {limit} orders per {interval}.")
INVALID_TIMESTAMP = (400, -1021, "Timestamp for this request is outside of the recvWindow.")
AHEAD_OF_SERVER = (400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
INVALID_SIGNATURE = (400, -1022, "Signature for this request is not valid.")
ILLEGAL_CHARS = (400, -1100, "Illegal characters found in parameter '{name}'; legal range is '{legal}'.")
MANDATORY_PARAM = (400, -1102, "Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
NOT_REQUIRED = (400, -1106, "Parameter '{name}' sent when not required.")
BAD_PRECISION = (400, -1111, "Parameter '{name}' has too much precision.")
TIF_NOT_REQUIRED = (400, -1106, "Parameter 'timeInForce' sent when not required.")
INVALID_TIF = (400, -1115, "Invalid timeInForce.")
INVALID_ORDER_TYPE = (400, -1116, "Invalid orderType.")
INVALID_SIDE = (400, -1117, "Invalid side.")
INVALID_INTERVAL = (400, -1120, "Invalid interval.")
INVALID_SYMBOL = (400, -1121, "Invalid symbol.")
INVALID_LISTEN_KEY = (400, -1125, "This listenKey does not exist.")
BAD_RECV_WINDOW = (400, -1131, "recvWindow must be less than 60000")
INVALID_PARAM = (400, -1130, "Invalid data sent for a parameter.")
FILTER_FAILURE = (400, -1013, "Filter failure: {filter}")
NEW_ORDER_REJECTED = (400, -2010, "{reason}")
CANCEL_REJECTED = (400, -2011, "Unknown order sent.")
NO_SUCH_ORDER = (400, -2013, "Order does not exist.")
BAD_API_KEY_FMT = (401, -2014, "API-key format invalid.")
REJECTED_MBX_KEY = (401, -2015, "Invalid API-key, IP, or permissions for action.")
NOT_FOUND = (404, -1000, "Not found: {path}")

INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
WOULD_TAKE = "Order would immediately match and take."
WOULD_TRIGGER = "Stop price would trigger immediately."
DUPLICATE_ORDER = "Duplicate order sent."


class BinanceError(Exception):
    def __init__(self, spec: tuple[int, int, str], **fmt_args: Any) -> None:
        self.status, self.code, msg = spec
        self.msg = msg.format(**fmt_args) if fmt_args else msg
        self.retry_after: int | None = None
        super().__init__(f"{self.code} {self.msg}")

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


def d8(x: Decimal) -> str:
    """Binance's 8-decimal string."""
    return str(x.quantize(EIGHT))


def symbol_id(inst: Instrument) -> str:
    return f"{inst.base}{inst.quote}"


def px(inst: Instrument, ticks: int) -> str:
    return d8(inst.price(ticks))


def qty(inst: Instrument, lots: int) -> str:
    return d8(inst.qty(lots))


def filters(inst: Instrument) -> list[dict[str, Any]]:
    return [
        {"filterType": "PRICE_FILTER", "minPrice": d8(inst.tick), "maxPrice": d8(inst.tick * 10**9),
         "tickSize": d8(inst.tick)},
        {"filterType": "LOT_SIZE", "minQty": d8(inst.min_qty), "maxQty": d8(inst.lot * 10**9), "stepSize": d8(inst.lot)},
        {"filterType": "MARKET_LOT_SIZE", "minQty": d8(ZERO), "maxQty": d8(inst.lot * 10**9), "stepSize": d8(ZERO)},
        {"filterType": "NOTIONAL", "minNotional": d8(inst.min_notional), "applyMinToMarket": True,
         "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
    ]


ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"]


def symbol_info(inst: Instrument) -> dict[str, Any]:
    """One exchangeInfo ``symbols`` row."""
    return {
        "symbol": symbol_id(inst), "status": "TRADING", "baseAsset": inst.base, "baseAssetPrecision": 8,
        "quoteAsset": inst.quote, "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8, "orderTypes": list(ORDER_TYPES), "icebergAllowed": False, "ocoAllowed": True,
        "otoAllowed": False, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
        "cancelReplaceAllowed": False, "amendAllowed": False, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False, "filters": filters(inst), "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE", "allowedSelfTradePreventionModes": ["NONE"],
    }


def public_trade(t: Trade) -> dict[str, Any]:
    inst = t.inst
    value = inst.price(t.price) * inst.qty(t.qty)
    return {"id": int(t.id), "price": px(inst, t.price), "qty": qty(inst, t.qty), "quoteQty": d8(value),
            "time": t.time, "isBuyerMaker": t.taker_side == "SELL", "isBestMatch": True}


def agg_trade(t: Trade) -> dict[str, Any]:
    inst = t.inst
    return {"a": int(t.id), "p": px(inst, t.price), "q": qty(inst, t.qty), "f": int(t.id), "l": int(t.id),
            "T": t.time, "m": t.taker_side == "SELL", "M": True}


def my_trade(f: Fill, order_id: int, list_id: int) -> dict[str, Any]:
    o, inst = f.order, f.order.inst
    return {"symbol": symbol_id(inst), "id": int(f.trade_id), "orderId": order_id, "orderListId": list_id,
            "price": px(inst, f.price), "qty": qty(inst, f.qty), "quoteQty": d8(f.value), "commission": d8(f.fee),
            "commissionAsset": o.fee_ccy, "time": f.time, "isBuyer": o.side == "BUY",
            "isMaker": f.liquidity == "MAKER", "isBestMatch": True}


def balances(a: Account, only: set[str] | None = None) -> list[dict[str, str]]:
    out = []
    for ccy in sorted(set(a.balances) | set(a.holds)):
        if only is not None and ccy not in only:
            continue
        total, held = a.balances.get(ccy, ZERO), a.holds.get(ccy, ZERO)
        out.append({"asset": ccy, "free": d8(total - held), "locked": d8(held)})
    return out


def kline_row(inst: Instrument, row: dict[str, Any], interval_ms: int) -> list[Any]:
    """A candle of the shared store as a /api/v3/klines row."""
    vol = Decimal(row["v"])
    close = Decimal(row["c"])
    return [row["t"], d8(Decimal(row["o"])), d8(Decimal(row["h"])), d8(Decimal(row["l"])), d8(close), d8(vol),
            row["t"] + interval_ms - 1, d8(vol * close), 0, "0.00000000", "0.00000000", "0"]
