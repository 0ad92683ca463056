"""The simulated exchange's websocket side: /exchange/v1/market and /exchange/v1/user.

Subscriptions, heartbeats, per-connection writer tasks, and publication: book deltas with
sequence numbers (u/pu), trades, tickers, candles and the user channels, sent after every flow
event or private request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator

from aiohttp import WSCloseCode, WSMsgType, web

from .candles import INTERVALS
from .engine import Account, Fill, Order, Trade
from .instruments import Instrument
from .rest import RestApi
from .signing import auth_signature
from .wire import BAD_REQUEST, DUPLICATE_REQUEST, ERR_INTERNAL, INVALID_REQUEST, METHOD_NOT_FOUND, UNAUTHORIZED, ApiError, wall_ms

log = logging.getLogger("tps19.simex")

GARBAGE_BINARY = b"\x81\xff\xfe\x00garbage\x9c"


@dataclass(eq=False)
class WsClient:
    """A websocket client of either dialect, as the shared publication code sees it: frames queue
    for its writer task, and a client that lets ``max_queued`` pile up is marked ``slow`` (the
    venue drops it). Past ``ws`` and ``kind`` its fields are keyword-only: a dialect's own follow."""

    ws: web.WebSocketResponse
    kind: str  # "market" / "user"
    queue: asyncio.Queue = field(default_factory=asyncio.Queue, kw_only=True)
    subs: set[str] = field(default_factory=set, kw_only=True)
    account: Account | None = field(default=None, kw_only=True)
    pending_hb: int | None = field(default=None, kw_only=True)
    closed: bool = field(default=False, kw_only=True)
    writer: asyncio.Task | None = field(default=None, kw_only=True)
    max_queued: int = field(default=20_000, kw_only=True)
    slow: bool = field(default=False, kw_only=True)

    def send(self, text: str | bytes, lag_ms: int = 0) -> None:
        if not self.closed:
            if self.queue.qsize() > self.max_queued:
                self.slow = True  # a client that does not read: the venue drops it
                return
            self.queue.put_nowait((time.monotonic() + lag_ms / 1000, text) if lag_ms else text)


@dataclass(eq=False)
class Conn(WsClient):
    hb_due: float = 0.0  # loop time by which the pending heartbeat must be answered


@dataclass(eq=False)
class BookChannel:
    symbol: str
    depth: int
    subs: set[Conn] = field(default_factory=set)
    bids: dict[int, tuple[int, int]] | None = None
    asks: dict[int, tuple[int, int]] | None = None
    last_u: int = 0
    always: bool = False  # the depth-50 channel is tracked even without subscribers (it paces the flow)


class WsCommon:
    """What the websocket side of both dialects keeps (SimExchange holds it: what the engine's events
    left to publish) and does alike: read a client's frames, check a request is a JSON object, pace
    the tickers."""

    stats: dict[str, int]
    _dirty_books: set[str]
    _new_trades: dict[str, list[Trade]]
    _touched: set[str]
    _last_ticker_pub: dict[str, int]
    _order_updates: dict[str, Order]
    _fills: list[Fill]
    _balance_dirty: set[str]
    autoplay: bool
    ticker_interval_ms: int
    _close_conn: Callable[..., Awaitable[None]]  # the dialect's: forget the client, close its socket

    async def _serve_frames(self, conn: Any, on_text: Callable[[str], Awaitable[None]], failed: str,
                            internal_error: str, binary_error: str) -> None:
        """Read ``conn``'s frames until it closes, then close it: text goes to ``on_text`` (a failure there
        is counted, logged as ``failed`` and answered ``internal_error``); a binary frame is a bad request,
        answered ``binary_error``."""
        try:
            async for msg in conn.ws:
                if msg.type == WSMsgType.TEXT:
                    self.stats["ws_messages_in"] += 1
                    try:
                        await on_text(msg.data)
                    except Exception:
                        self.stats["internal_errors"] += 1
                        log.exception(failed)
                        conn.send(internal_error)
                elif msg.type == WSMsgType.BINARY:
                    self.stats["bad_requests"] += 1
                    conn.send(binary_error)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            await self._close_conn(conn)

    def _json_request(self, text: str) -> dict | None:
        """A request frame as a JSON object, or None, counted as a bad request (the caller answers it
        in its dialect)."""
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            self.stats["bad_requests"] += 1
            return None
        return msg

    def _tickers_due(self, now: int) -> Iterator[str]:
        """The touched symbols whose ticker is due (with autoplay, at most one per ticker interval),
        each marked published as it is handed out."""
        for sym in list(self._touched):
            if self.autoplay and now - self._last_ticker_pub.get(sym, -10**12) < self.ticker_interval_ms:
                continue
            self._touched.discard(sym)
            self._last_ticker_pub[sym] = now
            yield sym


