"""Each signed request is accepted once: a replay guard for the simulated exchange.

A signature covers the nonce, and a nonce is only accepted within ``window_ms`` of the server's
clock, so a signature has to be remembered only until its nonce leaves the window. Memory is
therefore bounded by (requests per second) x (twice the window), whatever the uptime.
"""

from __future__ import annotations

import heapq
import time
from typing import Callable


def wall_ms() -> int:
    return int(time.time() * 1000)


class ReplayGuard:
    """Remembers (api key, signature) pairs whose nonce is still inside the nonce window."""

    def __init__(self, window_ms: int, clock: Callable[[], int] = wall_ms) -> None:
        self.window_ms = int(window_ms)
        self.clock = clock
        self._until: dict[tuple[str, str], int] = {}
        self._heap: list[tuple[int, tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._until)

    def first_use(self, api_key: str, sig: str, nonce_ms: int) -> bool:
        """True the first time this signature is presented; False for a replay within the window.

        Call it only for a request whose signature and nonce have been verified, so that
        forged or stale requests cannot fill the memory.
        """
        self._expire(self.clock())
        key = (api_key, sig)
        if key in self._until:
            return False
        # After nonce + window the nonce check refuses this body anyway: forget it then.
        until = nonce_ms + self.window_ms
        self._until[key] = until
        heapq.heappush(self._heap, (until, key))
        return True

    def _expire(self, now: int) -> None:
        heap = self._heap
        while heap and heap[0][0] < now:
            _, key = heapq.heappop(heap)
            self._until.pop(key, None)
