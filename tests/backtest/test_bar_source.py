"""`tps19 backtest` and the desk's Backtest screen load bars through one loader: the same file cut
to the same --since/--until window, or the same stored bars, give the same backtest. (Stored bars
are compared unwindowed: with --since the command first fetches from the exchange, and 'file' is
not one.)"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tps19.cli import app
from tps19.engine.history import parse_time_value
from tps19.desk.screens.backtest import run_form

from .conftest import DATA, load

FILE = DATA / "freqtrade_UNITTEST_BTC_1m.csv"
SINCE, UNTIL = "2017-11-06", "2017-11-09T12:00"
FORM = {"strategy": "sma_cross", "params": "fast=5 slow=30", "cash": "10000", "fee": "0.001", "slip": "0"}
CLI_FLAGS = ["backtest", "--strategy", "sma_cross", "--param", "fast=5", "--param", "slow=30", "--json", "--no-save"]


def _bars_in(since: str | None, until: str | None) -> int:
    df = load(FILE.name)
    lo, hi = parse_time_value(since) or 0, parse_time_value(until) or 2**62
    return int(((df.ts >= lo) & (df.ts < hi)).sum())


@pytest.mark.parametrize("stored", [False, True], ids=["file", "stored"])
def test_cli_and_screen_backtest_the_same_bars(tmp_path, stored):
    cli = CliRunner()
    db = tmp_path / "bars.db"
    if stored:
        r = cli.invoke(app, ["import", str(FILE), "--db", str(db), "--symbol", "T/BTC", "--timeframe", "1m"])
        assert r.exit_code == 0, r.output
        since = until = None
        flags = ["--exchange", "file", "--symbol", "T/BTC", "--timeframe", "1m", "--db", str(db)]
        form = FORM | {"data": "", "source": "file T/BTC 1m", "db": str(db), "since": "", "until": ""}
    else:
        since, until = SINCE, UNTIL
        flags = ["--data", str(FILE), "--since", SINCE, "--until", UNTIL]
        form = FORM | {"data": str(FILE), "source": "", "db": "", "since": SINCE, "until": UNTIL}
    r = cli.invoke(app, CLI_FLAGS + flags)
    assert r.exit_code == 0, r.output
    from_cli = json.loads(r.stdout)["metrics"]
    from_screen = run_form(form)[0].metrics
    assert from_cli["bars"] == _bars_in(since, until) > 1000
    assert from_screen == from_cli
