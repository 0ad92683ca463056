"""Desk benchmark: book update -> the frame that shows it written to a terminal, and CPU.

    .venv/bin/python benchmarks/bench_desk.py [--seconds 10] [--rate 1000] [--size 120x40] [--no-baseline]
                                              [--venues 2]

The simulated exchange runs in a child process (its CPU is not counted) pushing `--rate` flow
events/s (about as many book messages/s, printed as measured) over loopback websockets. This
process runs the real engine (ccxt.pro feed, paper trading) and the real DeskApp with Textual's
real Linux driver on a pseudo-terminal of `--size` (a thread drains the terminal side): every
frame is laid out, rendered, composited, encoded as escape sequences and written, as on a
trader's screen.

Measured in one run:
- latency from `BookEvent.received` (perf_counter when the engine got the update) to the moment
  the bytes of the first frame that holds it are written to the terminal: at the end of
  `App._display` when the desk wrote them itself (tps19/desk/frame_writer.py), else when the
  driver's writer thread has written and flushed everything handed to it up to that frame.
  Books superseded before any frame (the desk draws the newest) are not drawn and not in the sample;
- `--writes textual`: the desk with `ui.direct_writes = false` (every write through Textual's
  writer thread), to compare in the same conditions; `--terminal thread`: the terminal read by a
  thread of this process instead of a child process (the benchmark before 24-desk-3);
- frames/s written, bytes/s written to the terminal, pump ticks/s (settings.ui.refresh_hz);
- CPU split between engine and desk in the same run: every asyncio callback's thread CPU time
  is charged to the desk when its coroutine/function lives in Textual, Rich, plotext or the
  desk's modules (app, widgets, screens), else to the engine (ccxt, aiohttp, tps19.engine);
  Textual's writer thread is the desk's, other threads (aiosqlite) the engine's; the event
  loop's own time between callbacks (select, scheduling) is printed apart.
- unless --no-baseline, first the engine alone (no UI) on the same sim, as a cross-check.
- `--load N` (default 2) busy-loop processes run beside it for the whole run, so both cores are
  busy whatever else the machine does (the load average is printed before and after).
- `--venues 2`: after the one-venue desk, in the same run, the desk on two venues (`tps19 paper
  --exchange sim --exchange sim-binance`): a second child process runs the Binance-dialect
  simulated exchange (seed 1019) at the same rate; the desk follows both venues' buses (rows of
  both, totals over both), the book pane draws the first venue's: the latency is that venue's
  books, CPU and frames are the whole desk's. Each figure is printed beside the one-venue figure.
Goals: p99 <= 50 ms at 1,000 events/s with both cores busy, desk <= 30 % of one core. No
assertions: it prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import gc
import os
import pty
import struct
import termios
import threading
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIM_CHILD = r"""
import asyncio, sys, time
async def main(rate, dialect, seed):
    if dialect == "binance":
        from tps19.simex.binance import BinanceSimExchange as Sim
    else:
        from tps19.simex import SimExchange as Sim
    sim = Sim(seed=seed, updates_per_second=rate)
    await sim.start()
    print(sim.port, flush=True)
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "mark":
        print(sim.stats.get("book_messages", 0), time.perf_counter(), flush=True)
    await sim.stop()
asyncio.run(main(float(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
"""


class SimMeter:
    """Book messages/s the simulated exchange pushed between two marks."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    async def mark(self) -> tuple[int, float]:
        def ask() -> tuple[int, float]:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write("mark\n")
            self.proc.stdin.flush()
            n, t = self.proc.stdout.readline().split()
            return int(n), float(t)

        return await asyncio.to_thread(ask)


BUSY_CHILD = r"""
import os, sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end and os.getppid() != 1:
    for _ in range(100_000):
        pass
"""


def start_load(n: int, seconds: float, session: str = "desk") -> list[subprocess.Popen]:
    """n busy-loop processes (the cores busy, as on a shared machine): each stops by itself after
    ``seconds``, or when this process is gone, and is killed when the benchmark ends.

    ``session``: "desk" keeps them in the benchmark's session; "own" starts them in a session of
    their own, as a program in another terminal or tmux pane runs. With the kernel's autogroup
    scheduling (sched_autogroup_enabled) CPU is shared between sessions first, so busy loops in
    the desk's own session compete with it inside its share: the harder case, the default."""
    return [subprocess.Popen([sys.executable, "-c", BUSY_CHILD, str(seconds)], start_new_session=session == "own")
            for _ in range(n)]


def autogroup() -> str:
    try:
        return "on" if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1" else "off"
    except OSError:
        return "unknown"


def start_sim(rate: float, dialect: str = "cryptocom", seed: int = 19) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-c", SIM_CHILD, str(rate), dialect, str(seed)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, cwd=str(ROOT), text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().strip())
    return proc, port


def make_settings(port: int, db: Path, refresh_hz: float, venue: str = "sim", direct_writes: bool = True):
    from tps19.config import Settings

    return Settings(exchange={"id": venue, "rest_url": f"http://127.0.0.1:{port}"}, database={"path": db},
                    ui={"refresh_hz": refresh_hz, "direct_writes": direct_writes})


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(q * (len(values) - 1)))))
    return values[k]


