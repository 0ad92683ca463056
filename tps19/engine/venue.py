"""Connecting to a venue: a ccxt.pro client.

The simulated exchange (``sim``) is reached through the very same ccxt `cryptocom` client as the
real Crypto.com venue, pointed at ``exchange.rest_url`` (and ``ws_url``), so the desk's code path
is identical. The engine never starts a simulator: the entry point does (tps19.launch) and hands
the engine its URLs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET, SIM_VENUES, Settings
from .ccxt_classes import ccxt_base, exchange_class
from .nonces import sign_uniquely
from .ws_hooks import on_every_ws

log = logging.getLogger(__name__)


# ccxt's binance client asks the futures APIs and the currency list (sapi, keys needed) at
# load_markets unless told TPS19 trades spot only.
BINANCE_SPOT_OPTIONS: dict[str, Any] = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}


class VenueError(Exception):
    """The venue cannot be used as configured (worded for the trader)."""


@dataclass
class Venue:
    exchange_id: str  # "sim" or a ccxt id
    client: Any  # ccxt.pro exchange instance
    rest_url: str | None = None  # where a `sim` venue is served
    gap_count: list[int] = field(default_factory=lambda: [0])
    book_messages: list[int] = field(default_factory=lambda: [0])  # raw book messages ccxt applied
    frames: FrameGuard | None = None  # malformed websocket frames survived

    @property
    def name(self) -> str:
        if self.rest_url:
            return f"{self.exchange_id}@{self.rest_url.removeprefix('http://').removesuffix('/exchange/v1')}"
        return self.exchange_id

    async def close(self) -> None:
        try:
            await self.client.close()
        except Exception as err:  # closing must never mask the reason we are closing
            log.debug("closing ccxt client: %s", type(err).__name__)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def install_gap_guard(client: Any, counter: list[int], messages: list[int] | None = None) -> None:
    """Make a sequence gap fail the waiting ``watch_order_book`` at once instead of hanging it.

    ccxt raises ChecksumError inside its websocket message callback when a book delta does
    not follow the previous one; that ends its receive loop and the watch never returns.
    We catch it at the handler and reject the symbol's pending future so the feed can resync.
    It also stamps the book with the delta's own exchange time where the message carries one
    (ccxt's cryptocom handler keeps the snapshot's time, which would make feed latency grow).
    """
    ccxt = ccxt_base()

    original = getattr(client, "handle_order_book", None)
    if original is None:
        return

    def guarded(ws_client: Any, message: Any) -> Any:
        try:
            result = original(ws_client, message)
        except ccxt.ChecksumError as err:
            counter[0] += 1
            # Fail only the gapped symbol's watch; if it is not waiting right now, its next watch
            # fails (ccxt keeps a rejection for a hash nobody waits on).
            try:
                ws_client.reject(err, "orderbook:" + client.safe_market(message["instrument_name"])["symbol"])
            except (KeyError, TypeError):
                for h in [h for h in list(ws_client.futures) if str(h).startswith("orderbook")]:
                    ws_client.reject(err, h)
            return None
        if messages is not None:
            messages[0] += 1
        try:
            ts = message["data"][0]["t"]
            symbol = client.safe_market(message["instrument_name"])["symbol"]
            book = client.orderbooks[symbol]
            if isinstance(ts, int) and ts > (book.get("timestamp") or 0):
                book["timestamp"] = ts
                book["datetime"] = client.iso8601(ts)
        except (KeyError, IndexError, TypeError):
            pass  # another venue's message shape: its own timestamp handling stands
        return result

    client.handle_order_book = guarded


BadFrameListener = Callable[[int, str, BaseException], None]  # (total bad frames, url, error)


class FrameGuard:
    """Survive malformed websocket frames: count them, tell listeners, reconnect.

    ccxt decodes and dispatches each frame inside an asyncio callback; a frame that does not
    decode (binary garbage, text that is not JSON) raises there, which prints a traceback on
    stderr and ends the connection's receive loop, so its streams hang. The guard wraps every
    websocket client's message handling: a bad frame is counted and the connection is failed
    the way ccxt fails a broken socket (``on_error``), so every watch on it raises a
    NetworkError at once and the next watch opens a fresh connection with fresh subscriptions.
    """

    def __init__(self, json_only: bool) -> None:
        self.bad_frames = 0
        self._json_only = json_only
        self._listeners: list[BadFrameListener] = []

    def listen(self, fn: BadFrameListener) -> None:
        self._listeners.append(fn)

    def unlisten(self, fn: BadFrameListener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def wrap(self, ws_client: Any) -> None:
        ccxt = ccxt_base()

        if getattr(ws_client, "_tps19_guarded", False):
            return
        ws_client._tps19_guarded = True
        handle = ws_client.handle_message
        dispatch = ws_client.on_message_callback

        def guarded_handle(message: Any) -> None:
            try:
                handle(message)
            except Exception as err:  # anything escaping here would kill ccxt's receive loop
                self._bad(ws_client, err, ccxt.NetworkError)

        def checked_dispatch(c: Any, message: Any) -> Any:
            # Venues that speak only JSON objects: ccxt would drop any other text without a word.
            if self._json_only and not isinstance(message, (dict, list)):
                raise ValueError(f"not a JSON message: {str(message)[:40]!r}")
            return dispatch(c, message)

        ws_client.handle_message = guarded_handle
        ws_client.on_message_callback = checked_dispatch

    def _bad(self, ws_client: Any, err: BaseException, network_error: type[Exception]) -> None:
        self.bad_frames += 1
        url = str(getattr(ws_client, "url", ""))
        for fn in list(self._listeners):
            try:
                fn(self.bad_frames, url, err)
            except Exception as listener_err:  # a listener must never break the receive path
                log.debug("bad-frame listener failed: %s", type(listener_err).__name__)
        if ws_client.error is None:  # the first bad frame fails the connection; the rest are only counted
            ws_client.on_error(network_error(f"malformed frame from {url}: {type(err).__name__}"))


def install_frame_guard(client: Any) -> FrameGuard:
    """Guard every websocket the ccxt.pro `client` opens (idempotent: returns the installed guard)."""
    guard = client.__dict__.get("_tps19_frame_guard")
    if guard is not None:
        return guard
    guard = FrameGuard(json_only=getattr(client, "id", "") == "cryptocom")
    on_every_ws(client, guard.wrap)
    client._tps19_frame_guard = guard
    return guard


def point_ccxt(client: Any, base_url: str) -> Any:
    """Point a ccxt `cryptocom` client (REST or ccxt.pro) at a Crypto.com-compatible venue at
    `base_url` (the simulated exchange, standalone or embedded)."""
    base = base_url.rstrip("/").removesuffix("/exchange/v1")
    api = client.urls.setdefault("api", {})
    api["v1"] = f"{base}/exchange/v1"
    ws_base = "ws" + base[len("http"):] if base.startswith("http") else base
    ws = api.get("ws")
    if isinstance(ws, dict) or hasattr(client, "watch"):
        api["ws"] = dict(ws or {})
        api["ws"]["public"] = f"{ws_base}/exchange/v1/market"
        api["ws"]["private"] = f"{ws_base}/exchange/v1/user"
    return client


def point_ccxt_binance(client: Any, base_url: str, ws_url: str | None = None) -> Any:
    """Point a ccxt `binance` client (REST or ccxt.pro) at a Binance-compatible venue at
    `base_url` (the simulated exchange's Binance dialect): every REST root keeps its path
    (``/api/v3``, ``/sapi/v1``, ...) on the new host, spot streams go to ``/ws`` (raw streams)
    and the WebSocket API (user data stream) to ``/ws-api/v3``."""
    base = base_url.rstrip("/")
    api = client.urls.setdefault("api", {})
    for name, url in list(api.items()):
        if isinstance(url, str) and url.startswith("https://") and ".binance.com" in url:
            api[name] = base + "/" + url.split("://", 1)[1].split("/", 1)[1]
    ws_base = (ws_url or ("ws" + base[len("http"):] if base.startswith("http") else base)).rstrip("/")
    ws = api.get("ws")
    if isinstance(ws, dict) or hasattr(client, "watch"):
        ws = dict(ws or {})
        # ccxt reads raw streams (/ws/<n> + SUBSCRIBE): on combined ones (/stream) it cannot
        # parse array payloads such as !miniTicker@arr
        ws["spot"] = ws["margin"] = f"{ws_base}/ws"
        ws["ws-api"] = dict(ws.get("ws-api") or {}) | {"spot": f"{ws_base}/ws-api/v3"}
        api["ws"] = ws
    return client


def _point_websockets(client: Any, ws_url: str) -> None:
    """exchange.ws_url: the simulated exchange's websockets at their own address (REST stays
    at rest_url), e.g. behind a proxy that serves them on another port."""
    base = ws_url.rstrip("/").removesuffix("/exchange/v1")
    ws = client.urls["api"].setdefault("ws", {})
    ws["public"] = f"{base}/exchange/v1/market"
    ws["private"] = f"{base}/exchange/v1/user"


async def open_venue(settings: Settings, *, private: bool = True) -> Venue:
    """Connect a ccxt.pro client. Does not load markets."""
    ex = settings.exchange
    # the sim venues speak Crypto.com's or Binance's protocol through ccxt's own client for it
    ccxt_id = {"sim-binance": "binance"}.get(ex.id, "cryptocom") if ex.id in SIM_VENUES else ex.id
    # importing ccxt takes ~0.3 s (one exchange) to ~0.8 s (all of them), seconds on a loaded 2-core
    # machine: in a worker thread, the loop meanwhile answers /healthz and draws the desk
    cls = await asyncio.to_thread(exchange_class, ccxt_id, "pro")

    config: dict[str, Any] = {"enableRateLimit": True, "timeout": ex.timeout_ms, "newUpdates": True}
    exchange_id = ex.id
    base_url = None
    if exchange_id in SIM_VENUES:
        if not ex.rest_url:
            raise VenueError(f"exchange '{exchange_id}' needs exchange.rest_url: start the simulated exchange first "
                             f"(`tps19 exchange{' --dialect binance' if exchange_id == 'sim-binance' else ''}`, "
                             "or let `tps19 paper` start it)")
        base_url = ex.rest_url.rstrip("/")
        api_key = _secret(ex.api_key) or SIM_DEMO_API_KEY
        secret = _secret(ex.secret) or SIM_DEMO_SECRET
        if exchange_id == "sim-binance":
            assert cls is not None
            client = cls({**config, "apiKey": api_key, "secret": secret, "options": BINANCE_SPOT_OPTIONS})
            point_ccxt_binance(client, base_url, ex.ws_url)
        else:
            assert cls is not None
            client = cls({**config, "apiKey": api_key, "secret": secret})
            point_ccxt(client, base_url)
            if ex.ws_url:
                _point_websockets(client, ex.ws_url)
    else:
        if cls is None:
            if exchange_id in ccxt_base().exchanges:
                raise VenueError(f"exchange '{exchange_id}' has no websocket client in ccxt.pro; TPS19 needs one")
            raise VenueError(f"unknown exchange '{exchange_id}' (not a ccxt id; use 'sim' for the simulated exchange)")
        if private:
            for key, value in (("apiKey", ex.api_key), ("secret", ex.secret), ("password", ex.password)):
                if value is not None:
                    config[key] = value.get_secret_value()
        if exchange_id.startswith("binance"):
            config["options"] = dict(BINANCE_SPOT_OPTIONS)
        client = cls(config)
        if ex.sandbox:
            client.set_sandbox_mode(True)
        if ex.rest_url or ex.ws_url:
            raise VenueError("exchange.rest_url / ws_url overrides are only supported with --exchange sim / sim-binance")
    sign_uniquely(client)  # before load_markets: with keys it already makes a private call
    venue = Venue(exchange_id=exchange_id, client=client, rest_url=base_url)
    install_gap_guard(client, venue.gap_count, venue.book_messages)
    venue.frames = install_frame_guard(client)
    return venue
