"""Throttling of failed credentials (the browser desk's password, the control API's token).

A client gets a few free failures; past them each further failure doubles the time before its
next attempt is even checked. A global cap slows a guess spread over many addresses. Dependency-
free: both servers (aiohttp for serve, FastAPI for the API) share it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Client:
    failures: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0


class FailureThrottle:
    """Failed attempts per client key (an address).

    ``retry_after(key)`` is 0 when an attempt may be checked now, else the seconds to wait;
    ``failed(key)`` records a failure; ``succeeded(key)`` forgets the client's failures.
    """

    MAX_CLIENTS = 10_000  # bounded memory under a flood of addresses

    def __init__(self, *, free: int = 5, window_s: float = 900.0, base_s: float = 1.0, max_s: float = 900.0,
                 global_per_minute: int = 60, clock: Callable[[], float] = time.monotonic) -> None:
        self.free = free
        self.window_s = window_s
        self.base_s = base_s
        self.max_s = max_s
        self.global_per_minute = global_per_minute
        self.clock = clock
        self._clients: dict[str, _Client] = {}
        self._recent: deque[float] = deque()  # every client's failures in the last 60 s
        self.refused = 0  # attempts refused without being checked

    def _trim(self, now: float) -> None:
        while self._recent and now - self._recent[0] > 60.0:
            self._recent.popleft()

    def retry_after(self, key: str) -> float:
        now = self.clock()
        self._trim(now)
        wait = 0.0
        client = self._clients.get(key)
        if client is not None:
            wait = max(0.0, client.blocked_until - now)
        if len(self._recent) >= self.global_per_minute:
            wait = max(wait, 60.0 - (now - self._recent[0]))
        if wait > 0:
            self.refused += 1
        return wait

    def failed(self, key: str) -> None:
        now = self.clock()
        self._trim(now)
        self._recent.append(now)
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) >= self.MAX_CLIENTS:
                self._forget_idle(now)
            client = self._clients[key] = _Client()
        while client.failures and now - client.failures[0] > self.window_s:
            client.failures.popleft()
        client.failures.append(now)
        over = len(client.failures) - self.free
        if over >= 0:
            client.blocked_until = now + min(self.max_s, self.base_s * 2 ** over)

    def succeeded(self, key: str) -> None:
        self._clients.pop(key, None)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, c in self._clients.items() if c.blocked_until <= now]:
            del self._clients[key]
        if len(self._clients) >= self.MAX_CLIENTS:  # all blocked: drop the oldest half
            for key in list(self._clients)[: self.MAX_CLIENTS // 2]:
                del self._clients[key]
