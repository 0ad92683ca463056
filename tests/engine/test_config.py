"""Settings: environment, .env, nested sections, secrets, and one-line errors from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tps19.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("TPS19_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)  # so no stray .env is read


def test_defaults_are_the_offline_simulated_desk():
    s = load_settings()
    assert s.exchange.id == "sim"
    assert s.symbols.watch == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert s.exchange.api_key is None


def test_nested_environment_and_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("TPS19_RISK__MAX_ORDER_NOTIONAL=2500.50\nTPS19_EXCHANGE__API_KEY=k-123456\n")
    monkeypatch.setenv("TPS19_SYMBOLS__WATCH", "eth/usdt, sol/usdt")
    s = load_settings()
    assert s.risk.max_order_notional == Decimal("2500.50")
    assert s.symbols.watch == ["ETH/USDT", "SOL/USDT"]
    assert s.exchange.api_key.get_secret_value() == "k-123456"
    assert "k-123456" not in repr(s) and "k-123456" not in str(s.model_dump())


def test_every_documented_setting_loads():
    """.env.example documents every setting, and every value in it is valid."""
    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    os.environ.update(env)
    try:
        s = load_settings()
    finally:
        for k in env:
            os.environ.pop(k, None)
    documented = {k.removeprefix("TPS19_").lower() for k in env}
    text = (ROOT / ".env.example").read_text().lower()
    for section, model in s:
        for name in type(model).model_fields:
            key = f"{section}__{name}"
            assert key in documented or f"tps19_{key}=" in text, f"{key} missing from .env.example"


@pytest.mark.parametrize(
    ("var", "value", "named"),
    [
        ("TPS19_RISK__MAX_DAILY_ORDERS", "lots", "risk.max_daily_orders"),
        ("TPS19_SYMBOLS__WATCH", "BTCUSDT", "symbols.watch"),
        ("TPS19_UI__REFRESH_HZ", "-3", "ui.refresh_hz"),
        ("TPS19_SIM__STARTING_BALANCES", "{not json", "sim"),
    ],
)
def test_bad_value_is_one_clear_error_naming_the_setting(monkeypatch, var, value, named):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert named in str(exc.value)
    assert "\n" not in str(exc.value)


def test_cli_reports_a_bad_setting_in_one_line_without_traceback_or_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPS19_")}
    env.update(TPS19_RISK__MAX_DAILY_ORDERS="lots", TPS19_EXCHANGE__SECRET="topsecret-value")
    r = subprocess.run([sys.executable, "-m", "tps19.cli", "paper", "--no-ui"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "risk.max_daily_orders" in lines[0]
    assert "topsecret-value" not in r.stderr + r.stdout
