"""The Binance dialect's websockets: market streams (``/stream`` combined, ``/ws`` raw), the user
data stream (WebSocket API ``/ws-api/v3`` with ``userDataStream.subscribe.signature``, or a REST
listen key on ``/ws/<listenKey>``) and what is published on them after every engine event.

Diff depth follows Binance's spot rules: each ``depthUpdate`` carries ``U`` (first update id) and
``u`` (last), the next event starts at ``u + 1``, and ``GET /api/v3/depth``'s ``lastUpdateId`` is the
``u`` of the last event published, so a client syncing a REST snapshot with the stream (ccxt does)
sees exactly the venue's book. Faults use the shared switchboard: stream names map onto the
channel prefixes ``book``, ``trade``, ``ticker``, ``candlestick``, ``user.order``, ``user.balance``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from aiohttp import web

from ..candles import INTERVALS
from ..engine import Account, Fill, Order
from ..instruments import Instrument
from ..wire import wall_ms
from ..ws import WsClient, WsCommon
from .orders import BinanceBook, BnOrder
from .rest import KLINE_INTERVALS, BinanceRest, Params
from .wire import (INVALID_SIGNATURE, MANDATORY_PARAM, REJECTED_MBX_KEY, BinanceError, balances, d8, px, qty,
                   symbol_id)

log = logging.getLogger("tps19.simex")

DEPTH_STREAMS = ("depth", "depth@100ms", "depth@1000ms")
PARTIAL_DEPTHS = (5, 10, 20)


@dataclass(eq=False)
class BnConn(WsClient):
    """One websocket client of the Binance dialect ("market": streams; "user": ws-api, listen-key streams)."""

    combined: bool = True
    user_sub_id: int | None = None  # ws-api user data subscription
    listen_key: str | None = None


def _stream_channel(stream: str) -> str:
    """The shared switchboard's channel prefix for a Binance stream name."""
    kind = stream.split("@", 1)[1] if "@" in stream else stream
    if kind.startswith("depth") or kind == "bookTicker":
        return "book"
    if kind in ("trade", "aggTrade"):
        return "trade"
    if kind.startswith("kline_"):
        return "candlestick"
    return "ticker"


