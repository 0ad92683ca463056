"""The engine's wall clock, injectable: a replay runs the engine on the recording's time.

Everything the engine stamps (events, fills, order ids) reads ``now_ns``; a replay sets it to
the time of the event being replayed, so that the same recording gives the same stamps.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

_now_ns: Callable[[], int] = time.time_ns


def now_ns() -> int:
    return _now_ns()


def now_ms() -> int:
    return _now_ns() // 1_000_000


@contextlib.contextmanager
def use_clock(fn: Callable[[], int]) -> Iterator[None]:
    """Run the engine on ``fn`` (nanoseconds since the epoch) inside the block."""
    global _now_ns
    previous, _now_ns = _now_ns, fn
    try:
        yield
    finally:
        _now_ns = previous
