"""Venue message shapes: a raw websocket frame -> recording rows (kind, symbol, seq, levels).

Runs in the recorder's writer thread (off the event loop). A frame that is not market data
(heartbeats, subscription acks) gives no row; the user channel's frames are kept as ``user``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .format import BOOK, CANDLE, DELTA, TICKER, TRADE, Row

USER = "user"

SymbolOf = Callable[[str], str]


def _levels(levels: Any) -> tuple[list[float], list[float]]:
    px: list[float] = []
    qty: list[float] = []
    for lv in levels or ():
        px.append(float(lv[0]))
        qty.append(float(lv[1]))
    return px, qty


def cryptocom(gseq: int, recv_ns: int, text: str, symbol_of: SymbolOf) -> Row | None:
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict):
        return None
    result = msg.get("result")
    if not isinstance(result, dict):
        return None
    channel = result.get("channel")
    inst = result.get("instrument_name")
    symbol = symbol_of(inst) if isinstance(inst, str) else "_"
    data = result.get("data") or []
    first = data[0] if data and isinstance(data[0], dict) else {}
    if channel == "book":
        bp, bq = _levels(first.get("bids"))
        ap, aq = _levels(first.get("asks"))
        return (gseq, recv_ns, first.get("t"), BOOK, symbol, first.get("u"), None, bp, bq, ap, aq, text)
    if channel == "book.update":
        upd = first.get("update") or {}
        bp, bq = _levels(upd.get("bids"))
        ap, aq = _levels(upd.get("asks"))
        return (gseq, recv_ns, first.get("t"), DELTA, symbol, first.get("u"), first.get("pu"), bp, bq, ap, aq, text)
    if channel == "trade":
        ts = max((d.get("t") or 0 for d in data if isinstance(d, dict)), default=None)
        return (gseq, recv_ns, ts, TRADE, symbol, None, None, None, None, None, None, text)
    if channel == "ticker":
        return (gseq, recv_ns, first.get("t"), TICKER, symbol, None, None, None, None, None, None, text)
    if channel == "candlestick":
        return (gseq, recv_ns, first.get("t"), CANDLE, symbol, None, None, None, None, None, None, text)
    if isinstance(channel, str) and channel.startswith("user."):
        return (gseq, recv_ns, None, USER, symbol, None, None, None, None, None, None, text)
    return None


def binance(gseq: int, recv_ns: int, text: str, symbol_of: SymbolOf) -> Row | None:
    """Binance spot websocket frames (raw or combined-stream ``{"stream", "data"}``) and REST depth
    snapshots wrapped as ``{"snapshot": symbol_id, "body": {...}}`` (what `tps19 import` writes)."""
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict):
        return None
    if "snapshot" in msg:
        body = msg.get("body") or {}
        bp, bq = _levels(body.get("bids"))
        ap, aq = _levels(body.get("asks"))
        return (gseq, recv_ns, None, BOOK, symbol_of(str(msg["snapshot"])), body.get("lastUpdateId"), None,
                bp, bq, ap, aq, text)
    data = msg.get("data", msg)
    if not isinstance(data, dict):
        return None
    event = data.get("e")
    symbol = symbol_of(str(data.get("s", "")))
    if event == "depthUpdate":
        bp, bq = _levels(data.get("b"))
        ap, aq = _levels(data.get("a"))
        first = data.get("U")
        return (gseq, recv_ns, data.get("E"), DELTA, symbol, data.get("u"),
                first - 1 if isinstance(first, int) else None, bp, bq, ap, aq, text)
    if event in ("trade", "aggTrade"):
        return (gseq, recv_ns, data.get("T") or data.get("E"), TRADE, symbol, None, None, None, None, None, None, text)
    if event == "kline":
        return (gseq, recv_ns, data.get("E"), CANDLE, symbol, None, None, None, None, None, None, text)
    if event in ("24hrTicker", "bookTicker") or ("b" in data and "a" in data and "u" in data and "e" not in data):
        return (gseq, recv_ns, data.get("E"), TICKER, symbol, None, None, None, None, None, None, text)
    return None


DIALECTS: dict[str, Callable[[int, int, str, SymbolOf], Row | None]] = {
    "cryptocom": cryptocom,
    "sim": cryptocom,
    "binance": binance,
}


def dialect_for(exchange_id: str) -> Callable[[int, int, str, SymbolOf], Row | None]:
    """The parser of a venue's frames; a venue without one is recorded raw (kind ``frame``)."""
    fn = DIALECTS.get(exchange_id)
    if fn is not None:
        return fn

    def raw(gseq: int, recv_ns: int, text: str, symbol_of: SymbolOf) -> Row | None:
        return (gseq, recv_ns, None, "frame", "_", None, None, None, None, None, None, text)

    return raw
