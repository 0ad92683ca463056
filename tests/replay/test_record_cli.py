"""`tps19 paper --no-ui --record DIR` stopped by SIGINT, as a user runs it (a child process on the
embedded simulated exchange): a clean exit with the recording complete and readable, also when the
signal is delivered twice (coreutils `timeout -s INT` signals the child, then its process group);
then `tps19 replay DIR --no-ui --speed max` of that recording hands the engine every recorded frame."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.engine.test_shutdown import Proc, _env
from tests.pty_desk import PtyDesk
from tps19.cli import app
from tps19.config import Settings
from tps19.engine.recording.books import Book
from tps19.engine.recording.format import BOOK, CANDLE, DELTA, TICKER, TRADE
from tps19.engine.recording.reader import inspect, read_rows
from tps19.engine.trading.session import summary_lines

pytestmark = pytest.mark.slow
FIGURES_EVERY = {"TPS19_LOG__SUMMARY_INTERVAL_S": "1"}


def _record(args: list[str], tmp: Path, *, twice: bool) -> tuple[Proc, Path]:
    rec = tmp / "rec"
    p = Proc([*args, "paper", "--no-ui", "--record", str(rec), "--symbol", "BTC/USDT"], tmp, stdin=twice,
             **FIGURES_EVERY)
    try:
        p.wait_line('"event":"market"')  # recording, with figures out: the market has been seen
        p.p.send_signal(signal.SIGINT)
        if twice:
            p.wait_line("STOPPING", err=True)  # the stop is running (held until stdin says go) ...
            p.p.send_signal(signal.SIGINT)  # ... when the same request arrives again
            assert p.p.stdin is not None
            p.p.stdin.write("go\n")
            p.p.stdin.flush()
        assert p.exit_code() == 0, "".join(p.out[-3:]) + "".join(p.err[-20:])
    finally:
        p.kill()
    return p, rec


def _runs(rec: Path, kind: str) -> int:
    """How many frames of one kind change what the feed holds: a ticker is known by its time, a
    candle by its figures (the feed's own tests for a new one)."""
    n, last = 0, None
    for r in read_rows(rec, kinds=[kind]):
        data = json.loads(r[12])["result"]["data"][-1]
        key = data.get("t") if kind == TICKER else data
        n, last = n + (key != last), key
    return n


def _stopped_cleanly_with_the_recording_complete(p: Proc, rec: Path) -> dict:
    recs = p.records()
    stopped = recs[-1]
    assert stopped["event"] == "stopped" and stopped["exit_code"] == 0 and "hung_in" not in stopped, stopped
    assert not [r for r in recs if r["event"] in ("error", "forced") or r.get("level") == "error"], recs
    assert "Traceback" not in "".join(p.err)
    # every file is closed and readable (no temporary left), and it holds every book and print the
    # engine published before the signal: the last figures before it counted them
    assert not [f for f in rec.rglob("*") if f.is_file() and f.name.endswith(".tmp")]
    info = inspect(rec)
    assert sum(1 for _ in read_rows(rec)) == info.rows
    assert info.meta and info.meta[0]["mode"] == "paper"
    before = [r for r in recs[:[r["event"] for r in recs].index("shutdown")] if r["event"] == "market"][-1]
    assert info.by_kind["view.book"] >= before["book_msgs"] > 0
    assert info.by_kind[BOOK] + info.by_kind[DELTA] >= before["book_msgs"]
    return stopped


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Proc, Path]:
    return _record(["-m", "tps19.cli"], tmp_path_factory.mktemp("sigint"), twice=False)


def test_sigint_stops_a_recording_paper_run_cleanly_with_the_recording_complete(recorded):
    p, rec = recorded
    assert "repeated_signals" not in _stopped_cleanly_with_the_recording_complete(p, rec)


