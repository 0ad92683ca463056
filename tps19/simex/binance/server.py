"""The simulated exchange speaking Binance spot: the same venue (matching engine, accounts, demo
keys, synthetic flow, candles, fault switchboard) as the Crypto.com dialect, other endpoints.

    sim = BinanceSimExchange(seed=19); await sim.start(); point_ccxt_binance(client, sim.base_url)
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from aiohttp import web

from ..instruments import Instrument
from ...venue_fees import SIM_FEES
from ..server import SimExchange
from .limits import RateLimits
from .orders import BinanceBook, BnOrder
from .wire import symbol_id
from .ws import BinanceWs, BnConn

# Binance's spot base tier (0.1 % maker and taker without BNB), so the two simulated venues
# charge what the real ones do and a cross-venue view after fees means something.
BINANCE_MAKER_FEE, BINANCE_TAKER_FEE = SIM_FEES["sim-binance"]


class BinanceSimExchange(BinanceWs, SimExchange):
    """An embedded Binance-spot-compatible venue for ccxt's `binance` clients."""

    dialect = "binance"

    def __init__(self, *args: Any, weight_limit: int = 6000, weight_window_ms: int = 60_000,
                 order_limit: int = 100, order_window_ms: int = 10_000, **kwargs: Any) -> None:
        kwargs.setdefault("maker_fee", BINANCE_MAKER_FEE)
        kwargs.setdefault("taker_fee", BINANCE_TAKER_FEE)
        super().__init__(*args, **kwargs)
        self._bn_by_id: dict[str, Instrument] = {symbol_id(i): i for i in self.instruments}
        self.bn = BinanceBook(self.engine)
        self.limits = RateLimits(weight_limit=weight_limit, window_ms=weight_window_ms, order_limit=order_limit,
                                 order_window_ms=order_window_ms)
        self.listen_keys: dict[str, Any] = {}
        self._bn_events: list[tuple[str, Any]] = []
        self._bn_subs: dict[str, set[BnConn]] = {}
        self._bn_user_ids = 0
        self._bn_stop_check: set[str] = set()
        self._bn_last_u: dict[str, int] = {i.symbol: 1_000_000 for i in self.instruments}
        self._bn_forced_u: dict[str, int] = {}
        self._bn_published = {i.symbol: self._bn_book_state(i.symbol) for i in self.instruments}
        self.engine.listeners.append(self._bn_on_engine)

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/stream", self._bn_ws_stream)
        app.router.add_get("/stream/{tail}", self._bn_ws_stream)
        app.router.add_get("/ws", self._bn_ws_stream)
        app.router.add_get("/ws/{tail}", self._bn_ws_stream)
        app.router.add_get("/ws-api/v3", self._bn_ws_api)
        app.router.add_route("*", "/api/{tail:.*}", self._bn_rest)
        app.router.add_route("*", "/sapi/{tail:.*}", self._bn_rest)
        app.router.add_route("*", "/fapi/{tail:.*}", self._bn_rest)
        app.router.add_route("*", "/dapi/{tail:.*}", self._bn_rest)

    async def _heartbeat_loop(self) -> None:
        return  # websocket ping frames (aiohttp's heartbeat), no application-level heartbeats

    def open_orders(self, api_key: str) -> list[dict]:
        acct = self.accounts[api_key]
        return [self._bn_order_json(bn) for bn in self.bn.of_account(acct) if bn.is_open]

    def orders_of(self, api_key: str) -> list[BnOrder]:
        return self.bn.of_account(self.accounts[api_key])

    async def step(self, n: int = 1) -> None:
        for _ in range(n):
            self._one_event()
        self._flush()
        await asyncio.sleep(0)
