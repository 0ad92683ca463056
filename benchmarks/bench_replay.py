"""Record / replay / divergence figures (issue 23). Prints; asserts nothing.

1. Recording cost at a paced 1,000 events/s of Crypto.com-format frames: CPU of the process
   (event loop + writer thread) with the recorder, minus the same paced loop without it, as a
   share of one core; bytes per event on disk.
2. In-process replay backtest (the paper broker's fill model) on a synthetic recording: book
   events/s; beside it the bar engine (`run_backtest`, sma_cross) on the same machine in the same
   run: bars/s, and the ratio.
4. `tps19 replay --speed max` through the simulated exchange's websocket to a headless engine: frames/s.
3. `divergence` of a one-hour paper session at 1,000 events/s (3.6 M frames, the engine's views
   of them, a strategy): wall time (the goal is < 60 s).

Usage: .venv/bin/python benchmarks/bench_replay.py [--record-seconds 10] [--events 500000] [--hour-events 3600000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

T0_MS = 1_800_000_000_000


def frames(n: int, seed: int = 7, symbols: tuple[str, ...] = ("BTC_USDT", "ETH_USDT"),
           trade_every: int = 20) -> list[tuple[str, str]]:
    """(kind, raw frame) like the simulated exchange sends: a snapshot per symbol, then deltas of
    1-3 levels and a print every ``trade_every`` events."""
    rng = random.Random(seed)
    mids = {s: 60000.0 if s.startswith("BTC") else 3000.0 for s in symbols}
    seq = {s: 1000 for s in symbols}
    out: list[tuple[str, str]] = []

    def env(result: dict) -> str:
        return json.dumps({"id": -1, "method": "subscribe", "code": 0, "result": result}, separators=(",", ":"))

    for s in symbols:
        m = mids[s]
        bids = [[f"{m - 0.5 - i:.2f}", f"{rng.uniform(0.1, 3):.4f}", "1"] for i in range(50)]
        asks = [[f"{m + 0.5 + i:.2f}", f"{rng.uniform(0.1, 3):.4f}", "1"] for i in range(50)]
        out.append(("book", env({"instrument_name": s, "subscription": f"book.{s}.50", "channel": "book", "depth": 50,
                                 "data": [{"bids": bids, "asks": asks, "u": seq[s], "t": T0_MS, "cs": 0}]})))
    tid = 0
    for k in range(n):
        s = symbols[k % len(symbols)]
        t = T0_MS + k
        if k % trade_every == 0:
            tid += 1
            side = "BUY" if rng.random() < 0.5 else "SELL"
            px = mids[s] + (0.5 if side == "BUY" else -0.5)
            out.append(("trade", env({"instrument_name": s, "subscription": f"trade.{s}", "channel": "trade",
                                      "data": [{"d": str(tid), "t": t, "p": f"{px:.2f}", "q": "0.0100", "s": side,
                                                "i": s}]})))
            continue
        pu = seq[s]
        seq[s] += 1
        m = mids[s]
        side = "bids" if rng.random() < 0.5 else "asks"
        lv = []
        for _ in range(rng.randint(1, 3)):
            off = 0.5 + rng.randint(0, 49)
            px = m - off if side == "bids" else m + off
            lv.append([f"{px:.2f}", "0" if rng.random() < 0.1 else f"{rng.uniform(0.1, 3):.4f}", "1"])
        upd = {"bids": lv, "asks": []} if side == "bids" else {"bids": [], "asks": lv}
        out.append(("delta", env({"instrument_name": s, "subscription": f"book.{s}.50", "channel": "book.update",
                                  "depth": 50, "data": [{"update": upd, "t": t, "tt": t, "u": seq[s], "pu": pu,
                                                         "cs": 0}]})))
    return out


MARKETS = {
    "BTC/USDT": {"id": "BTC_USDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "type": "spot", "spot": True,
                 "active": True, "precision": {"amount": 0.0001, "price": 0.01},
                 "limits": {"amount": {"min": 0.0001, "max": None}, "price": {"min": None, "max": None},
                            "cost": {"min": 1, "max": None}}, "maker": 0.0004, "taker": 0.0006},
    "ETH/USDT": {"id": "ETH_USDT", "symbol": "ETH/USDT", "base": "ETH", "quote": "USDT", "type": "spot", "spot": True,
                 "active": True, "precision": {"amount": 0.001, "price": 0.01},
                 "limits": {"amount": {"min": 0.001, "max": None}, "price": {"min": None, "max": None},
                            "cost": {"min": 1, "max": None}}, "maker": 0.0004, "taker": 0.0006},
}


def write_recording(root: Path, items: list[tuple[str, str]], *, session: bool, events_per_s: float = 1000.0,
                    strategy: str | None = None) -> float:
    """A recording of ``items`` received at ``events_per_s``; with ``session`` the engine's views too
    (a paper session that published every book and print, running ``strategy``). Returns seconds."""
    from tps19.engine.recording.format import VIEW_BAR, VIEW_BOOK, VIEW_TRADES
    from tps19.engine.recording.tap import Recorder
    from tps19.engine.recording.writer import WriterSettings

    step = int(1e9 / events_per_s)
    clock = [T0_MS * 1_000_000]
    rec = Recorder(root, "sim", "sim", WriterSettings(batch_rows=50_000, max_buffered_rows=2_000_000),
                   clock_ns=lambda: clock[0]).start()
    rec.set_markets(MARKETS)
    meta = {"mode": "paper" if session else None, "exchange_id": "sim", "symbols": list(MARKETS), "markets": MARKETS,
            "timeframe": "1m", "book_depth": 50, "balances": {"USDT": "100000", "BTC": "1", "ETH": "10"},
            "strategy": strategy, "params": {"fast": 5, "slow": 20} if strategy else {}}
    rec.meta(meta)
    t0 = time.perf_counter()
    bar: dict[str, list[float]] = {}
    tid = 0
    for k, (kind, raw) in enumerate(items):
        clock[0] += step
        rec.frame(raw)
        if not session:
            continue
        sym = "BTC/USDT" if '"BTC_USDT"' in raw[:120] else "ETH/USDT"
        if kind == "trade":
            tid += 1
            d = json.loads(raw)["result"]["data"][0]
            rec.event(VIEW_TRADES, sym, [d["d"]])
            ts, px = int(d["t"]), float(d["p"])
            start = ts - ts % 60_000
            b = bar.get(sym)
            if b is not None and start > b[0]:
                rec.event(VIEW_BAR, sym, {"symbol": sym, "timeframe": "1m", "ts": int(b[0]), "open": b[1], "high": b[2],
                                          "low": b[3], "close": b[4], "volume": b[5], "closed": True})
                b = None
            if b is None:
                bar[sym] = [start, px, px, px, px, 0.01]
            else:
                b[2], b[3], b[4], b[5] = max(b[2], px), min(b[3], px), px, b[5] + 0.01
        else:
            rec.event(VIEW_BOOK, sym, "", seq=k)
        if k % 200_000 == 0:
            rec.writer.sync()
    rec.close()
    return time.perf_counter() - t0


def bench_recording(seconds: float) -> None:
    from tps19.engine.recording.tap import Recorder
    from tps19.engine.recording.writer import WriterSettings, files_of

    items = frames(int(seconds * 1000) + 10)

    async def paced(rec: Recorder | None) -> tuple[float, float, int]:
        n = 0
        t_start = time.perf_counter()
        c_start = time.process_time()
        while n < len(items):
            due = t_start + n / 1000.0
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # what the loop would do with a frame anyway: a json decode (ccxt's) per frame
            for _ in range(10):
                if n >= len(items):
                    break
                raw = items[n][1]
                json.loads(raw)
                if rec is not None:
                    rec.frame(raw)
                n += 1
        if rec is not None:
            await asyncio.to_thread(rec.close)
        return time.perf_counter() - t_start, time.process_time() - c_start, n

    wall0, cpu0, n0 = asyncio.run(paced(None))
    tmp = Path(tempfile.mkdtemp(prefix="tps19-bench-rec-"))
    try:
        rec = Recorder(tmp, "sim", "sim", WriterSettings()).start()  # (imports pyarrow: before the clock starts)
        rec.set_markets(MARKETS)
        wall1, cpu1, n1 = asyncio.run(paced(rec))
        size = sum(f.stat().st_size for f in files_of(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    share = (cpu1 - cpu0) / wall1 * 100
    print(f"1. recording at 1,000 events/s for {wall1:.1f} s: {share:.2f} % of a core for the recorder "
          f"(process {cpu1 / wall1 * 100:.2f} % with it, {cpu0 / wall0 * 100:.2f} % without); "
          f"{size / n1:.1f} bytes/event on disk ({size / 1e6:.2f} MB for {n1:,} frames)  [goal <= 5 %]")


def bench_replay(events: int) -> None:
    import numpy as np

    from tps19.config import Settings
    from tps19.engine.backtest import BacktestConfig, run_backtest
    from tps19.engine.recording.replayer import ReplayOptions, replay_backtest
    from tps19.engine.strategies import create

    tmp = Path(tempfile.mkdtemp(prefix="tps19-bench-replay-"))
    try:
        os.chdir(tmp)
        root = tmp / "rec"
        write_recording(root, frames(events), session=False)
        settings = Settings(database={"path": tmp / "x.db"})
        res = asyncio.run(replay_backtest(root, settings, ReplayOptions(strategy=create("sma_cross", ["fast=5", "slow=20"]))))
        rate = res.book_events_per_s
        print(f"2. replay backtest in process: {res.book_frames:,} book events (+{res.prints:,} prints, "
              f"{res.books_published:,} books to the broker) in {res.elapsed_s:.2f} s = {rate:,.0f} book events/s "
              f"[goal >= 100,000]; per CPU second of the process: {res.book_events_per_cpu_s:,.0f} book events "
              f"({res.cpu_s:.2f} CPU s; on a shared machine the wall figure is the load's)")
        n = 1_000_000
        rng = np.random.default_rng(1)
        close = 60000 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
        import pandas as pd

        df = pd.DataFrame({"ts": np.arange(n, dtype=np.int64) * 60_000, "open": close, "high": close * 1.001,
                           "low": close * 0.999, "close": close, "volume": np.ones(n)})
        t0 = time.perf_counter()
        run_backtest(create("sma_cross", ["fast=5", "slow=20"]), df, BacktestConfig())
        bar_s = time.perf_counter() - t0
        print(f"   bar engine beside it (same run): {n:,} bars in {bar_s:.2f} s = {n / bar_s:,.0f} bars/s; "
              f"the bar engine moves {n / bar_s / max(rate, 1):,.1f}x as many bars as the replay moves book events")
    finally:
        os.chdir(ROOT)
        shutil.rmtree(tmp, ignore_errors=True)


def bench_wire(events: int) -> None:
    """`tps19 replay --speed max --no-ui`: the recording through the simulated exchange's websocket,
    ccxt.pro and the feed, in one process."""
    from tps19.config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET, Settings
    from tps19.engine.clock import use_clock
    from tps19.engine.engine import Engine
    from tps19.engine.headless import run_headless
    from tps19.simex.replay import ReplayExchange

    tmp = Path(tempfile.mkdtemp(prefix="tps19-bench-wire-"))
    try:
        os.chdir(tmp)
        root = tmp / "rec"
        write_recording(root, frames(events), session=False)

        async def go(paced: bool) -> tuple[float, int, int]:
            sim = ReplayExchange(root, speed=None, accounts={SIM_DEMO_API_KEY: (SIM_DEMO_SECRET, {"USDT": 1000})})
            await sim.start()
            settings = Settings(database={"path": tmp / "x.db"}, symbols={"watch": list(MARKETS)},
                                exchange={"id": "sim", "rest_url": sim.base_url},
                                feed={"watch_timeout_s": 60, "stale_after_s": 60})
            try:
                with use_clock(lambda: sim.now_ms * 1_000_000):
                    engine = Engine(settings, "paper")
                    if paced:
                        sim.pace_by(engine.bus)  # as `tps19 replay` does: every frame reaches the engine
                    t0 = time.perf_counter()
                    await run_headless(engine, tmp / "log.jsonl", stop_event=sim.finished)
                    wall = time.perf_counter() - t0
                books = sum(s.messages for (k, _), s in engine.feed.stats.streams.items() if k == "book") \
                    if engine.feed else 0
                return wall, sim.frames_sent, books
            finally:
                await sim.stop()

        for paced, what in ((True, "paced by the engine (tps19 replay)"), (False, "unpaced: socket queue only")):
            wall, sent, books = asyncio.run(go(paced))
            print(f"4. replay through the wire (--speed max, headless engine, same process), {what}: {sent:,} frames "
                  f"sent, {books:,} books reached the engine, in {wall:.1f} s = {sent / wall:,.0f} frames/s "
                  f"(start and stop of the engine included)")
    finally:
        os.chdir(ROOT)
        shutil.rmtree(tmp, ignore_errors=True)


def bench_divergence(events: int) -> None:
    from tps19.config import Settings
    from tps19.engine.recording.divergence import divergence

    tmp = Path(tempfile.mkdtemp(prefix="tps19-bench-div-"))
    try:
        os.chdir(tmp)
        root = tmp / "rec"
        t_write = write_recording(root, frames(events), session=True, strategy="sma_cross")
        settings = Settings(database={"path": tmp / "x.db"})
        t0 = time.perf_counter()
        rep = asyncio.run(divergence(root, settings))
        wall = time.perf_counter() - t0
        print(f"3. divergence of a {events / 1000 / 60:.0f}-minute session at 1,000 events/s ({events:,} frames, "
              f"{rep.rows // 2:,} rows, {rep.session_orders} orders): {wall:.1f} s [goal < 60 s] "
              f"(writing the recording took {t_write:.1f} s)")
    finally:
        os.chdir(ROOT)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--record-seconds", type=float, default=10.0)
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--hour-events", type=int, default=3_600_000)
    ap.add_argument("--wire-events", type=int, default=30_000)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: record,replay,divergence")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if "record" not in skip:
        bench_recording(a.record_seconds)
    if "replay" not in skip:
        bench_replay(a.events)
    if "wire" not in skip:
        bench_wire(a.wire_events)
    if "divergence" not in skip:
        bench_divergence(a.hour_events)


if __name__ == "__main__":
    main()
