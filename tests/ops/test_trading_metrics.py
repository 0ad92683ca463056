"""Order, fill, rejection and kill-switch metrics of an engine trading on the simulated exchange,
scraped over real HTTP from its OpsServer; /healthz names an unwritable database."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tps19.config import Settings
from tps19.engine.engine import Engine
from tps19.engine.health import OpsServer
from tps19.engine.metrics import EngineMetrics, rejection_kind
from tps19.launch import start_embedded_sim

pytestmark = pytest.mark.slow


@pytest.fixture
async def served(tmp_path, monkeypatch):
    for k in list(os.environ):
        if k.startswith("TPS19_"):
            monkeypatch.delenv(k)
    settings = Settings(database={"path": tmp_path / "ops.db"}, symbols={"watch": ["BTC/USDT"]},
                        risk={"max_order_notional": "50000"})
    pointed, sim = await start_embedded_sim(settings)
    engine = Engine(pointed, "paper")
    metrics = EngineMetrics(engine)
    metrics.attach()
    ops = OpsServer(engine, metrics)
    url = await ops.start()
    try:
        await engine.start()
        yield engine, url
    finally:
        await ops.stop()
        await engine.stop()
        await sim.stop()


async def scrape(url: str) -> dict[tuple[str, tuple], float]:
    async with aiohttp.ClientSession() as s, s.get(url + "/metrics") as r:
        assert r.status == 200
        text = await r.text()
    return {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
            for fam in text_string_to_metric_families(text) for smp in fam.samples}


async def until(check, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)


async def test_orders_fills_rejections_and_the_kill_switch_are_counted(served):
    engine, url = served
    broker = engine.trading.broker
    await until(lambda: asyncio.sleep(0, engine.books["BTC/USDT"].best_ask() is not None))
    filled = await broker.place_order("BTC/USDT", "buy", "market", "0.01")
    too_big = await broker.place_order("BTC/USDT", "buy", "market", "5")  # far above the 50,000 cap
    assert too_big.status.value == "rejected"

    async def booked() -> bool:
        m = await scrape(url)
        return m.get(("tps19_fills_total", (("side", "buy"), ("symbol", "BTC/USDT"))), 0) >= 1

    await until(booked)
    m = await scrape(url)
    assert m[("tps19_orders_total", (("state", "filled"),))] >= 1, filled
    assert m[("tps19_orders_total", (("state", "rejected"),))] == 1
    assert m[("tps19_rejections_total", (("reason", "order_notional_cap"),))] == 1
    assert m[("tps19_kill_switch", (("mode", "paper"),))] == 0

    await broker.kill("test")
    refused = await broker.place_order("BTC/USDT", "buy", "market", "0.01")
    m = await scrape(url)
    assert m[("tps19_kill_switch", (("mode", "paper"),))] == 1
    assert m[("tps19_rejections_total", (("reason", "kill_switch"),))] == 1, refused.reason


async def test_healthz_names_a_database_that_takes_no_write(served):
    engine, url = served
    await engine.db.close()  # as good as a vanished disk, for the engine
    async with aiohttp.ClientSession() as s, s.get(url + "/healthz") as r:
        assert r.status == 503
        body = await r.json()
    assert body["status"] == "unhealthy"
    assert any(reason.startswith("database not writable") for reason in body["reasons"]), body


@pytest.mark.parametrize(("reason", "kind"), [
    ("not sent: order value 60000.5 exceeds the per-order cap 50000", "order_notional_cap"),
    ("not sent: kill switch engaged: test; release it to trade", "kill_switch"),
    ("not sent: a market order takes no price", "invalid_order"),
    ("not sent: amount 0.00001 is below the minimum 0.0001 for BTC/USDT", "order_limits"),
    ("not sent: daily loss limit reached (P&L today -1200.00 <= -1000); only orders that reduce a position are allowed",
     "daily_loss_limit"),
    ("not sent: gross exposure after this order would be 300000.00 > the gross exposure cap 250000", "gross_exposure_cap"),
    ("not sent: limit price 1.5 is 97.00% from the mid 50000: outside the 5% price band (fat finger?)", "price_band"),
    ("not sent: not enough free USDT: the order needs 60000, 100 is free", "insufficient_balance"),
    ("VENUE_REJECTED: 5001 unknown error", "venue"),
])
def test_rejection_reasons_become_a_few_labels(reason, kind):
    assert rejection_kind(reason) == kind
