"""Recordings written row by row for tests: Crypto.com-format frames at a chosen (old) time."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tps19.engine.recording.tap import Recorder
from tps19.engine.recording.writer import WriterSettings

OLD_NS = 1_634_000_000_000_000_000  # 2021-10-12 00:53:20 UTC: a clock no test run can have
MARKETS = {"BTC/USDT": {"id": "BTC_USDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT"}}


def _env(result: dict) -> str:
    return json.dumps({"id": -1, "method": "subscribe", "code": 0, "result": result}, separators=(",", ":"))


def market_recording(root: Path, n: int = 300, *, start_ns: int = OLD_NS, step_ns: int = 1_000_000,
                     seed: int = 3) -> dict:
    """A snapshot, then ``n`` frames (book deltas with a print every 10th) for BTC/USDT, received
    ``step_ns`` apart from ``start_ns``. Returns what a reader should find: the final book (top
    levels as floats) and its sequence number, the number of book frames and prints."""
    rng = random.Random(seed)
    clock = [start_ns]
    rec = Recorder(root, "sim", "sim", WriterSettings(batch_rows=1000), clock_ns=lambda: clock[0]).start()
    rec.set_markets(MARKETS)
    rec.meta({"mode": None, "exchange_id": "sim", "symbols": ["BTC/USDT"], "markets": MARKETS, "book_depth": 50})
    bids = {60000.0 - i: round(rng.uniform(0.1, 2), 4) for i in range(1, 31)}
    asks = {60000.0 + i: round(rng.uniform(0.1, 2), 4) for i in range(1, 31)}
    t_ms = start_ns // 1_000_000
    u = 5000
    rec.frame(_env({"instrument_name": "BTC_USDT", "subscription": "book.BTC_USDT.50", "channel": "book", "depth": 50,
                    "data": [{"bids": [[f"{p:.2f}", f"{q}", "1"] for p, q in sorted(bids.items(), reverse=True)],
                              "asks": [[f"{p:.2f}", f"{q}", "1"] for p, q in sorted(asks.items())],
                              "u": u, "t": t_ms, "tt": t_ms, "cs": 0}]}))
    book_frames, prints = 1, 0
    for k in range(n):
        clock[0] += step_ns
        t_ms = clock[0] // 1_000_000
        if k % 10 == 9:
            prints += 1
            rec.frame(_env({"instrument_name": "BTC_USDT", "subscription": "trade.BTC_USDT", "channel": "trade",
                            "data": [{"d": str(100 + k), "t": t_ms, "p": f"{max(bids):.2f}", "q": "0.0100",
                                      "s": "SELL", "i": "BTC_USDT"}]}))
            continue
        side = bids if rng.random() < 0.5 else asks
        p = (60000.0 - rng.randint(1, 30)) if side is bids else (60000.0 + rng.randint(1, 30))
        q = 0.0 if rng.random() < 0.2 and len(side) > 5 else round(rng.uniform(0.1, 2), 4)
        if q:
            side[p] = q
        else:
            side.pop(p, None)
        lv = [[f"{p:.2f}", f"{q}" if q else "0", "1"]]
        upd = {"bids": lv, "asks": []} if side is bids else {"bids": [], "asks": lv}
        rec.frame(_env({"instrument_name": "BTC_USDT", "subscription": "book.BTC_USDT.50", "channel": "book.update",
                        "depth": 50, "data": [{"update": upd, "t": t_ms, "tt": t_ms, "u": u + 1, "pu": u, "cs": 0}]}))
        u += 1
        book_frames += 1
    rec.close()
    return {"bids": sorted(bids.items(), reverse=True), "asks": sorted(asks.items()), "seq": u,
            "book_frames": book_frames, "prints": prints, "last_ms": t_ms}
