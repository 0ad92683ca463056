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
- latency from `BookEvent.received` (perf_counter when the engine got the update) to the end of
  `App._display` for the first frame that holds it: composed, encoded and handed to the driver's
  writer thread, which writes it to the terminal (`post_display_hook`, called right after). Books
  superseded before any frame (the desk draws the newest) are not drawn and not in the sample;
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


def make_settings(port: int, db: Path, refresh_hz: float, venue: str = "sim"):
    from tps19.config import Settings

    return Settings(exchange={"id": venue, "rest_url": f"http://127.0.0.1:{port}"}, database={"path": db},
                    ui={"refresh_hz": refresh_hz})


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


class Terminal:
    """A pseudo-terminal of a given size on fds 0 and 2 (where Textual's Linux driver reads and
    writes), drained by a thread that counts the bytes; restores the fds on close."""

    def __init__(self, cols: int, rows: int) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.saved = (os.dup(0), os.dup(2))
        os.dup2(self.slave, 0)
        os.dup2(self.slave, 2)
        self.bytes = 0
        self.cpu = 0.0
        self.thread = threading.Thread(target=self._drain, name="bench-terminal", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:
                break
            if not data:
                break
            self.bytes += len(data)
            self.cpu = time.thread_time()

    def close(self) -> None:
        os.dup2(self.saved[0], 0)
        os.dup2(self.saved[1], 2)
        for fd in (*self.saved, self.slave, self.master):
            try:
                os.close(fd)
            except OSError:
                pass


async def with_desk(settings, seconds: float, size: tuple[int, int], meter: SimMeter,
                    second: tuple[object, SimMeter] | None = None, profile: str = "") -> dict:
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

        _pump_started: float | None = None

        def _pump(self) -> None:
            t = self._pump_started = time.perf_counter()
            try:
                super()._pump()  # may write the frame itself (post_display_hook inside)
            finally:
                self._pump_started = None
            book = self.state.books.get(self.symbol)
            if book is not None and book.received not in self.drained and self.ladder is not None \
                    and self.ladder._probed is not book:
                self.drained[book.received] = t

        def post_display_hook(self) -> None:
            # right after App._display: the frame is composed, encoded and handed to the writer
            now = time.perf_counter()
            self.displays += 1
            if self.ladder is not None and self.ladder.rendered:
                self.lat.extend((now - received) * 1000 for received, _ in self.ladder.rendered)
                for received, rendered in self.ladder.rendered:
                    pumped = self.drained.pop(received, self._pump_started)
                    if pumped is not None:
                        self.stages.append(((pumped - received) * 1000, (rendered - pumped) * 1000,
                                            (now - rendered) * 1000))
                self.ladder.rendered.clear()
                if len(self.drained) > 1000:
                    self.drained.clear()

    from textual.screen import Screen

    screen_update = Screen._on_timer_update

    def timed_update(screen: Screen) -> None:  # the screen's update: layout if asked, render, compose, encode
        t0 = time.thread_time()
        screen_update(screen)
        if isinstance(screen.app, BenchDesk):
            screen.app.frame_cpu.append((time.thread_time() - t0) * 1000)

    Screen._on_timer_update = timed_update  # type: ignore[method-assign]
    term = Terminal(*size)
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
        main = threading.main_thread()
        ladder.rendered.clear()
        app.lat = []
        app.stages = []
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

            prof = cProfile.Profile()
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
        out["lat"] = list(app.lat)
        out["stages"] = list(app.stages)
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
        app.exit()
        try:
            await asyncio.wait_for(run, 20)
        except Exception:
            run.cancel()
        term.close()
        Screen._on_timer_update = screen_update  # type: ignore[method-assign]
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
    ap.add_argument("--profile", default="", help="write a cProfile (wall clock, so best with --load 0) of the "
                    "one-venue desk's measured seconds here")
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
            r = await with_desk(make_settings(port, Path(tmp) / "b.db", args.refresh_hz), args.seconds, (w, h), meter,
                                profile=args.profile)
            if args.venues == 2:
                proc2, port2 = start_sim(args.rate, "binance", 1019)
                procs.append(proc2)
                second = (make_settings(port2, Path(tmp) / "c.db", args.refresh_hz, "sim-binance"), SimMeter(proc2))
                r2 = await with_desk(make_settings(port, Path(tmp) / "c.db", args.refresh_hz), args.seconds, (w, h),
                                     meter, second)
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
