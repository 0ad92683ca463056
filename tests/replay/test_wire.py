"""`tps19 replay`: the simulated exchange serves a recording over its own wire to the engine
(ccxt.pro, the feed) headless and to the desk; live is refused."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from tests.replay.crafted import market_recording
from tps19.config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET, Settings
from tps19.engine.clock import use_clock
from tps19.engine.engine import Engine
from tps19.engine.events import BookEvent, TradeEvent
from tps19.simex.replay import ReplayExchange

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    import os

    for k in list(os.environ):
        if k.startswith("TPS19_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    return Settings(database={"path": tmp_path / "tps19.db"}, symbols={"watch": ["BTC/USDT"]},
                    feed={"stale_after_s": 5, "watch_timeout_s": 30, "reconnect_min_s": 0.1, "reconnect_max_s": 1},
                    log={"summary_interval_s": 0.5})


async def _venue(root, settings, speed):
    sim = ReplayExchange(root, speed=speed, accounts={SIM_DEMO_API_KEY: (SIM_DEMO_SECRET, {"USDT": 1000})})
    await sim.start()
    pointed = settings.model_copy(update={"exchange": settings.exchange.model_copy(update={"rest_url": sim.base_url})})
    return sim, pointed


@pytest.mark.parametrize("speed", [None, 10.0])
async def test_headless_replay_goes_through_the_wire_and_ends_with_the_recording(tmp_path, settings, speed):
    from tps19.engine.headless import run_headless

    expected = market_recording(tmp_path / "rec", n=400)
    sim, pointed = await _venue(tmp_path / "rec", settings, speed)
    books: list[BookEvent] = []
    prints: list = []
    try:
        with use_clock(lambda: sim.now_ms * 1_000_000):
            engine = Engine(pointed, "paper")
            engine.bus.on(BookEvent, books.append)
            engine.bus.on(TradeEvent, lambda ev: prints.extend(ev.trades))
            sim.pace_by(engine.bus)  # as `tps19 replay` does
            code = await run_headless(engine, tmp_path / "log.jsonl", stop_event=sim.finished)
    finally:
        await sim.stop()
    assert code == 0
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines[-1]["event"] == "stopped" and lines[-1]["resyncs"] == 0 and lines[-1]["errors"] == 0
    # every recorded book frame went through ccxt.pro (its book handler applied each one) ...
    assert engine.venue is not None and engine.venue.book_messages[0] == expected["book_frames"]
    assert sim.frames_sent == expected["book_frames"] + expected["prints"]
    # ... and the engine ended on the recording's final book, at its sequence number
    last = books[-1]
    assert last.seq == expected["seq"]
    assert list(last.bids) == [(p, q) for p, q in expected["bids"]][:50]
    assert list(last.asks) == [(p, q) for p, q in expected["asks"]][:50]
    assert len(prints) == expected["prints"] and len({t.id for t in prints}) == expected["prints"]
    # every frame reached the engine itself, in the recorded order (not only ccxt's book): one book
    # per sequence number, the prints in their order
    assert [b.seq for b in books] == list(range(expected["seq"] - expected["book_frames"] + 1, expected["seq"] + 1))
    assert [t.id for t in prints] == sorted((t.id for t in prints), key=int)
    # the run ended after the engine took the last frame and reported its figures
    figures = [x for x in lines if x["event"] in ("market", "portfolio")][-2:]
    assert [x["event"] for x in figures] == ["market", "portfolio"]
    assert figures[0]["book_msgs"] == expected["book_frames"] and figures[0]["trades"] == expected["prints"]
    assert float(figures[0]["bid"]) == expected["bids"][0][0] and float(figures[0]["ask"]) == expected["asks"][0][0]
    summary = next(x for x in lines if x["event"] == "summary")
    assert summary["equity_start"] is not None and summary["equity_end"] == figures[1]["equity"]
    # the venue's clock is the recording's: it ends at the last frame's time
    assert sim.now_ms == expected["last_ms"]


async def test_replay_from_a_time_starts_with_the_book_as_of_then(tmp_path, settings):
    from tps19.engine.headless import run_headless
    from tps19.engine.recording.reader import read_rows
    from tests.replay.crafted import OLD_NS

    expected = market_recording(tmp_path / "rec", n=400)
    start = OLD_NS + 200_000_000  # half way
    later = sum(1 for r in read_rows(tmp_path / "rec", start_ns=start, kinds=["delta"]))
    sim = ReplayExchange(tmp_path / "rec", speed=None, start_ns=start,
                         accounts={SIM_DEMO_API_KEY: (SIM_DEMO_SECRET, {"USDT": 1000})})
    await sim.start()
    pointed = settings.model_copy(update={"exchange": settings.exchange.model_copy(update={"rest_url": sim.base_url})})
    books: list[BookEvent] = []
    try:
        with use_clock(lambda: sim.now_ms * 1_000_000):
            engine = Engine(pointed, "paper")
            engine.bus.on(BookEvent, books.append)
            assert await run_headless(engine, tmp_path / "log.jsonl", stop_event=sim.finished) == 0
    finally:
        await sim.stop()
    assert 0 < later < expected["book_frames"] - 1
    # the rebuilt book as of --from (one snapshot), then every later frame: the recording's final book
    assert engine.venue is not None and engine.venue.book_messages[0] == later + 1
    assert books[-1].seq == expected["seq"]
    assert list(books[-1].bids) == [(p, q) for p, q in expected["bids"]][:50]


def test_replay_refuses_live_in_one_line(tmp_path):
    from tps19.cli import app

    market_recording(tmp_path / "rec", n=10)
    res = CliRunner().invoke(app, ["replay", str(tmp_path / "rec"), "--live"])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "refusing --live" in res.output


def test_replay_of_a_missing_recording_is_one_line(tmp_path):
    from tps19.cli import app

    res = CliRunner().invoke(app, ["replay", str(tmp_path / "nothing"), "--no-ui"])
    assert res.exit_code == 2 and "no recording" in res.output and "Traceback" not in res.output


async def test_desk_shows_replay_and_the_recordings_clock(tmp_path, settings):
    from tests.ui.conftest import screen_text, wait_for
    from tps19.desk.app import DeskApp

    expected = market_recording(tmp_path / "rec", n=200)
    sim, pointed = await _venue(tmp_path / "rec", settings, None)
    try:
        with use_clock(lambda: sim.now_ms * 1_000_000):
            app = DeskApp(settings=pointed, mode="paper", engine=Engine(pointed, "paper"),
                          clock=lambda: sim.now_ms / 1000, replay=True)
            async with app.run_test(size=(140, 40)) as pilot:
                await wait_for(pilot, lambda: app.state.books.get("BTC/USDT") is not None
                               and app.state.books["BTC/USDT"].seq == expected["seq"], timeout=30,
                               what="the recording's last book on the desk")
                stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expected["last_ms"] / 1000))
                await wait_for(pilot, lambda: "REPLAY" in screen_text(app) and stamp in screen_text(app),
                               what=f"REPLAY and the recording's clock {stamp} in the status bar")
                text = screen_text(app)
                assert "PAPER" not in text.splitlines()[0] and "LIVE" not in text
                assert f"{expected['bids'][0][0]:,.2f}" in text  # the recorded best bid on the ladder
                await pilot.press("q")
    finally:
        await sim.stop()
