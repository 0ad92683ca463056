from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

from tps19.config import Settings


def _clean_env(monkeypatch) -> None:
    for k in list(os.environ):
        if k.startswith("TPS19_"):
            monkeypatch.delenv(k)


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Paper desk on the embedded simulated exchange (free loopback port), database in tmp_path."""
    _clean_env(monkeypatch)
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo
    return Settings(
        database={"path": tmp_path / "tps19.db"},
        feed={"stale_after_s": 5, "watch_timeout_s": 6, "reconnect_min_s": 0.1, "reconnect_max_s": 1},
        ui={"refresh_hz": 20},
        # the sim account starts with 1 BTC: leave room under the position cap for test buys
        risk={"max_position_notional": 10_000_000},
    )


async def wait_for(pilot, pred: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def screen_text(app) -> str:
    """The current screen as plain text (what a trader would read)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


@pytest.fixture(autouse=True)
def busy_market_idle(monkeypatch):
    """Pilot waits for the process to go idle after every key (up to 1 s, twice per key). A desk on a
    live simulated market is never idle, so each key would cost ~2 s: wait one short tick instead."""
    import asyncio

    import textual.app
    import textual.pilot

    async def short_idle(min_sleep: float = 0.0, max_sleep: float = 1.0) -> None:
        await asyncio.sleep(0.02)

    monkeypatch.setattr(textual.app, "wait_for_idle", short_idle)
    monkeypatch.setattr(textual.pilot, "wait_for_idle", short_idle)
