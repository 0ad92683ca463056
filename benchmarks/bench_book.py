"""Order-book figures for the Foundation issue. Prints; asserts nothing.

1. L2 deltas/s applied by TPS19's own L2Book, beside ccxt's OrderBook in the same run, on the
   same delta stream (random walk around a mid, 20% deletes), and on real Binance diffs.
2. Book messages/s end to end: simulated exchange -> websocket -> ccxt.pro -> engine BookEvent.
3. Wall time of `tps19 --help`.

Usage: .venv/bin/python benchmarks/bench_book.py [--seconds 10] [--skip-e2e]
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


def bench_deltas(n: int = 1_000_000, repeats: int = 3) -> None:
    from ccxt.async_support.base.ws.order_book import OrderBook

    from tps19.engine.orderbook import L2Book

    deltas = make_deltas(n)
    bid_batch = [[p, s] for b, p, s in deltas if b]
    ask_batch = [[p, s] for b, p, s in deltas if not b]

    def run_ours() -> float:
        book = L2Book("BTC/USDT")
        t = time.perf_counter()
        book.apply(bid_batch, ask_batch)
        return time.perf_counter() - t

    def run_ours_per_message(k: int = 10) -> float:
        # A websocket message usually carries a few levels: apply in messages of k deltas.
        book = L2Book("BTC/USDT")
        msgs = [(bid_batch[i:i + k], ask_batch[i:i + k]) for i in range(0, min(len(bid_batch), len(ask_batch)), k)]
        t = time.perf_counter()
        for b, a in msgs:
            book.apply(b, a)
        return time.perf_counter() - t, sum(len(b) + len(a) for b, a in msgs)

    def msgs_of(k: int = 10) -> list[tuple[list, list]]:
        return [(bid_batch[i:i + k], ask_batch[i:i + k]) for i in range(0, min(len(bid_batch), len(ask_batch)), k)]

    def run_ours_read(msgs: list) -> float:
        book = L2Book("BTC/USDT")
        t = time.perf_counter()
        for b, a in msgs:
            book.apply(b, a)
            book.best_bid(), book.best_ask()
        return time.perf_counter() - t

    def run_ccxt_read(msgs: list) -> float:
        ob = OrderBook()
        bids, asks = ob["bids"], ob["asks"]
        t = time.perf_counter()
        for b, a in msgs:
            for d in b:
                bids.storeArray(d)
            for d in a:
                asks.storeArray(d)
            (bids[0] if bids else None), (asks[0] if asks else None)
        return time.perf_counter() - t

    def run_ccxt() -> float:
        ob = OrderBook()
        bids, asks = ob["bids"], ob["asks"]
        t = time.perf_counter()
        for d in bid_batch:
            bids.storeArray(d)
        for d in ask_batch:
            asks.storeArray(d)
        return time.perf_counter() - t

    ours = min(run_ours() for _ in range(repeats))
    theirs = min(run_ccxt() for _ in range(repeats))
    per_msg = min((run_ours_per_message() for _ in range(repeats)), key=lambda x: x[0])
    msgs = msgs_of()
    nd = sum(len(b) + len(a) for b, a in msgs)
    ours_r = min(run_ours_read(msgs) for _ in range(repeats))
    ccxt_r = min(run_ccxt_read(msgs) for _ in range(repeats))
    print(f"L2 deltas/s  apply 10 per message + read best bid/ask each message:")
    print(f"             TPS19 L2Book                        : {nd / ours_r:>12,.0f}")
    print(f"             ccxt OrderBook                      : {nd / ccxt_r:>12,.0f}")
    print(f"L2 deltas/s  TPS19 L2Book.apply (one batch)      : {n / ours:>12,.0f}")
    print(f"L2 deltas/s  TPS19 L2Book.apply (10 per message) : {per_msg[1] / per_msg[0]:>12,.0f}")
    print(f"L2 deltas/s  ccxt OrderBookSide.storeArray      : {n / theirs:>12,.0f}")
    print(f"             ratio TPS19/ccxt (one batch)        : {theirs / ours:>12.2f}x")

    data = ROOT.parent / "shared" / "data"
    if data.exists():
        snaps = json.loads((data / "binance_depth_rest_snapshots_2021-10-12.json").read_text())
        diffs = [json.loads(l)["msg"]["data"] for l in (data / "binance_ws_combined_stream_2021-10-12.jsonl").read_text().splitlines()]
        diffs = [d for d in diffs if d.get("e") == "depthUpdate"]
        body = snaps["NKNUSDT"]["body"]
        mine = [d for d in diffs if d["s"] == "NKNUSDT"]
        levels = sum(len(d["b"]) + len(d["a"]) for d in mine)
        reps = 2000
        # time diffs alone
        book = L2Book("NKNUSDT")
        acc = 0.0
        for _ in range(reps):
            book.snapshot(body["bids"], body["asks"], seq=body["lastUpdateId"])
            t0 = time.perf_counter()
            for d in mine:
                book.apply_binance(d["U"], d["u"], d["b"], d["a"])
            acc += time.perf_counter() - t0
        print(f"Real Binance NKNUSDT diffs (string prices, seq checks): {levels * reps / acc:>12,.0f} deltas/s "
              f"({len(mine) * reps / acc:,.0f} messages/s)")


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
