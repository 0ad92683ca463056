"""`tps19 optimize --cluster tcp://HOST:PORT`: the grid on a real Dask scheduler with two worker
processes on loopback gives exactly the local run's results."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tps19.cli import app

from tests.engine.conftest import settings, sim, sim_settings  # noqa: F401  (fixtures)
from .conftest import clean_env

pytestmark = pytest.mark.slow

ETH = str(Path("/work/shared/data") / "freqtrade_ETH_BTC_5m.csv")
GRID = ["--strategy", "sma_cross", "--grid", "fast=3:9:3", "--grid", "slow=20:40:10", "--data", ETH, "--json"]


def _dask(*args: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=subprocess.DEVNULL,
                            stderr=log.open("w"), env=clean_env())


def _kill(procs: list[subprocess.Popen]) -> None:
    # a worker on SIGTERM waits many seconds for a scheduler that is going away: these are
    # throwaway processes of this test, nothing to flush
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory) -> Iterator[str]:
    """A Dask scheduler and two single-threaded worker processes on 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("dask")
    info = tmp / "scheduler.json"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(info),
                   log=tmp / "scheduler.log")]
    try:
        end = time.monotonic() + 90
        while not info.exists() and time.monotonic() < end:
            assert procs[0].poll() is None, (tmp / "scheduler.log").read_text()
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        for i in range(2):
            procs.append(_dask("worker", "--scheduler-file", str(info), "--host", "127.0.0.1", "--nthreads", "1",
                               "--no-nanny", "--no-dashboard", "--local-directory", str(tmp / f"w{i}"),
                               log=tmp / f"worker{i}.log"))
        from distributed import Client

        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        _kill(procs[::-1])


def _optimize(*extra: str) -> dict:
    r = CliRunner().invoke(app, ["optimize", *GRID, *extra])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_a_grid_on_the_cluster_ranks_exactly_as_the_local_run(scheduler):
    local = _optimize()
    before = _executed(scheduler)
    remote = _optimize("--cluster", scheduler)
    assert remote == local
    after = _executed(scheduler)
    assert len(after) == 2 and sum(after.values()) - sum(before.values()) >= 9  # every candidate ran there
    assert local["candidates"] == 9 and len(local["ranking"]) >= 3


def test_walk_forward_on_the_cluster_equals_the_local_run(scheduler):
    assert _optimize("--walk-forward", "2", "--cluster", scheduler) == _optimize("--walk-forward", "2")


def test_a_tpe_study_on_the_cluster_records_every_trial(scheduler):
    """The trials run on the workers (fold by fold, pruned by the driver); every proposal is in the
    trial log, each evaluated set's fold scores are what a local backtest of it gives, and the run
    says it is not promised to repeat."""
    import numpy as np

    from tps19.engine.backtest import BacktestConfig, run_backtest
    from tps19.engine.backtest.optimize import score, walk_forward_windows
    from tps19.engine.history.source import load_file_bars
    from tps19.engine.strategies import get

    before = _executed(scheduler)
    study = ["optimize", "--strategy", "sma_cross", "--grid", "fast=2:30", "--grid", "slow=10:120:5", "--data", ETH,
             "--search", "tpe"]
    r = CliRunner().invoke(app, [*study, "--trials", "16", "--walk-forward", "3", "--seed", "5", "--cluster", scheduler,
                                 "--json"])
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    after = _executed(scheduler)
    log = s["trial_log"]
    evaluated = [t for t in log if t["state"] in ("complete", "pruned")]
    assert s["trials"] == len(evaluated) == 16 and s["overfitting"]["trials"] == 16
    assert s["pruned"] == sum(t["state"] == "pruned" for t in log)
    assert s["repeatable"] is False and len(log) == s["proposals"]
    assert sorted(t["number"] for t in log) == list(range(len(log)))  # no proposal missing
    assert sum(after.values()) - sum(before.values()) >= sum(len(t["folds"]) for t in evaluated)
    bars, _ = load_file_bars(Path(ETH), None, None)
    df = {k: bars[k] for k in ("ts", "open", "high", "low", "close", "volume")}
    windows = [w[0] for w in walk_forward_windows(len(df["close"]), 3)]
    for t in evaluated[:4] + [s["winner"]]:
        local = [score(run_backtest(get("sma_cross")(t["params"]), {k: v[lo:hi] for k, v in df.items()},
                                    BacktestConfig(fee=0.001)).metrics, "sharpe") for lo, hi in windows[:len(t["folds"])]]
        assert t["folds"] == pytest.approx(local, rel=1e-12)
    assert s["winner"]["value"] == pytest.approx(float(np.mean(s["winner"]["folds"])))
    r = CliRunner().invoke(app, [*study, "--trials", "4", "--cluster", scheduler])
    assert r.exit_code == 0, r.output
    assert "not promised to repeat" in " ".join(r.stdout.split())


