"""Binance's request-weight and order-count limits, per client IP.

Every REST call costs its documented weight within the current fixed interval (one minute by
default); the weight used so far is returned in ``X-MBX-USED-WEIGHT-1M``. Over the limit the
call is refused with 429 and ``Retry-After`` (seconds to the next interval). A client that keeps
calling while told to wait is banned: 418 with ``Retry-After`` until the ban ends, and each
further call during a ban doubles it (Binance: "from 2 minutes to 3 days"). Orders count apart
(``X-MBX-ORDER-COUNT-10S``, 429 code -1015 above the limit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .wire import IP_BANNED, TOO_MANY_ORDERS, TOO_MANY_REQUESTS, BinanceError


@dataclass
class _Client:
    window: int = -1
    used: int = 0
    order_window: int = -1
    orders: int = 0
    told_to_wait_until: int = 0  # ms; a call before this after a 429 earns a ban
    banned_until: int = 0
    ban_ms: int = 0


@dataclass
class RateLimits:
    weight_limit: int = 6000
    window_ms: int = 60_000
    order_limit: int = 100
    order_window_ms: int = 10_000
    first_ban_ms: int = 120_000
    clients: dict[str, _Client] = field(default_factory=dict)
    refused: int = 0
    bans: int = 0

    def rate_limits_json(self) -> list[dict]:
        """exchangeInfo's ``rateLimits`` (interval names as Binance writes them)."""
        return [
            {"rateLimitType": "REQUEST_WEIGHT", **_interval(self.window_ms), "limit": self.weight_limit},
            {"rateLimitType": "ORDERS", **_interval(self.order_window_ms), "limit": self.order_limit},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200_000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61_000},
        ]

    def charge(self, ip: str, weight: int, now: int, orders: int = 0) -> dict[str, str]:
        """Count one call; returns the headers to send, or raises the 429 / 418 BinanceError."""
        c = self.clients.setdefault(ip, _Client())
        if c.banned_until > now:
            c.ban_ms = min(c.ban_ms * 2, 3 * 86_400_000)
            c.banned_until = now + c.ban_ms
            raise self._refuse(IP_BANNED, c.banned_until - now, until=c.banned_until)
        if c.told_to_wait_until > now:  # ignored a Retry-After
            c.ban_ms = self.first_ban_ms
            c.banned_until = now + c.ban_ms
            c.told_to_wait_until = 0
            self.bans += 1
            raise self._refuse(IP_BANNED, c.ban_ms, until=c.banned_until)
        w = now // self.window_ms
        if w != c.window:
            c.window, c.used = w, 0
        if c.used + weight > self.weight_limit:
            wait = (w + 1) * self.window_ms - now
            c.told_to_wait_until = now + wait
            raise self._refuse(TOO_MANY_REQUESTS, wait, limit=self.weight_limit)
        c.used += weight
        headers = {f"X-MBX-USED-WEIGHT-{_suffix(self.window_ms)}": str(c.used)}
        if orders:
            ow = now // self.order_window_ms
            if ow != c.order_window:
                c.order_window, c.orders = ow, 0
            if c.orders + orders > self.order_limit:
                raise self._refuse(TOO_MANY_ORDERS, (ow + 1) * self.order_window_ms - now, limit=self.order_limit,
                                   interval=_suffix(self.order_window_ms))
            c.orders += orders
            headers[f"X-MBX-ORDER-COUNT-{_suffix(self.order_window_ms)}"] = str(c.orders)
        return headers

    def _refuse(self, spec: tuple[int, int, str], wait_ms: int, **fmt: object) -> BinanceError:
        self.refused += 1
        err = BinanceError(spec, **fmt)
        err.retry_after = max(1, math.ceil(wait_ms / 1000))
        return err


def _suffix(ms: int) -> str:
    """1M, 10S, 1H: Binance's header suffix for an interval."""
    for unit, size in (("D", 86_400_000), ("H", 3_600_000), ("M", 60_000), ("S", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}MS"


def _interval(ms: int) -> dict[str, object]:
    for name, size in (("DAY", 86_400_000), ("HOUR", 3_600_000), ("MINUTE", 60_000), ("SECOND", 1000)):
        if ms % size == 0:
            return {"interval": name, "intervalNum": ms // size}
    return {"interval": "SECOND", "intervalNum": max(1, ms // 1000)}
