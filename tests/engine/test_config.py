"""Settings: environment, .env, nested sections, secrets, and one-line errors from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tps19.config import ConfigError, Settings, load_settings

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
        for name in getattr(type(model), "model_fields", {}):  # venues: a dict, documented by its pattern
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


# --- item 11: bad settings stop the real CLI with exactly one line and exit 2 -------------------

def _paper_no_ui(tmp_path, env_vars: dict[str, str], dotenv: bytes | None = None, dotenv_dir: bool = False,
                 *, process: bool = False) -> subprocess.CompletedProcess:
    """`tps19 paper --no-ui` with these settings, in its own process or in this one (the same
    command through typer's runner: stderr and the exit code are what the process would give; two
    tests below keep the real process, a third of a second of CPU each for the rest)."""
    if dotenv is not None:
        (tmp_path / ".env").write_bytes(dotenv)
    if dotenv_dir:
        (tmp_path / ".env").mkdir()
    if not process:  # clean_env: no TPS19_ variable is set, the working directory is tmp_path
        from typer.testing import CliRunner

        from tps19.cli import app

        r = CliRunner().invoke(app, ["paper", "--no-ui"], env=env_vars)
        return subprocess.CompletedProcess(["paper", "--no-ui"], r.exit_code, r.stdout, r.stderr)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TPS19_")}
    env.update(env_vars)
    # a setting that is not refused starts the engine, which runs until the timeout kills it
    return subprocess.run([sys.executable, "-m", "tps19.cli", "paper", "--no-ui"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


def _assert_one_line_exit_2(r, *needles: str) -> str:
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("tps19: "), r.stderr[-2000:]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_non_utf8_dotenv_is_one_line(tmp_path):
    r = _paper_no_ui(tmp_path, {}, dotenv=b"TPS19_RISK__MAX_DAILY_ORDERS=5\nTPS19_EXCHANGE__SECRET=s\xff\xfecret\n",
                     process=True)
    line = _assert_one_line_exit_2(r, ".env", "UTF-8", "line 2")
    assert "cret" not in line  # never a piece of what the file holds


def test_unreadable_dotenv_is_one_line(tmp_path):
    # the tests run as root, for whom no permission bit makes a file unreadable: a directory is
    r = _paper_no_ui(tmp_path, {}, dotenv_dir=True)
    _assert_one_line_exit_2(r, "cannot read .env", "directory")


@pytest.mark.parametrize(("where", "key", "closest"), [
    ("env", "TPS19_RISK__MAX_ORDER_NOTINAL", "TPS19_RISK__MAX_ORDER_NOTIONAL"),
    ("env", "tps19_risk__max_daily_order", "TPS19_RISK__MAX_DAILY_ORDERS"),
    ("env", "TPS19_FEED__STALE_AFTER", "TPS19_FEED__STALE_AFTER_S"),
    (".env", "TPS19_RISK__DAILY_LOSS_LIMT", "TPS19_RISK__DAILY_LOSS_LIMIT"),
    (".env", "RISK__MAX_ORDER_NOTIONAL", "TPS19_RISK__MAX_ORDER_NOTIONAL"),  # prefix forgotten
])
def test_unknown_setting_is_an_error_naming_the_closest_real_one(tmp_path, where, key, closest):
    if where == "env":
        r = _paper_no_ui(tmp_path, {key: "5"})
    else:
        r = _paper_no_ui(tmp_path, {}, dotenv=f"# caps\nOTHER_TOOL_SETTING=1\n{key}=5\n".encode())
    line = _assert_one_line_exit_2(r, "unknown setting", key, f"did you mean {closest}?")
    if where == ".env":
        assert ".env" in line


@pytest.mark.parametrize(("var", "value", "named"), [
    ("TPS19_FEED__STALE_AFTER_S", "inf", "feed.stale_after_s"),
    ("TPS19_FEED__WATCH_TIMEOUT_S", "1e999", "feed.watch_timeout_s"),
    ("TPS19_FEED__RECONNECT_MIN_S", "-1", "feed.reconnect_min_s"),
    ("TPS19_LOG__SUMMARY_INTERVAL_S", "nan", "log.summary_interval_s"),
    ("TPS19_EXCHANGE__TIMEOUT_MS", "99999999999999999999", "exchange.timeout_ms"),
    ("TPS19_SIM__STARTING_BALANCES", '{"USDT": "-5"}', "sim.starting_balances"),
    ("TPS19_SIM__STARTING_BALANCES", '{"BTC": "1e999999"}', "sim.starting_balances"),
    ("TPS19_SYMBOLS__TIMEFRAME", "7x", "symbols.timeframe"),
    ("TPS19_RISK__MAX_ORDER_NOTIONAL", "1e999999", "risk.max_order_notional"),
    ("TPS19_RISK__DAILY_LOSS_LIMIT", "Infinity", "risk.daily_loss_limit"),
    ("TPS19_EXCHANGE__WS_URL", "ws://127.0.0.1:8765", "exchange.ws_url"),  # without a rest_url
])
def test_absurd_setting_is_refused_in_one_line(tmp_path, var, value, named):
    _assert_one_line_exit_2(_paper_no_ui(tmp_path, {var: value}), named, var if "." not in var else named)


def test_documented_example_still_has_no_unknown_keys(tmp_path, monkeypatch):
    """.env.example copied to .env loads as it is (every key in it is a real setting)."""
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    s = load_settings()
    assert s.symbols.timeframe == "1m" and s.sim.starting_balances["USDT"] == Decimal("100000")


async def test_ws_url_is_honoured_rest_and_websockets_from_their_own_servers(tmp_path):
    """TPS19_EXCHANGE__WS_URL points ccxt's websockets at it while REST goes to REST_URL."""
    from tests.engine.helpers import wait_for

    from tps19.engine.engine import Engine
    from tps19.simex import SimExchange

    rest, ws = SimExchange(seed=1), SimExchange(seed=2)
    await rest.start()
    await ws.start()
    try:
        s = Settings(database={"path": tmp_path / "t.db"}, symbols={"watch": ["BTC/USDT"]},
                     exchange={"id": "sim", "rest_url": rest.base_url, "ws_url": ws.base_url.replace("http", "ws", 1)},
                     feed={"stale_after_s": 5, "watch_timeout_s": 6, "reconnect_min_s": 0.1, "reconnect_max_s": 1})
        engine = Engine(s, "paper")
        await engine.start()
        try:
            assert await wait_for(lambda: engine.books["BTC/USDT"].best_bid() is not None), "no book"
            # the book stream is the ws server's (its counter is bumped after the frame is sent)
            assert await wait_for(lambda: ws.stats["book_messages"] > 0), "no book message from the ws server"
            assert ws.stats["ws_connections"] >= 1
            assert rest.stats["ws_connections"] == 0 and rest.stats["book_messages"] == 0
            assert rest.stats["rest_requests"] > 0
        finally:
            await engine.stop()
    finally:
        await rest.stop()
        await ws.stop()