def _train(tmp_path: Path, *extra: str) -> dict:
    data = tmp_path / "bars.csv"
    if not data.exists():  # 1,500 bars keep the three folds quick
        data.write_text("".join(Path(ETH).read_text().splitlines(keepends=True)[:1501]))
    db = tmp_path / f"models{len(list(tmp_path.glob('models*')))}.db"
    r = CliRunner().invoke(app, ["train", "--data", str(data), "--model", "logreg", "--horizon", "3", "--folds", "3",
                                 "--json", "--db", str(db), *extra])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_train_folds_on_the_cluster_score_exactly_as_the_local_run(scheduler, tmp_path):
    local = _train(tmp_path)
    before = _executed(scheduler)
    remote = _train(tmp_path, "--cluster", scheduler)
    after = _executed(scheduler)
    assert sum(after.values()) - sum(before.values()) >= 3  # the three folds were fitted there
    assert remote["cv"] == local["cv"] and remote["oos"] == local["oos"] and remote["params"] == local["params"]
    assert remote["content_hash"] == local["content_hash"]  # the same final model


def _executed(address: str) -> dict[str, int]:
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False) as client:
        return client.run(lambda dask_worker: dask_worker.state.executed_count)


def test_unreachable_scheduler_is_a_one_line_cluster_error():
    from tps19.engine.distributed import ClusterError, cluster

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening: refused
    with pytest.raises(ClusterError) as err:
        with cluster(address, timeout=2):
            pass
    message = str(err.value)
    assert message.startswith(f"cannot reach the Dask scheduler at {address}") and "\n" not in message


@pytest.mark.parametrize("address", ["127.0.0.1:8786", "tcp://host-without-port", "tcp://h:99999"])
def test_a_malformed_cluster_address_is_one_line(address):
    r = CliRunner().invoke(app, ["optimize", *GRID, "--cluster", address])
    assert r.exit_code == 2
    lines = [line for line in r.stderr.splitlines() if line.strip() and "optimising" not in line]
    assert lines == [f"tps19: --cluster takes tcp://HOST:PORT (a Dask scheduler), not {address!r}"], r.stderr


# -- the model lifecycle's retrains (engine/ml/lifecycle.py) on the cluster --------------------------

