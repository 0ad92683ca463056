from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest

from tps19.simex import SimExchange, point_ccxt

KEY, SECRET = "test-key", "test-secret"
BALANCES = {"USDT": Decimal("100000"), "BTC": Decimal("1"), "ETH": Decimal("10"), "SOL": Decimal("100")}


class FixedClock:
    def __init__(self, t: int = 1_790_000_000_000) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


@contextlib.asynccontextmanager
async def running(exchange: Any) -> AsyncIterator[Any]:
    """A simulated exchange (either dialect) started for the block, stopped after it."""
    await exchange.start()
    try:
        yield exchange
    finally:
        await exchange.stop()


@contextlib.asynccontextmanager
async def closing(client: Any) -> AsyncIterator[Any]:
    """A ccxt client for the block, closed after it (its sessions and websockets)."""
    try:
        yield client
    finally:
        await client.close()


@contextlib.contextmanager
def exchange_command(*args: str) -> Iterator[subprocess.Popen]:
    """`tps19 exchange ARGS` in a process of its own (stdout a text pipe, unbuffered), killed if
    the block leaves it running."""
    proc = subprocess.Popen([sys.executable, "-c", "from tps19.cli import main; main()", "exchange", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
async def sim():
    # Heartbeats every 0.3 s (ccxt answers them all through these tests), each with 30 s to be
    # answered: the answer travels through this same event loop, and a loaded machine stalls the
    # loop for longer than 0.3 s, after which the venue's tick used to close the connection before
    # it had read the answer already sent (a watch then raised NetworkError "closing code 1000")
    async with running(SimExchange(port=0, seed=19, accounts={KEY: (SECRET, dict(BALANCES))}, updates_per_second=200,
                                   heartbeat_interval=0.3, heartbeat_timeout=30)) as s:
        yield s


@pytest.fixture
async def paused_sim():
    """No autonomous flow: the book only changes through `await sim.step(n)` and our own orders."""
    async with running(SimExchange(port=0, seed=19, accounts={KEY: (SECRET, dict(BALANCES))}, autoplay=False,
                                   heartbeat_interval=30)) as s:
        yield s


async def _client(s: SimExchange, key: str | None = KEY, secret: str | None = SECRET):
    import ccxt.pro

    cfg = {}
    if key:
        cfg = {"apiKey": key, "secret": secret}
    ex = ccxt.pro.cryptocom(cfg)
    point_ccxt(ex, s.base_url)
    await ex.load_markets()
    return ex


@pytest.fixture
async def ex(sim):
    async with closing(await _client(sim)) as client:
        yield client


@pytest.fixture
async def pex(paused_sim):
    async with closing(await _client(paused_sim)) as client:
        yield client


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll until predicate() is truthy (a guard against hangs, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(interval)
