"""Absurd numbers on the command line (--param, --grid, --cash, --fee, ...): one line naming the
flag or parameter, exit code 2, never a traceback, a hang or a result computed from infinity."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tps19.cli import app

from .conftest import DATA

ETH = str(DATA / "freqtrade_ETH_BTC_5m.csv")


def _one_line_exit_2(args: list[str], *needles: str) -> None:
    r = CliRunner().invoke(app, args)
    err = r.stderr.strip()
    assert r.exit_code == 2, (r.exit_code, r.output[-500:])
    assert len(err.splitlines()) == 1 and err.startswith("tps19: "), err
    assert "Traceback" not in r.output
    for n in needles:
        assert n in err, err


@pytest.mark.parametrize(("extra", "needles"), [
    (["--cash", "inf"], ("--cash", "infinity")),
    (["--cash", "1e999"], ("--cash", "infinity")),
    (["--cash", "1e20"], ("--cash", "too large")),
    (["--fee", "nan"], ("--fee", "NaN")),
    (["--slippage-bps", "-inf"], ("--slippage-bps",)),
    (["--size", "inf"], ("--size",)),
    (["--param", "k=inf"], ("k", "infinity")),
    (["--param", "k=1e999999"], ("k", "too large")),
    (["--param", "k=NaN"], ("k", "NaN")),
    (["--param", "period=99999999999999999999"], ("period", "too large")),
], ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_backtest_refuses_absurd_numbers(extra, needles, tmp_path):
    _one_line_exit_2(["backtest", "--strategy", "bollinger", "--data", ETH, "--json", "--no-save",
                      "--db", str(tmp_path / "b.db"), *extra], *needles)


@pytest.mark.parametrize(("extra", "needles"), [
    (["--grid", "k=0:inf:1"], ("--grid", "k")),
    (["--grid", "k=1:2:1e-300"], ("--grid", "values")),
    (["--grid", "period=20:1e300:1"], ("--grid", "period")),
    (["--grid", "k=nan,1"], ("--grid", "NaN")),
    (["--grid", "k=1,2", "--param", "period=inf"], ("period", "infinity")),
    (["--grid", "k=1,2", "--cash", "inf"], ("--cash",)),
], ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_optimize_refuses_absurd_numbers(extra, needles, tmp_path):
    _one_line_exit_2(["optimize", "--strategy", "bollinger", "--data", ETH, "--json",
                      "--db", str(tmp_path / "o.db"), *extra], *needles)


def test_paper_refuses_an_infinite_strategy_parameter(tmp_path, monkeypatch):
    for k in [k for k in __import__("os").environ if k.startswith("TPS19_")]:
        monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    _one_line_exit_2(["paper", "--no-ui", "--strategy", "bollinger", "--param", "k=1e999999"], "k", "too large")


@pytest.mark.parametrize(("args", "needles"), [
    (["--balance", "USDT=nan"], ("--balance USDT", "NaN")),
    (["--balance", "BTC=1e999999"], ("--balance BTC", "too large")),
    (["--balance", "BTC=-1"], ("--balance BTC", "negative")),
    (["--rate", "inf"], ("--rate", "infinity")),
])
def test_exchange_refuses_absurd_numbers(args, needles, tmp_path):
    import subprocess
    import sys

    # a subprocess: a number that is not refused starts a server that runs until killed
    r = subprocess.run([sys.executable, "-m", "tps19.cli", "exchange", "--port", "0", *args], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    err = r.stderr.strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and err.startswith("tps19: "), (r.returncode, err)
    for n in needles:
        assert n in err, err


@pytest.mark.parametrize("since", ["99999999999999999999999", "9" * 5000])
def test_an_epoch_beyond_any_date_is_a_bad_time(since, tmp_path):
    _one_line_exit_2(["fetch", "--since", since, "--db", str(tmp_path / "f.db")], "bad --since")
