"""Order-book figures for the Foundation issue. Prints; asserts nothing.

1. What production does with a book message: ccxt.pro's OrderBook applies the deltas, the feed
   copies the top into the engine's L2Book and a BookEvent (synthetic stream); and the real
   Binance depth recording replayed through ccxt.pro's binance client.
2. Book messages/s end to end: simulated exchange -> websocket -> ccxt.pro -> engine BookEvent.
3. Wall time of `tps19 --help`.

Usage: .venv/bin/python benchmarks/bench_book.py [--seconds 10] [--skip-e2e]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_deltas(n: int, seed: int = 1) -> list[tuple[bool, float, float]]:
    rng = random.Random(seed)
    mid = 60000.0
    out = []
    for _ in range(n):
        mid += rng.gauss(0, 0.5)
        is_bid = rng.random() < 0.5
        off = round(rng.expovariate(1 / 20.0) * 0.1 + 0.1, 1)
        price = round(mid - off if is_bid else mid + off, 1)
        size = 0.0 if rng.random() < 0.2 else round(rng.expovariate(1.0), 4)
        out.append((is_bid, price, size))
    return out


def bench_deltas(n: int = 1_000_000, repeats: int = 3, depth: int = 50) -> None:
    """What production does with a book message: ccxt.pro applies the deltas to its own book, and
    the feed copies the top ``depth`` levels into the engine's L2Book and a BookEvent. Timed per
    message of 10 deltas (the feed reads at most once per message; under load, ccxt hands a waiting
    watch only the newest book, so fewer reads than messages)."""
    from ccxt.async_support.base.ws.order_book import OrderBook

    from tps19.engine.events import BookEvent
    from tps19.engine.orderbook import L2Book

    deltas = make_deltas(n)
    bid_batch = [[p, s] for b, p, s in deltas if b]
    ask_batch = [[p, s] for b, p, s in deltas if not b]
    k = 10
    msgs = [(bid_batch[i:i + k], ask_batch[i:i + k]) for i in range(0, min(len(bid_batch), len(ask_batch)), k)]
    nd = sum(len(b) + len(a) for b, a in msgs)

    def run(read: bool) -> float:
        ob = OrderBook()
        bids, asks = ob["bids"], ob["asks"]
        book = L2Book("BTC/USDT")
        t = time.perf_counter()
        for seq, (b, a) in enumerate(msgs):
            for d in b:
                bids.storeArray(d)
            for d in a:
                asks.storeArray(d)
            if read:  # the feed's read (feed.py _book_once): copy the top, keep it, publish it
                top_b = tuple((l[0], l[1]) for l in bids[:depth])
                top_a = tuple((l[0], l[1]) for l in asks[:depth])
                book.snapshot(top_b, top_a, seq=seq)
                BookEvent("BTC/USDT", top_b, top_a, None, seq)
        return time.perf_counter() - t

    apply_only = min(run(False) for _ in range(repeats))
    with_read = min(run(True) for _ in range(repeats))
    print(f"Book messages of {k} deltas (synthetic random walk, 20% deletes), top {depth} levels read:")
    print(f"  ccxt OrderBook apply only                     : {nd / apply_only:>12,.0f} deltas/s  {len(msgs) / apply_only:>10,.0f} msgs/s")
    print(f"  ccxt apply + feed read (L2Book + BookEvent)   : {nd / with_read:>12,.0f} deltas/s  {len(msgs) / with_read:>10,.0f} msgs/s")
    print(f"  feed read per message                         : {(with_read - apply_only) / len(msgs) * 1e6:>12.1f} us")

    from tests.engine.binance_replay import DATA, binance_client, load, replay

    if DATA.exists():
        snaps, messages, _ = load()
        levels = sum(len(m["msg"]["data"]["b"]) + len(m["msg"]["data"]["a"]) for m in messages)
        snap_levels = sum(len(s["body"]["bids"]) + len(s["body"]["asks"]) for s in snaps.values())

        async def replay_once() -> tuple[float, float]:
            ex = binance_client(list(snaps))
            handle = ex.handle_message
            in_diffs = [0.0]

            def timed(client, message):  # the clock runs only inside ccxt's handling of a diff
                t = time.perf_counter()
                handle(client, message)
                in_diffs[0] += time.perf_counter() - t

            ex.handle_message = timed
            try:
                t = time.perf_counter()
                await replay(ex, snaps, messages)
                return time.perf_counter() - t, in_diffs[0]
            finally:
                await ex.close()

        runs = [asyncio.run(replay_once()) for _ in range(20)]
        whole, diffs = min(r[0] for r in runs), min(r[1] for r in runs)
        print(f"Real Binance depth through ccxt.pro binance ({len(snaps)} snapshots of {snap_levels} levels + "
              f"{len(messages)} diffs of {levels} levels, sequence checks):")
        print(f"  diffs only (ccxt handle_message)              : {levels / diffs:>12,.0f} deltas/s  {len(messages) / diffs:>10,.0f} msgs/s")
        print(f"  whole replay incl. snapshots and their unroll : {whole * 1000:>12.1f} ms")


async def bench_e2e(seconds: float, rate: float) -> None:
    """The sim runs in its own process (`tps19 exchange`), as a real venue would be elsewhere."""
    import socket

    import ccxt.pro as ccxtpro

    from tps19.config import FeedSettings
    from tps19.engine.bus import EventBus
    from tps19.engine.events import BookEvent
    from tps19.engine.feed import MarketFeed
    from tps19.engine.venue import install_gap_guard
    from tps19.simex import point_ccxt

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tps19.cli", "exchange", "--port", str(port), "--rate", str(rate)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    client = ccxtpro.cryptocom({"enableRateLimit": False, "newUpdates": True})
    point_ccxt(client, f"http://127.0.0.1:{port}")
    gaps, raw = [0], [0]
    install_gap_guard(client, gaps, raw)
    try:
        for _ in range(100):
            try:
                await client.load_markets()
                break
            except Exception:
                await asyncio.sleep(0.1)
        bus = EventBus()
        count = [0]
        lat: list[float] = []

        def on_book(e: BookEvent) -> None:
            count[0] += 1
            if e.ts:
                lat.append(time.time() * 1000 - e.ts)

        bus.on(BookEvent, on_book)
        feed = MarketFeed(client, symbols, bus, FeedSettings(), depth=50, streams=("book",))
        await feed.start()
        await asyncio.sleep(2.0)  # warm-up: snapshots, connection
        c0, l0, r0 = count[0], len(lat), raw[0]
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)
        dt = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        n, nraw = count[0] - c0, raw[0] - r0
        window = sorted(lat[l0:])
        await feed.stop()
    finally:
        await client.close()
        proc.terminate()
        proc.wait(10)
    print(f"End to end (sim process -> websocket -> ccxt.pro -> engine), {len(symbols)} symbols, sim --rate {rate:g}, {dt:.1f}s:")
    print(f"  book messages/s applied by ccxt.pro           : {nraw / dt:>10,.0f}")
    print(f"  book events/s published by the engine         : {n / dt:>10,.0f}  (ccxt hands a waiting watch the latest book)")
    if window:
        print(f"  exchange time -> engine event, p50 / p99 ms   : {statistics.median(window):>7.1f} / {window[int(len(window) * 0.99) - 1]:.1f}")
    print(f"  engine process CPU                            : {100 * cpu / dt:.0f}% of one core")
    print(f"  resyncs {feed.stats.total('resyncs')}, gaps {gaps[0]}, errors {feed.stats.total('errors')}")


def bench_help(runs: int = 10) -> None:
    exe = ROOT / ".venv" / "bin" / "tps19"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tps19.cli"]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd + ["--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    print(f"`tps19 --help` wall time: median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms ({runs} runs)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--rate", type=float, default=600.0, help="sim book events per second (all symbols)")
    args = ap.parse_args()
    bench_deltas()
    if not args.skip_e2e:
        asyncio.run(bench_e2e(args.seconds, args.rate))
    bench_help()


if __name__ == "__main__":
    main()
