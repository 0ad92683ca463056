"""`tps19 import DIR --recording OUT`: Binance depth data as a recording (book only).

The data in ``../shared/data`` (PROVENANCE.md) is REST depth snapshots
(``binance_depth_rest_snapshots_*.json``: {symbol: {url, recv_ts, body}}) and the raw combined
websocket stream they were taken beside (``binance_ws_combined_stream_*.jsonl``: {recv_ts, msg}),
both with their local receive times. They become one recording of venue ``binance``: each
snapshot a ``book`` row (raw ``{"snapshot": SYMBOL, "body": ...}``), each diff a ``delta`` row
(seq = ``u``, prev_seq = ``U - 1``), each kline a ``candle`` row, each bookTicker a ``ticker`` row
and each aggTrade a ``trade`` row, in receive order on one global sequence. (PROVENANCE.md says no
bookTicker/aggTrade messages were recorded; the 2021-10-12 file holds 84 and 2: they are imported.) Replaying it over a
Binance wire is the multi-venue issue's; `tps19 backtest --replay` rebuilds its books.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dialects import binance
from .reader import RecordingError
from .tap import Recorder
from .writer import WriterSettings

QUOTES = ("USDT", "BUSD", "USDC", "TUSD", "BTC", "ETH", "BNB", "EUR", "GBP", "TRY", "AUD", "BRL", "RUB", "DAI")


def unified(market_id: str) -> str:
    """NKNUSDT -> NKN/USDT (the longest known quote currency at the end)."""
    mid = market_id.upper()
    for q in sorted(QUOTES, key=len, reverse=True):
        if mid.endswith(q) and len(mid) > len(q):
            return f"{mid[: -len(q)]}/{q}"
    return mid


@dataclass
class ImportReport:
    rows: int
    by_kind: dict[str, int]
    skipped: int
    symbols: list[str]


def _sources(src: Path) -> tuple[list[Path], list[Path]]:
    if src.is_dir():
        return (sorted(src.glob("binance_depth_rest_snapshots_*.json")),
                sorted(src.glob("binance_ws_combined_stream_*.jsonl")))
    if src.suffix == ".jsonl":
        return sorted(src.parent.glob("binance_depth_rest_snapshots_*.json")), [src]
    if src.suffix == ".json":
        return [src], sorted(src.parent.glob("binance_ws_combined_stream_*.jsonl"))
    raise RecordingError(f"{src}: not Binance depth data (a directory, binance_ws_combined_stream_*.jsonl or "
                         "binance_depth_rest_snapshots_*.json)")


def import_binance_depth(src: Path, out: Path) -> ImportReport:
    snaps_files, stream_files = _sources(Path(src))
    if not snaps_files and not stream_files:
        raise RecordingError(f"{src}: no binance_depth_rest_snapshots_*.json or binance_ws_combined_stream_*.jsonl")
    items: list[tuple[float, int, str]] = []  # (recv seconds, file order, raw text)
    skipped = 0
    order = 0
    for f in snaps_files:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError) as err:
            raise RecordingError(f"{f}: unreadable ({err})") from None
        for sym, snap in data.items():
            order += 1
            items.append((float(snap["recv_ts"]), order, json.dumps({"snapshot": sym, "url": snap.get("url"),
                                                                     "body": snap["body"]}, separators=(",", ":"))))
    for f in stream_files:
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                order += 1
                items.append((float(rec["recv_ts"]), order, json.dumps(rec["msg"], separators=(",", ":"))))
            except (ValueError, KeyError, TypeError):
                skipped += 1  # a malformed line: counted, the rest imported
    items.sort(key=lambda x: (x[0], x[1]))
    clock = [0]
    recorder = Recorder(out, "binance", "binance", WriterSettings(batch_rows=100_000), clock_ns=lambda: clock[0]).start()
    symbols: set[str] = set()
    counts: dict[str, int] = {"book": 0, "delta": 0, "trade": 0, "ticker": 0, "candle": 0}
    parsed = []
    for recv, _, raw in items:
        row = binance(0, int(round(recv * 1e9)), raw, unified)
        if row is None:
            skipped += 1
            continue
        symbols.add(row[4])
        counts[row[3]] = counts.get(row[3], 0) + 1
        parsed.append(row)
    try:
        # what the recording is, first: a reader finds it before any frame
        markets: dict[str, Any] = {}
        for s in sorted(symbols):
            base, quote = s.split("/") if "/" in s else (s, "")
            markets[s] = {"id": s.replace("/", ""), "symbol": s, "base": base, "quote": quote, "type": "spot",
                          "spot": True, "maker": None, "taker": None}
        clock[0] = parsed[0][1] if parsed else 0
        recorder.meta({"mode": None, "venue": "binance", "exchange_id": "binance", "symbols": sorted(symbols),
                       "markets": markets, "book_depth": 1000, "source": [str(p) for p in snaps_files + stream_files],
                       "note": "imported: Binance REST depth snapshots and the combined stream recorded beside them"})
        for row in parsed:
            recorder.row((recorder.next_gseq(),) + row[1:])  # type: ignore[arg-type]
    finally:
        recorder.close()
    return ImportReport(rows=sum(counts.values()), by_kind=counts, skipped=skipped, symbols=sorted(symbols))
