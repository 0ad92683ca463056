"""A `tps19` command on a pseudo-terminal, for tests that drive the real desk as a terminal does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

_ESCAPE = re.compile(r"\x1b\[[0-9;?<>=$]*[a-zA-Z~]")


class PtyDesk:
    """``python -m tps19.cli ARGS`` on a pty in its own session; everything it writes is drained
    into ``screen`` by a reader thread (a desk whose terminal is not read blocks on its writes).
    Read ``screen`` under ``cond``; ``close()`` kills the process if it is still there."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        import pty  # POSIX only: the tests that use this skip elsewhere

        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "tps19.cli", *args], cwd=cwd, env=env,
                                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.screen = bytearray()
        self.cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                chunk = b""
            with self.cond:
                self.screen.extend(chunk)
                self.cond.notify_all()
            if not chunk:
                return

    def wait_for(self, shown: Callable[[], bool], timeout: float) -> bool:
        """True once ``shown()`` holds, or the process has exited (check ``proc.poll()``)."""
        with self.cond:
            return self.cond.wait_for(lambda: shown() or self.proc.poll() is not None, timeout)

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(10)
        os.close(self.master)

    def text(self) -> str:
        """What was written, escape sequences removed."""
        return _ESCAPE.sub("", bytes(self.screen).decode(errors="replace"))
