"""stop() leaves nothing of the venue running: every task it started has ended when it returns."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import WSCloseCode

from tps19.simex import SimExchange


def _unfinished_tasks() -> list[str]:
    current = asyncio.current_task()
    return [repr(t.get_coro()) for t in asyncio.all_tasks() if t is not current and not t.done()]


async def test_stop_waits_for_connection_closes_still_running() -> None:
    sim = SimExchange(port=0, seed=19, autoplay=False, heartbeat_interval=30)
    close = sim._close_conn

    async def slow_close(conn, code=WSCloseCode.GOING_AWAY):
        # the venue dropping connections meets a peer slow to take the close
        if code == WSCloseCode.TRY_AGAIN_LATER:
            await asyncio.sleep(1.0)
        await close(conn, code)

    sim._close_conn = slow_close
    await sim.start()
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(f"ws://127.0.0.1:{sim.port}/exchange/v1/market") for _ in range(3)]
        deadline = asyncio.get_running_loop().time() + 30
        while len(sim._conns) < 3 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert len(sim._conns) == 3
        assert sim.faults.drop_connections() == 3  # each close runs as a task of its own
        await sim.stop()
        assert _unfinished_tasks() == []
        for ws in sockets:
            await ws.close()