async def engine_only(settings, seconds: float, meter: SimMeter) -> tuple[float, float, float]:
    """CPU share and book updates/s of the engine without any UI."""
    from tps19.engine.engine import Engine
    from tps19.engine.events import BookEvent

    engine = Engine(settings, "paper")
    n = [0]
    engine.bus.on(BookEvent, lambda e: n.__setitem__(0, n[0] + 1))
    await engine.start()
    await asyncio.sleep(2.0)  # warm up
    n[0] = 0
    m0 = await meter.mark()
    c0, w0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu = (time.process_time() - c0) / (time.perf_counter() - w0)
    rate = n[0] / (time.perf_counter() - w0)
    m1 = await meter.mark()
    await engine.stop()
    return cpu, rate, (m1[0] - m0[0]) / (m1[1] - m0[1])


DESK_CODE = ("/textual/", "/rich/", "/textual_plotext/", "/plotext/", "/tps19/desk/")


def _origin(callback: object) -> str:
    """The source file of what an asyncio callback runs (a task's coroutine, or a function)."""
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Future) and hasattr(owner, "get_coro"):
        coro = owner.get_coro()
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        return code.co_filename if code is not None else ""
    fn = getattr(callback, "__func__", callback)
    code = getattr(fn, "__code__", None)
    if code is not None:
        return code.co_filename
    return str(getattr(fn, "__module__", "") or type(owner).__module__ if owner is not None else "")


class CpuSplit:
    """Thread CPU of every asyncio callback, charged to the desk or the engine by its origin."""

    def __init__(self) -> None:
        self.desk = self.engine = 0.0
        self._orig = asyncio.events.Handle._run
        self._side: dict[object, bool] = {}

    def install(self) -> None:
        orig, split = self._orig, self

        def _run(handle: asyncio.events.Handle) -> None:
            t0 = time.thread_time()
            try:
                orig(handle)
            finally:
                dt = time.thread_time() - t0
                cb = handle._callback  # type: ignore[attr-defined]
                owner = getattr(cb, "__self__", cb)
                desk = split._side.get(owner)
                if desk is None:
                    desk = any(p in _origin(cb) for p in DESK_CODE)
                    if len(split._side) < 100_000:
                        split._side[owner] = desk
                if desk:
                    split.desk += dt
                else:
                    split.engine += dt

        asyncio.events.Handle._run = _run  # type: ignore[method-assign]

    def uninstall(self) -> None:
        asyncio.events.Handle._run = self._orig  # type: ignore[method-assign]


def thread_cpu(thread: threading.Thread | None) -> float:
    if thread is None or thread.ident is None or not thread.is_alive():
        return 0.0
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (OSError, AttributeError):
        return 0.0


TERMINAL_CHILD = r"""
import mmap, os, struct, sys, time
fd, path = int(sys.argv[1]), sys.argv[2]
with open(path, "r+b") as f:
    m = mmap.mmap(f.fileno(), 16)
n = 0
while True:
    try:
        data = os.read(fd, 1 << 16)
    except OSError:
        break
    if not data:
        break
    n += len(data)
    struct.pack_into("Qd", m, 0, n, time.process_time())
"""


