"""No look-ahead: decisions use only bars up to their close; fills happen at the next open."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tps19.engine.backtest import BacktestConfig, check_no_lookahead, run_backtest
from tps19.engine.strategies import Strategy, StrategyParams, create, names


class PeekParams(StrategyParams):
    pass


class Peeker(Strategy):
    """Cheats: goes long when the NEXT close is higher."""

    name = "peeker"
    Params = PeekParams
    reasons = ("future is up", "future is down")

    def lookback(self) -> int:
        return 1

    def events(self, open_, high, low, close, volume):
        nxt = np.append(close[1:], np.nan)
        ev = np.where(nxt > close, 1.0, np.where(nxt < close, 0.0, np.nan))
        return ev, np.where(nxt > close, 0, 1), np.ones(len(close))

    def step(self):
        return np.nan, -1, 0.0


CUTS = [100, 777, 1500, 2999, 4000, 5500]


def test_peeking_strategy_is_caught(eth5m):
    assert check_no_lookahead(Peeker, eth5m, CUTS) != []


@pytest.mark.parametrize("name", ["sma_cross", "rsi_reversion", "donchian_breakout", "bollinger"])
def test_builtins_do_not_peek(name, eth5m):
    assert check_no_lookahead(lambda: create(name, {"allow_short": True}), eth5m, CUTS) == []


def test_peeker_would_be_too_good(eth5m):
    # With next-open fills a peeker still profits hugely; it is the check above that catches it.
    res = run_backtest(Peeker(), eth5m, BacktestConfig(fee=0.0))
    assert res.final_equity > 2 * res.config.cash


def test_fill_is_next_open_never_same_bar(eth5m):
    res = run_backtest(create("sma_cross"), eth5m, BacktestConfig(fee=0.0))
    emitted = np.flatnonzero(create("sma_cross").generate(eth5m).emitted)
    fill_bars = [f.bar for f in res.fills]
    assert fill_bars == [i + 1 for i in emitted if i + 1 < len(eth5m)]
    for f in res.fills:
        assert f.price == eth5m.open.iloc[f.bar]


def test_signal_on_last_bar_is_not_filled():
    df = pd.DataFrame({"ts": np.arange(5) * 60_000, "open": [1.0, 1, 1, 1, 1], "high": [1.0] * 5,
                       "low": [1.0] * 5, "close": [1.0] * 5, "volume": [1.0] * 5})

    class LastBar(Peeker):
        def events(self, open_, high, low, close, volume):
            ev = np.full(len(close), np.nan)
            ev[-1] = 1.0
            return ev, np.zeros(len(close), int), np.ones(len(close))

    res = run_backtest(LastBar(), df)
    assert res.fills == [] and res.final_equity == 10_000.0


def test_all_builtins_listed():
    # `ml` needs a trained model: its no-look-ahead tests are in tests/ml (features, strategy)
    assert set(names()) == {"sma_cross", "rsi_reversion", "donchian_breakout", "bollinger", "ml"}
