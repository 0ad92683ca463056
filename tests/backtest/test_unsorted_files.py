"""A bar file out of time order is sorted, with the same warning in every command that reads bar
files, and gives the figures of the sorted file: it used to lose every row behind its running
maximum (a shuffled 3,000-row file became 8 returns and a 170 % volatility, exit 0). A CSV with
only its header is one line, without numpy's warning."""

from __future__ import annotations

import json
import random
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from tps19.cli import app

N = 600
WARNING = "not in time order: "


def _rows(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N)))
    out = []
    for i, c in enumerate(close):
        o = c * (1 + rng.normal(0, 0.001))
        out.append(f"{1_600_000_000_000 + i * 300_000},{o:.6f},{max(o, c) * 1.002:.6f},{min(o, c) * 0.998:.6f},"
                   f"{c:.6f},{rng.uniform(1, 10):.4f}")
    return out


@pytest.fixture(autouse=True)
def own_database(tmp_path, monkeypatch):
    """train registers its model and rebalance runs a paper engine: in this test's own database."""
    for k in [k for k in __import__("os").environ if k.startswith("TPS19_")]:
        monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TPS19_DATABASE__PATH", str(tmp_path / "tps19.db"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bars")
    header = "timestamp,open,high,low,close,volume\n"
    out = {}
    for name, seed in (("btc", 1), ("eth", 2)):
        rows = _rows(seed)
        (d / f"{name}.csv").write_text(header + "\n".join(rows) + "\n")
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        (d / f"{name}_shuffled.csv").write_text(header + "\n".join(shuffled) + "\n")
        out[name], out[f"{name}_shuffled"] = d / f"{name}.csv", d / f"{name}_shuffled.csv"
    (d / "header_only.csv").write_text(header)
    out["header_only"] = d / "header_only.csv"
    return out


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def test_risk_and_rebalance_sort_a_shuffled_file_and_say_so(files):
    sorted_risk = run("risk", "--data", f"BTC/USDT={files['btc']}", "--data", f"ETH/USDT={files['eth']}", "--json")
    code, out, err = run("risk", "--data", f"BTC/USDT={files['btc_shuffled']}", "--data",
                         f"ETH/USDT={files['eth']}", "--json")
    assert code == 0 and json.loads(out) == json.loads(sorted_risk[1])
    assert json.loads(out)["bars"] == N - 1
    assert err.count(WARNING) == 1 and "--data BTC/USDT: not in time order" in err and "sorted by time" in err
    # rebalance starts a venue for its order preview (~15 s here): run once, against the library
    # on the sorted files
    from tps19.engine.history.source import load_file_bars
    from tps19.engine.risk.metrics import align_closes, simple_returns
    from tps19.engine.risk.optimize import allocate

    code, out, err = run("rebalance", "--method", "min_variance", "--dry-run", "--json", "--data",
                         f"BTC/USDT={files['btc_shuffled']}", "--data", f"ETH/USDT={files['eth_shuffled']}")
    assert code == 0, out + err
    assert err.count(WARNING) == 2
    got = json.loads(out)
    ts, closes = align_closes({s: load_file_bars(files[n])[0] for s, n in (("BTC/USDT", "btc"), ("ETH/USDT", "eth"))})
    rets = np.column_stack([simple_returns(closes[s])[-500:] for s in ("BTC/USDT", "ETH/USDT")])
    want = allocate("min_variance", ["BTC/USDT", "ETH/USDT"], rets).as_dict()
    assert got["weights"] == pytest.approx(want["weights"])
    np.testing.assert_allclose(got["covariance"], want["covariance"])
    assert got["returns"] == 500 and got["to_ts"] == int(ts[-1])


@pytest.mark.parametrize("command", [
    ("backtest", "--strategy", "sma_cross", "--json", "--data"),
    ("train", "--model", "logreg", "--horizon", "1", "--folds", "2", "--json", "--data"),
    ("import", "--db", "{db}"),
], ids=["backtest", "train", "import"])
def test_every_command_reading_bar_files_sorts_them_the_same_way(files, command, tmp_path):
    args = [a.replace("{db}", str(tmp_path / "t.db")) for a in command]
    code, out, err = run(*args, str(files["btc_shuffled"]))
    assert code == 0, out + err
    assert WARNING in out + err and "sorted by time" in out + err
    assert "not enough bars" not in out + err


def test_a_header_only_csv_is_one_line_without_numpy_warnings(files):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "input contained no data" would fail here
        code, out, err = run("risk", "--data", f"BTC/USDT={files['header_only']}")
    assert code == 2 and err.strip().splitlines() == [f"tps19: --data BTC/USDT: header_only.csv has no rows"]