class Terminal:
    """A pseudo-terminal of a given size on fds 0 and 2 (where Textual's Linux driver reads and
    writes), drained by a reader that counts the bytes; restores the fds on close.

    ``reader="process"`` (default): the reader is a child process in a session of its own, as a
    terminal emulator, tmux or sshd is; ``"thread"``: a thread of this process (before 24-desk-3:
    it then competes with the desk for the GIL on every frame, which no real terminal does)."""

    def __init__(self, cols: int, rows: int, reader: str = "process") -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.saved = (os.dup(0), os.dup(2))
        os.dup2(self.slave, 0)
        os.dup2(self.slave, 2)
        self._bytes = 0
        self._cpu = 0.0
        self.child: subprocess.Popen | None = None
        self.thread: threading.Thread | None = None
        if reader == "process":
            self._shared = tempfile.NamedTemporaryFile(prefix="bench-term-")
            self._shared.write(bytes(16))
            self._shared.flush()
            import mmap

            self._map = mmap.mmap(self._shared.fileno(), 16)
            self.child = subprocess.Popen([sys.executable, "-c", TERMINAL_CHILD, str(self.master), self._shared.name],
                                          pass_fds=(self.master,), start_new_session=True,
                                          stdin=subprocess.DEVNULL, stderr=self.saved[1])
        else:
            self.thread = threading.Thread(target=self._drain, name="bench-terminal", daemon=True)
            self.thread.start()

    @property
    def bytes(self) -> int:
        return struct.unpack_from("Qd", self._map, 0)[0] if self.child is not None else self._bytes

    @property
    def cpu(self) -> float:
        return struct.unpack_from("Qd", self._map, 0)[1] if self.child is not None else self._cpu

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:
                break
            if not data:
                break
            self._bytes += len(data)
            self._cpu = time.thread_time()

    def close(self) -> None:
        os.dup2(self.saved[0], 0)
        os.dup2(self.saved[1], 2)
        for fd in (*self.saved, self.slave, self.master):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.child is not None:
            try:
                self.child.wait(5)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
            self._map.close()
            self._shared.close()


def bench_writer_class():
    """Textual's writer thread that says when everything handed to it is written (flushed to the
    kernel): the clock of a frame that went through the thread stops there. The desk's
    FrameWriter (tps19/desk/frame_writer.py) keeps the same ``_pending`` / ``on_written``."""
    from textual.drivers._writer_thread import WriterThread

    class BenchWriter(WriterThread):
        def __init__(self, file) -> None:
            super().__init__(file)
            self._lock = threading.Lock()
            self._pending = 0
            self.on_written = None

        def write(self, text: str) -> None:
            with self._lock:
                self._pending += 1
            self._queue.put(text)

        def run(self) -> None:  # Textual's loop, plus the bookkeeping
            write, flush, get, qsize = self._file.write, self._file.flush, self._queue.get, self._queue.qsize
            unflushed = 0
            while True:
                text = get()
                if text is None:
                    break
                write(text)
                unflushed += 1
                if qsize() == 0:
                    flush()
                    with self._lock:
                        self._pending -= unflushed
                        unflushed = 0
                        done = self.on_written if self._pending == 0 else None
                    if done is not None:
                        done()
            flush()

    return BenchWriter


