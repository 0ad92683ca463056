from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from tps19.engine.bus import EventBus
from tps19.engine.storage import Database

from .simhelp import KEY2, SECRET2, make_client, make_sim

# Realistic public/get-instruments payload rows (shape from ccxt's cryptocom fetch_markets docs).
INSTRUMENTS = [
    {"symbol": "BTC_USDT", "inst_type": "CCY_PAIR", "display_name": "BTC/USDT", "base_ccy": "BTC",
     "quote_ccy": "USDT", "quote_decimals": 2, "quantity_decimals": 5, "price_tick_size": "0.01",
     "qty_tick_size": "0.00001", "max_leverage": "50", "tradable": True, "expiry_timestamp_ms": 0,
     "beta_product": False, "margin_buy_enabled": False, "margin_sell_enabled": True},
    {"symbol": "ETH_USDT", "inst_type": "CCY_PAIR", "display_name": "ETH/USDT", "base_ccy": "ETH",
     "quote_ccy": "USDT", "quote_decimals": 2, "quantity_decimals": 4, "price_tick_size": "0.01",
     "qty_tick_size": "0.0001", "max_leverage": "50", "tradable": True, "expiry_timestamp_ms": 0,
     "beta_product": False, "margin_buy_enabled": False, "margin_sell_enabled": False},
    {"symbol": "SOL_USDT", "inst_type": "CCY_PAIR", "display_name": "SOL/USDT", "base_ccy": "SOL",
     "quote_ccy": "USDT", "quote_decimals": 3, "quantity_decimals": 3, "price_tick_size": "0.005",
     "qty_tick_size": "0.001", "max_leverage": "50", "tradable": True, "expiry_timestamp_ms": 0,
     "beta_product": False, "margin_buy_enabled": False, "margin_sell_enabled": False},
]


def cryptocom_markets() -> dict[str, dict]:
    """Markets exactly as ccxt 4.5.90's cryptocom.load_markets() builds them (TICK_SIZE mode,
    maker/taker fees merged in), from a realistic instruments payload; no network."""
    ex = ccxt.cryptocom()
    ex.v1PublicGetPublicGetInstruments = lambda params={}: {"code": 0, "result": {"data": INSTRUMENTS}}
    ex.options["fetchCurrencies"] = False
    ex.has["fetchCurrencies"] = False
    markets = ex.load_markets()
    assert ex.precisionMode == ccxt.TICK_SIZE
    return markets


@pytest.fixture(scope="session")
def markets() -> dict[str, dict]:
    return cryptocom_markets()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
async def db(db_target):
    """The trading tests' database, on each backend (tests/conftest.py: SQLite, PostgreSQL)."""
    d = Database(db_target)
    await d.open()
    yield d
    await d.close()


START = {"USDT": Decimal("100000"), "BTC": Decimal("1")}


# A simulated venue and two accounts on it (ours and another trader's) for the live-broker tests.
@pytest.fixture
async def sim():
    s = make_sim()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def clients(sim):
    mine = await make_client(sim.base_url)
    other = await make_client(sim.base_url, KEY2, SECRET2)
    yield mine, other
    await mine.close()
    await other.close()
