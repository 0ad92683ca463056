"""Connecting to a venue: a ccxt.pro client, and for `sim` the embedded simulated exchange.

The simulated exchange is reached through the very same ccxt `cryptocom` client as the real
Crypto.com venue — only its urls point at 127.0.0.1 — so the desk's code path is identical.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET, Settings

log = logging.getLogger(__name__)


class VenueError(Exception):
    """The venue cannot be used as configured (worded for the trader)."""


@dataclass
class Venue:
    exchange_id: str  # "sim" or a ccxt id
    client: Any  # ccxt.pro exchange instance
    sim: Any = None  # tps19.simex.SimExchange when embedded
    gap_count: list[int] = field(default_factory=lambda: [0])
    book_messages: list[int] = field(default_factory=lambda: [0])  # raw book messages ccxt applied

    @property
    def is_sim(self) -> bool:
        return self.exchange_id == "sim"

    @property
    def name(self) -> str:
        if self.sim is not None:
            return f"sim@{self.sim.base_url.removeprefix('http://')}"
        return self.exchange_id

    async def close(self) -> None:
        try:
            await self.client.close()
        except Exception as err:  # closing must never mask the reason we are closing
            log.debug("closing ccxt client: %s", type(err).__name__)
        if self.sim is not None:
            await self.sim.stop()


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
    import ccxt

    original = getattr(client, "handle_order_book", None)
    if original is None:
        return

    def guarded(ws_client: Any, message: Any) -> Any:
        try:
            result = original(ws_client, message)
        except ccxt.ChecksumError as err:
            counter[0] += 1
            pending = [h for h in list(ws_client.futures) if str(h).startswith("orderbook")]
            for h in pending:
                ws_client.reject(err, h)
            if not pending:
                ws_client.reject(err)
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


async def open_venue(settings: Settings, *, private: bool = True) -> Venue:
    """Start (for sim) and connect a ccxt.pro client. Does not load markets."""
    import ccxt.pro as ccxtpro

    ex = settings.exchange
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": ex.timeout_ms, "newUpdates": True}
    sim = None
    exchange_id = ex.id
    if exchange_id == "sim":
        from ..simex import SimExchange, point_ccxt

        api_key = _secret(ex.api_key) or SIM_DEMO_API_KEY
        secret = _secret(ex.secret) or SIM_DEMO_SECRET
        if ex.rest_url:
            base_url = ex.rest_url.rstrip("/")
        else:
            sim = SimExchange(
                host=settings.sim.host,
                port=settings.sim.port,
                seed=settings.sim.seed,
                accounts={api_key: (secret, dict(settings.sim.starting_balances))},
            )
            await sim.start()
            base_url = sim.base_url
        client = ccxtpro.cryptocom({**config, "apiKey": api_key, "secret": secret})
        point_ccxt(client, base_url)
    else:
        cls = getattr(ccxtpro, exchange_id, None)
        if cls is None:
            import ccxt

            if exchange_id in ccxt.exchanges:
                raise VenueError(f"exchange '{exchange_id}' has no websocket client in ccxt.pro; TPS19 needs one")
            raise VenueError(f"unknown exchange '{exchange_id}' (not a ccxt id; use 'sim' for the simulated exchange)")
        if private:
            for key, value in (("apiKey", ex.api_key), ("secret", ex.secret), ("password", ex.password)):
                if value is not None:
                    config[key] = value.get_secret_value()
        if exchange_id.startswith("binance"):
            config["options"] = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}
        client = cls(config)
        if ex.sandbox:
            client.set_sandbox_mode(True)
        if ex.rest_url or ex.ws_url:
            raise VenueError("exchange.rest_url / ws_url overrides are only supported with --exchange sim")
    venue = Venue(exchange_id=exchange_id, client=client, sim=sim)
    install_gap_guard(client, venue.gap_count, venue.book_messages)
    return venue
