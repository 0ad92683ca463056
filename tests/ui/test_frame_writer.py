"""The desk's frames written from its own thread (tps19/desk/frame_writer.py) reach the terminal
as exactly the bytes Textual's writer thread writes: same frames, same order, none torn or
interleaved, also when the terminal stops reading for a while (the writer thread takes over)."""

from __future__ import annotations

import os
import pty
import select
import struct
import subprocess
import sys
import threading
import fcntl
import termios
from pathlib import Path

import pytest

from tps19.desk.frame_writer import FrameWriter

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD = 120  # seconds: only so a broken run ends; nothing waits for time to pass

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals")


def _read_all(master: int, until: int | None = None, proc: subprocess.Popen | None = None) -> bytes:
    """Everything the terminal gets: ``until`` bytes, or until the other side is closed."""
    out = bytearray()
    while until is None or len(out) < until:
        ready, _, _ = select.select([master], [], [], HANG_GUARD)
        if not ready:
            raise AssertionError(f"the terminal got nothing for {HANG_GUARD} s (have {len(out)} bytes)")
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # EIO: every writer is gone
            break
        if not data:
            break
        out += data
    return bytes(out)


def _chunks() -> list[str]:
    # numbered, some non-ASCII (the encoding is the file's), some inside synchronized-output blocks
    out = []
    for i in range(40):
        body = f"<{i:03d}:" + "€▁▂▃█" * 300 + f":{i:03d}>"
        out += ["\x1b[?2026h", body, "\x1b[?2026l"] if i % 3 == 0 else [body]
    return out


@pytest.fixture
def terminal():
    master, slave = pty.openpty()
    file = open(slave, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    yield master, file
    file.close()
    for fd in (master, slave):
        os.close(fd)


def test_every_byte_arrives_once_in_order_when_the_terminal_reads(terminal):
    master, file = terminal
    texts = _chunks()
    expected = "".join(texts).encode("utf-8")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(_read_all(master, until=len(expected))))
    reader.start()
    writer = FrameWriter(file)
    assert writer.enabled
    writer.start()
    for t in texts:
        writer.write(t)
    writer.stop()
    reader.join()
    assert got[0] == expected
    assert writer.direct > 0  # the path under test was taken
    # a synchronized-output block is one write: 14 blocks + 26 plain chunks, whichever way
    assert writer.direct + writer.queued <= 40


def test_a_terminal_that_stops_reading_gets_the_rest_through_the_thread_in_order(terminal):
    master, file = terminal
    texts = _chunks()  # ~0.6 MB: far more than a pseudo-terminal buffers
    expected = "".join(texts).encode("utf-8")
    writer = FrameWriter(file)
    writer.start()
    stalled = threading.Event()
    got: list[bytes] = []

    def read() -> None:
        assert stalled.wait(HANG_GUARD)
        got.append(_read_all(master, until=len(expected)))

    reader = threading.Thread(target=read)
    reader.start()
    for t in texts:  # nobody reads until a write had to go to the thread: the terminal was full
        writer.write(t)
        if writer._pending:
            stalled.set()
    writer.stop()
    reader.join()
    assert got[0] == expected
    assert writer.direct > 0 and writer.queued > 0


APP = r"""
import os, sys
from textual.app import App
from textual.drivers.linux_driver import LinuxDriver
from textual.widgets import Static, DataTable
from tps19.desk.frame_writer import FrameWriter, direct_driver

way, report = sys.argv[1], int(sys.argv[2])
STEPS = 25

class Frames(App):
    # no scrollbars: Textual repaints a scrollbar on timing of its own (seen once under load: a
    # column-99 repaint in one stream where the other had the next frame), and this test compares
    # the frames the app draws, not when Textual chose to redraw a scrollbar
    CSS = "Static { height: 5; border: round green; } DataTable { height: 1fr; overflow: hidden hidden; }"

    def __init__(self):
        super().__init__(driver_class=direct_driver(LinuxDriver) if way != "textual" else LinuxDriver)
        self.step = 0
        self.told = False

    def compose(self):
        yield Static(id="head")
        yield DataTable(id="rows")

    def on_mount(self):
        t = self.query_one(DataTable)
        for name in ("price", "size", "cum", "note"):
            t.add_column(name, key=name)
        for i in range(30):
            t.add_row(f"{65000 + i * 0.5:,.2f}", f"{i % 7 + 0.125:.4f}", f"{i * 1.5:.3f}", "", key=str(i))
        self.show()

    def show(self):
        self.query_one("#head", Static).update(f"[b red]step {self.step}[/] ▲ €{self.step * 1.25:.2f} [reverse]x[/]")
        t = self.query_one(DataTable)
        for i in range(30):  # every row changes every step: frames of several KiB, a terminal fills up
            colour = ("red", "green", "yellow")[(i + self.step) % 3]
            t.update_cell(str(i), "size", f"{(i + 1) * self.step * 0.01:.4f}")
            t.update_cell(str(i), "note", f"[{colour}]" + "▁▂▃▅▇"[(i + self.step) % 5] * (20 + (i + self.step) % 9) + "[/]")

    def post_display_hook(self):
        # the next step only once this frame is out: the same frames whichever way they are written
        w = getattr(self._driver, "_writer_thread", None)
        if way == "stall" and not self.told and isinstance(w, FrameWriter) and (w.queued or w._pending):
            self.told = True
            os.write(report, b"stalled\n")  # the test starts reading only now
        if self.step >= STEPS:
            if self.step == STEPS:
                self.step += 1
                self.call_later(self.exit)
            return
        self.step += 1
        self.call_later(self.show)

app = Frames()
app.run()
w = getattr(app._driver, "_writer_thread", None)
os.write(report, f"{type(w).__name__} {getattr(w, 'direct', -1)} {getattr(w, 'queued', -1)}\n".encode())
sys.exit(app.return_code or 0)
"""


def _run(way: str) -> tuple[bytes, str]:
    """The app on a 100x30 pseudo-terminal in a child process; what the terminal got, and what
    the child says about its writer."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    rd, wr = os.pipe()
    env = {k: v for k, v in os.environ.items() if k not in ("TEXTUAL_DRIVER", "NO_COLOR", "TEXTUAL")}
    env.update(TERM="xterm-256color", COLORTERM="truecolor", COLUMNS="100", LINES="30")
    proc = subprocess.Popen([sys.executable, "-c", APP, way, str(wr)], stdin=slave, stdout=slave, stderr=slave,
                            pass_fds=(wr,), cwd=ROOT, env=env, start_new_session=True)
    os.close(slave)
    os.close(wr)
    try:
        if way == "stall":
            ready, _, _ = select.select([rd], [], [], HANG_GUARD)
            assert ready and os.read(rd, 8) == b"stalled\n", "the desk never had to hand a write to the thread"
        screen = _read_all(master, proc=proc)
        proc.wait(HANG_GUARD)
        report = os.read(rd, 200).decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(rd)
    assert proc.returncode == 0, screen[-2000:]
    return screen, report


def test_an_app_on_a_terminal_writes_the_same_bytes_either_way_even_with_a_stalled_terminal():
    textual, t_report = _run("textual")
    direct, d_report = _run("direct")
    stalled, s_report = _run("stall")
    assert t_report.split()[0] == "WriterThread"
    kind, n_direct, n_queued = d_report.split()
    assert kind == "FrameWriter" and int(n_direct) > 0  # the path under test was taken
    kind, s_direct, s_queued = s_report.split()
    assert kind == "FrameWriter" and int(s_queued) > 0
    assert b"step 25" in textual and "€31.25".encode() in textual  # the last frame is there
    assert direct == textual
    assert stalled == textual
