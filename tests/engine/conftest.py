from __future__ import annotations

import os

import pytest

from tps19.config import Settings


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    for k in list(os.environ):
        if k.startswith("TPS19_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    return Settings(
        database={"path": tmp_path / "tps19.db"},
        feed={"stale_after_s": 2, "watch_timeout_s": 4, "reconnect_min_s": 0.1, "reconnect_max_s": 1},
        log={"summary_interval_s": 0.5},
    )



@pytest.fixture
async def sim(settings: Settings):
    """The simulated exchange an entry point would start for ``settings`` (tps19.launch), running
    for the test; its faults are the switches tests flip."""
    from tps19.launch import start_embedded_sim

    _, exchange = await start_embedded_sim(settings)
    try:
        yield exchange
    finally:
        await exchange.stop()


@pytest.fixture
def sim_settings(settings: Settings, sim) -> Settings:
    """``settings`` pointing the engine at ``sim``, as the entry point hands them over."""
    return settings.model_copy(update={"exchange": settings.exchange.model_copy(update={"rest_url": sim.base_url})})
