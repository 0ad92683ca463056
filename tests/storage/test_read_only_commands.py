"""Commands that only read never create a database: a mistyped --db or an empty file used to be
created, migrated, and answered "no models yet"."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tps19.cli import app


@pytest.mark.parametrize("args", [["models"], ["models", "show", "m1"], ["models", "compare", "a", "b"]],
                         ids=["list", "show", "compare"])
def test_models_with_a_mistyped_db_creates_nothing(tmp_path, args):
    typo = tmp_path / "tps91.db"
    r = CliRunner().invoke(app, [*args[:1], "--db", str(typo), *args[1:]] if len(args) == 1 else [*args, "--db", str(typo)])
    assert r.exit_code == 2, r.output
    assert f"database {typo} does not exist" in r.output and "creates none" in r.output
    assert "no models yet" not in r.output
    assert list(tmp_path.iterdir()) == [], "a read-only command left files behind"


def test_models_on_an_empty_file_leaves_it_empty(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    r = CliRunner().invoke(app, ["models", "--db", str(empty)])
    assert r.exit_code == 2 and f"database {empty} is empty" in r.output, r.output
    assert empty.stat().st_size == 0


def test_models_on_an_empty_postgresql_database_migrates_nothing(pg_server):
    url = pg_server.new_empty_database("ro")
    r = CliRunner().invoke(app, ["models", "--db", url])
    assert r.exit_code == 2 and "is empty: it holds no TPS19 schema" in r.output, r.output
    assert pg_server.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", url.rsplit("/", 1)[1]).strip() == "0"


def test_a_backtest_of_stored_bars_from_a_missing_database_creates_none(tmp_path):
    typo = tmp_path / "bars.db"
    r = CliRunner().invoke(app, ["backtest", "--strategy", "sma_cross", "--symbol", "BTC/USDT", "--timeframe", "1m",
                                 "--db", str(typo)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert not typo.exists(), "a backtest created the database it was to read bars from"
