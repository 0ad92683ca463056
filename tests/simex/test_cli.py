from __future__ import annotations

import signal

from typer.testing import CliRunner

from tps19.cli import app

from .conftest import exchange_command


def test_exchange_help_explains_pointing_ccxt():
    r = CliRunner().invoke(app, ["exchange", "--help"])
    assert r.exit_code == 0
    assert "urls['api']['v1']" in r.output and "/exchange/v1/market" in r.output


def test_exchange_command_serves_and_exits_zero_on_sigterm():
    with exchange_command("--port", "0") as proc:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line
        url = line.split()[3]
        import urllib.request

        with urllib.request.urlopen(url + "/public/get-instruments", timeout=5) as r:
            assert b"BTC_USDT" in r.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_exchange_binance_dialect_serves_binance_and_says_how_to_point_ccxt():
    r = CliRunner().invoke(app, ["exchange", "--help"])
    assert "--dialect binance" in r.output and "ws://HOST:PORT/ws-api/v3" in r.output
    r = CliRunner().invoke(app, ["exchange", "--dialect", "kraken"])
    assert r.exit_code == 2 and "--dialect must be one of cryptocom, binance" in r.output
    with exchange_command("--port", "0", "--dialect", "binance") as proc:
        line = proc.stdout.readline()
        assert "(Binance spot)" in line and "/api/v3" in line
        url = line.split(" on ")[1].split()[0]  # http://127.0.0.1:PORT/api/v3
        hint = proc.stdout.readline()
        assert "TPS19_EXCHANGE__ID=sim-binance" in hint
        import json
        import urllib.request

        with urllib.request.urlopen(url + "/exchangeInfo", timeout=5) as r:
            assert {s["symbol"] for s in json.load(r)["symbols"]} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
