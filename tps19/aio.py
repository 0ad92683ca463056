"""Small asyncio helpers shared by the engine and the simulated exchange."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel tasks (or futures) and wait for each to finish; a task's own error never masks a shutdown."""
    pending = list(tasks)
    for t in pending:
        t.cancel()
    for t in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t


def cancel_requested() -> bool:
    """True once the current task has been asked to cancel, even if some await swallowed it.

    A loop that re-checks this cannot outlive its stop(): on Python 3.11 `asyncio.wait_for`
    (in our code or a library's) can return normally when a cancel races its inner wait.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def awaiting(task: asyncio.Task) -> list[str]:
    """Where a pending task is suspended: `qualname (file:line)` per coroutine, outermost first.

    Follows each coroutine's `await` into the coroutines it waits on, and a task blocked on
    another task into that one, which `Task.get_stack()` does not (it stops at the task's own
    coroutine): a shutdown that hangs can then name the part that hangs, not only its caller.
    """
    out: list[str] = []
    seen: set[int] = set()
    current: asyncio.Future | None = task
    while isinstance(current, asyncio.Task) and id(current) not in seen and len(out) < 40:
        seen.add(id(current))
        obj: object = current.get_coro()
        while obj is not None and len(out) < 40:
            frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
            if frame is None:
                break
            code = frame.f_code
            if "/asyncio/" not in code.co_filename.replace("\\", "/"):
                out.append(f"{code.co_qualname} ({_short_path(code.co_filename)}:{frame.f_lineno})")
            obj = getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None)
        current = getattr(current, "_fut_waiter", None)  # the future this task is blocked on
        pending = [c for c in getattr(current, "_children", ()) if not c.done()]  # a gather()
        if pending:
            current = pending[0]
    return out


def _short_path(path: str) -> str:
    path = path.replace("\\", "/")
    for marker in ("/site-packages/", "/tps19/"):
        if marker in path:
            head = "tps19/" if marker == "/tps19/" else ""
            return head + path.rsplit(marker, 1)[1]
    return path.rsplit("/", 1)[-1]