def test_a_sigint_delivered_twice_is_one_request_not_a_forced_exit(tmp_path):
    # before: the repeat forced the exit mid-stop (130, 'hung_in: ... TradingStack.stop'), 1 run in 3
    # under `timeout -s INT`
    p, rec = _record(["-m", "tests.replay.signal_child"], tmp_path, twice=True)
    assert _stopped_cleanly_with_the_recording_complete(p, rec)["repeated_signals"] == 1


def test_replay_at_max_speed_hands_the_engine_every_recorded_frame(recorded, tmp_path, monkeypatch):
    _, rec = recorded
    kinds = Counter(r[4] for r in read_rows(rec, kinds=[BOOK, DELTA, TRADE, TICKER, CANDLE]))
    # a ticker or candle frame repeating the one before changes nothing: the feed may publish it or
    # not (as live), so those count between the changes and the frames
    changes = {kind: _runs(rec, kind) for kind in (TICKER, CANDLE)}
    final = Book()
    first_mid = None
    for r in read_rows(rec, kinds=[BOOK, DELTA]):
        if r[4] == BOOK:
            final.snapshot(r[8] or [], r[9] or [], r[10] or [], r[11] or [], r[6], r[3])
        else:
            final.apply(r[8], r[9], r[10], r[11], r[6], r[3])
        if first_mid is None:
            first_mid = (Decimal(repr(r[8][0])) + Decimal(repr(r[10][0]))) / 2
    (bid, _), (ask, _) = (x[0] for x in final.levels(1))
    for k in [k for k in os.environ if k.startswith("TPS19_")]:
        monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "replay.jsonl"
    res = CliRunner().invoke(app, ["replay", str(rec), "--no-ui", "--speed", "max", "--log-file", str(log)])
    assert res.exit_code == 0, res.output  # it ends by itself
    recs = [json.loads(x) for x in log.read_text().splitlines()]
    # before: 'book_msgs 3' of 279 and no figure at all (equity_start null)
    market, portfolio, summary, stopped = recs[-4:]
    assert [r["event"] for r in recs[-4:]] == ["market", "portfolio", "summary", "stopped"], recs[-4:]
    assert market["book_msgs"] == kinds[BOOK] + kinds[DELTA] and market["resyncs"] == 0, (market, kinds)
    assert market["trades"] == kinds[TRADE]
    assert changes[TICKER] <= market["streams"]["ticker"][1] <= kinds[TICKER], (market, kinds, changes)
    assert changes[CANDLE] <= market["streams"]["bars"][1] <= kinds[CANDLE], (market, kinds, changes)
    assert (float(market["bid"]), float(market["ask"])) == (bid, ask)  # the recording's final book
    assert summary["equity_start"] is not None and summary["equity_end"] == portfolio["equity"]
    # no fills: start and end differ by the BTC the account holds, valued at the recording's first
    # mid and at its last (the start is not whatever figure the mark publisher happened to compute)
    held = Settings().sim.starting_balances["BTC"]
    last_mid = (Decimal(repr(bid)) + Decimal(repr(ask))) / 2
    moved = Decimal(summary["equity_start"]) - Decimal(summary["equity_end"])
    assert summary["fills"] == 0 and abs(moved - held * (first_mid - last_mid)) <= Decimal("0.01"), \
        (summary, first_mid, last_mid)
    assert stopped["exit_code"] == 0 and stopped["errors"] == 0, stopped
    # the replay's venue lists only the recorded BTC/USDT: the account's other coins have no market
    # there, so its equity leaves them out (not the recorded session's). The portfolio line said so;
    # the summary line and the desk's closing lines said nothing (tryout-2, "not fixed" 9)
    others = sorted(c for c, a in Settings().sim.starting_balances.items() if a and c not in ("BTC", "USDT"))
    assert others and portfolio["excluded"] == others, portfolio
    assert summary["excluded"] == others, summary
    closing = summary_lines("session (paper)", summary)
    assert closing[-1].endswith(f"leaving out {', '.join(others)} (held; no market on the venue values them)"), closing


