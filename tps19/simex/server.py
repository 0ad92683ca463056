"""The simulated Crypto.com Exchange v1: REST + websockets on one aiohttp port."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from aiohttp import WSCloseCode, WSMsgType, web

from ..aio import cancel_and_wait
from .candles import ALIASES, INTERVALS, CandleStore, HistoryModel
from .engine import ZERO, Account, EngineError, Fill, MatchingEngine, Order, Trade
from .faults import Faults
from .flow import Flow
from .instruments import Instrument, instruments_for
from .replay import ReplayGuard
from .signing import auth_signature, rest_signature

log = logging.getLogger("tps19.simex")

DEFAULT_BALANCES = {"USDT": Decimal("100000"), "BTC": Decimal("1"), "ETH": Decimal("10"), "SOL": Decimal("100")}

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
MAX_QUEUED = 20_000  # messages waiting for one websocket client before it is dropped as too slow

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
    s = format(d.normalize(), "f")
    return s


_GARBAGE_BINARY = b"\x81\xff\xfe\x00garbage\x9c"


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    kind: str  # "market" / "user"
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    subs: set[str] = field(default_factory=set)
    account: Account | None = None
    pending_hb: int | None = None
    closed: bool = False
    writer: asyncio.Task | None = None

    slow: bool = False

    def send(self, text: str | bytes, lag_ms: int = 0) -> None:
        if not self.closed:
            if self.queue.qsize() > MAX_QUEUED:
                self.slow = True  # a client that does not read: the venue drops it
                return
            self.queue.put_nowait((time.monotonic() + lag_ms / 1000, text) if lag_ms else text)


@dataclass(eq=False)
class _BookChannel:
    symbol: str
    depth: int
    subs: set[_Conn] = field(default_factory=set)
    bids: dict[int, tuple[int, int]] | None = None
    asks: dict[int, tuple[int, int]] | None = None
    last_u: int = 0
    always: bool = False  # the depth-50 channel is tracked even without subscribers (it paces the flow)


@dataclass
class _Stats24:
    open: int
    high: int
    low: int
    vol_lots: int = 0
    quote_vol: Decimal = ZERO


class SimExchange:
    """An embedded Crypto.com-Exchange-v1-compatible venue for ccxt's `cryptocom` clients."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: int = 19, symbols: list[str] | None = None,
                 accounts: dict[str, tuple[str, dict[str, Decimal]]] | None = None, updates_per_second: float = 60.0,
                 autoplay: bool = True, clock: Callable[[], int] | None = None, *,
                 maker_fee: Decimal = Decimal("0.0004"), taker_fee: Decimal = Decimal("0.0006"),
                 heartbeat_interval: float = 30.0, nonce_window_ms: int = 60_000,
                 ticker_interval_ms: int = 100) -> None:
        self.host = host
        self._want_port = port
        self.port: int = 0
        self.seed = seed
        self.instruments: list[Instrument] = instruments_for(symbols)
        self._by_symbol = {i.symbol: i for i in self.instruments}
        self._by_id = {i.id: i for i in self.instruments}
        self.updates_per_second = float(updates_per_second)
        self.autoplay = autoplay
        self.clock: Callable[[], int] = clock or _wall_ms
        self.heartbeat_interval = heartbeat_interval
        self.nonce_window_ms = nonce_window_ms
        self.replays = ReplayGuard(nonce_window_ms, lambda: _wall_ms())
        self.ticker_interval_ms = ticker_interval_ms
        self.faults = Faults(self)
        self.stats: dict[str, int] = {
            "rest_requests": 0, "ws_messages_in": 0, "bad_requests": 0, "auth_failures": 0,
            "internal_errors": 0, "book_updates": 0, "events": 0, "heartbeats_sent": 0,
            "heartbeat_responses": 0, "heartbeat_disconnects": 0, "book_messages": 0, "ws_connections": 0,
            "slow_consumer_disconnects": 0, "dropped_replies": 0, "injected_http_errors": 0,
            "replays_refused": 0,
        }
        if accounts is None:
            from ..config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET

            accounts = {SIM_DEMO_API_KEY: (SIM_DEMO_SECRET, dict(DEFAULT_BALANCES))}
        self.accounts: dict[str, Account] = {}
        for n, (key, (secret, balances)) in enumerate(accounts.items()):
            self.accounts[key] = Account(api_key=key, secret=secret,
                                         balances={c: Decimal(str(v)) for c, v in balances.items()},
                                         account_id=f"sim-{n + 1:04d}-{hashlib.sha1(key.encode()).hexdigest()[:8]}")
        self.start_ms = self.clock()
        self.engine = MatchingEngine(self.instruments, self.clock, maker_fee=maker_fee, taker_fee=taker_fee)
        self.engine.listeners.append(self._on_engine)
        self.models = {i.symbol: HistoryModel(seed, i) for i in self.instruments}
        fairs, self.candles, self.last = {}, {}, {}
        self.stats24: dict[str, _Stats24] = {}
        for i in self.instruments:
            m = self.models[i.symbol]
            p = m.price(self.start_ms)
            ticks = max(1, int(round(p / float(i.tick))))
            fairs[i.symbol] = ticks * float(i.tick)
            self.candles[i.symbol] = CandleStore(i, m, self.start_ms, ticks)
            self.last[i.symbol] = ticks
            hours = [m.candle("1h", (self.start_ms // 3_600_000 - 24 + k) * 3_600_000) for k in range(24)]
            to_t = lambda x: int(round(x / float(i.tick)))  # noqa: E731
            self.stats24[i.symbol] = _Stats24(open=to_t(hours[0][0]), high=max(ticks, max(to_t(h[1]) for h in hours)),
                                              low=min(ticks, min(to_t(h[2]) for h in hours)),
                                              vol_lots=int(sum(h[4] for h in hours) / float(i.lot)),
                                              quote_vol=Decimal(str(round(sum(h[4] * h[3] for h in hours), 2))))
        self.public_trades: dict[str, deque[Trade]] = {i.symbol: deque(maxlen=2000) for i in self.instruments}
        # publication state
        self._conns: set[_Conn] = set()
        self._book_channels: dict[tuple[str, int], _BookChannel] = {}
        self._subs: dict[str, set[_Conn]] = {}
        self._seq = {i.symbol: 1000 for i in self.instruments}
        self._dirty_books: set[str] = set()
        self._new_trades: dict[str, list[Trade]] = {i.symbol: [] for i in self.instruments}
        self._touched: set[str] = set()
        self._last_ticker_pub: dict[str, int] = {}
        self._order_updates: dict[str, Order] = {}
        self._fills: list[Fill] = []
        self._balance_dirty: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []
        self._hb_ids = 0
        self.flow = Flow(self.engine, self.instruments, seed, fairs)
        self.flow.seed_books()
        self._dirty_books.clear()
        for i in self.instruments:
            ch = self._book_channels[(i.symbol, 50)] = _BookChannel(i.symbol, 50, always=True)
            ch.bids, ch.asks = self._view(i.symbol, 50)
            ch.last_u = self._seq[i.symbol]

    # ------------------------------------------------------------------ public API
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> "SimExchange":
        app = web.Application(client_max_size=1 << 20)
        app.router.add_get("/exchange/v1/market", self._ws_market)
        app.router.add_get("/exchange/v1/user", self._ws_user)
        app.router.add_route("*", "/exchange/v1/{kind:public|private}/{name:.+}", self._rest)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._want_port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        self._tasks.append(asyncio.create_task(self._heartbeat_loop()))
        if self.autoplay:
            self._tasks.append(asyncio.create_task(self._autoplay_loop()))
        return self

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await asyncio.gather(*(self._close_conn(c) for c in list(self._conns)), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "SimExchange":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def step(self, n: int = 1) -> None:
        """Run `n` synthetic flow events now (deterministic with autoplay=False and a fixed clock)."""
        for _ in range(n):
            self._one_event()
        self._flush()
        await asyncio.sleep(0)

    def account_balances(self, api_key: str) -> dict[str, dict[str, Decimal]]:
        a = self.accounts[api_key]
        out = {}
        for ccy in sorted(set(a.balances) | set(a.holds)):
            total, used = a.balances.get(ccy, ZERO), a.holds.get(ccy, ZERO)
            out[ccy] = {"total": total, "used": used, "free": total - used}
        return out

    def open_orders(self, api_key: str) -> list[dict]:
        a = self.accounts[api_key]
        return [self._order_json(o) for o in a.orders.values() if o.is_open]

    def order_book(self, symbol: str, depth: int = 50) -> dict[str, list[tuple[Decimal, Decimal, int]]]:
        inst = self._instrument(symbol)
        book = self.engine.books[inst.symbol]
        return {side_name: [(inst.price(p), inst.qty(q), c) for p, q, c in book.top(side, depth)]
                for side_name, side in (("bids", "BUY"), ("asks", "SELL"))}

    def trades(self, symbol: str) -> list[dict]:
        return [self._public_trade_json(t) for t in self.public_trades[self._instrument(symbol).symbol]]

    # ------------------------------------------------------------------ internals: events
    def _instrument(self, symbol_or_id: str) -> Instrument:
        inst = self._by_symbol.get(symbol_or_id) or self._by_id.get(symbol_or_id)
        if inst is None:
            raise KeyError(f"unknown instrument {symbol_or_id!r}")
        return inst

    def _on_engine(self, kind: str, payload: Any) -> None:
        if kind == "book":
            self._dirty_books.add(payload.symbol)
        elif kind == "trade":
            t: Trade = payload
            sym = t.inst.symbol
            self.public_trades[sym].appendleft(t)
            self._new_trades[sym].append(t)
            self.candles[sym].on_trade(t.time, t.price, t.qty)
            self.last[sym] = t.price
            s = self.stats24[sym]
            s.high = max(s.high, t.price)
            s.low = min(s.low, t.price)
            s.vol_lots += t.qty
            s.quote_vol += t.inst.price(t.price) * t.inst.qty(t.qty)
            self._touched.add(sym)
        elif kind == "order":
            self._order_updates[payload.id] = payload
        elif kind == "fill":
            self._fills.append(payload)
        elif kind == "balance":
            self._balance_dirty.add(payload.api_key)

    def _one_event(self) -> int:
        """One flow event; returns how many depth-50 book updates it caused (0 or 1)."""
        sym = self.flow.event()
        self.stats["events"] += 1
        self._touched.add(sym)
        return self._flush_books()

    async def _autoplay_loop(self) -> None:
        carry = 0.0
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            carry += self.updates_per_second * (now - last)
            last = now
            n = int(carry)
            carry -= n
            # Never build a backlog, and never hold the loop for long: a CPU that cannot keep up gets a
            # lower rate, while REST, websocket replies and the fault switchboard stay responsive.
            n = min(n, max(1, int(self.updates_per_second * 0.02)))
            try:
                made = events = 0
                while made < n and events < 3 * n + 3:  # pace on visible (top-50) book updates
                    made += self._one_event()
                    events += 1
                self._flush()
            except Exception:  # pragma: no cover - a bug, but keep the venue alive
                self.stats["internal_errors"] += 1
                log.exception("simex flow event failed")

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            for c in list(self._conns):
                if c.pending_hb is not None:
                    self.stats["heartbeat_disconnects"] += 1
                    asyncio.create_task(self._close_conn(c, WSCloseCode.OK))  # the venue closes with 1000
                    continue
                self._hb_ids += 1
                hb = self.clock() * 1000 + self._hb_ids % 1000
                c.pending_hb = hb
                c.send(json.dumps({"id": hb, "method": "public/heartbeat", "code": 0}))
                self.stats["heartbeats_sent"] += 1

    # ------------------------------------------------------------------ publication
    def _push(self, subscription: str, symbol: str | None, text: str, conns: set[_Conn]) -> None:
        if self.faults.stopped and self.faults.is_stopped(subscription, symbol):
            return
        lag = self.faults.market_lag_ms
        for c in conns:
            c.send(text, lag if c.kind == "market" else 0)
            if c.slow and not c.closed:
                c.closed = True  # stop queueing; the close itself runs as a task
                self.stats["slow_consumer_disconnects"] += 1
                asyncio.get_running_loop().call_soon(self._schedule_close, c)

    def _schedule_close(self, c: _Conn) -> None:
        c.closed = False
        asyncio.create_task(self._close_conn(c, WSCloseCode.POLICY_VIOLATION))

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
                if s != sym or (not ch.subs and not ch.always) or ch.bids is None:
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
        for sym in list(self._touched):
            if self.autoplay and now - self._last_ticker_pub.get(sym, -10**12) < self.ticker_interval_ms:
                continue
            self._touched.discard(sym)
            self._last_ticker_pub[sym] = now
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

    # ------------------------------------------------------------------ JSON shapes
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
            "order_type": o.type,
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

    # ------------------------------------------------------------------ REST
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
            handler = self._private_handlers().get(name)
            if handler is None:
                raise ApiError(METHOD_NOT_FOUND)
            acct = self._authenticate(body, method)
            params = body.get("params") or {}
            if not isinstance(params, dict):
                raise ApiError(INVALID_REQUEST)
            try:
                result = handler(acct, params)
            finally:
                self._flush()
            if name == "create-order" and self.faults.accept_then_fail_count > 0:
                self.faults.accept_then_fail_count -= 1
                self.stats["injected_http_errors"] += 1
                st = self.faults.accept_then_fail_status
                return web.Response(status=st, text=f"{st} Gateway Timeout", content_type="text/html")
            if name == "create-order" and self.faults.drop_create_order_replies > 0:
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
        if abs(_wall_ms() - n) > self.nonce_window_ms:
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

    # ---- param helpers
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

    # ---- public handlers
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

    # ---- private handlers
    def _private_handlers(self) -> dict[str, Callable[[Account, dict], dict]]:
        return {"create-order": self._h_create, "cancel-order": self._h_cancel, "cancel-all-orders": self._h_cancel_all,
                "get-open-orders": self._h_open_orders, "get-order-detail": self._h_order_detail,
                "user-balance": self._h_balance, "get-trades": self._h_my_trades,
                "get-order-history": self._h_order_history, "get-currency-networks": self._h_currency_networks}

    def _h_create(self, acct: Account, params: dict) -> dict:
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
        if type_ not in ("LIMIT", "MARKET"):
            raise ApiError(INVALID_ORDTYPE)
        tif = str(params.get("time_in_force") or "GOOD_TILL_CANCEL").upper()
        exec_inst = params.get("exec_inst") or []
        if isinstance(exec_inst, str):
            exec_inst = [exec_inst]
        if not isinstance(exec_inst, list) or not all(x in ("POST_ONLY",) for x in exec_inst):
            raise ApiError(INVALID_EXECINST)
        post_only = "POST_ONLY" in exec_inst
        if post_only and tif != "GOOD_TILL_CANCEL":
            raise ApiError((43005, "POST_ONLY_REJ"))
        qty = self._dec_param(params, "quantity", INVALID_ORDERQTY)
        notional = self._dec_param(params, "notional", INVALID_ORDERQTY)
        price = self._dec_param(params, "price", INVALID_PRICE)
        lots, ticks = 0, None
        if qty is not None:
            lots = inst.to_lots(qty)
            if lots is None:
                raise ApiError(INVALID_ORDERQTY)
        elif notional is None:
            raise ApiError(INVALID_ORDERQTY)
        if qty is not None:
            notional = None
        if type_ == "LIMIT":
            if price is None:
                raise ApiError(INVALID_PRICE)
            ticks = inst.to_ticks(price)
            if ticks is None:
                raise ApiError(INVALID_PRICE)
        try:
            o = self.engine.new_order(acct, inst.symbol, side, type_, lots, ticks, tif, post_only, client_oid, notional)
        except EngineError as e:
            raise ApiError((e.code, e.message), {"client_oid": client_oid} if client_oid else None) from None
        out = {"order_id": o.id}
        if client_oid is not None:
            out["client_oid"] = client_oid
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
        if not self.engine.cancel(o):
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

    # ------------------------------------------------------------------ websockets
    async def _ws_market(self, request: web.Request) -> web.StreamResponse:
        return await self._ws(request, "market")

    async def _ws_user(self, request: web.Request) -> web.StreamResponse:
        return await self._ws(request, "user")

    async def _writer(self, conn: _Conn) -> None:
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
        conn = _Conn(ws=ws, kind=kind)
        conn.writer = asyncio.create_task(self._writer(conn))
        self._conns.add(conn)
        self.stats["ws_connections"] += 1
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.stats["ws_messages_in"] += 1
                    try:
                        await self._on_ws_text(conn, msg.data)
                    except Exception:
                        self.stats["internal_errors"] += 1
                        log.exception("simex ws message failed")
                        conn.send(json.dumps({"id": -1, "code": ERR_INTERNAL[0], "message": ERR_INTERNAL[1]}))
                elif msg.type == WSMsgType.BINARY:
                    self.stats["bad_requests"] += 1
                    conn.send(json.dumps({"id": -1, "code": BAD_REQUEST[0], "message": BAD_REQUEST[1]}))
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            await self._close_conn(conn)
        return ws

    def _forget(self, conn: _Conn) -> None:
        self._conns.discard(conn)
        for ch in self._book_channels.values():
            ch.subs.discard(conn)
            if not ch.subs and not ch.always:
                ch.bids = ch.asks = None
        for s in self._subs.values():
            s.discard(conn)

    async def _close_conn(self, conn: _Conn, code: int = WSCloseCode.GOING_AWAY) -> None:
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
                c.send(_GARBAGE_BINARY if i % 2 == 0 else "\x00{\"method\": garbage]\ufffd")
        self.stats["garbage_frames"] = self.stats.get("garbage_frames", 0) + count * len(conns)
        return len(conns)

    def _drop_all_connections(self) -> int:
        conns = list(self._conns)
        for c in conns:  # 1013: "server restarting - try again later"
            asyncio.create_task(self._close_conn(c, WSCloseCode.TRY_AGAIN_LATER))
        return len(conns)

    async def _ws_reply(self, conn: _Conn, payload: dict) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        conn.send(text)

    async def _on_ws_text(self, conn: _Conn, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            self.stats["bad_requests"] += 1
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
                    n = int(msg.get("nonce"))
                    fresh = abs(_wall_ms() - n) <= self.nonce_window_ms
                except (TypeError, ValueError):
                    fresh = False
                expected = auth_signature(acct.secret, method, msg.get("id", ""), acct.api_key, msg.get("nonce"))
                ok = fresh and expected == msg["sig"]
            if ok and not self.replays.first_use(acct.api_key, msg["sig"], n):
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

    def _parse_channel(self, conn: _Conn, name: str) -> tuple[str, Instrument | None, int | None] | None:
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
        if name in ("user.order", "user.trade", "user.balance"):
            return name, None, None
        if len(parts) == 3 and parts[0] == "user" and parts[1] in ("order", "trade") and parts[2] in self._by_id:
            return f"user.{parts[1]}", self._by_id[parts[2]], None
        return None

    async def _on_subscribe(self, conn: _Conn, msg: dict, method: str, mid: Any) -> None:
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

    def _subscribe(self, conn: _Conn, name: str, kind: str, inst: Instrument | None, depth: int | None) -> None:
        if kind == "book":
            assert inst is not None and depth is not None
            self._flush_books()
            key = (inst.symbol, depth)
            ch = self._book_channels.get(key)
            if ch is None:
                ch = self._book_channels[key] = _BookChannel(inst.symbol, depth)
            if ch.bids is None or (not ch.subs and not ch.always):
                ch.bids, ch.asks = self._view(inst.symbol, depth)
                self._seq[inst.symbol] += 1
                ch.last_u = self._seq[inst.symbol]
            ch.subs.add(conn)
            conn.subs.add(name)
            now = self.clock()
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

    def _unsubscribe(self, conn: _Conn, name: str, kind: str, inst: Instrument | None, depth: int | None) -> None:
        conn.subs.discard(name)
        if kind == "book" and inst is not None:
            ch = self._book_channels.get((inst.symbol, depth or 50))
            if ch is not None:
                ch.subs.discard(conn)
                if not ch.subs and not ch.always:
                    ch.bids = ch.asks = None
            return
        self._subs.get(name, set()).discard(conn)