class WebsocketApi(RestApi, WsCommon):
    """Mixin of SimExchange: websocket connections, subscriptions and what is published on them."""

    _conns: set[Conn]
    _book_channels: dict[tuple[str, int], BookChannel]
    _subs: dict[str, set[Conn]]
    _seq: dict[str, int]
    _hb_ids: int
    heartbeat_interval: float
    heartbeat_timeout: float
    candles: dict[str, Any]

    def _spawn(self, coro: Any) -> asyncio.Task:  # provided by SimExchange: a task kept until stop()
        raise NotImplementedError

    def _new_conn(self, ws: web.WebSocketResponse, kind: str) -> Conn:  # provided by SimExchange
        raise NotImplementedError

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            now = loop.time()
            for c in list(self._conns):
                if c.pending_hb is not None:
                    # 1 ms of timer slack: with the default window (one interval) the next tick
                    # is always past it
                    if now < c.hb_due - 0.001:
                        continue  # still inside its answer window: wait, send no other
                    self.stats["heartbeat_disconnects"] += 1
                    self._spawn(self._close_conn(c, WSCloseCode.OK))  # the venue closes with 1000
                    continue
                self._hb_ids += 1
                hb = self.clock() * 1000 + self._hb_ids % 1000
                c.pending_hb = hb
                c.hb_due = now + self.heartbeat_timeout
                c.send(json.dumps({"id": hb, "method": "public/heartbeat", "code": 0}))
                self.stats["heartbeats_sent"] += 1

    def _push(self, subscription: str, symbol: str | None, text: str, conns: set[Conn]) -> None:
        if self.faults.stopped and self.faults.is_stopped(subscription, symbol):
            return
        lag = self.faults.market_lag_ms
        for c in conns:
            c.send(text, lag if c.kind == "market" else 0)
            if c.slow and not c.closed:
                c.closed = True  # stop queueing; the close itself runs as a task
                self.stats["slow_consumer_disconnects"] += 1
                asyncio.get_running_loop().call_soon(self._schedule_close, c)

    def _schedule_close(self, c: Conn) -> None:
        c.closed = False
        self._spawn(self._close_conn(c, WSCloseCode.POLICY_VIOLATION))

    def _flush_books(self) -> int:
        if not self._dirty_books:
            return 0
        dirty, self._dirty_books = self._dirty_books, set()
        now = self.clock()
        visible = 0
        for sym in dirty:
            inst = self._by_symbol[sym]
            skip = sym in self.faults.skip_next
            sent = False
            for (s, depth), ch in self._book_channels.items():
                if s != sym or (not ch.subs and not ch.always) or ch.bids is None or ch.asks is None:
                    continue
                bids, asks = self._view(sym, depth)
                db = self._diff(inst, ch.bids, bids, True)
                da = self._diff(inst, ch.asks, asks, False)
                if not db and not da:
                    continue
                self._seq[sym] += 1
                pu = ch.last_u
                if skip:
                    pu = self._seq[sym]  # the client never saw this one: a gap
                    self._seq[sym] += 1
                u = self._seq[sym]
                ch.bids, ch.asks, ch.last_u = bids, asks, u
                if ch.always:
                    visible += 1
                    self.stats["book_updates"] += 1
                if ch.subs:
                    sub = f"book.{inst.id}.{depth}"
                    text = self._envelope({"instrument_name": inst.id, "subscription": sub, "channel": "book.update",
                                           "depth": depth, "data": [{"update": {"bids": db, "asks": da}, "t": now,
                                                                     "tt": now, "u": u, "pu": pu, "cs": 0}]})
                    self._push(sub, sym, text, ch.subs)
                    self.stats["book_messages"] += 1
                    sent = True
            if skip and sent:
                self.faults.skip_next.discard(sym)
        return visible

    def _flush(self) -> None:
        self.triggers.check()  # what the request or the events reached fires before anything is published
        self._flush_books()
        now = self.clock()
        for sym, trades in self._new_trades.items():
            if not trades:
                continue
            inst = self._by_symbol[sym]
            sub = f"trade.{inst.id}"
            conns = self._subs.get(sub)
            if conns:
                data = [self._public_trade_json(t) for t in reversed(trades)]
                self._push(sub, sym, self._envelope({"instrument_name": inst.id, "subscription": sub,
                                                     "channel": "trade", "data": data}), conns)
            trades.clear()
        for sym in self._tickers_due(now):
            self._publish_ticker(sym)
            self._publish_candles(sym)
        if self._order_updates:
            updates, self._order_updates = list(self._order_updates.values()), {}
            for o in updates:
                self._push_user(o.account, "user.order", o.inst, [self._order_json(o)])
        if self._fills:
            fills, self._fills = self._fills, []
            grouped: dict[tuple[str, str], list[Fill]] = {}
            for f in fills:  # one message per account and instrument, like the venue's batches
                if f.order.account is not None:
                    grouped.setdefault((f.order.account.api_key, f.order.inst.symbol), []).append(f)
            for group in grouped.values():
                o = group[0].order
                self._push_user(o.account, "user.trade", o.inst, [self._fill_json(f) for f in reversed(group)])
        if self._balance_dirty:
            keys, self._balance_dirty = self._balance_dirty, set()
            for k in keys:
                acct = self.accounts[k]
                self._push_user(acct, "user.balance", None, [self._balance_json(acct)])
                self._push_user(acct, "user.position_balance", None, [self._position_balance_json(acct)])

    def _push_user(self, acct: Account | None, channel: str, inst: Instrument | None, data: list[dict]) -> None:
        if acct is None:
            return
        names = [channel] if inst is None else [channel, f"{channel}.{inst.id}"]
        for name in names:
            conns = {c for c in self._subs.get(name, ()) if c.account is acct}
            if not conns:
                continue
            result: dict[str, Any] = {"subscription": name, "channel": channel, "data": data}
            if inst is not None:
                result["instrument_name"] = inst.id
            self._push(name, inst.symbol if inst else None, self._envelope(result), conns)

    def _publish_ticker(self, sym: str) -> None:
        inst = self._by_symbol[sym]
        sub = f"ticker.{inst.id}"
        conns = self._subs.get(sub)
        if conns:
            self._push(sub, sym, self._envelope({"instrument_name": inst.id, "subscription": sub, "channel": "ticker",
                                                 "data": [self._ticker_json(inst)]}), conns)

    def _publish_candles(self, sym: str) -> None:
        inst = self._by_symbol[sym]
        now = self.clock()
        for iv in INTERVALS:
            sub = f"candlestick.{iv}.{inst.id}"
            conns = self._subs.get(sub)
            if conns:
                self._push(sub, sym, self._envelope({"instrument_name": inst.id, "subscription": sub,
                                                     "channel": "candlestick", "interval": iv,
                                                     "data": [self.candles[sym].current(iv, now)]}), conns)

    async def _ws_market(self, request: web.Request) -> web.StreamResponse:
        return await self._ws(request, "market")

    async def _ws_user(self, request: web.Request) -> web.StreamResponse:
        return await self._ws(request, "user")

    async def _writer(self, conn: Conn) -> None:
        try:
            while True:
                item = await conn.queue.get()
                if item is None:
                    break
                if isinstance(item, tuple):  # (monotonic due time, frame) while market lag is on
                    due, item = item
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if isinstance(item, bytes):
                    await conn.ws.send_bytes(item)
                else:
                    await conn.ws.send_str(item)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        except Exception:  # pragma: no cover
            log.exception("simex ws writer failed")

    async def _ws(self, request: web.Request, kind: str) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20, timeout=2.0)
        await ws.prepare(request)
        conn = self._new_conn(ws, kind)
        conn.writer = self._spawn(self._writer(conn))
        self._conns.add(conn)
        self.stats["ws_connections"] += 1
        await self._serve_frames(conn, lambda text: self._on_ws_text(conn, text), "simex ws message failed",
                                 json.dumps({"id": -1, "code": ERR_INTERNAL[0], "message": ERR_INTERNAL[1]}),
                                 json.dumps({"id": -1, "code": BAD_REQUEST[0], "message": BAD_REQUEST[1]}))
        return ws

    def _forget(self, conn: Conn) -> None:
        self._conns.discard(conn)
        for ch in self._book_channels.values():
            ch.subs.discard(conn)
            if not ch.subs and not ch.always:
                ch.bids = ch.asks = None
        for s in self._subs.values():
            s.discard(conn)

    async def _close_conn(self, conn: Conn, code: int = WSCloseCode.GOING_AWAY) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._forget(conn)
        conn.queue.put_nowait(None)
        try:
            await conn.ws.close(code=code)
        except Exception:
            pass
        if conn.writer is not None and conn.writer is not asyncio.current_task():
            conn.writer.cancel()

    def _send_garbage(self, count: int) -> int:
        conns = [c for c in self._conns if c.kind == "market" and not c.closed]
        for c in conns:
            for i in range(count):
                # Binary frames and text that is not JSON (nor even valid UTF-8 once decoded as bytes).
                c.send(GARBAGE_BINARY if i % 2 == 0 else "\x00{\"method\": garbage]\ufffd")
        self.stats["garbage_frames"] = self.stats.get("garbage_frames", 0) + count * len(conns)
        return len(conns)

    def _drop_all_connections(self) -> int:
        conns = list(self._conns)
        for c in conns:  # 1013: "server restarting - try again later"
            self._spawn(self._close_conn(c, WSCloseCode.TRY_AGAIN_LATER))
        return len(conns)

    async def _ws_reply(self, conn: Conn, payload: dict) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        conn.send(text)

    async def _on_ws_text(self, conn: Conn, text: str) -> None:
        msg = self._json_request(text)
        if msg is None:
            await self._ws_reply(conn, {"id": -1, "code": BAD_REQUEST[0], "message": BAD_REQUEST[1]})
            return
        method = msg.get("method")
        mid = msg.get("id", msg.get("nonce", -1))
        if method == "public/respond-heartbeat":
            if conn.pending_hb is not None and str(msg.get("id")) == str(conn.pending_hb):
                conn.pending_hb = None
                self.stats["heartbeat_responses"] += 1
            return
        if method == "subscribe" or method == "unsubscribe":
            await self._on_subscribe(conn, msg, method, mid)
            return
        if method == "public/auth" and conn.kind == "user":
            ok = False
            acct = self.accounts.get(str(msg.get("api_key")))
            if acct is not None and isinstance(msg.get("sig"), str):
                try:
                    nonce: Any = msg.get("nonce")  # anything int() refuses is a stale nonce
                    n = int(nonce)
                    fresh = abs(wall_ms() - n) <= self.nonce_window_ms
                except (TypeError, ValueError):
                    fresh = False
                expected = auth_signature(acct.secret, method, msg.get("id", ""), acct.api_key, msg.get("nonce"))
                ok = fresh and expected == msg["sig"]
            if ok and acct is not None and not self.replays.first_use(acct.api_key, msg["sig"], n):
                self.stats["replays_refused"] += 1
                await self._ws_reply(conn, {"id": mid, "method": method, "code": DUPLICATE_REQUEST[0],
                                            "message": DUPLICATE_REQUEST[1]})
                return
            if ok:
                conn.account = acct
                await self._ws_reply(conn, {"id": mid, "method": method, "code": 0})
            else:
                self.stats["auth_failures"] += 1
                await self._ws_reply(conn, {"id": mid, "method": method, "code": UNAUTHORIZED[0], "message": UNAUTHORIZED[1]})
            return
        if conn.kind == "user" and isinstance(method, str) and method.startswith("private/"):
            if conn.account is None:
                self.stats["auth_failures"] += 1
                await self._ws_reply(conn, {"id": mid, "method": method, "code": UNAUTHORIZED[0], "message": UNAUTHORIZED[1]})
                return
            handler = self._private_handlers().get(method[len("private/"):])
            if handler is None:
                self.stats["bad_requests"] += 1
                await self._ws_reply(conn, {"id": mid, "method": method, "code": METHOD_NOT_FOUND[0], "message": METHOD_NOT_FOUND[1]})
                return
            params = msg.get("params") or {}
            try:
                if not isinstance(params, dict):
                    raise ApiError(INVALID_REQUEST)
                result = handler(conn.account, params)
                reply = {"id": mid, "method": method, "code": 0, "result": result}
            except ApiError as e:
                reply = {"id": mid, "method": method, "code": e.code, "message": e.message}
                if e.result is not None:
                    reply["result"] = e.result
            finally:
                self._flush()
            await self._ws_reply(conn, reply)
            return
        self.stats["bad_requests"] += 1
        await self._ws_reply(conn, {"id": mid, "method": method, "code": METHOD_NOT_FOUND[0], "message": METHOD_NOT_FOUND[1]})

    def _parse_channel(self, conn: Conn, name: str) -> tuple[str, Instrument | None, int | None] | None:
        parts = name.split(".")
        if conn.kind == "market":
            if parts[0] == "book" and len(parts) in (2, 3) and parts[1] in self._by_id:
                depth = 50
                if len(parts) == 3:
                    if not parts[2].isdigit() or int(parts[2]) not in (10, 50):
                        return None
                    depth = int(parts[2])
                return "book", self._by_id[parts[1]], depth
            if parts[0] in ("trade", "ticker") and len(parts) == 2 and parts[1] in self._by_id:
                return parts[0], self._by_id[parts[1]], None
            if parts[0] == "candlestick" and len(parts) == 3 and parts[1] in INTERVALS and parts[2] in self._by_id:
                return "candlestick", self._by_id[parts[2]], None
            return None
        if name in ("user.order", "user.trade", "user.balance", "user.position_balance"):
            return name, None, None
        if len(parts) == 3 and parts[0] == "user" and parts[1] in ("order", "trade") and parts[2] in self._by_id:
            return f"user.{parts[1]}", self._by_id[parts[2]], None
        return None

    async def _on_subscribe(self, conn: Conn, msg: dict, method: str, mid: Any) -> None:
        params = msg.get("params")
        channels = params.get("channels") if isinstance(params, dict) else None
        if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
            self.stats["bad_requests"] += 1
            await self._ws_reply(conn, {"id": mid, "method": method, "code": INVALID_REQUEST[0], "message": INVALID_REQUEST[1]})
            return
        parsed = []
        for name in channels:
            p = self._parse_channel(conn, name)
            if p is None:
                self.stats["bad_requests"] += 1
                await self._ws_reply(conn, {"id": mid, "method": method, "code": INVALID_REQUEST[0],
                                            "message": INVALID_REQUEST[1], "channel": name})
                return
            parsed.append((name, p))
        if conn.kind == "user" and conn.account is None and method == "subscribe":
            self.stats["auth_failures"] += 1
            await self._ws_reply(conn, {"id": mid, "method": method, "code": UNAUTHORIZED[0], "message": UNAUTHORIZED[1]})
            return
        await self._ws_reply(conn, {"id": mid, "method": method, "code": 0})
        for name, (kind, inst, depth) in parsed:
            if method == "unsubscribe":
                self._unsubscribe(conn, name, kind, inst, depth)
            else:
                self._subscribe(conn, name, kind, inst, depth)

    def _subscribe(self, conn: Conn, name: str, kind: str, inst: Instrument | None, depth: int | None) -> None:
        if kind == "book":
            assert inst is not None and depth is not None
            self._flush_books()
            key = (inst.symbol, depth)
            ch = self._book_channels.get(key)
            if ch is None:
                ch = self._book_channels[key] = BookChannel(inst.symbol, depth)
            if ch.bids is None or (not ch.subs and not ch.always):
                ch.bids, ch.asks = self._view(inst.symbol, depth)
                self._seq[inst.symbol] += 1
                ch.last_u = self._seq[inst.symbol]
            ch.subs.add(conn)
            conn.subs.add(name)
            now = self.clock()
            assert ch.bids is not None and ch.asks is not None  # filled just above when empty
            text = self._envelope({"instrument_name": inst.id, "subscription": name, "channel": "book", "depth": depth,
                                   "data": [{"bids": self._levels(inst, ch.bids, True), "asks": self._levels(inst, ch.asks, False),
                                             "t": now, "tt": now, "u": ch.last_u, "cs": 0}]})
            if not (self.faults.stopped and self.faults.is_stopped(name, inst.symbol)):
                conn.send(text)
            return
        self._subs.setdefault(name, set()).add(conn)
        conn.subs.add(name)
        if kind == "ticker" and inst is not None:
            self._push(name, inst.symbol, self._envelope({"instrument_name": inst.id, "subscription": name,
                                                          "channel": "ticker", "data": [self._ticker_json(inst)]}), {conn})
        elif kind == "candlestick" and inst is not None:
            iv = name.split(".")[1]
            self._push(name, inst.symbol, self._envelope({"instrument_name": inst.id, "subscription": name,
                                                          "channel": "candlestick", "interval": iv,
                                                          "data": [self.candles[inst.symbol].current(iv, self.clock())]}), {conn})
        elif kind == "user.balance" and conn.account is not None:
            self._push(name, None, self._envelope({"subscription": name, "channel": name,
                                                   "data": [self._balance_json(conn.account)]}), {conn})
        elif kind == "user.position_balance" and conn.account is not None:
            self._push(name, None, self._envelope({"subscription": name, "channel": name,
                                                   "data": [self._position_balance_json(conn.account)]}), {conn})

    def _unsubscribe(self, conn: Conn, name: str, kind: str, inst: Instrument | None, depth: int | None) -> None:
        conn.subs.discard(name)
        if kind == "book" and inst is not None:
            ch = self._book_channels.get((inst.symbol, depth or 50))
            if ch is not None:
                ch.subs.discard(conn)
                if not ch.subs and not ch.always:
                    ch.bids = ch.asks = None
            return
        self._subs.get(name, set()).discard(conn)
