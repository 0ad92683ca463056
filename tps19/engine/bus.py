"""In-process event bus.

Publishing never blocks and never grows memory without bound: each subscription holds
either the latest event per key (coalesced: books per symbol, so a slow UI always draws
the newest book and never a backlog) or a bounded queue that drops its oldest entry and
counts the drop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from .events import BookEvent, TickerEvent

CoalesceKey = Callable[[Any], Hashable | None]


def default_coalesce(event: Any) -> Hashable | None:
    """Books and tickers keep only their latest state per symbol; everything else queues."""
    if isinstance(event, BookEvent):
        return ("book", event.symbol)
    if isinstance(event, TickerEvent):
        return ("ticker", event.symbol)
    return None


class Subscription:
    def __init__(
        self,
        bus: EventBus,
        types: tuple[type, ...],
        maxsize: int,
        coalesce: CoalesceKey | None,
    ) -> None:
        self._bus = bus
        self.types = types
        self._coalesce = coalesce
        self._latest: dict[Hashable, Any] = {}
        self._queue: deque[Any] = deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self.dropped = 0
        self.delivered = 0

    def wants(self, event: Any) -> bool:
        return not self.types or isinstance(event, self.types)

    def put(self, event: Any) -> None:
        key = self._coalesce(event) if self._coalesce else None
        if key is not None:
            self._latest[key] = event
        else:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(event)
        self._ready.set()

    def pending(self) -> int:
        return len(self._latest) + len(self._queue)

    def drain(self) -> list[Any]:
        """Everything waiting now: queued events in order, then the latest coalesced states."""
        out = list(self._queue)
        self._queue.clear()
        if self._latest:
            out.extend(self._latest.values())
            self._latest.clear()
        self._ready.clear()
        self.delivered += len(out)
        return out

    async def ready(self) -> None:
        """Return once something is pending (without draining it)."""
        if not self.pending():
            self._ready.clear()
            await self._ready.wait()

    async def wait(self, timeout: float | None = None) -> list[Any]:
        """Wait until something is pending (or timeout), then drain.

        A cancel always propagates. Not `asyncio.wait_for`: on Python 3.11 it returns the inner
        result when a cancel lands just as the inner wait completes, so a consumer loop never
        sees the cancel and its owner's stop() waits forever. `asyncio.timeout` cancels this
        task itself and tells its own expiry from an outside cancel.
        """
        if not self.pending():
            self._ready.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return []
        return self.drain()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._callbacks: list[tuple[tuple[type, ...], Callable[[Any], None]]] = []
        self.published = 0
        self.callback_errors = 0

    def subscribe(
        self,
        *types: type,
        maxsize: int = 10_000,
        coalesce: CoalesceKey | None = default_coalesce,
    ) -> Subscription:
        sub = Subscription(self, tuple(types), maxsize, coalesce)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def dropped(self) -> int:
        """Events dropped so far by the current subscribers' full queues (for metrics)."""
        return sum(sub.dropped for sub in self._subs)

    def on(self, types: type | tuple[type, ...], callback: Callable[[Any], None]) -> None:
        """Synchronous callback on publish, for cheap in-engine consumers (never the UI)."""
        self._callbacks.append((types if isinstance(types, tuple) else (types,), callback))

    def publish(self, event: Any) -> None:
        self.published += 1
        for types, cb in self._callbacks:
            if isinstance(event, types):
                try:
                    cb(event)
                except Exception:  # a consumer's bug must not stop the feed
                    self.callback_errors += 1
        for sub in self._subs:
            if sub.wants(event):
                sub.put(event)
