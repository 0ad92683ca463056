"""Fault injection switches for tests (``sim.faults``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol


class FaultTarget(Protocol):
    """The parts of the exchange (``server.py``'s ``SimExchange``, which hands itself in) that a
    switch acts on directly; the rest of the switches are flags the exchange reads."""

    def _drop_all_connections(self) -> int: ...
    def _send_garbage(self, count: int) -> int: ...
    def _instrument(self, symbol_or_id: str) -> Any: ...


@dataclass
class Faults:
    sim: FaultTarget
    delay_ms: int = 0
    http_error_count: int = 0
    http_error_status: int = 429
    drop_create_order_replies: int = 0
    skip_next: set[str] = field(default_factory=set)  # symbols whose next book delta skips a sequence number
    stopped: set[tuple[str, str | None]] = field(default_factory=set)  # (channel prefix, symbol or None)
    accept_then_fail_count: int = 0
    accept_then_fail_status: int = 504
    market_lag_ms: int = 0  # market-data frames leave this late (a backlog): exchange time lags receive time
    _silence_timers: dict[str | None, asyncio.TimerHandle] = field(default_factory=dict)

    def drop_connections(self) -> int:
        """Close every websocket connection now (as a venue restart would). Returns how many."""
        return self.sim._drop_all_connections()

    def skip_sequence(self, symbol: str) -> None:
        """The next ``book.update`` of `symbol` skips one ``u`` (``pu`` != the client's last ``u``)."""
        # The publisher looks symbols up by their unified name: accept the venue id too.
        self.skip_next.add(self.sim._instrument(symbol).symbol)

    def delay_replies(self, ms: int) -> None:
        """Delay every REST reply and every websocket request reply by `ms` (0 turns it off)."""
        self.delay_ms = max(0, int(ms))

    def fail_next_requests(self, n: int, status: int = 429) -> None:
        """Answer the next `n` REST calls with HTTP `status` (429 -> code 42901, 5xx -> 50001 / plain 503)."""
        self.http_error_count = max(0, int(n))
        self.http_error_status = int(status)

    def reply_429(self, n: int = 1) -> None:
        self.fail_next_requests(n, 429)

    def reply_5xx(self, n: int = 1, status: int = 503) -> None:
        self.fail_next_requests(n, status)

    def drop_next_create_order_reply(self, n: int = 1) -> None:
        """Process the next `n` create-order (or create-order-list) calls but close the connection
        instead of answering."""
        self.drop_create_order_replies = max(0, int(n))

    def accept_then_fail(self, n: int = 1, status: int = 504) -> None:
        """Process the next `n` create-order (or create-order-list) calls (the order is live on the venue), then answer
        with HTTP `status` and a plain-text body, as a gateway timing out after the matcher did."""
        self.accept_then_fail_count = max(0, int(n))
        self.accept_then_fail_status = int(status)

    def garbage(self, count: int = 1) -> int:
        """Send `count` malformed frames (alternately binary and undecodable text) on every market
        websocket now. Returns how many connections got them."""
        return self.sim._send_garbage(max(0, int(count)))

    def silence(self, seconds: float, symbol: str | None = None) -> None:
        """No market data (every public channel; heartbeats go on) for `seconds`, for one symbol or all."""
        if not seconds > 0 or seconds == float("inf"):
            raise ValueError("seconds must be a positive, finite number")
        if symbol is not None:
            symbol = self.sim._instrument(symbol).symbol
        self.stop_stream("", symbol)
        old = self._silence_timers.pop(symbol, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._silence_timers[symbol] = loop.call_later(seconds, self._end_silence, symbol)

    def _end_silence(self, symbol: str | None) -> None:
        self._silence_timers.pop(symbol, None)
        self.resume_stream("", symbol)

    def lag_market(self, ms: int) -> None:
        """Deliver every market-data frame `ms` late (0 turns it off), as a client drowning in a backlog sees it."""
        self.market_lag_ms = max(0, int(ms))

    def stop_stream(self, channel: str = "book", symbol: str | None = None) -> None:
        """Silently stop sending a stream: `channel` is a prefix such as "book", "trade", "ticker",
        "candlestick", "user.order" or "" (everything but heartbeats); `symbol` limits it to one market."""
        if symbol is not None:
            symbol = self.sim._instrument(symbol).symbol
        self.stopped.add((channel, symbol))

    def resume_stream(self, channel: str = "book", symbol: str | None = None) -> None:
        if symbol is not None:
            symbol = self.sim._instrument(symbol).symbol
        self.stopped.discard((channel, symbol))

    def clear(self) -> None:
        self.delay_ms = 0
        self.http_error_count = 0
        self.drop_create_order_replies = 0
        self.accept_then_fail_count = 0
        self.market_lag_ms = 0
        self.skip_next.clear()
        self.stopped.clear()
        for h in self._silence_timers.values():
            h.cancel()
        self._silence_timers.clear()

    def describe(self) -> dict:
        """The switches as they stand (for `GET /faults`)."""
        return {
            "delay_ms": self.delay_ms,
            "http_errors": {"count": self.http_error_count, "status": self.http_error_status},
            "drop_create_order_replies": self.drop_create_order_replies,
            "accept_then_fail": {"count": self.accept_then_fail_count, "status": self.accept_then_fail_status},
            "market_lag_ms": self.market_lag_ms,
            "gap_pending": sorted(self.skip_next),
            "stopped": sorted(f"{c or '*'}:{s or '*'}" for c, s in self.stopped),
            "silenced_s": self._silence_left(),
        }

    def _silence_left(self) -> dict[str, float]:
        """Seconds left of each timed silence ("*" = every symbol)."""
        if not self._silence_timers:
            return {}
        now = asyncio.get_running_loop().time()
        return {s or "*": round(max(0.0, h.when() - now), 3) for s, h in sorted(
            self._silence_timers.items(), key=lambda kv: kv[0] or "")}

    def is_stopped(self, subscription: str, symbol: str | None) -> bool:
        for prefix, sym in self.stopped:
            if subscription.startswith(prefix) and (sym is None or sym == symbol):
                return True
        return False
