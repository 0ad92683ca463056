from __future__ import annotations

import os
import signal
import subprocess
import sys

from typer.testing import CliRunner

from tps19.cli import app


def test_exchange_help_explains_pointing_ccxt():
    r = CliRunner().invoke(app, ["exchange", "--help"])
    assert r.exit_code == 0
    assert "urls['api']['v1']" in r.output and "/exchange/v1/market" in r.output


def test_exchange_command_serves_and_exits_zero_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-c", "from tps19.cli import main; main()", "exchange", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line
        url = line.split()[3]
        import urllib.request

        with urllib.request.urlopen(url + "/public/get-instruments", timeout=5) as r:
            assert b"BTC_USDT" in r.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
