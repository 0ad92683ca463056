"""The L2 book TPS19 keeps, checked against real Binance depth data (snapshot + diff stream)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tps19.engine.orderbook import CrossedBook, L2Book, SequenceGap

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _load_binance():
    snaps = json.loads((DATA / "binance_depth_rest_snapshots_2021-10-12.json").read_text())
    expected = json.loads((DATA / "binance_depth_expected_final_books.json").read_text())
    diffs = []
    for line in (DATA / "binance_ws_combined_stream_2021-10-12.jsonl").read_text().splitlines():
        msg = json.loads(line)["msg"]["data"]
        if msg.get("e") == "depthUpdate":
            diffs.append(msg)
    return snaps, diffs, expected


@pytest.mark.skipif(not DATA.exists(), reason="shared/data not beside the checkout")
def test_real_binance_snapshot_plus_diffs_gives_the_recorded_final_books():
    snaps, diffs, expected = _load_binance()
    for symbol, exp in expected.items():
        if symbol.startswith("_"):  # "_method" describes how the books were computed
            continue
        body = snaps[symbol]["body"]
        book = L2Book(symbol)
        book.snapshot(body["bids"], body["asks"], seq=body["lastUpdateId"])
        applied = 0
        for d in diffs:
            if d["s"] == symbol and book.apply_binance(d["U"], d["u"], d["b"], d["a"]):
                applied += 1
                book.check()
        assert applied == exp["diffs_applied"]
        assert book.seq == exp["final_u"]
        assert len(book.bids) == exp["n_bid_levels"] and len(book.asks) == exp["n_ask_levels"]
        bids, asks = book.top(5)
        assert bids == tuple((float(p), float(q)) for p, q in exp["top5_bids"])
        assert asks == tuple((float(p), float(q)) for p, q in exp["top5_asks"])
        assert book.is_crossed() == exp["crossed"]


@pytest.mark.skipif(not DATA.exists(), reason="shared/data not beside the checkout")
def test_a_missing_binance_diff_is_a_gap_not_a_wrong_book():
    snaps, diffs, _ = _load_binance()
    body = snaps["NKNUSDT"]["body"]
    book = L2Book("NKNUSDT")
    book.snapshot(body["bids"], body["asks"], seq=body["lastUpdateId"])
    mine = [d for d in diffs if d["s"] == "NKNUSDT" and d["u"] > body["lastUpdateId"]]
    book.apply_binance(mine[0]["U"], mine[0]["u"], mine[0]["b"], mine[0]["a"])
    with pytest.raises(SequenceGap):
        book.apply_binance(mine[2]["U"], mine[2]["u"], mine[2]["b"], mine[2]["a"])


def test_deltas_update_delete_and_sort():
    book = L2Book("BTC/USDT")
    book.snapshot([[100, 1], [99, 2]], [[101, 1], [102, 3]], seq=10)
    book.apply([[100, 0], [99.5, 4]], [[101, 0.5], [103, 1]], seq=11, prev_seq=10)
    assert book.top(2) == (((99.5, 4.0), (99.0, 2.0)), ((101.0, 0.5), (102.0, 3.0)))
    assert book.mid() == pytest.approx(100.25)
    assert book.seq == 11


def test_sequence_gap_raises_and_leaves_book_untouched():
    book = L2Book("BTC/USDT")
    book.snapshot([[100, 1]], [[101, 1]], seq=10)
    with pytest.raises(SequenceGap):
        book.apply([[100, 5]], [], seq=13, prev_seq=12)
    assert book.bids == {100.0: 1.0} and book.seq == 10


def test_crossed_book_is_detected():
    book = L2Book("BTC/USDT")
    book.snapshot([[100, 1]], [[101, 1]])
    book.apply([[101.5, 1]], [])
    with pytest.raises(CrossedBook):
        book.check()
