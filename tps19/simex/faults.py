"""Fault injection switches for tests (``sim.faults``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .server import SimExchange


@dataclass
class Faults:
    sim: "SimExchange"
    delay_ms: int = 0
    http_error_count: int = 0
    http_error_status: int = 429
    drop_create_order_replies: int = 0
    skip_next: set[str] = field(default_factory=set)  # symbols whose next book delta skips a sequence number
    stopped: set[tuple[str, str | None]] = field(default_factory=set)  # (channel prefix, symbol or None)

    def drop_connections(self) -> int:
        """Close every websocket connection now (as a venue restart would). Returns how many."""
        return self.sim._drop_all_connections()

    def skip_sequence(self, symbol: str) -> None:
        """The next ``book.update`` of `symbol` skips one ``u`` (``pu`` != the client's last ``u``)."""
        self.sim._instrument(symbol)
        self.skip_next.add(symbol)

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
        """Process the next `n` create-order calls but close the connection instead of answering."""
        self.drop_create_order_replies = max(0, int(n))

    def stop_stream(self, channel: str = "book", symbol: str | None = None) -> None:
        """Silently stop sending a stream: `channel` is a prefix such as "book", "trade", "ticker",
        "candlestick", "user.order" or "" (everything but heartbeats); `symbol` limits it to one market."""
        if symbol is not None:
            self.sim._instrument(symbol)
        self.stopped.add((channel, symbol))

    def resume_stream(self, channel: str = "book", symbol: str | None = None) -> None:
        self.stopped.discard((channel, symbol))

    def clear(self) -> None:
        self.delay_ms = 0
        self.http_error_count = 0
        self.drop_create_order_replies = 0
        self.skip_next.clear()
        self.stopped.clear()

    def is_stopped(self, subscription: str, symbol: str | None) -> bool:
        for prefix, sym in self.stopped:
            if subscription.startswith(prefix) and (sym is None or sym == symbol):
                return True
        return False
