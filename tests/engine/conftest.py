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