async def _paper_retrain(sim_settings, cluster: str, timeout_s: float = 10.0) -> tuple[dict, list, str]:
    """A paper engine on the simulated exchange retraining its ``ml`` champion on a schedule with
    ``cluster`` configured: the challenger's lineage, the engine's log events and `models show`."""
    import math

    from tests.ml.conftest import make_bars, register_model
    from tps19.engine.engine import Engine
    from tps19.engine.events import BarEvent, LogEvent
    from tps19.engine.ml.lifecycle import LifecycleConfig
    from tps19.engine.storage.models_ml import MLModel
    from tps19.engine.strategies.registry import create

    sim_settings = sim_settings.model_copy(update={
        "symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]})})
    db = sim_settings.database.path
    champion = await asyncio.to_thread(register_model, db, make_bars(600, ar=-0.4), folds=2)
    # the champion's data ended in 2020: the schedule fires at the first live bar
    life = LifecycleConfig(retrain_every_ms=3 * 60_000, window_bars=600, folds=2, model="logreg",
                           cluster=cluster, cluster_timeout_s=timeout_s)
    engine = Engine(sim_settings, "paper", strategy=create("ml", {"model": champion}, db=db), lifecycle=life)
    logs: list[LogEvent] = []
    engine.bus.on(LogEvent, logs.append)
    await engine.start()
    try:
        runner, lc = engine.runner, engine.lifecycle
        assert runner is not None and lc is not None
        ts = runner.last_ts["BTC/USDT"] + 60_000
        close = runner.strategy_for("BTC/USDT").window.last_close * math.exp(0.001)
        engine.bus.publish(BarEvent("BTC/USDT", "1m", ts, close, close * 1.001, close * 0.999, close, 5.0, True))
        async with asyncio.timeout(240):  # a hang's guard, not a speed assertion
            while lc.training is None and lc.last_bar_ts != ts:
                await asyncio.sleep(0.02)
            assert lc.training is not None, "the schedule did not fire"
            await lc.training  # the retrain's task: it registers the challenger or records a failure
        assert lc.failures == 0 and lc.retrains == 1 and lc.challenger is not None
        async with engine.db.session() as s:
            model = await s.get(MLModel, lc.challenger.model.id)
        assert model is not None and model.lineage["parent"] == champion
        # what `tps19 models show` says of it
        r = await asyncio.to_thread(CliRunner().invoke, app, ["models", "show", model.id, "--db", str(db)])
        assert r.exit_code == 0, r.output
        return model.lineage, logs, r.stdout
    finally:
        await engine.stop()


def _worker_pids(address: str) -> dict[str, int]:
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False) as client:
        return client.run(os.getpid)


async def test_a_paper_engine_retrains_its_model_on_the_cluster(scheduler, sim_settings):  # noqa: F811
    before = await asyncio.to_thread(_executed, scheduler)
    lineage, logs, shown = await _paper_retrain(sim_settings, scheduler)
    after = await asyncio.to_thread(_executed, scheduler)
    pids = await asyncio.to_thread(_worker_pids, scheduler)
    assert lineage["trained_on"] == "cluster" and lineage["scheduler"] == scheduler
    worker = lineage["worker"]
    # it ran in one of the cluster's worker processes, not in this one nor a local spawned one
    assert worker["pid"] != os.getpid() and pids[worker["worker"]] == worker["pid"]
    assert after[worker["worker"]] > before[worker["worker"]]
    assert "cluster_fallback" not in lineage
    assert not [e for e in logs if "cluster is unavailable" in e.message]
    assert f"trained on the Dask cluster {scheduler} (worker {worker['worker']}, pid {worker['pid']})" in shown


async def test_an_unreachable_cluster_retrains_in_the_local_process_and_says_so(sim_settings):  # noqa: F811
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening: refused
    lineage, logs, shown = await _paper_retrain(sim_settings, address, timeout_s=1.0)
    assert lineage["trained_on"] == "local process" and "scheduler" not in lineage
    assert lineage["worker"]["pid"] != os.getpid()  # the spawned worker process, not the event loop's
    assert lineage["cluster_fallback"]["scheduler"] == address
    assert lineage["cluster_fallback"]["error"].startswith(f"ClusterError: cannot reach the Dask scheduler at {address}")
    (warning,) = [e for e in logs if "cluster is unavailable" in e.message]
    assert warning.level == "warning" and warning.fields["scheduler"] == address
    assert f"the Dask cluster {address} was unavailable (ClusterError: cannot reach" in shown


async def test_a_scheduler_without_workers_is_a_cluster_fault_not_a_wait_forever():
    """A task there would wait for a worker forever: the retrain must fall back instead."""
    import threading

    import numpy as np
    from distributed import Scheduler

    from tps19.engine.distributed import ClusterError
    from tps19.engine.ml.retrain_jobs import cluster_faults, train_on_cluster
    from tps19.engine.ml.train import TrainConfig

    bars = {k: np.ones(10) for k in ("open", "high", "low", "close", "volume")} | {"ts": np.arange(10)}
    async with Scheduler(host="127.0.0.1", port=0, dashboard_address=None) as s:
        with pytest.raises(ClusterError, match=f"the Dask scheduler at {s.address} has no workers"):
            await asyncio.to_thread(train_on_cluster, s.address, bars, TrainConfig(), threading.Event(), 10.0)
    assert ClusterError in cluster_faults()
