"""The same strategy object gives identical signals vectorised (backtest) and bar by bar (live)."""

from __future__ import annotations

import numpy as np
import pytest

from tps19.engine.events import BarEvent
from tps19.engine.strategies import ParamError, Signal, create, describe, names, parse_kv

CASES = [(n, s) for n in ("sma_cross", "rsi_reversion", "donchian_breakout", "bollinger") for s in (False, True)]


def _replay(strategy, df, symbol="X/Y", tf="5m"):
    out, targets = [], []
    for row in df.itertuples(index=False):
        bar = BarEvent(symbol, tf, int(row.ts), row.open, row.high, row.low, row.close, row.volume, True)
        out.append(strategy.on_bar(bar))
        targets.append(strategy.target)
    return out, np.array(targets)


@pytest.mark.parametrize("name,short", CASES)
def test_vectorised_equals_incremental_on_real_data(name, short, eth5m, btc1m_gaps):
    for df in (eth5m, btc1m_gaps.iloc[:6000]):
        frame = create(name, {"allow_short": short}).generate(df)
        live, targets = _replay(create(name, {"allow_short": short}), df)
        expected = [frame.signal_at(i) for i in range(len(df))]
        assert sum(s is not None for s in live) > 10  # the strategy does trade on this data
        assert live == expected
        np.testing.assert_array_equal(targets, frame.target)
        lo = -1.0 if short else 0.0
        assert frame.target.min() >= lo and frame.target.max() <= 1.0


def test_spot_default_never_short(eth5m):
    for n in names():
        if n == "ml":  # needs a trained model: tests/ml
            continue
        s = create(n)
        assert s.params.allow_short is False
        assert s.generate(eth5m).target.min() == 0.0


def test_registry_and_params():
    assert names() == ["bollinger", "donchian_breakout", "ml", "rsi_reversion", "sma_cross"]
    info = {d["name"]: d for d in describe()}
    fast = next(p for p in info["sma_cross"]["params"] if p["name"] == "fast")
    assert fast["default"] == 10 and fast["type"] == "int"
    s = create("sma_cross", ["fast=5", "slow=30"])
    assert (s.params.fast, s.params.slow) == (5, 30)
    assert parse_kv(["k=2.5"]) == {"k": "2.5"}
    for bad in (["fast=x"], ["fast"], ["nope=1"], ["fast=30", "slow=20"]):
        with pytest.raises(ParamError):
            create("sma_cross", bad)
    with pytest.raises(ParamError):
        create("no_such")
    with pytest.raises(ParamError):
        create("rsi_reversion", {"lower": 60, "exit": 50})


def test_signal_validation():
    with pytest.raises(ValueError):
        Signal(direction=2, strength=0.1, reason="", target=0.0)
    with pytest.raises(ValueError):
        Signal(direction=1, strength=0.1, reason="", target=1.5)


def test_sma_cross_reason_and_direction(eth5m):
    frame = create("sma_cross").generate(eth5m)
    i = int(np.flatnonzero(frame.emitted)[0])
    sig = frame.signal_at(i)
    assert sig.direction == 1 and sig.target == 1.0 and "above" in sig.reason
    j = int(np.flatnonzero(frame.emitted)[1])
    sig2 = frame.signal_at(j)
    assert sig2.direction == -1 and sig2.target == 0.0 and "below" in sig2.reason


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e6])
def test_compare_means_is_exact(scale):
    """The O(bars) integer comparison of two averages equals exact rational arithmetic, ties included,
    also when prices span many binary orders of magnitude (the Python-integer fallback)."""
    from fractions import Fraction

    from tps19.engine.strategies import indicators as ind

    rng = np.random.default_rng(7)
    x = np.repeat(rng.choice([0.1, 0.2, 0.3, 0.7], 80), rng.integers(1, 12, 80)) * scale  # flat runs: ties
    x[100:103] = np.nan
    wide = np.concatenate((x, [1e-9, 3e9, 0.7]))
    for arr in (x, wide):
        got = ind.compare_means(arr, 3, 7)
        for i in range(len(arr)):
            w = arr[max(0, i - 6) : i + 1]
            if i < 6 or np.isnan(w).any():
                assert np.isnan(got[i])
                continue
            d = sum(map(Fraction, w[-3:])) / 3 - sum(map(Fraction, w)) / 7
            assert got[i] == (d > 0) - (d < 0), i
            assert ind.compare_means_last(arr[: i + 1].tolist(), 3, 7) == got[i]
    assert (ind.compare_means(x, 3, 7) == 0).sum() > 5
