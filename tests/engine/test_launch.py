"""The entry point owns the embedded simulated exchange: it starts it before the engine and stops it
after, however the run ends; the engine alone only connects to a venue's URLs."""

from __future__ import annotations

import asyncio

import pytest

from tps19.config import Settings
from tps19.engine.engine import Engine, EngineError
from tps19.run import _venue


async def _serving(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def test_the_embedded_sim_is_stopped_when_the_run_fails(settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="desk crashed"):
        async with _venue(settings) as pointed:
            url = pointed.exchange.rest_url
            assert url and await _serving(url)
            raise RuntimeError("desk crashed")
    assert not await _serving(url)


async def test_settings_with_a_venue_url_start_no_sim(sim_settings: Settings) -> None:
    async with _venue(sim_settings) as pointed:
        assert pointed is sim_settings


async def test_an_engine_on_sim_without_its_url_is_one_line_error(settings: Settings) -> None:
    engine = Engine(settings)
    with pytest.raises(EngineError, match="exchange 'sim' needs exchange.rest_url"):
        await engine.start()
    await engine.stop()


async def test_the_engine_names_the_venue_by_its_address(sim_settings: Settings, sim) -> None:
    engine = Engine(sim_settings)
    await engine.start()
    try:
        assert engine.venue_name == f"sim@127.0.0.1:{sim.port}"
    finally:
        await engine.stop()
