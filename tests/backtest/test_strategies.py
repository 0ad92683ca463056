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


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e6])
def test_window_mean_and_deviation_are_exactly_rounded(scale):
    """Bollinger's mean and population deviation, O(bars) from integer running sums, are the exact
    rational value rounded once, on both paths, across flat runs (exact zeros), NaNs, negative
    values and a price range wide enough for the Python-integer fallback."""
    import math
    from fractions import Fraction

    from tps19.engine.strategies import indicators as ind

    rng = np.random.default_rng(11)
    x = np.repeat(rng.choice([0.1, 0.2, 0.3, 0.7], 60), rng.integers(1, 12, 60)) * scale
    x[50:52] = np.nan
    noisy = rng.normal(0.0, 1.0, 150) * scale
    wide = np.concatenate((x[:80], [1e-9, 3e9, 0.7], x[80:]))
    for arr in (x, noisy, wide):
        for n in (1, 4, 9):
            mean, dev = ind.sma_std(arr, n)
            for i in range(len(arr)):
                w = arr[max(0, i - n + 1) : i + 1]
                if i < n - 1 or np.isnan(w).any():
                    assert np.isnan(mean[i]) and np.isnan(dev[i])
                    continue
                t = sum(map(Fraction, w))
                d = n * sum(Fraction(v) ** 2 for v in w) - t * t
                assert mean[i] == float(t) / n and dev[i] == math.sqrt(float(d)) / n, (n, i)
                live = arr[: i + 1].tolist()
                assert ind.sma_last(live, n) == mean[i] and ind.std_last(live, n) == dev[i]
        at = np.arange(len(arr))
        np.testing.assert_array_equal(ind.sma_at(arr, 4, at), ind.sma(arr, 4))


def test_rolling_extremes_match_a_window_scan():
    """van Herk/Gil-Werman rolling highs and lows equal numpy's max/min over each window (NaN in, NaN out),
    for windows that divide the length, do not, and exceed half of it."""
    from tps19.engine.strategies import indicators as ind

    rng = np.random.default_rng(5)
    x = rng.normal(100.0, 3.0, 101)
    x[[7, 60]] = np.nan
    for n in (1, 2, 5, 20, 60, 101, 102):
        hi, lo = ind.rolling_max(x, n), ind.rolling_min(x, n)
        for i in range(len(x)):
            if i < n - 1:
                assert np.isnan(hi[i]) and np.isnan(lo[i])
                continue
            w = x[i - n + 1 : i + 1]
            np.testing.assert_array_equal([hi[i], lo[i]], [w.max(), w.min()])


@pytest.mark.parametrize("n", [1500, 5000])
def test_long_windows_are_exactly_rounded_across_chunks(n):
    """Windows past 1,024 (sums of squares carried before scaling) and 4,096 bars (extra limbs),
    on more bars than one chunk of windows, so windows straddle two chunks' scales."""
    import math
    from fractions import Fraction

    from tps19.engine.strategies import indicators as ind

    rng = np.random.default_rng(n)
    x = np.round(30_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, 33_000 + n))), 2)
    mean, dev = ind.sma_std(x, n)
    at = np.array([n - 1, 32_767 + n // 2, 32_768 + n - 1, len(x) - 1])
    (mean_at,) = ind.means_at(x, (n,), at)
    for k, i in enumerate(at.tolist()):
        w = [Fraction(v) for v in x[i - n + 1 : i + 1].tolist()]
        t = sum(w)
        d = n * sum(v * v for v in w) - t * t
        assert mean[i] == float(t) / n == mean_at[k] and dev[i] == math.sqrt(float(d)) / n, i
