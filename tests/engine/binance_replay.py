"""Replay of the recorded Binance depth in /work/shared/data (REST snapshots + the diff stream)
through ccxt.pro's binance client: the code that keeps a venue's book in production (the feed reads
ccxt.pro's book; TPS19 applies no deltas of its own). Messages are handed to ccxt's own handlers
in the order they were received; each snapshot arrives, through ccxt's own subscription and
snapshot task, at the moment it was recorded. No network: the REST snapshot call is answered
from the recording. Shared by tests/engine/test_orderbook.py and benchmarks/bench_book.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

# beside the checkout (CI), else the machine's shared folder (a worktree elsewhere)
DATA = next((d for d in (Path(__file__).resolve().parents[2].parent / "shared" / "data", Path("/work/shared/data"))
             if d.exists()), Path("/work/shared/data"))
QUOTES = ("USDT", "ETH", "BTC", "EUR")


def load() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(REST snapshots by market id, depthUpdate messages as received, the expected final books)."""
    snaps = json.loads((DATA / "binance_depth_rest_snapshots_2021-10-12.json").read_text())
    expected = json.loads((DATA / "binance_depth_expected_final_books.json").read_text())
    messages = []
    for line in (DATA / "binance_ws_combined_stream_2021-10-12.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["msg"].get("data", {}).get("e") == "depthUpdate":
            messages.append(rec)
    return snaps, messages, expected


def symbol_of(market_id: str) -> str:
    quote = next(q for q in QUOTES if market_id.endswith(q))
    return f"{market_id[:-len(quote)]}/{quote}"


def binance_client(market_ids: list[str]) -> Any:
    """A ccxt.pro binance client that knows the recorded spot markets (no load_markets: no network)."""
    import ccxt.pro as ccxtpro

    ex = ccxtpro.binance({"enableRateLimit": False})
    markets = []
    for mid in market_ids:
        base, quote = symbol_of(mid).split("/")
        markets.append({"id": mid, "symbol": f"{base}/{quote}", "base": base, "quote": quote, "baseId": base,
                        "quoteId": quote, "type": "spot", "spot": True, "margin": False, "swap": False, "future": False,
                        "option": False, "contract": False, "linear": None, "inverse": None, "active": True,
                        "precision": {}, "limits": {}, "info": {}})
    ex.set_markets(markets)
    return ex


async def replay(ex: Any, snaps: dict[str, Any], messages: list[dict[str, Any]],
                 keep: Callable[[dict[str, Any]], bool] = lambda m: True) -> Any:
    """Subscribe every recorded symbol, then deliver the diffs (those ``keep`` accepts) and each
    snapshot in the order they were received. Returns ccxt's websocket client object."""
    client = ex.client(ex.urls["api"]["ws"]["spot"] + "/stream")  # never connected
    arrived = {symbol_of(mid): asyncio.Event() for mid in snaps}

    async def rest_snapshot(symbol: str, limit: Any = None, params: Any = None) -> Any:
        await arrived[symbol].wait()
        body = snaps[ex.market_id(symbol)]["body"]
        ob = ex.parse_order_book(body, symbol)
        ob["nonce"] = body["lastUpdateId"]
        return ob

    ex.fetch_rest_order_book_safe = rest_snapshot
    for mid in snaps:  # what watch_order_book does once the venue confirms the subscription
        ex.handle_order_book_subscription(client, None, {"symbol": symbol_of(mid), "type": "spot", "limit": 1000})
    events = [(snap["recv_ts"], 1, mid) for mid, snap in snaps.items()]
    events += [(m["recv_ts"], 0, i) for i, m in enumerate(messages)]
    for _, is_snapshot, ref in sorted(events):
        if is_snapshot:
            symbol = symbol_of(ref)
            arrived[symbol].set()
            while symbol in ex.orderbooks and ex.orderbooks[symbol]["nonce"] is None:
                await asyncio.sleep(0)  # ccxt's snapshot task: reset, unroll the buffered diffs
        elif keep(messages[ref]):
            ex.handle_message(client, messages[ref]["msg"])
    return client