class BinanceWs(BinanceRest, WsCommon):
    """Mixin of BinanceSimExchange: streams, the WebSocket API and publication."""

    _conns: set[Any]
    _by_symbol: dict[str, Instrument]
    _bn_subs: dict[str, set[BnConn]]
    _bn_published: dict[str, tuple[dict[int, int], dict[int, int]]]
    _bn_user_ids: int
    _bn_stop_check: set[str]
    _bn_forced_u: dict[str, int]
    _push: Callable[..., None]
    _spawn: Callable[..., asyncio.Task]
    _writer: Callable[..., Any]

    # ---- engine events, in the order they happened ------------------------------------------
    def _bn_on_engine(self, kind: str, payload: Any) -> None:
        if kind == "fill":
            f: Fill = payload
            self._bn_events.append(("fill", (f, f.order.filled, f.order.cum_value)))
        elif kind == "order":
            o: Order = payload
            self._bn_events.append(("order", (o, o.status)))

    # ---- connections -------------------------------------------------------------------
    async def _bn_ws_stream(self, request: web.Request) -> web.StreamResponse:
        combined = request.path.startswith("/stream")
        tail = request.match_info.get("tail", "")
        initial: list[str] = []
        listen_key = None
        if tail in self.listen_keys:
            listen_key = tail
        elif combined:
            initial = [s for s in request.query.get("streams", "").split("/") if s]
        elif tail and self._bn_parse_stream(tail) is not None:
            initial = [tail]
        if any(self._bn_parse_stream(s) is None for s in initial):
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        return await self._bn_ws(request, "user" if listen_key else "market", combined, initial, listen_key)

    async def _bn_ws_api(self, request: web.Request) -> web.StreamResponse:
        return await self._bn_ws(request, "user", False, [], None, api=True)

    async def _bn_ws(self, request: web.Request, kind: str, combined: bool, initial: list[str],
                     listen_key: str | None, api: bool = False) -> web.StreamResponse:
        # Binance pings every 20 s and drops a client that does not pong within a minute
        ws = web.WebSocketResponse(autoping=True, heartbeat=20.0, max_msg_size=1 << 20, timeout=2.0)
        await ws.prepare(request)
        conn = BnConn(ws=ws, kind=kind, combined=combined, listen_key=listen_key)
        if listen_key is not None:
            conn.account = self.listen_keys[listen_key]
        conn.writer = self._spawn(self._writer(conn))
        self._conns.add(conn)
        self.stats["ws_connections"] += 1
        for s in initial:
            self._bn_subscribe(conn, s)

        async def on_text(text: str) -> None:
            if api:
                await self._bn_on_api(conn, text)
            else:
                self._bn_on_stream_request(conn, text)

        await self._serve_frames(conn, on_text, "simex binance ws message failed",
                                 json.dumps({"id": None, "status": 500, "error": {"code": -1001, "msg": "Internal error"}}),
                                 json.dumps({"error": {"code": 3, "msg": "Invalid JSON: binary frame"}, "id": None}))
        return ws

    def _forget(self, conn: Any) -> None:
        self._conns.discard(conn)
        for s in self._bn_subs.values():
            s.discard(conn)

    # ---- market streams ----------------------------------------------------------------
    def _bn_parse_stream(self, name: str) -> tuple[Instrument | None, str] | None:
        if name in ("!miniTicker@arr", "!ticker@arr"):
            return None, name
        sym, sep, kind = name.partition("@")
        inst = self._bn_by_id.get(sym.upper()) if sep and sym == sym.lower() else None
        if inst is None:
            return None
        ok = (kind in DEPTH_STREAMS or kind in ("trade", "aggTrade", "ticker", "miniTicker", "bookTicker")
              or (kind.startswith("kline_") and kind[6:] in KLINE_INTERVALS)
              or any(kind in (f"depth{n}", f"depth{n}@100ms", f"depth{n}@1000ms") for n in PARTIAL_DEPTHS))
        return (inst, kind) if ok else None

    def _bn_on_stream_request(self, conn: BnConn, text: str) -> None:
        msg = self._json_request(text)
        if msg is None:
            conn.send(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}))
            return
        mid, method, params = msg.get("id"), msg.get("method"), msg.get("params")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                self.stats["bad_requests"] += 1
                conn.send(json.dumps({"error": {"code": 1, "msg": "Invalid value type: expected array of strings"}, "id": mid}))
                return
            bad = [p for p in params if self._bn_parse_stream(p) is None]
            if bad:
                self.stats["bad_requests"] += 1
                conn.send(json.dumps({"error": {"code": 2, "msg": f"Invalid request: unknown stream {bad[0][:60]}"}, "id": mid}))
                return
            conn.send(json.dumps({"result": None, "id": mid}))  # the ack first, then the streams
            for p in params:
                if method == "SUBSCRIBE":
                    self._bn_subscribe(conn, p)
                else:
                    conn.subs.discard(p)
                    self._bn_subs.get(p, set()).discard(conn)
            return
        if method == "LIST_SUBSCRIPTIONS":
            conn.send(json.dumps({"result": sorted(conn.subs), "id": mid}))
            return
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            conn.send(json.dumps({"result": None if method == "SET_PROPERTY" else conn.combined, "id": mid}))
            return
        self.stats["bad_requests"] += 1
        conn.send(json.dumps({"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": mid}))

    def _bn_subscribe(self, conn: BnConn, stream: str) -> None:
        parsed = self._bn_parse_stream(stream)
        assert parsed is not None
        inst, kind = parsed
        if inst is not None and kind.startswith("depth"):
            self._flush_books()  # the stream starts at the next change after what REST already shows
        conn.subs.add(stream)
        self._bn_subs.setdefault(stream, set()).add(conn)

    def _bn_send_stream(self, stream: str, symbol: str | None, event: Any) -> None:
        conns = self._bn_subs.get(stream)
        if not conns:
            return
        channel = _stream_channel(stream)
        name = f"{channel}.{symbol}" if symbol else channel
        combined = [c for c in conns if c.combined]
        raw = [c for c in conns if not c.combined]
        if combined:
            self._push(name, symbol, json.dumps({"stream": stream, "data": event}, separators=(",", ":")), set(combined))
        if raw:
            self._push(name, symbol, json.dumps(event, separators=(",", ":")), set(raw))

    # ---- publication -------------------------------------------------------------------
    def _bn_book_state(self, sym: str) -> tuple[dict[int, int], dict[int, int]]:
        book = self.engine.books[sym]
        return dict(book.level_qty["BUY"]), dict(book.level_qty["SELL"])

    def _flush_books(self) -> int:
        if not self._dirty_books:
            return 0
        dirty, self._dirty_books = self._dirty_books, set()
        now = self.clock()
        changed = 0
        for sym in sorted(dirty):
            inst = self._by_symbol[sym]
            bids, asks = self._bn_book_state(sym)
            old_b, old_a = self._bn_published[sym]
            db = _diff(old_b, bids, True)
            da = _diff(old_a, asks, False)
            forced = self._bn_forced_u.pop(sym, None)  # a replayed event keeps its recorded ids
            if not db and not da and forced is None:
                continue
            changed += 1
            self.stats["book_updates"] += 1
            self._bn_published[sym] = (bids, asks)
            first = self._bn_last_u[sym] + 1
            if sym in self.faults.skip_next:
                first += 1  # an update id the client never sees: a gap
                self.faults.skip_next.discard(sym)
            last = forced if forced is not None else first + len(db) + len(da) - 1
            self._bn_last_u[sym] = last
            self._bn_publish_depth(inst, now, first, last, db, da)
        return changed

    def _bn_publish_depth(self, inst: Instrument, now: int, first: int, last: int,
                          db: list[tuple[int, int]], da: list[tuple[int, int]]) -> None:
        sid = symbol_id(inst)
        low = sid.lower()
        event = {"e": "depthUpdate", "E": now, "s": sid, "U": first, "u": last,
                 "b": [[px(inst, p), qty(inst, q)] for p, q in db], "a": [[px(inst, p), qty(inst, q)] for p, q in da]}
        for kind in DEPTH_STREAMS:
            if f"{low}@{kind}" in self._bn_subs:
                self._bn_send_stream(f"{low}@{kind}", inst.symbol, event)
                self.stats["book_messages"] += 1
        book = self.engine.books[inst.symbol]
        for n in PARTIAL_DEPTHS:
            for suffix in ("", "@100ms", "@1000ms"):
                stream = f"{low}@depth{n}{suffix}"
                if stream in self._bn_subs:
                    self._bn_send_stream(stream, inst.symbol, {
                        "lastUpdateId": last, "bids": [[px(inst, p), qty(inst, q)] for p, q, _ in book.top("BUY", n)],
                        "asks": [[px(inst, p), qty(inst, q)] for p, q, _ in book.top("SELL", n)]})
        if f"{low}@bookTicker" in self._bn_subs:
            t = self._book_ticker(inst)
            self._bn_send_stream(f"{low}@bookTicker", inst.symbol, {
                "u": last, "s": sid, "b": t["bidPrice"], "B": t["bidQty"], "a": t["askPrice"], "A": t["askQty"]})

    def _bn_fire_stops(self) -> None:
        """Stops whose price the last trade reached go to the engine (their fills may fire more)."""
        for _ in range(20):
            fired = False
            for sym in list(self._bn_stop_check):
                last = self.last[sym]
                for bn in self.bn.waiting(sym):
                    if bn.waiting and self.bn.triggers_at(bn, last):
                        before = len(self._bn_events)
                        self.bn.fire(bn, self.clock())
                        if bn.engine is None:  # refused by the engine: expired
                            self._bn_events.insert(before, ("order", bn))
                        fired = True
            self._bn_stop_check = {sym for sym, ts in self._new_trades.items() if ts} if fired else set()
            if not fired:
                return

    def _flush(self) -> None:
        self._bn_stop_check |= {sym for sym, ts in self._new_trades.items() if ts}
        if self._bn_stop_check:
            self._bn_fire_stops()
        self._flush_books()
        now = self.clock()
        for sym, trades in self._new_trades.items():
            if not trades:
                continue
            inst = self._by_symbol[sym]
            low = symbol_id(inst).lower()
            for t in trades:
                if f"{low}@trade" in self._bn_subs:
                    self._bn_send_stream(f"{low}@trade", sym, {
                        "e": "trade", "E": now, "s": symbol_id(inst), "t": int(t.id), "p": px(inst, t.price),
                        "q": qty(inst, t.qty), "T": t.time, "m": t.taker_side == "SELL", "M": True})
                if f"{low}@aggTrade" in self._bn_subs:
                    self._bn_send_stream(f"{low}@aggTrade", sym, {
                        "e": "aggTrade", "E": now, "s": symbol_id(inst), "a": int(t.id), "p": px(inst, t.price),
                        "q": qty(inst, t.qty), "f": int(t.id), "l": int(t.id), "T": t.time,
                        "m": t.taker_side == "SELL", "M": True})
            trades.clear()
        minis = []
        for sym in self._tickers_due(now):
            inst = self._by_symbol[sym]
            low = symbol_id(inst).lower()
            if f"{low}@ticker" in self._bn_subs or "!ticker@arr" in self._bn_subs:
                full = self._ws_ticker(inst, now, mini=False)
                self._bn_send_stream(f"{low}@ticker", sym, full)
            mini = self._ws_ticker(inst, now, mini=True)
            minis.append(mini)
            self._bn_send_stream(f"{low}@miniTicker", sym, mini)
            for b_iv, iv in KLINE_INTERVALS.items():
                stream = f"{low}@kline_{b_iv}"
                if stream in self._bn_subs:
                    self._bn_send_stream(stream, sym, self._ws_kline(inst, b_iv, iv, now))
        if minis:
            self._bn_send_stream("!miniTicker@arr", None, minis)
        self._order_updates.clear()
        self._fills.clear()
        self._bn_publish_user(now)

    def _ws_ticker(self, inst: Instrument, now: int, mini: bool) -> dict:
        t = self._ticker24(inst, mini)
        d = {"e": "24hrMiniTicker" if mini else "24hrTicker", "E": now, "s": t["symbol"], "c": t["lastPrice"],
             "o": t["openPrice"], "h": t["highPrice"], "l": t["lowPrice"], "v": t["volume"], "q": t["quoteVolume"]}
        if not mini:
            d.update({"p": t["priceChange"], "P": t["priceChangePercent"], "w": t["weightedAvgPrice"],
                      "x": t["prevClosePrice"], "Q": t["lastQty"], "b": t["bidPrice"], "B": t["bidQty"],
                      "a": t["askPrice"], "A": t["askQty"], "O": t["openTime"], "C": t["closeTime"],
                      "F": t["firstId"], "L": t["lastId"], "n": t["count"]})
        return d

    def _ws_kline(self, inst: Instrument, b_iv: str, iv: str, now: int) -> dict:
        row = self.candles[inst.symbol].current(iv, now)
        from ..candles import next_bucket

        close_t = next_bucket(iv, row["t"]) - 1
        vol, close = Decimal(row["v"]), Decimal(row["c"])
        return {"e": "kline", "E": now, "s": symbol_id(inst), "k": {
            "t": row["t"], "T": close_t, "s": symbol_id(inst), "i": b_iv, "f": -1, "L": -1, "o": d8(Decimal(row["o"])),
            "c": d8(close), "h": d8(Decimal(row["h"])), "l": d8(Decimal(row["l"])), "v": d8(vol), "n": 0,
            "x": now >= close_t, "q": d8(vol * close), "V": "0.00000000", "Q": "0.00000000", "B": "0"}}

    # ---- user data ---------------------------------------------------------------------
    def _user_conns(self, acct: Account) -> set[BnConn]:
        return {c for c in self._conns if isinstance(c, BnConn) and c.account is acct
                and (c.user_sub_id is not None or c.listen_key is not None)}

    def _bn_send_user(self, acct: Account, channel: str, event: dict) -> None:
        conns = self._user_conns(acct)
        if not conns:
            return
        for c in conns:
            if c.user_sub_id is not None:
                text = json.dumps({"subscriptionId": c.user_sub_id, "event": event}, separators=(",", ":"))
            elif c.combined:
                text = json.dumps({"stream": c.listen_key, "data": event}, separators=(",", ":"))
            else:
                text = json.dumps(event, separators=(",", ":"))
            self._push(channel, None, text, {c})

    def _exec_report(self, bn: BnOrder, now: int, x: str, status: str, fill: Fill | None = None,
                     cum: int | None = None, cum_quote: Decimal | None = None) -> dict:
        inst = bn.inst
        o = bn.engine
        orig = o.qty if (o is not None and bn.quote_qty is not None) else bn.qty
        z = bn.filled if cum is None else cum
        zq = bn.cum_quote if cum_quote is None else cum_quote
        return {"e": "executionReport", "E": now, "s": symbol_id(inst), "c": bn.client_id, "S": bn.side, "o": bn.type,
                "f": bn.tif or "GTC", "q": qty(inst, orig), "p": px(inst, bn.price) if bn.price is not None else d8(Decimal(0)),
                "P": px(inst, bn.stop) if bn.stop is not None else d8(Decimal(0)), "F": "0.00000000", "g": bn.list_id,
                "C": bn.client_id if x == "CANCELED" else "", "x": x, "X": status, "r": "NONE", "i": bn.id,
                "l": qty(inst, fill.qty) if fill else d8(Decimal(0)), "z": qty(inst, z),
                "L": px(inst, fill.price) if fill else d8(Decimal(0)), "n": d8(fill.fee) if fill else "0",
                "N": o.fee_ccy if (fill and o is not None) else None, "T": fill.time if fill else bn.last_update,
                "t": int(fill.trade_id) if fill else -1, "I": 0, "w": bn.engine is not None and status in ("NEW", "PARTIALLY_FILLED"),
                "m": fill.liquidity == "MAKER" if fill else False, "M": False, "O": bn.time, "Z": d8(zq),
                "Y": d8(fill.value) if fill else d8(Decimal(0)), "Q": d8(bn.quote_qty or Decimal(0)),
                "W": bn.working_time, "V": "NONE"}

    def _bn_publish_user(self, now: int) -> None:
        events, self._bn_events = self._bn_events, []
        for kind, payload in events:
            if kind == "new":
                bn = payload
                self._bn_send_user(bn.account, "user.order", self._exec_report(bn, now, "NEW", "NEW", cum=0,
                                                                               cum_quote=Decimal(0)))
            elif kind == "fill":
                f, cum, cum_quote = payload
                bn = self._bn_order_of(f.order)
                if bn is None:
                    continue
                o = f.order
                final = o.status == "FILLED" and cum >= o.qty
                self._bn_send_user(bn.account, "user.order",
                                   self._exec_report(bn, now, "TRADE", "FILLED" if final else "PARTIALLY_FILLED", f,
                                                     cum, cum_quote))
                if bn.list_id >= 0:
                    self.bn.expire_siblings(bn, now)
            elif kind == "order":
                if isinstance(payload, BnOrder):  # a stop canceled or expired before its trigger
                    bn = payload
                    self._bn_send_user(bn.account, "user.order", self._exec_report(bn, now, bn.status, bn.status))
                    continue
                o, status = payload
                bn = self._bn_order_of(o)
                if bn is None or status not in ("CANCELED", "REJECTED"):
                    continue  # NEW was announced, fills are TRADE reports
                x = "CANCELED" if bn.canceled_by_user else "EXPIRED"
                self._bn_send_user(bn.account, "user.order", self._exec_report(bn, now, x, x))
        if self._bn_events:  # OCO siblings expired above
            self._bn_publish_user(now)
            return
        keys, self._balance_dirty = self._balance_dirty, set()
        for k in keys:
            acct = self.accounts[k]
            self._bn_send_user(acct, "user.balance", {"e": "outboundAccountPosition", "E": now, "u": now,
                                                      "B": [{"a": b["asset"], "f": b["free"], "l": b["locked"]}
                                                            for b in balances(acct)]})

    # ---- WebSocket API -----------------------------------------------------------------
    def _bn_ws_api_methods(self) -> dict[str, tuple[Callable[[Account | None, Params], Any], bool]]:
        """WebSocket API method -> (REST handler, signed)."""
        return {
            "ping": (self._b_ping, False), "time": (self._b_time, False), "exchangeInfo": (self._b_exchange_info, False),
            "depth": (self._b_depth, False), "trades.recent": (self._b_trades, False),
            "trades.aggregate": (self._b_agg_trades, False), "klines": (self._b_klines, False),
            "ticker.24hr": (self._b_ticker24, False), "ticker.price": (self._b_ticker_price, False),
            "ticker.book": (self._b_book_ticker, False), "avgPrice": (self._b_avg_price, False),
            "order.place": (self._b_new_order, True), "order.test": (self._b_test_order, True),
            "order.status": (self._b_get_order, True), "order.cancel": (self._b_cancel_order, True),
            "openOrders.status": (self._b_open_orders, True), "openOrders.cancelAll": (self._b_cancel_all, True),
            "allOrders": (self._b_all_orders, True), "myTrades": (self._b_my_trades, True),
            "account.status": (self._b_account, True), "account.commission": (self._b_commission, True),
            "orderList.place.oco": (self._b_new_oco, True), "orderList.status": (self._b_get_list, True),
            "orderList.cancel": (self._b_cancel_list, True), "openOrderLists.status": (self._b_open_lists, True),
        }

    def _bn_verify_ws(self, params: dict[str, Any]) -> Account:
        key = params.get("apiKey")
        if not isinstance(key, str) or not key:
            raise BinanceError(MANDATORY_PARAM, name="apiKey")
        acct = self.accounts.get(key)
        if acct is None:
            raise BinanceError(REJECTED_MBX_KEY)
        sig = params.get("signature")
        if not isinstance(sig, str):
            raise BinanceError(MANDATORY_PARAM, name="signature")
        strs = {k: _ws_str(v) for k, v in params.items() if k != "signature"}
        self._bn_check_time(strs)
        payload = "&".join(f"{k}={strs[k]}" for k in sorted(strs))
        expected = hmac.new(acct.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig.lower()):
            raise BinanceError(INVALID_SIGNATURE)
        return acct

    async def _bn_on_api(self, conn: BnConn, text: str) -> None:
        msg = self._json_request(text)
        if msg is None:
            conn.send(json.dumps({"id": None, "status": 400, "error": {"code": -1100, "msg": "Invalid JSON"}}))
            return
        mid, method, params = msg.get("id"), msg.get("method"), msg.get("params") or {}
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        try:
            if not isinstance(params, dict):
                raise BinanceError(MANDATORY_PARAM, name="params")
            if method == "userDataStream.subscribe.signature":
                acct = self._bn_verify_ws(params)
                if conn.account is not None and conn.account is not acct:
                    raise BinanceError((400, -1100, "Another account is subscribed on this connection."))
                conn.account = acct
                if conn.user_sub_id is None:
                    self._bn_user_ids += 1
                    conn.user_sub_id = self._bn_user_ids
                result: Any = {"subscriptionId": conn.user_sub_id}
            elif method == "userDataStream.unsubscribe":
                conn.user_sub_id = None
                result = {}
            else:
                entry = self._bn_ws_api_methods().get(str(method))
                if entry is None:
                    raise BinanceError((400, -1100, f"Unknown method {str(method)[:60]!r}."))
                handler, signed = entry
                caller = self._bn_verify_ws(params) if signed else None
                strs = {k: _ws_str(v) for k, v in params.items() if k not in ("apiKey", "signature")}
                try:
                    result = handler(caller, strs)
                finally:
                    self._flush()
            conn.send(json.dumps({"id": mid, "status": 200, "result": result}, separators=(",", ":")))
        except BinanceError as e:
            if e.code in (-1021, -1022, -2014, -2015):
                self.stats["auth_failures"] += 1
            else:
                self.stats["bad_requests"] += 1
            conn.send(json.dumps({"id": mid, "status": e.status, "error": e.body()}, separators=(",", ":")))


def _ws_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _diff(old: dict[int, int], new: dict[int, int], bids: bool) -> list[tuple[int, int]]:
    out = [(p, 0) for p in old.keys() - new.keys()]
    out += [(p, q) for p, q in new.items() if old.get(p) != q]
    out.sort(key=lambda x: x[0], reverse=bids)
    return out


_ = (wall_ms, INTERVALS)
