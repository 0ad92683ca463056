"""The simulated Crypto.com Exchange v1: REST + websockets on one aiohttp port.

SimExchange holds the venue's state (accounts, matching engine, candles, 24 h stats, publication
queues) and its lifecycle; its REST side (rest.py), websocket side (ws.py) and wire format
(wire.py) are mixins reading that state.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Coroutine

from aiohttp import web

from ..aio import cancel_and_wait
from ..venue_fees import SIM_FEES
from .candles import CandleStore, HistoryModel
from .engine import ZERO, Account, Fill, MatchingEngine, Order, Trade
from .faults import Faults
from .flow import Flow
from .triggers import TriggerDesk
from .instruments import Instrument, instruments_for
from .replay_guard import ReplayGuard
from .wire import wall_ms
from .ws import BookChannel, Conn, WebsocketApi

log = logging.getLogger("tps19.simex")

DEFAULT_BALANCES = {"USDT": Decimal("100000"), "BTC": Decimal("1"), "ETH": Decimal("10"), "SOL": Decimal("100")}
MAX_QUEUED = 20_000  # messages waiting for one websocket client before it is dropped as too slow


@dataclass
class Stats24:
    open: int
    high: int
    low: int
    vol_lots: int = 0
    quote_vol: Decimal = ZERO


def _accounts(accounts: dict[str, tuple[str, dict[str, Decimal]]] | None) -> dict[str, Account]:
    if accounts is None:
        from ..config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET

        accounts = {SIM_DEMO_API_KEY: (SIM_DEMO_SECRET, dict(DEFAULT_BALANCES))}
    return {key: Account(api_key=key, secret=secret, balances={c: Decimal(str(v)) for c, v in balances.items()},
                         account_id=f"sim-{n + 1:04d}-{hashlib.sha1(key.encode()).hexdigest()[:8]}")
            for n, (key, (secret, balances)) in enumerate(accounts.items())}


class SimExchange(WebsocketApi):
    """An embedded Crypto.com-Exchange-v1-compatible venue for ccxt's `cryptocom` clients."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: int = 19, symbols: list[str] | None = None,
                 accounts: dict[str, tuple[str, dict[str, Decimal]]] | None = None, updates_per_second: float = 60.0,
                 autoplay: bool = True, clock: Callable[[], int] | None = None, *,
                 maker_fee: Decimal = SIM_FEES["sim"][0], taker_fee: Decimal = SIM_FEES["sim"][1],
                 heartbeat_interval: float = 30.0, heartbeat_timeout: float | None = None, nonce_window_ms: int = 60_000,
                 ticker_interval_ms: int = 100, flow_seed: int | None = None,
                 anchor: Callable[[str], float | None] | None = None) -> None:
        """``seed``: the market (its history, opening prices, and the flow unless ``flow_seed``);
        ``flow_seed``: this venue's own order flow; ``anchor(symbol)``: another venue's fair value
        this one follows (two simulated venues of one run quote one instrument around one price)."""
        self.host = host
        self._want_port = port
        self.port: int = 0
        self.seed = seed
        self.instruments: list[Instrument] = instruments_for(symbols)
        self._by_symbol = {i.symbol: i for i in self.instruments}
        self._by_id = {i.id: i for i in self.instruments}
        self.updates_per_second = float(updates_per_second)
        self.autoplay = autoplay
        self.clock: Callable[[], int] = clock or wall_ms
        self.heartbeat_interval = heartbeat_interval
        # how long a heartbeat may stay unanswered (by default until the next one is due)
        self.heartbeat_timeout = heartbeat_interval if heartbeat_timeout is None else heartbeat_timeout
        self.nonce_window_ms = nonce_window_ms
        self.replays = ReplayGuard(nonce_window_ms, lambda: wall_ms())
        self.ticker_interval_ms = ticker_interval_ms
        self.faults = Faults(self)
        self.stats: dict[str, int] = {
            "rest_requests": 0, "ws_messages_in": 0, "bad_requests": 0, "auth_failures": 0,
            "internal_errors": 0, "book_updates": 0, "events": 0, "heartbeats_sent": 0,
            "heartbeat_responses": 0, "heartbeat_disconnects": 0, "book_messages": 0, "ws_connections": 0,
            "slow_consumer_disconnects": 0, "dropped_replies": 0, "injected_http_errors": 0,
            "replays_refused": 0,
        }
        self.accounts: dict[str, Account] = _accounts(accounts)
        self.start_ms = self.clock()
        self.engine = MatchingEngine(self.instruments, self.clock, maker_fee=maker_fee, taker_fee=taker_fee)
        self.engine.listeners.append(self._on_engine)
        self.models = {i.symbol: HistoryModel(seed, i) for i in self.instruments}
        fairs = self._open_markets()
        self.triggers = TriggerDesk(self.engine, self.last)  # after _open_markets: the last prints
        self.public_trades: dict[str, deque[Trade]] = {i.symbol: deque(maxlen=2000) for i in self.instruments}
        # publication state
        self._conns: set[Conn] = set()
        self._book_channels: dict[tuple[str, int], BookChannel] = {}
        self._subs: dict[str, set[Conn]] = {}
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
        self._spawned: set[asyncio.Task] = set()
        self._hb_ids = 0
        self.flow = Flow(self.engine, self.instruments, seed if flow_seed is None else flow_seed, fairs, anchor=anchor)
        self.flow.seed_books()
        self._dirty_books.clear()
        for i in self.instruments:
            ch = self._book_channels[(i.symbol, 50)] = BookChannel(i.symbol, 50, always=True)
            ch.bids, ch.asks = self._view(i.symbol, 50)
            ch.last_u = self._seq[i.symbol]

    def _open_markets(self) -> dict[str, float]:
        """Each instrument's opening price from its history model, candles and last 24 h; returns
        the fair prices the flow starts from."""
        fairs: dict[str, float] = {}
        self.candles: dict[str, CandleStore] = {}
        self.last: dict[str, int] = {}
        self.stats24: dict[str, Stats24] = {}
        for i in self.instruments:
            m = self.models[i.symbol]
            ticks = max(1, int(round(m.price(self.start_ms) / float(i.tick))))
            fairs[i.symbol] = ticks * float(i.tick)
            self.candles[i.symbol] = CandleStore(i, m, self.start_ms, ticks)
            self.last[i.symbol] = ticks
            hours = [m.candle("1h", (self.start_ms // 3_600_000 - 24 + k) * 3_600_000) for k in range(24)]
            to_t = lambda x: int(round(x / float(i.tick)))  # noqa: E731
            self.stats24[i.symbol] = Stats24(open=to_t(hours[0][0]), high=max(ticks, max(to_t(h[1]) for h in hours)),
                                             low=min(ticks, min(to_t(h[2]) for h in hours)),
                                             vol_lots=int(sum(h[4] for h in hours) / float(i.lot)),
                                             quote_vol=Decimal(str(round(sum(h[4] * h[3] for h in hours), 2))))
        return fairs

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> "SimExchange":
        app = web.Application(client_max_size=1 << 20)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._want_port, reuse_address=True)
        await site.start()
        server = site._server
        # aiohttp's TCPSite serves on an asyncio.Server (AbstractServer has no sockets)
        assert isinstance(server, asyncio.Server) and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="simex:heartbeat"))
        if self.autoplay:
            self._tasks.append(asyncio.create_task(self._autoplay_loop(), name="simex:autoplay"))
        return self

    def _add_routes(self, app: web.Application) -> None:
        """The dialect's endpoints (here Crypto.com Exchange v1; tps19.simex.binance overrides it)."""
        app.router.add_get("/exchange/v1/market", self._ws_market)
        app.router.add_get("/exchange/v1/user", self._ws_user)
        app.router.add_route("*", "/exchange/v1/{kind:public|private}/{name:.+}", self._rest)

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await asyncio.gather(*(self._close_conn(c) for c in list(self._conns)), return_exceptions=True)
        await cancel_and_wait(list(self._spawned))  # writers and closes still running
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await cancel_and_wait(list(self._spawned))  # anything the connections' last handlers started

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task:
        """A task kept until it ends, so that stop() can wait for it (an orphan would outlive the venue)."""
        task = asyncio.create_task(coro)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        return task

    def _new_conn(self, ws: web.WebSocketResponse, kind: str) -> Conn:
        return Conn(ws=ws, kind=kind, max_queued=MAX_QUEUED)

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
            self.triggers.on_trade(t)
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
            self.triggers.on_order_traded(payload.order)
        elif kind == "balance":
            self._balance_dirty.add(payload.api_key)

    def shock(self, symbol: str, pct: float) -> dict[str, Any]:
        """The market of ``symbol`` jumps ``pct`` % in one step (the switchboard's /faults/shock):
        book and prints move there at once, the candles follow from the prints, trigger orders
        the jump reached fire. Returns the prices before and after."""
        inst = self._instrument(symbol)
        flow = next(f for f in self.flow.symbols if f.inst is inst)
        last_before = self.last[inst.symbol]
        before, after = flow.shock(pct)
        self._touched.add(inst.symbol)
        self._flush()
        return {"symbol": inst.symbol, "pct": pct, "fair_before": str(inst.price(before)),
                "fair_after": str(inst.price(after)), "last_before": str(inst.price(last_before)),
                "last_after": str(inst.price(self.last[inst.symbol]))}

    def _one_event(self) -> int:
        """One flow event; returns how many depth-50 book updates it caused (0 or 1)."""
        sym = self.flow.event()
        self.triggers.check()  # a stop reached by this event's prints fires before the next
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
