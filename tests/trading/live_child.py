"""Child process for the crash test: runs the live broker, places one order, then waits to be killed."""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal


async def main(url: str, db_path: str, price: str, wait_go: bool = False) -> None:
    from tps19.engine.bus import EventBus
    from tps19.engine.storage import Database
    from tps19.engine.assembly import build_trading

    from .helpers import settings
    from .simhelp import make_client

    # a separate process against the test's in-process venue: on a loaded machine its first
    # requests (markets, reconciliation) can take longer than the in-process clients' 5 s
    client = await make_client(url, timeout_ms=30_000)
    db = Database(db_path)
    await db.open()
    s = await build_trading(mode="live", bus=EventBus(), db=db, client=client, markets=client.markets,
                            settings=settings(), snapshot_interval_s=0, use_watch=False, poll_interval_s=30)
    await s.start()
    if wait_go:
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    o = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.01", Decimal(price))
    print(json.dumps({"cid": o.client_order_id, "status": o.status.value, "venue_id": o.venue_order_id}), flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4], wait_go=len(sys.argv) > 4))
