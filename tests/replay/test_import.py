"""The Binance depth data in ../shared/data imported as a recording: the books it rebuilds are the
ones PROVENANCE.md's checked final books say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tps19.engine.recording.books import Book
from tps19.engine.recording.format import BOOK, DELTA
from tps19.engine.recording.reader import inspect, read_rows

DATA = Path("/work/shared/data")
if not DATA.is_dir():  # beside the checkout (a worktree is two levels down)
    DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture
def data() -> Path:
    if not (DATA / "binance_ws_combined_stream_2021-10-12.jsonl").exists():
        pytest.skip(f"the shared Binance recording is not at {DATA}")
    return DATA


def test_binance_depth_imports_as_a_recording_that_rebuilds_the_checked_books(tmp_path, data):
    from tps19.cli import app

    res = CliRunner().invoke(app, ["import", str(data), "--recording", str(tmp_path / "rec")])
    assert res.exit_code == 0, res.output
    assert "177 delta" in res.output and "4 book" in res.output
    info = inspect(tmp_path / "rec")
    assert info.venues == ["binance"] and info.symbols == ["BLZ/ETH", "LRC/BTC", "NKN/USDT", "RUNE/EUR"]
    assert info.by_kind["delta"] == 177 and info.by_kind["book"] == 4
    rows = list(read_rows(tmp_path / "rec"))
    assert [r[1] for r in rows] == sorted(r[1] for r in rows) and [r[2] for r in rows] == sorted(r[2] for r in rows)
    books: dict[str, Book] = {}
    applied: dict[str, int] = {}
    for r in rows:
        if r[4] == BOOK:
            books.setdefault(r[5], Book()).snapshot(r[8], r[9], r[10], r[11], r[6], r[3])
        elif r[4] == DELTA and r[5] in books and r[6] > books[r[5]].seq:
            assert r[7] + 1 <= books[r[5]].seq + 1  # contiguous: U <= previous u + 1
            books[r[5]].apply(r[8], r[9], r[10], r[11], r[6], r[3])
            applied[r[5]] = applied.get(r[5], 0) + 1
    expected = json.loads((data / "binance_depth_expected_final_books.json").read_text())
    for market_id, exp in ((k, v) for k, v in expected.items() if not k.startswith("_")):
        sym = {"NKNUSDT": "NKN/USDT", "BLZETH": "BLZ/ETH", "LRCBTC": "LRC/BTC", "RUNEEUR": "RUNE/EUR"}[market_id]
        b = books[sym]
        bids, asks = b.levels(5)
        assert applied.get(sym, 0) == exp["diffs_applied"], sym
        assert b.seq == exp["final_u"]
        assert len(b.bids.size) == exp["n_bid_levels"] and len(b.asks.size) == exp["n_ask_levels"]
        assert list(bids) == [(float(p), float(q)) for p, q in exp["top5_bids"]]
        assert list(asks) == [(float(p), float(q)) for p, q in exp["top5_asks"]]


def test_not_binance_data_is_one_line(tmp_path):
    from tps19.cli import app

    (tmp_path / "x.csv").write_text("a,b\n")
    res = CliRunner().invoke(app, ["import", str(tmp_path / "x.csv"), "--recording", str(tmp_path / "rec")])
    assert res.exit_code == 2 and "not Binance depth data" in res.output
