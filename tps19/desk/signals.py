"""SIGTERM/SIGINT for the Textual desk, as for the headless engine: the first quits the desk
(which stops the engine), a second one leaves at once (130), and so does a quit still running
after the shutdown bound (1) -- each time with the terminal given back in a usable state.

Textual installs no SIGTERM handler: without this a `kill` leaves the engine unstopped and the
terminal in raw mode on the alternate screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from types import FrameType
from typing import Any, NoReturn

from ..engine.shutdown import FORCED_EXIT_CODE, HUNG_EXIT_CODE, SHUTDOWN_TIMEOUT_S

# mouse reporting and bracketed paste off, main screen back, cursor shown
TERMINAL_RESET = "\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?2004l\x1b[?1049l\x1b[?25h"
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DeskSignals:
    def __init__(self, app: Any, bound_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        self.app = app
        self.bound_s = bound_s
        self.hits = 0
        self._tty: list[Any] | None = None
        with contextlib.suppress(Exception):  # not a terminal, or no termios (Windows)
            import termios

            self._tty = termios.tcgetattr(sys.stdin.fileno())

    def install(self) -> None:
        # Installed before app.run(): asyncio's runner then leaves SIGINT to us as well.
        for sig in SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.hits += 1
        name = signal.Signals(signum).name
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the desk is not running (yet, or any more): nothing to stop
            self.leave(FORCED_EXIT_CODE, f"stopped by {name}")
        if self.hits > 1:
            self.leave(FORCED_EXIT_CODE, f"forced exit by a second {name}")
        loop.call_soon_threadsafe(self.app.exit)
        loop.call_soon_threadsafe(loop.call_later, self.bound_s, self.leave, HUNG_EXIT_CODE,
                                  f"the desk did not stop within {self.bound_s:g}s after {name}; exiting anyway")

    def leave(self, code: int, message: str) -> NoReturn:
        with contextlib.suppress(Exception):
            os.write(_stderr_fd(), TERMINAL_RESET.encode())
        if self._tty is not None:
            with contextlib.suppress(Exception):
                import termios

                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._tty)
        with contextlib.suppress(Exception):
            os.write(_stderr_fd(), f"tps19: {message}\n".encode())
        os._exit(code)


def _stderr_fd() -> int:
    """The process's original stderr (Textual redirects sys.stderr while it runs)."""
    stream = sys.__stderr__
    return stream.fileno() if stream is not None else 2