def test_replaying_the_parent_of_a_several_venue_recording_says_which_to_give(tmp_path):
    """`tps19 paper --exchange sim --exchange sim-binance --record rec` writes rec/sim and
    rec/sim-binance; `tps19 replay rec` said only 'no recording at rec'."""


    for venue in ("sim", "sim-binance"):
        (tmp_path / "rec" / venue / f"venue={venue}" / "symbol=BTC_USDT" / "date=2026-12-07").mkdir(parents=True)
    r = CliRunner().invoke(app, ["replay", str(tmp_path / "rec"), "--no-ui", "--speed", "max"])
    assert r.exit_code != 0
    assert (f"no recording at {tmp_path / 'rec'}: it holds one recording per venue (sim, sim-binance); "
            f"replay one, e.g. {tmp_path / 'rec' / 'sim'}") in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["replay", str(tmp_path / "nothing"), "--no-ui"])
    assert r.exit_code != 0 and f"no recording at {tmp_path / 'nothing'}" in r.output


def test_a_raw_frame_recording_is_refused_by_the_replay_backtest_and_divergence(tmp_path):
    """Seen as a user: `tps19 divergence rec/sim-binance` (a --record of the sim-binance venue, its
    frames stored raw: no parser for that venue) said `session P&L -2243.0067` for buys of
    ~2,240 USDT of coins (no book, so they were counted at no value), and `backtest --replay` of
    it rejected every order without saying why. Both now refuse it in one line."""
    from tps19.engine.recording.tap import Recorder
    from tps19.engine.recording.writer import WriterSettings

    markets = {"BTC/USDT": {"id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT"}}
    rec = Recorder(tmp_path / "rec", "sim-binance", "sim-binance", WriterSettings(batch_rows=100)).start()
    rec.set_markets(markets)
    rec.meta({"mode": "paper", "exchange_id": "sim-binance", "symbols": ["BTC/USDT"], "markets": markets,
              "book_depth": 50})
    for u in range(1, 6):
        rec.frame(json.dumps({"stream": "btcusdt@depth", "data": {"e": "depthUpdate", "E": u, "s": "BTCUSDT",
                                                                  "U": u, "u": u, "b": [["60000", "1"]], "a": []}}))
    rec.close()
    assert inspect(tmp_path / "rec").by_kind.get("frame") == 5  # what a sim-binance --record holds today
    for args in (["divergence", str(tmp_path / "rec")], ["backtest", "--replay", str(tmp_path / "rec")]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code != 0, r.output
        text = " ".join(r.output.split())
        assert ("a sim-binance recording holds its 5 venue frames raw (no book rows): the replay backtest and "
                "divergence cannot rebuild its books") in text, text
        assert "session P&L" not in text


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_the_replay_desk_says_on_quit_which_currencies_its_equity_left_out(recorded, tmp_path):
    """`tps19 replay DIR` (the desk) of the BTC/USDT recording, quit with q: the terminal gets the
    session's lines, as `tps19 paper` prints them, and its equity line names the coins the replay's
    venue cannot value (before: nothing at all was printed when the replay desk closed)."""
    _, rec = recorded
    env = _env(tmp_path, TERM="xterm-256color", COLUMNS="140", LINES="44")
    desk = PtyDesk(["replay", str(rec), "--speed", "max"], tmp_path, env)
    screen, proc = desk.screen, desk.proc
    try:
        # the desk is up on a book (BTC marked), the coins it cannot value say so
        assert desk.wait_for(lambda: b"spread " in screen and b"excluded" in screen, 120), bytes(screen[-2000:])
        assert proc.poll() is None, bytes(screen[-2000:])
        desk.type(b"q")
        code = proc.wait(120)
    finally:
        desk.close()
    text = desk.text()
    after = text[text.rfind("session (paper):"):] if "session (paper):" in text else text[-2000:]
    assert code == 0, after
    others = sorted(c for c, a in Settings().sim.starting_balances.items() if a and c not in ("BTC", "USDT"))
    assert re.search(rf"equity [\d,.]+ -> [\d,.]+ USDT leaving out {', '.join(others)} "
                     rf"\(held; no market on the venue values them\)", after), after
