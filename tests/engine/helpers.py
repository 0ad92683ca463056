"""Helpers shared by the engine tests."""

from __future__ import annotations

import asyncio
import time


async def wait_for(pred, timeout: float = 15.0) -> bool:
    """Poll a condition on the running loop (the engine keeps working meanwhile)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return False
