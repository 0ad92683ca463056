from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

DATA = Path("/work/shared/data")


def load(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name).rename(columns={"timestamp_ms": "ts"})


@pytest.fixture(scope="session")
def eth5m() -> pd.DataFrame:
    return load("freqtrade_ETH_BTC_5m.csv")


@pytest.fixture(scope="session")
def btc1m_gaps() -> pd.DataFrame:
    return load("freqtrade_UNITTEST_BTC_1m.csv")


@pytest.fixture(scope="session")
def btcusd_monthly() -> pd.DataFrame:
    return load("backtestingpy_BTCUSD_1M.csv")
