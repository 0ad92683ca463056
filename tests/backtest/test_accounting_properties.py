"""Backtests keep their books: for random prices, targets, fees and slippage, at every bar cash is
never below zero on spot, cash + sum(units x close) = equity, and cash and units reconcile with
the fills (portfolio and single-symbol simulators). Example counts: tests/conftest.py's profile."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tps19.engine.backtest import BacktestConfig
from tps19.engine.backtest.engine import simulate
from tps19.engine.backtest.portfolio import simulate_portfolio

N = 60
returns = arrays(np.float64, (N, 3), elements=st.floats(-0.08, 0.08))
weights = arrays(np.float64, (N, 3), elements=st.sampled_from([0.0, 0.1, 0.25, 0.33, 0.5, 0.7, 1.0]))
costs = st.tuples(st.sampled_from([0.0, 0.0004, 0.001, 0.0099]), st.sampled_from([0.0, 1.0, 25.0, 300.0]))


def _prices(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    close = 100.0 * np.cumprod(1.0 + r, axis=0)
    opens = np.vstack([close[:1], close[:-1]]) * (1.0 + r[::-1] / 10)  # opens gap away from the last close
    return opens, close


def _flows(fills) -> tuple[float, np.ndarray]:
    return (sum((f.units * f.price if f.side == "sell" else -f.units * f.price) - f.fee for f in fills),
            np.array([f.units if f.side == "buy" else -f.units for f in fills]))


@hsettings(max_examples=80)
@given(r=returns, w=weights, hold=st.integers(1, 20), cost=costs)
def test_portfolio_backtests_never_borrow_and_keep_their_books(r, w, hold, cost):
    fee, slip = cost
    opens, close = _prices(r)
    w = np.repeat(w[::hold], hold, axis=0)[:N]  # targets held for a while, as strategies do
    ts = np.arange(N, dtype=np.int64) * 60_000
    cfg = BacktestConfig(cash=10_000.0, fee=fee, slippage_bps=slip)
    equity, units, fills, cash = simulate_portfolio(ts, opens, close, w, cfg)
    assert (cash >= 0.0).all(), cash.min()
    assert np.allclose(equity, cash + (units * close).sum(axis=1), rtol=1e-12, atol=1e-9)
    for k in range(N):  # cash and units at each close are the fills up to that bar
        done = {j: [f for f in fs if f.bar <= k] for j, fs in fills.items()}
        flow = sum(_flows(fs)[0] for fs in done.values())
        assert abs(cash[k] - (10_000.0 + flow)) < 1e-6 * 10_000.0
        for j, fs in done.items():
            assert abs(units[k, j] - _flows(fs)[1].sum()) < 1e-9 * (1 + abs(units[k, j]))


@hsettings(max_examples=80)
@given(r=returns, w=weights, hold=st.integers(1, 20), cost=costs)
def test_single_symbol_backtests_keep_their_books(r, w, hold, cost):
    fee, slip = cost
    opens, close = _prices(r)
    target = np.repeat(w[::hold, 0], hold)[:N]
    ts = np.arange(N, dtype=np.int64) * 60_000
    equity, units, fills, _trades = simulate(ts, opens[:, 0], close[:, 0], target, BacktestConfig(
        cash=10_000.0, fee=fee, slippage_bps=slip))
    flow, moved = _flows(list(fills))
    cash_end = 10_000.0 + flow
    assert cash_end >= -1e-9 * 10_000.0  # long-only targets up to 1 of equity: spot never borrows
    assert abs(units[-1] - moved.sum()) < 1e-9 * (1 + abs(units[-1]))
    assert abs(equity[-1] - (cash_end + units[-1] * close[-1, 0])) < 1e-6 * 10_000.0
