"""Stopping a headless engine: the first SIGINT/SIGTERM asks, a second one forces, and the
stop itself is bounded, so a process manager never waits on a hung part.

One request can arrive twice: coreutils `timeout` signals its child, then the child's whole
process group (the child again), and a shell's `kill -INT -PGID` beside a direct `kill` does the
same. Two deliveries of one signal usually merge in the kernel, but not when the first was taken
before the second was sent (seen under load: 13 ms apart, 1 run in 3 of `paper --record` under
`timeout -s INT`, reported as a stop hung in TradingStack.stop). So the same signal again within
REPEAT_WINDOW_S of the first is that request repeated, counted and ignored; later, or another
signal, forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Coroutine
from types import FrameType
from typing import Any, NoReturn

from ..aio import awaiting
from .jsonlog import JsonLines

SHUTDOWN_TIMEOUT_S = 5.0
FORCED_EXIT_CODE = 130  # as a shell reports an interrupted command
HUNG_EXIT_CODE = 1
SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPEAT_WINDOW_S = 1.0  # shorter than a person's deliberate second Ctrl-C, far longer than a re-delivery


def exit_now(code: int) -> NoReturn:
    """Leave without running the loop's teardown: it would wait on the very tasks that hang,
    and aiosqlite's worker is a non-daemon thread that keeps an unclosed process alive."""
    os._exit(code)


class Shutdown:
    """Signal handling and the bounded stop for one headless run."""

    def __init__(self, out: JsonLines, stop: asyncio.Event) -> None:
        self.out = out
        self.stop = stop
        self.task: asyncio.Task[None] | None = None
        self.signals = 0
        self.repeats = 0  # the first signal delivered again within REPEAT_WINDOW_S: ignored
        self._first_sig: int | None = None
        self._first_at = 0.0
        self._judged: dict[int, int] = {}  # deliveries the plain handler judged, per signal

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._first, sig)

    def _repeated(self, signum: int) -> bool:
        """The first signal again, so soon that it is the same request delivered twice."""
        if signum == self._first_sig and time.monotonic() - self._first_at < REPEAT_WINDOW_S:
            self.repeats += 1
            return True
        return False

    def _first(self, sig: signal.Signals) -> None:
        self.signals += 1
        if self._first_sig is not None:
            if self._judged.get(sig):  # its plain handler below judged it already (the loop sees it too)
                self._judged[sig] -= 1
            elif not self._repeated(sig):  # two signals landed before the loop ran this handler once
                self._force(sig, None)
            return
        self._first_sig, self._first_at = int(sig), time.monotonic()
        self.out.write("shutdown", signal=sig.name)  # `signal` is a strategy's event
        self.stop.set()
        # The second signal gets a plain Python handler: it runs between bytecodes, so it works
        # even when the loop itself is stuck and would never dispatch an asyncio handler.
        for s in SIGNALS:
            with contextlib.suppress(ValueError, OSError):  # ValueError: not the main thread
                signal.signal(s, self._again)

    def _again(self, signum: int, frame: FrameType | None) -> None:
        self._judged[signum] = self._judged.get(signum, 0) + 1
        if not self._repeated(signum):  # a repeat writes nothing: the log writer's lock may be held
            self._force(signum, frame)

    def _force(self, signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(Exception):  # e.g. the signal cut a write short: exit regardless
            since = {"after_s": round(time.monotonic() - self._first_at, 3)} if self._first_sig is not None else {}
            self.out.write_last("forced", signal=signal.Signals(signum).name, exit_code=FORCED_EXIT_CODE,
                                hung_in=self.where(), **since)
        exit_now(FORCED_EXIT_CODE)

    def where(self) -> list[str]:
        """Where the stop is waiting now (outermost first), or [] when no stop is running."""
        if self.task is None or self.task.done():
            return []
        return awaiting(self.task)

    async def bounded(self, coro: Coroutine[Any, Any, None], timeout: float = SHUTDOWN_TIMEOUT_S) -> list[str] | None:
        """Run the stop for at most `timeout` s: None once it finished, else where it hangs.

        An error of the stop itself is raised here. `asyncio.wait`, not `wait_for`: nothing
        is cancelled behind our back, and the hung task stays inspectable.
        """
        self.task = asyncio.create_task(coro, name="shutdown")
        done, _ = await asyncio.wait({self.task}, timeout=timeout)
        if self.task in done:
            self.task.result()
            return None
        return self.where() or ["(shutdown)"]


async def stop_everything(engine: Any, start: asyncio.Task[None], keep: set[asyncio.Task[Any]]) -> None:
    """Abort a start still running, stop the engine, then end any task it left behind."""
    if not start.done():
        start.cancel()
        await asyncio.wait({start})
    if start.done() and not start.cancelled():
        start.exception()  # retrieved: already reported by the caller, or moot once stopping
    await engine.stop()
    me = asyncio.current_task()
    leftover = [t for t in asyncio.all_tasks() if t is not me and t not in keep and not t.done()]
    for t in leftover:
        t.cancel()
    if leftover:
        await asyncio.wait(leftover)
