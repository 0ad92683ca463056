"""The commands: clear one-line errors with exit code 2, JSON output, stored results."""

from __future__ import annotations

import asyncio
import json
import shutil
from decimal import Decimal

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tps19.cli import app
from tps19.engine.storage import BacktestResult, Database

from .conftest import DATA

ETH = str(DATA / "freqtrade_ETH_BTC_5m.csv")


@pytest.fixture()
def cli():
    return CliRunner()


def test_strategies_lists_params_and_defaults(cli):
    r = cli.invoke(app, ["strategies", "--json"])
    assert r.exit_code == 0
    info = {d["name"]: d for d in json.loads(r.stdout)}
    assert set(info) == {"sma_cross", "rsi_reversion", "donchian_breakout", "bollinger", "ml"}
    assert {p["name"]: p["default"] for p in info["rsi_reversion"]["params"]} == {
        "allow_short": False, "period": 14, "lower": 30.0, "upper": 70.0, "exit": 50.0}
    r = cli.invoke(app, ["strategies"])
    assert r.exit_code == 0 and "donchian_breakout" in r.stdout and "slow" in r.stdout


def test_backtest_json_and_stored_result(cli, tmp_path):
    db = tmp_path / "b.db"
    r = cli.invoke(app, ["backtest", "--strategy", "sma_cross", "--param", "fast=10", "--param", "slow=20",
                         "--data", ETH, "--json", "--db", str(db), "--fee", "0.001"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert obj["metrics"]["trades"] == 184
    assert obj["metrics"]["final_equity"] == pytest.approx(7297.73, abs=0.01)
    t = obj["trades"][0]
    assert t["entry_time"] == "2018-01-10T07:05:00Z" and t["entry_price"] == pytest.approx(0.09576001, rel=1e-12) and t["exit_time"]
    assert obj["trades"][-1]["open"] is True and obj["trades"][-1]["exit_time"] is None

    async def rows():
        d = Database(db)
        await d.open()
        try:
            async with d.session() as s:
                return (await s.execute(select(BacktestResult))).scalars().all()
        finally:
            await d.close()

    (row,) = asyncio.run(rows())
    assert isinstance(row.final_equity, Decimal) and row.final_equity.quantize(Decimal("0.01")) == Decimal("7297.73")
    assert row.cash == Decimal("10000") and row.strategy == "sma_cross"
    assert row.id == obj["result_id"]
    # the trades are rows of their own table, as printed; not one JSON value in the result row
    assert row.trades == []
    stored = asyncio.run(trades_of(db, row.id))
    assert len(stored) == 185 and [t.seq for t in stored] == list(range(185))
    for t, printed in zip(stored, obj["trades"], strict=True):
        assert (t.side, t.entry_bar, t.entry_price, t.exit_bar, t.pnl, t.open) == (
            printed["side"], printed["entry_bar"], printed["entry_price"], printed["exit_bar"], printed["pnl"], printed["open"])
    assert stored[-1].open and stored[-1].exit_price == obj["trades"][-1]["mark_price"]


async def trades_of(path, result_id):
    from tps19.engine.storage import BacktestTrade

    d = Database(path)
    await d.open()
    try:
        async with d.session() as s:
            q = select(BacktestTrade).where(BacktestTrade.result_id == result_id).order_by(BacktestTrade.seq)
            return (await s.execute(q)).scalars().all()
    finally:
        await d.close()


def test_backtest_human_output(cli, tmp_path):
    r = cli.invoke(app, ["backtest", "--strategy", "bollinger", "--data", ETH, "--db", str(tmp_path / "x.db")])
    assert r.exit_code == 0, r.output
    for word in ("Sharpe", "Sortino", "Calmar", "Max drawdown", "Profit factor", "Exposure", "Fees paid", "Equity", "Drawdown", "Trades"):
        assert word in r.stdout


@pytest.mark.parametrize("args,msg", [
    (["--strategy", "nope", "--data", ETH], "unknown strategy"),
    (["--strategy", "sma_cross", "--param", "fast", "--data", ETH], "expected key=value"),
    (["--strategy", "sma_cross", "--param", "fast=x", "--data", ETH], "fast"),
    (["--strategy", "sma_cross", "--param", "bogus=1", "--data", ETH], "unknown parameter"),
    (["--strategy", "sma_cross", "--param", "fast=30", "--data", ETH], "must be < slow"),
    (["--strategy", "sma_cross", "--data", "/nonexistent.csv"], "no such file"),
    (["--strategy", "sma_cross", "--data", ETH, "--fee", "0.5"], "fee"),
    (["--strategy", "sma_cross", "--data", ETH, "--since", "yesterday"], "bad --since"),
    (["--strategy", "sma_cross"], "give --data"),
])
def test_backtest_bad_input_is_one_line_exit_2(cli, args, msg, tmp_path):
    r = cli.invoke(app, ["backtest", *args, "--db", str(tmp_path / "e.db")])
    assert r.exit_code == 2
    err = r.stderr.strip()
    assert msg in err and len(err.splitlines()) == 1 and err.startswith("tps19: ")
    assert "Traceback" not in r.output


def test_import_reports_bad_rows_and_gaps(cli, tmp_path):
    p = tmp_path / "mixed.csv"
    p.write_text("timestamp,open,high,low,close,volume\n"
                 "1000000000000,1,2,0.5,1.5,10\n1000000060000,1,0.5,2,1,10\n1000000060000,1,2,0.5,1,10\n"
                 "1000000120000,1,2,0.5,1,10\n1000000120000,1,2,0.5,1,10\n1000000300000,1,2,0.5,1,10\n")
    db = tmp_path / "i.db"
    r = cli.invoke(app, ["import", str(p), "--db", str(db), "--symbol", "T/USD", "--timeframe", "1m"])
    assert r.exit_code == 0, r.output
    assert "dropped 1 rows with high < low: rows 1" in r.stdout
    assert "dropped 1 rows with duplicate timestamps: rows 4" in r.stdout
    assert "1 gaps, 2 missing bars" in r.stdout
    assert "4 bars stored as file T/USD 1m" in r.stdout
    # and the stored bars can be backtested from the database
    r = cli.invoke(app, ["backtest", "--strategy", "sma_cross", "--param", "fast=1", "--param", "slow=2",
                         "--exchange", "file", "--symbol", "T/USD", "--timeframe", "1m", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["metrics"]["bars"] == 4
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    r = cli.invoke(app, ["import", str(bad), "--db", str(db)])
    assert r.exit_code == 2 and "no timestamp column" in r.stderr


def test_import_real_file(cli, tmp_path):
    src = tmp_path / "UNITTEST_BTC.csv"
    shutil.copy(DATA / "freqtrade_UNITTEST_BTC_1m.csv", src)
    r = cli.invoke(app, ["import", str(src), "--db", str(tmp_path / "u.db")])
    assert r.exit_code == 0
    assert "538 gaps, 717 missing bars" in r.stdout and "13681 bars stored as file UNITTEST_BTC 1m" in r.stdout


def test_import_parquet_file(cli, tmp_path):
    import pandas as pd

    src = tmp_path / "UNITTEST_BTC.parquet"
    pd.read_csv(DATA / "freqtrade_UNITTEST_BTC_1m.csv").to_parquet(src)
    r = cli.invoke(app, ["import", str(src), "--db", str(tmp_path / "u.db")])
    assert r.exit_code == 0, r.output
    assert "538 gaps, 717 missing bars" in r.stdout and "13681 bars stored" in r.stdout


def test_optimize_grid_and_walk_forward(cli):
    r = cli.invoke(app, ["optimize", "--strategy", "sma_cross", "--grid", "fast=5:15:5", "--grid", "slow=20:40:20",
                         "--data", ETH, "--json", "--metric", "total_return"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    vals = [x["metrics"]["total_return"] for x in obj["ranking"]]
    assert obj["candidates"] == 6 and vals == sorted(vals, reverse=True)
    r = cli.invoke(app, ["optimize", "--strategy", "sma_cross", "--grid", "fast=5:15:5", "--grid", "slow=20:40:20",
                         "--data", ETH, "--walk-forward", "2", "--jobs", "2", "--json"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert len(obj["folds"]) == 2 and "sharpe" in obj["out_of_sample"]
    assert obj["folds"][0]["test"][0] > obj["folds"][0]["train"][1]
    r = cli.invoke(app, ["optimize", "--strategy", "sma_cross", "--grid", "fast=5:1", "--data", ETH])
    assert r.exit_code == 2 and "bad --grid" in r.stderr
    r = cli.invoke(app, ["optimize", "--strategy", "sma_cross", "--grid", "fast=5:10:5", "--metric", "luck", "--data", ETH])
    assert r.exit_code == 2 and "unknown metric" in r.stderr


def test_fetch_bad_input(cli, tmp_path):
    r = cli.invoke(app, ["fetch", "--since", "2024-02-01", "--until", "2024-01-01", "--db", str(tmp_path / "f.db")])
    assert r.exit_code == 2 and "--since must be before --until" in r.stderr
    r = cli.invoke(app, ["fetch", "--since", "2024-01-01", "--timeframe", "7x", "--db", str(tmp_path / "f.db")])
    assert r.exit_code == 2 and "unknown timeframe" in r.stderr


def test_cli_import_stays_light_and_engine_has_no_textual():
    import subprocess
    import sys

    code = ("import sys, tps19.cli; heavy = [m for m in ('pandas', 'numpy', 'ccxt', 'textual', 'plotext') if m in sys.modules];"
            "import tps19.engine.strategies, tps19.engine.backtest, tps19.engine.backtest.optimize, tps19.engine.history,"
            " tps19.engine.strategies.runner, tps19.engine.backtest.report;"
            "print(heavy, 'textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] False"


def test_fetch_cli_against_sim_then_backtest_from_db(cli, tmp_path):
    db = str(tmp_path / "s.db")
    args = ["fetch", "--exchange", "sim", "--symbol", "BTC/USDT", "--timeframe", "1m",
            "--since", "2024-01-01T00:00", "--until", "2024-01-01T10:00", "--db", db]
    r = cli.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "600 bars written (0 already stored" in r.stdout
    r = cli.invoke(app, args)
    assert r.exit_code == 0 and "0 bars written (600 already stored, 0 missing" in r.stdout
    r = cli.invoke(app, ["backtest", "--strategy", "sma_cross", "--exchange", "sim", "--symbol", "BTC/USDT",
                         "--timeframe", "1m", "--db", db, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["metrics"]["bars"] == 600


def test_backtest_of_a_file_imports_only_what_it_needs():
    """`backtest --data FILE --json --no-save` starts fast: no pandas, database layer, ccxt, rich,
    asyncio or pydantic (strategy parameters given as --param) in the process (the whole-process
    time is printed by benchmarks/bench_startup.py)."""
    import subprocess
    import sys

    code = ("import sys, json\nfrom tps19.cli import main\n"
            f"sys.argv = ['tps19', 'backtest', '--strategy', 'sma_cross', '--data', {str(DATA / 'freqtrade_UNITTEST_BTC_1m.csv')!r},"
            " '--param', 'fast=8', '--param', 'slow=21', '--param', 'allow_short=false', '--json', '--no-save']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = ('pandas', 'sqlalchemy', 'alembic', 'ccxt', 'rich', 'asyncio', 'pyarrow', 'textual', 'plotext',"
            " 'pydantic')\n"
            "print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout)
    assert res["metrics"]["bars"] == 13_681 and res["params"] == {"allow_short": False, "fast": 8, "slow": 21}
    assert json.loads(out.stderr.strip().splitlines()[-1]) == []


def test_a_backtests_fee_follows_the_venue_it_is_modelled_on():
    from tps19.cli.backtest import venue_taker_fee

    assert venue_taker_fee("sim") == (0.0006, "taker rate of the simulated Crypto.com venue")
    assert venue_taker_fee("sim-binance")[0] == 0.001
    rate, source = venue_taker_fee("kraken")
    assert 0 < rate < 0.01 and "ccxt's published taker rate for kraken" in source
    assert venue_taker_fee(None) == (0.001, "default (no venue to model)")
    # the rate the simulated venue itself charges (one schedule: tps19/venue_fees.py)
    from tps19.simex import SimExchange
    from tps19.simex.binance import BinanceSimExchange

    assert venue_taker_fee("sim")[0] == float(SimExchange(autoplay=False).engine.taker_fee)
    assert venue_taker_fee("sim-binance")[0] == float(BinanceSimExchange(autoplay=False).engine.taker_fee)


def test_stored_bars_without_an_exchange_are_the_simulated_venues_and_charge_its_fee():
    from pathlib import Path

    from tps19.cli.backtest import fee_for

    # `tps19 backtest|optimize|train --symbol BTC/USDT` reads sim's stored bars: sim's 0.06 %, not 0.1 %
    assert fee_for(None, None, None, "BTC/USDT") == (0.0006, "taker rate of the simulated Crypto.com venue")
    assert fee_for(None, None, "sim-binance", "BTC/USDT")[0] == 0.001
    assert fee_for(None, Path("bars.csv"), None, None) == (0.001, "default (no venue to model)")  # a file: no venue
    assert fee_for(0.0002, None, "sim-binance", "BTC/USDT") == (0.0002, "--fee")


def test_fetch_from_the_binance_dialect_then_backtest_at_its_fee(cli, tmp_path):
    db = str(tmp_path / "b.db")
    r = cli.invoke(app, ["fetch", "--exchange", "sim-binance", "--symbol", "ETH/USDT", "--timeframe", "5m",
                         "--since", "2024-01-01T00:00", "--until", "2024-01-01T10:00", "--db", db])
    assert r.exit_code == 0 and "120 bars written" in r.stdout, r.output
    r = cli.invoke(app, ["backtest", "--strategy", "sma_cross", "--exchange", "sim-binance", "--symbol", "ETH/USDT",
                         "--timeframe", "5m", "--db", db, "--json", "--no-save"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["config"]["fee"] == 0.001 and out["data"]["fee"]["source"] == "taker rate of the simulated Binance venue"
    assert out["metrics"]["bars"] == 120
