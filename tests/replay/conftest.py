from __future__ import annotations

import os
import time
from decimal import Decimal

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
        symbols={"watch": ["BTC/USDT"]},
        feed={"stale_after_s": 5, "watch_timeout_s": 6, "reconnect_min_s": 0.1, "reconnect_max_s": 1},
        risk={"max_order_notional": Decimal("1000000"), "max_position_notional": Decimal("1000000")},
        recording={"batch_rows": 500, "batch_s": 0.2},
    )


def fast_clock(speed: float = 120.0):
    """A venue clock running ``speed`` times faster than the wall: a 1m bar closes every 0.5 s."""
    t0_ms, m0 = int(time.time() * 1000), time.monotonic()
    return lambda: t0_ms + int((time.monotonic() - m0) * 1000 * speed)
