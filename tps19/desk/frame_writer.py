"""Write the desk's frames to the terminal from the thread that composed them.

Textual hands every write to a writer thread through a queue. On a machine whose cores are busy
each hand-off is a wake-up: the writer thread must get a core and the GIL, the loop thread then
waits for the GIL back, and each wait is a scheduler slice behind whatever else runs
(bench_desk: ``App._display`` cost 0.3 ms of CPU but 12-20 ms of wall median, up to 127 ms).

``FrameWriter`` is Textual's writer thread with one change: when nothing is queued or being
written by the thread, ``write`` writes the bytes itself, at once, through a non-blocking file
descriptor of the same terminal. The thread stays the fallback and keeps the order:

- a direct write happens only when every earlier write is in the kernel (the thread has written
  and flushed all it was given), under a lock the thread's bookkeeping also takes, so bytes are
  never interleaved with the thread's;
- a terminal that cannot take the whole frame now (a slow SSH link, a paused tmux pane) takes
  what it can and the rest goes to the thread, which writes it blocking as Textual always did:
  later writes queue behind it. The loop never blocks on the terminal;
- a synchronized-output block (``SYNC_START`` ... ``SYNC_END``, Textual's frame bracket) is held
  and written with one system call, so a frame is one write and one wake-up of the terminal;
  ``flush`` writes anything still held.

The bytes are the ones Textual's thread would write (the same text, the same encoding and error
handler as its file). ``direct_driver`` makes the Linux driver use it; any other driver (Windows,
headless, a ``TEXTUAL_DRIVER`` override) is left alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import IO, Any

from textual._ansi_sequences import SYNC_END, SYNC_START
from textual.driver import Driver
from textual.drivers._writer_thread import WriterThread


def _own_fd(file: IO[str]) -> int:
    """A non-blocking descriptor of ``file``'s terminal, opened apart (its own open file
    description: the flag does not touch the descriptor Textual reads keys from); -1 when
    ``file`` is no terminal."""
    try:
        fd = file.fileno()
        if not os.isatty(fd):
            return -1
        return os.open(os.ttyname(fd), os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError, AttributeError):
        return -1


class FrameWriter(WriterThread):
    """Textual's writer thread that lets the caller write its bytes itself when the thread is idle."""

    def __init__(self, file: IO[str]) -> None:
        super().__init__(file)
        self._fd = _own_fd(file)
        self._encoding = getattr(file, "encoding", None) or "utf-8"
        self._errors = getattr(file, "errors", None) or "strict"
        self._lock = threading.Lock()
        self._pending = 0  # writes handed to the thread and not yet written and flushed by it
        self._held: list[str] = []  # an open synchronized-output block
        self.direct = 0  # writes that went straight to the terminal
        self.queued = 0  # writes (or remainders) the thread wrote
        # called with no argument whenever every write so far is in the kernel (bench_desk times
        # frames with it); in the writer thread or the caller's
        self.on_written: Callable[[], None] | None = None

    @property
    def enabled(self) -> bool:
        """Direct writes are possible (the file is a terminal)."""
        return self._fd >= 0

    def write(self, text: str) -> None:
        if self._held or text == SYNC_START:
            self._held.append(text)
            if text != SYNC_END:
                return
            text = "".join(self._held)
            self._held.clear()
        self._write(text)

    def flush(self) -> None:
        """Write a held synchronized-output block (the driver's flush comes after a frame)."""
        if self._held:
            text = "".join(self._held)
            self._held.clear()
            self._write(text)

    def _write(self, text: str) -> None:
        rest: str | bytes = text
        with self._lock:
            if self._pending == 0 and self._fd >= 0:
                data = text.encode(self._encoding, self._errors)
                try:
                    n = os.write(self._fd, data)
                except BlockingIOError:
                    n = 0
                except OSError:  # the terminal went away: Textual's path reports it as it always did
                    self._close_fd()
                    n = 0
                if n == len(data):
                    self.direct += 1
                    rest = b""
                else:
                    rest = data[n:] if n else text
            if rest:
                self._pending += 1
        if rest:
            self._queue.put(rest)  # type: ignore[arg-type]  # run() takes bytes too (a remainder)
        else:
            done = self.on_written
            if done is not None:
                done()

    def run(self) -> None:
        write = self._file.write
        flush = self._file.flush
        get = self._queue.get
        qsize = self._queue.qsize
        fileno = self._file.fileno
        unflushed = 0
        while True:
            item: str | bytes | None = get()
            if item is None:
                break
            if isinstance(item, bytes):  # what a direct write could not place, already encoded
                flush()
                view = memoryview(item)
                while view:
                    view = view[os.write(fileno(), view):]
            else:
                write(item)
            unflushed += 1
            if qsize() == 0:
                flush()
                unflushed = self._written(unflushed)
        flush()
        self._written(unflushed)

    def _written(self, n: int) -> int:
        """The thread flushed ``n`` more writes: direct writes may follow once none is left."""
        with self._lock:
            self._pending -= n
            self.queued += n
            done = self.on_written if self._pending == 0 else None
        if done is not None:
            done()
        return 0

    def stop(self) -> None:
        self.flush()
        super().stop()
        self._close_fd()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def direct_driver(driver_class: type[Driver]) -> type[Driver]:
    """``driver_class`` writing frames through ``FrameWriter`` when it is Textual's Linux driver;
    else ``driver_class`` itself."""
    try:
        from textual.drivers.linux_driver import LinuxDriver
    except ImportError:  # not a POSIX system
        return driver_class
    if driver_class is not LinuxDriver:
        return driver_class

    class FrameWriterDriver(LinuxDriver):
        """Textual's Linux driver whose writer is a ``FrameWriter``."""

        def start_application_mode(self) -> None:
            super().start_application_mode()
            textual_writer = self._writer_thread
            if not isinstance(textual_writer, WriterThread) or self._file is None:
                return
            writer = FrameWriter(self._file)
            if not writer.enabled:
                return
            textual_writer.stop()  # everything Textual wrote while starting is in the terminal now
            writer.start()
            self._writer_thread = writer

        def flush(self) -> None:
            writer: Any = self._writer_thread
            if isinstance(writer, FrameWriter):
                writer.flush()

    return FrameWriterDriver