async def with_desk(settings, seconds: float, size: tuple[int, int], meter: SimMeter,
                    second: tuple[object, SimMeter] | None = None, profile: str = "",
                    reader: str = "process") -> dict:
    """The desk on ``settings``' venue, or with ``second`` (settings, meter of a sim-binance venue)
    on both venues at once."""
    from tps19.desk.app import DeskApp
    from tps19.engine.events import BookEvent
    from tps19.desk.widgets.market.book import BookLadder

    class BenchDesk(DeskApp):
        CSS_PATH = str(ROOT / "tps19" / "desk" / "desk.tcss")  # Textual resolves it beside the subclass otherwise
        ladder: BookLadder | None = None
        lat: list[float] = []
        displays = 0

        # where a drawn book's time went: received -> drained by the desk's pump -> its ladder
        # rendered (Textual's refresh path: message hops, the screen's update timer, layout) ->
        # frame composed/encoded (end of _display); and the main thread's CPU per written frame
        drained: dict[float, float] = {}
        stages: list[tuple[float, float, float]] = []
        frame_cpu: list[float] = []
        _frame_t0 = 0.0

        _pump_started: tuple[float, tuple[int, int]] | None = None
        # the loop thread's scheduler account (/proc/.../schedstat: ns on a CPU, ns runnable but
        # waiting for one) at each drain and when its frame is written: where the wall time of
        # drained -> written went (running / waiting for a CPU / blocked: sleeping, the GIL, a lock)
        sched_fd = -1
        sched: list[tuple[float, float, float]] = []

        def _sched(self) -> tuple[int, int]:
            if self.sched_fd < 0:
                return (0, 0)
            run, wait, _ = os.pread(self.sched_fd, 100, 0).split()
            return int(run), int(wait)

        def _pump(self) -> None:
            t = time.perf_counter()
            self._pump_started = (t, self._sched())
            try:
                super()._pump()  # may write the frame itself (post_display_hook inside)
            finally:
                self._pump_started = None
            book = self.state.books.get(self.symbol)
            if book is not None and book.received not in self.drained and self.ladder is not None \
                    and self.ladder._probed is not book:
                self.drained[book.received] = (t, self._sched())

        # frames whose bytes the writer thread has not written yet: (displayed at, [(received,
        # pumped, rendered)]); stamped when the writer says everything handed to it is written
        waiting: list[tuple[float, list]] = []
        wait_lock = threading.Lock()
        handed_over: list[float] = []  # end of _display -> written, ms, frames that waited for the thread

        def post_display_hook(self) -> None:
            # right after App._display: the frame is composed, encoded and written, or handed
            # to the writer thread; the clock stops when its bytes are written
            now = time.perf_counter()
            self.displays += 1
            if self.ladder is not None and self.ladder.rendered:
                books = [(received, self.drained.pop(received, self._pump_started), rendered)
                         for received, rendered in self.ladder.rendered]
                self.ladder.rendered.clear()
                if len(self.drained) > 1000:
                    self.drained.clear()
                writer = getattr(self._driver, "_writer_thread", None)
                with self.wait_lock:
                    if getattr(writer, "_pending", 0) == 0:  # written already (directly, or the thread was quick)
                        self._written(now, books)
                    else:
                        self.waiting.append((now, books))

        def on_written(self) -> None:  # the writer: everything handed to it is written (any thread)
            now = time.perf_counter()
            with self.wait_lock:
                for displayed, books in self.waiting:
                    self.handed_over.append((now - displayed) * 1000)
                    self._written(now, books)
                self.waiting.clear()

        def _written(self, now: float, books: list) -> None:
            s1 = self._sched()
            for received, pumped, rendered in books:
                self.lat.append((now - received) * 1000)
                if pumped is not None:
                    (t0, s0) = pumped
                    self.stages.append(((t0 - received) * 1000, (rendered - t0) * 1000, (now - rendered) * 1000))
                    if s0 != (0, 0) and s1 != (0, 0):  # both read while the account was open
                        wall = (now - t0) * 1000
                        run, wait = (s1[0] - s0[0]) / 1e6, (s1[1] - s0[1]) / 1e6
                        self.sched.append((run, wait, max(0.0, wall - run - wait)))

    from textual.screen import Screen

    screen_update = Screen._on_timer_update

    def timed_update(screen: Screen) -> None:  # the screen's update: layout if asked, render, compose, encode
        t0 = time.thread_time()
        screen_update(screen)
        if isinstance(screen.app, BenchDesk):
            screen.app.frame_cpu.append((time.thread_time() - t0) * 1000)

    Screen._on_timer_update = timed_update  # type: ignore[method-assign]
    import textual.drivers.linux_driver as linux_driver

    textual_writer = linux_driver.WriterThread
    linux_driver.WriterThread = bench_writer_class()  # type: ignore[misc]  # Textual's path, timed
    term = Terminal(*size, reader=reader)
    split = CpuSplit()
    venues = None
    if second is not None:
        from tps19.engine.engine import Engine
        from tps19.engine.multivenue import VenueSet

        venues = VenueSet({"sim": Engine(settings, "paper"), "sim-binance": Engine(second[0], "paper")})
    app = BenchDesk(settings=settings, mode="paper", venues=venues)
    out: dict = {}
    run = asyncio.create_task(app.run_async(headless=False, size=None), name="bench-desk")
    try:
        end = time.monotonic() + 30
        while not (app.ready and app.symbol in app.state.books) and time.monotonic() < end:
            await asyncio.sleep(0.05)
        if not app.ready:
            err = run.exception() if run.done() else None
            raise SystemExit(f"engine did not start: {app.engine_error or err or 'no book after 30 s'}")
        n = [0]
        engines = list(venues.engines.values()) if venues is not None else [app.engine]
        for e in engines:
            e.bus.on(BookEvent, lambda e: n.__setitem__(0, n[0] + 1))
        ladder = app.screen.query_one("#book", BookLadder)
        ladder.probe = True
        app.ladder = ladder
        await asyncio.sleep(2.0)  # warm up
        writer = getattr(app._driver, "_writer_thread", None)
        if writer is None or not hasattr(writer, "on_written"):
            raise SystemExit(f"cannot time the writes: the driver's writer is {type(writer).__name__}")
        writer.on_written = app.on_written
        app.sched_fd = os.open(f"/proc/self/task/{threading.main_thread().native_id}/schedstat", os.O_RDONLY)
        out["writer"] = type(writer).__name__
        main = threading.main_thread()
        ladder.rendered.clear()
        with app.wait_lock:
            app.waiting.clear()  # frames of the warm-up: their clock would stop at the window's first write
            app.lat = []
            app.stages = []
            app.handed_over = []
            app.sched = []
        app.frame_cpu = []
        gc_runs: list[tuple[int, float, float]] = []  # (generation, wall ms, CPU ms) of each collection
        gc_t0 = [0.0, 0.0]

        def gc_watch(phase: str, info: dict) -> None:
            if phase == "start":
                gc_t0[:] = time.perf_counter(), time.thread_time()
            else:
                gc_runs.append((info.get("generation", -1), (time.perf_counter() - gc_t0[0]) * 1000,
                                (time.thread_time() - gc_t0[1]) * 1000))

        gc.callbacks.append(gc_watch)
        prof = None
        if profile:
            import cProfile

            prof = cProfile.Profile(time.thread_time)  # CPU of the loop thread: readable under load
            prof.enable()
        n[0] = 0
        frames0, displays0, bytes0 = app.frames, app.displays, term.bytes
        m0 = await meter.mark()
        s0 = await second[1].mark() if second is not None else None
        split.install()
        c0, w0, t0, wr0, tm0 = time.process_time(), time.perf_counter(), time.thread_time(), thread_cpu(writer), term.cpu
        await asyncio.sleep(seconds)
        gc.callbacks.remove(gc_watch)
        out["gc"] = list(gc_runs)
        if prof is not None:
            prof.disable()
            prof.dump_stats(profile)
        wall = time.perf_counter() - w0
        cpu_all, cpu_main = time.process_time() - c0, time.thread_time() - t0
        cpu_writer, cpu_term = thread_cpu(writer) - wr0, term.cpu - tm0
        split.uninstall()
        assert main is threading.current_thread()
        m1 = await meter.mark()
        out["sim_rate"] = (m1[0] - m0[0]) / (m1[1] - m0[1])
        if second is not None and s0 is not None:
            s1 = await second[1].mark()
            out["sim_rate_2"] = (s1[0] - s0[0]) / (s1[1] - s0[1])
        out["book_rate"] = n[0] / wall
        out["pumps"] = (app.frames - frames0) / wall
        out["displays"] = (app.displays - displays0) / wall
        out["bytes"] = (term.bytes - bytes0) / wall
        with app.wait_lock:
            out["lat"] = list(app.lat)
            out["stages"] = list(app.stages)
            out["handed_over"] = list(app.handed_over)
            out["sched"] = list(app.sched)
        direct = getattr(writer, "direct", None)
        out["direct"] = (direct, getattr(writer, "queued", None))
        out["frame_cpu"] = list(app.frame_cpu)
        out["frames"] = len(app.lat) / wall
        out["dropped"] = sum(sub.dropped for sub in app.subs.values())
        other = max(0.0, cpu_all - cpu_main - cpu_writer - cpu_term)
        out["cpu_all"] = (cpu_all - cpu_term) / wall
        out["cpu_desk"] = (split.desk + cpu_writer) / wall
        out["cpu_engine"] = (split.engine + other) / wall
        out["cpu_loop"] = max(0.0, cpu_main - split.desk - split.engine) / wall
        out["cpu_writer"] = cpu_writer / wall
        ladder.probe = False
    finally:
        split.uninstall()
        if app.sched_fd >= 0:
            os.close(app.sched_fd)
            app.sched_fd = -1
        app.exit()
        try:
            await asyncio.wait_for(run, 20)
        except Exception:
            run.cancel()
        term.close()
        Screen._on_timer_update = screen_update  # type: ignore[method-assign]
        linux_driver.WriterThread = textual_writer  # type: ignore[misc]
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="simulated flow events per second")
    ap.add_argument("--size", default="120x40")
    ap.add_argument("--refresh-hz", type=float, default=15.0)
    ap.add_argument("--no-baseline", action="store_true", help="skip the engine-alone run")
    ap.add_argument("--load", type=int, default=2, help="busy-loop processes started beside the benchmark (0: none)")
    ap.add_argument("--venues", type=int, choices=(1, 2), default=1,
                    help="2: then the desk on two venues (sim + sim-binance), figures beside the one-venue ones")
    ap.add_argument("--load-session", choices=("desk", "own"), default="desk",
                    help="busy loops in the desk's session (default: they share its autogroup) or their own")
    ap.add_argument("--writes", choices=("direct", "textual"), default="direct",
                    help="textual: every write through Textual's writer thread (ui.direct_writes = false)")
    ap.add_argument("--terminal", choices=("process", "thread"), default="process",
                    help="who reads the terminal: a child process (as a terminal emulator/tmux/sshd) or a thread "
                    "of this process (the benchmark before 24-desk-3)")
    ap.add_argument("--profile", default="", help="write a cProfile (the loop thread's CPU time, so it reads "
                    "the same under load) of the one-venue desk's measured seconds here")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    os.environ.pop("NO_COLOR", None)
    load0 = os.getloadavg()
    busy = start_load(args.load, 5 * args.seconds + 150, args.load_session)
    procs = []
    proc, port = start_sim(args.rate)
    procs.append(proc)
    r2 = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            meter = SimMeter(proc)
            base = None
            if not args.no_baseline:
                base = await engine_only(make_settings(port, Path(tmp) / "a.db", args.refresh_hz), args.seconds, meter)
            direct = args.writes == "direct"
            r = await with_desk(make_settings(port, Path(tmp) / "b.db", args.refresh_hz, direct_writes=direct),
                                args.seconds, (w, h), meter, profile=args.profile, reader=args.terminal)
            if args.venues == 2:
                proc2, port2 = start_sim(args.rate, "binance", 1019)
                procs.append(proc2)
                second = (make_settings(port2, Path(tmp) / "c.db", args.refresh_hz, "sim-binance", direct), SimMeter(proc2))
                r2 = await with_desk(make_settings(port, Path(tmp) / "c.db", args.refresh_hz, direct_writes=direct),
                                     args.seconds, (w, h), meter, second, reader=args.terminal)
    finally:
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        for b in busy:
            b.kill()
            b.wait()
    lat = r["lat"]
    med = statistics.median(lat) if lat else float("nan")
    print(f"desk benchmark: {args.seconds:g} s, sim {args.rate:g} events/s (child process), terminal {w}x{h} (pty, "
          f"Textual's Linux driver), refresh_hz {args.refresh_hz:g}; {args.load} busy-loop processes beside it "
          f"({args.load_session} session, autogroup {autogroup()}); "
          f"load average before {load0[0]:.2f} on {os.cpu_count()} cores, after {os.getloadavg()[0]:.2f}")
    direct, queued = r["direct"]
    ho = r["handed_over"]
    if args.writes == "direct" and direct is None:
        print("  (this tree's desk has no direct writes: every frame went through Textual's writer thread)")
    print(f"  writes                       : --writes {args.writes} ({r['writer']}"
          + (f": {direct} direct, {queued} through its thread" if direct is not None else "")
          + f"), terminal read by a {args.terminal}; frames that waited for the writer thread: {len(ho)}"
          + (f", end of _display -> written median {statistics.median(ho):.1f} ms, max {max(ho):.1f} ms" if ho else ""))
    print(f"  book updates pushed by sim   : {r['sim_rate']:8.0f} /s (websocket book messages, 3 symbols)")
    print(f"  book updates into the engine : {r['book_rate']:8.0f} /s (BookEvents; ccxt hands the feed the latest book"
          f" per await, so a busy loop merges messages)")
    print(f"  update -> frame written      : median {med:6.1f} ms   p99 {pct(lat, 0.99):6.1f} ms   "
          f"max {max(lat) if lat else float('nan'):6.1f} ms   (n={len(lat)})   goal p99 <= 50 ms")
    st = r["stages"]
    if st:
        cols = list(zip(*st))
        print("  where it went (median / p99 ms): " + "   ".join(
            f"{name} {statistics.median(c):.1f} / {pct(list(c), 0.99):.1f}"
            for name, c in zip(("received->drained", "drained->rendered", "rendered->written"), cols)))
    sc = r.get("sched", [])
    if sc:
        cols = list(zip(*sc))
        print("  drained->written, loop thread (median / p99 / sum ms): " + "   ".join(
            f"{name} {statistics.median(c):.1f} / {pct(list(c), 0.99):.1f} / {sum(c):.0f}"
            for name, c in zip(("on a CPU", "waiting for a CPU", "blocked (GIL, lock, sleep)"), cols)))
    fc = r["frame_cpu"]
    if fc:
        print(f"  CPU of a screen update       : median {statistics.median(fc):.2f} ms   p99 {pct(fc, 0.99):.2f} ms"
              f"   ({len(fc)} updates: layout when asked, widgets rendered, compositor, encode)")
    gcs = r.get("gc", [])
    if gcs:
        by_gen = {g: [(w, c) for gen, w, c in gcs if gen == g] for g in sorted({g for g, _, _ in gcs})}
        print("  GC in the window             : " + "   ".join(
            f"gen{g}: {len(v)} runs, CPU {sum(c for _, c in v):.1f} ms (max {max(c for _, c in v):.2f}), "
            f"wall max {max(w for w, _ in v):.1f} ms" for g, v in by_gen.items()))
    print(f"  frames with a new book       : {r['frames']:8.1f} /s   frames written {r['displays']:.1f} /s   "
          f"{r['bytes'] / 1024:.0f} KiB/s to the terminal   pump ticks {r['pumps']:.1f} /s")
    print(f"  CPU desk (same run)          : {r['cpu_desk'] * 100:8.1f} % of one core (Textual writer thread "
          f"{r['cpu_writer'] * 100:.1f} %)   goal <= 30 %")
    print(f"  CPU engine (same run)        : {r['cpu_engine'] * 100:8.1f} % of one core")
    print(f"  CPU event loop between calls : {r['cpu_loop'] * 100:8.1f} % (select/scheduling, shared)")
    print(f"  CPU process (w/o terminal)   : {r['cpu_all'] * 100:8.1f} % of one core")
    if base is not None:
        print(f"  CPU engine alone (run before): {base[0] * 100:8.1f} % of one core ({base[1]:.0f} BookEvents/s from"
              f" {base[2]:.0f} pushed/s)")
    print(f"  bus events dropped by the desk subscription: {r['dropped']}")
    if r2 is not None:
        lat2 = r2["lat"]
        med2 = statistics.median(lat2) if lat2 else float("nan")
        print(f"two venues on the desk (sim + sim-binance, {args.rate:g} events/s each), same run; one venue in []")
        print(f"  book updates pushed by sims  : {r2['sim_rate']:8.0f} + {r2.get('sim_rate_2', float('nan')):.0f} /s"
              f"   [{r['sim_rate']:.0f}]")
        print(f"  book updates into the engines: {r2['book_rate']:8.0f} /s (both venues)   [{r['book_rate']:.0f}]")
        print(f"  update -> frame written (sim): median {med2:6.1f} ms   p99 {pct(lat2, 0.99):6.1f} ms   "
              f"max {max(lat2) if lat2 else float('nan'):6.1f} ms   (n={len(lat2)})   [median {med:.1f}, p99 "
              f"{pct(lat, 0.99):.1f} ms]")
        print(f"  frames with a new book       : {r2['frames']:8.1f} /s   frames written {r2['displays']:.1f} /s   "
              f"{r2['bytes'] / 1024:.0f} KiB/s   [{r['frames']:.1f} /s, {r['displays']:.1f} /s, "
              f"{r['bytes'] / 1024:.0f} KiB/s]")
        print(f"  CPU desk                     : {r2['cpu_desk'] * 100:8.1f} % of one core   [{r['cpu_desk'] * 100:.1f} %]")
        print(f"  CPU engines                  : {r2['cpu_engine'] * 100:8.1f} % of one core   [{r['cpu_engine'] * 100:.1f} %]")
        print(f"  CPU process (w/o terminal)   : {r2['cpu_all'] * 100:8.1f} % of one core   [{r['cpu_all'] * 100:.1f} %]")
        print(f"  bus events dropped by the desk subscriptions: {r2['dropped']}   [{r['dropped']}]")


if __name__ == "__main__":
    asyncio.run(main())
