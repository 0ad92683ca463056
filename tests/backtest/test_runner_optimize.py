"""StrategyRunner on the EventBus; optimiser and walk-forward windows."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from sqlalchemy import select

from tps19.engine.backtest import BacktestConfig
from tps19.engine.backtest import optimize as opt
from tps19.engine.bus import EventBus
from tps19.engine.events import BarEvent
from tps19.engine.storage import Database, TradingSignal
from tps19.engine.strategies import ParamError, SignalEvent, create
from tps19.engine.strategies.runner import StrategyRunner


def bars(df, symbol="ETH/BTC", tf="5m", closed=True):
    for r in df.itertuples(index=False):
        yield BarEvent(symbol, tf, int(r.ts), r.open, r.high, r.low, r.close, r.volume, closed)


class Sink:
    def __init__(self):
        self.calls = []

    async def submit_target(self, symbol, target_fraction, signal):
        self.calls.append((symbol, target_fraction, signal))


async def test_runner_publishes_persists_and_submits(eth5m, tmp_path):
    df = eth5m.iloc[:800]
    bus = EventBus()
    out = bus.subscribe(SignalEvent, coalesce=None)
    db = Database(tmp_path / "r.db")
    await db.open()
    sink = Sink()
    runner = StrategyRunner(bus, create("sma_cross"), symbols=["ETH/BTC"], timeframe="5m", db=db, order_sink=sink)
    task = runner.start()
    try:
        for i, b in enumerate(bars(df)):
            bus.publish(b)
            if i == 10:
                bus.publish(BarEvent("ETH/BTC", "5m", b.ts + 1, 1, 1, 1, 1, 1, False))  # forming bar: ignored
                bus.publish(b)  # duplicate: ignored
                bus.publish(BarEvent("SOL/USDT", "5m", b.ts, 1, 1, 1, 1, 1, True))  # other symbol: ignored
            if i % 100 == 0:
                await asyncio.sleep(0)
        await runner.stop()
    finally:
        await db.close()
    assert task.done()
    frame = create("sma_cross").generate(df)
    expected = [(int(df.ts.iloc[i]), frame.signal_at(i)) for i in np.flatnonzero(frame.emitted)]
    assert runner.bars_seen == len(df)
    assert [(e.ts, e.signal) for e in runner.signals] == expected
    published = [e for e in out.drain() if isinstance(e, SignalEvent)]
    assert [(e.ts, e.signal) for e in published] == expected
    assert [(s, t) for s, t, _ in sink.calls] == [("ETH/BTC", sig.target) for _, sig in expected]
    db2 = Database(tmp_path / "r.db")
    await db2.open()
    try:
        async with db2.session() as s:
            rows = (await s.execute(select(TradingSignal).order_by(TradingSignal.ts))).scalars().all()
        assert [(r.ts, r.direction, r.reason) for r in rows] == [(t, sig.direction, sig.reason) for t, sig in expected]
        assert rows[0].strategy == "sma_cross" and rows[0].params["fast"] == 10 and rows[0].params["target"] == 1.0
    finally:
        await db2.close()


async def test_runner_accepts_a_plain_async_callable_and_survives_sink_errors(eth5m):
    bus = EventBus()
    got = []

    async def submit(symbol, target, signal):
        got.append(target)
        if len(got) == 1:
            raise RuntimeError("broker down")

    runner = StrategyRunner(bus, create("sma_cross"), order_sink=submit)
    for b in bars(eth5m.iloc[:400]):
        await runner.handle(b)
    assert len(got) == len(runner.signals) > 2 and runner.errors == 1


def test_parse_grid():
    assert opt.parse_grid(["fast=5:20:5"]) == {"fast": [5, 10, 15, 20]}
    assert opt.parse_grid(["k=1.5:2.5:0.5"]) == {"k": [1.5, 2.0, 2.5]}
    assert opt.parse_grid(["k=1,2.5", "allow_short=true,false"]) == {"k": [1, 2.5], "allow_short": [True, False]}
    for bad in ("fast", "fast=5:1", "fast=1:5:0", "fast=a:b"):
        with pytest.raises(ParamError):
            opt.parse_grid([bad])
    with pytest.raises(ParamError):
        opt.candidates("sma_cross", {"nope": [1]})


def test_candidates_skip_invalid_and_random_subset():
    c = opt.candidates("sma_cross", opt.parse_grid(["fast=5:30:5", "slow=10:30:10"]))
    assert all(p["fast"] < p["slow"] for p in c) and len(c) == 9
    r = opt.candidates("sma_cross", opt.parse_grid(["fast=5:30:5", "slow=10:30:10"]), n_random=4, seed=1)
    assert len(r) == 4 and all(p in c for p in r)


@pytest.mark.parametrize("n,folds", [(5760, 1), (5760, 3), (1001, 4), (100, 9)])
def test_walk_forward_windows_never_overlap_their_tests(n, folds):
    w = opt.walk_forward_windows(n, folds)
    assert len(w) == folds
    tests = [t for _, t in w]
    for (tr, te) in w:
        assert tr[0] < tr[1] <= te[0] < te[1] <= n  # train strictly before its test
    for a, b in zip(tests, tests[1:], strict=False):
        assert a[1] <= b[0]  # test windows are disjoint and ordered
    covered = set()
    for t in tests:
        rng = set(range(*t))
        assert not covered & rng
        covered |= rng


def test_walk_forward_end_to_end(eth5m):
    data = {k: eth5m[k].to_numpy() for k in ("ts", "open", "high", "low", "close", "volume")}
    cands = opt.candidates("sma_cross", opt.parse_grid(["fast=5:15:5", "slow=20:40:10"]))
    wf = opt.walk_forward("sma_cross", cands, data, BacktestConfig(), 3, "sharpe", jobs=1)
    assert len(wf.folds) == 3
    for f in wf.folds:
        # the chosen params are the in-sample best
        ranked = opt.rank(opt.evaluate_many("sma_cross", cands, data, BacktestConfig(), f.train[0], f.train[1]), "sharpe")
        assert f.best_params == ranked[0][0]
        # out-of-sample trades happen inside the test window only
        assert f.out_of_sample["start_ms"] == int(data["ts"][f.test[0]])
        assert f.out_of_sample["end_ms"] == int(data["ts"][f.test[1] - 1])
    lo, hi = int(data["ts"][wf.folds[0].test[0]]), int(data["ts"][wf.folds[-1].test[1] - 1])
    for t in wf.trades:
        assert lo <= t.entry_ts <= hi
    assert len(wf.equity) == sum(f.test[1] - f.test[0] for f in wf.folds)
    # chaining: each window starts with the previous window's final equity
    chained = 1.0
    for f in wf.folds:
        chained *= 1 + f.out_of_sample["total_return"]
    assert wf.metrics["total_return"] == pytest.approx(chained - 1)


def test_parallel_equals_serial(eth5m):
    data = {k: eth5m[k].to_numpy() for k in ("ts", "open", "high", "low", "close", "volume")}
    cands = opt.candidates("bollinger", opt.parse_grid(["period=10:30:10", "k=1.5,2"]))
    a = opt.evaluate_many("bollinger", cands, data, BacktestConfig(), jobs=1)
    b = opt.evaluate_many("bollinger", cands, data, BacktestConfig(), jobs=2)
    assert a == b


def test_workers_map_the_bars_once(eth5m, monkeypatch):
    """The pool's workers read the bars from one memory-mapped file (read-only views, nothing
    pickled per task); the file is gone when the search is done."""
    import os

    from tps19.engine.backtest.shared import write_mapped

    data = {k: eth5m[k].to_numpy() for k in ("ts", "open", "high", "low", "close", "volume")}
    mapped = write_mapped(data)
    try:
        views = mapped.open()
        assert all(isinstance(v, np.memmap) and not v.flags.writeable for v in views.values())
        for k in data:
            np.testing.assert_array_equal(views[k], data[k])
    finally:
        os.unlink(mapped.path)
    # the files this search maps, not a listing of the shared folder (other processes on the
    # machine map theirs in /dev/shm too: a listing failed while another optimize ran)
    from tps19.engine.backtest import shared

    made: list[str] = []

    def recording(data_):
        m = write_mapped(data_)
        made.append(m.path)
        return m

    monkeypatch.setattr(shared, "write_mapped", recording)
    cands = opt.candidates("sma_cross", {"fast": [5, 10], "slow": [20, 40]})
    a = opt.evaluate_many("sma_cross", cands, data, BacktestConfig(), jobs=1)
    b = opt.evaluate_many("sma_cross", cands, data, BacktestConfig(), jobs=2)
    assert a == b
    assert made and not any(os.path.exists(path) for path in made)
