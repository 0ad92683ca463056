"""Independent peer check: backtesting.py (kernc) 0.6.6 on the same data and rules.

backtesting.py fills market orders at the next bar's open (``trade_on_close=False``), charges
``commission`` as a fraction of notional on entry and on exit, and sizes ``buy()`` at
(almost) all available equity in *whole units*: ``int(equity * 0.9999999999999998 //
(price * (1 + commission)))``. ``FractionalBacktest(fractional_unit=1e-8)`` makes the unit one
satoshi, so sizes differ from our exact fractional sizing by less than 1e-8 of the asset:
"within fee rounding". Its SMA is pandas ``rolling().mean()``, not ours; the crossovers still
agree on these data sets. Its final equity marks an open trade at the last close without an
exit fee, like ours; its trade list omits the open trade, ours flags it ``open``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("backtesting")

from backtesting import Strategy as PeerStrategy  # noqa: E402
from backtesting.lib import FractionalBacktest, crossover  # noqa: E402
from backtesting.test import SMA  # noqa: E402

from tps19.engine.backtest import BacktestConfig, run_backtest  # noqa: E402
from tps19.engine.strategies import create  # noqa: E402


class PeerSmaLongOnly(PeerStrategy):
    n1 = 10
    n2 = 20

    def init(self):
        self.s1 = self.I(SMA, self.data.Close, self.n1)
        self.s2 = self.I(SMA, self.data.Close, self.n2)

    def next(self):
        if crossover(self.s1, self.s2):
            self.buy()
        elif crossover(self.s2, self.s1):
            self.position.close()


class PeerSmaCross(PeerSmaLongOnly):
    """backtesting.py's own README example (long and short)."""

    def next(self):
        if crossover(self.s1, self.s2):
            self.position.close()
            self.buy()
        elif crossover(self.s2, self.s1):
            self.position.close()
            self.sell()


def peer_run(df: pd.DataFrame, cls, fee: float, n1: int, n2: int, cash: float = 10_000.0):
    bdf = pd.DataFrame(
        {"Open": df.open.values, "High": df.high.values, "Low": df.low.values, "Close": df.close.values,
         "Volume": df.volume.values},
        index=pd.to_datetime(df.ts.values, unit="ms"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(bdf, cls, cash=cash, commission=fee, trade_on_close=False, exclusive_orders=True,
                                fractional_unit=1e-8)
        return bt.run(n1=n1, n2=n2)


def compare(df, fee, n1, n2, short):
    stats = peer_run(df, PeerSmaCross if short else PeerSmaLongOnly, fee, n1, n2)
    mine = run_backtest(create("sma_cross", {"fast": n1, "slow": n2, "allow_short": short}), df,
                        BacktestConfig(cash=10_000.0, fee=fee))
    peer = stats["_trades"]
    closed = mine.closed_trades
    assert len(closed) == len(peer) > 5
    assert [t.entry_bar for t in closed] == peer.EntryBar.tolist()
    assert [t.exit_bar for t in closed] == peer.ExitBar.tolist()
    assert [t.side for t in closed] == ["long" if s > 0 else "short" for s in peer.Size]
    np.testing.assert_allclose([t.entry_price for t in closed], peer.EntryPrice, rtol=1e-12)
    np.testing.assert_allclose([t.exit_price for t in closed], peer.ExitPrice, rtol=1e-12)
    # sizes: peer floors to whole satoshis
    np.testing.assert_allclose([t.units for t in closed], peer.Size.abs(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose([t.pnl for t in closed], peer.PnL, rtol=1e-6, atol=0.01)
    assert mine.final_equity == pytest.approx(stats["Equity Final [$]"], abs=0.01)
    assert len(mine.trades) - len(closed) in (0, 1)
    return mine, stats


@pytest.mark.parametrize("fee", [0.0, 0.001, 0.0025])
def test_sma_cross_long_only_matches_backtesting_py(eth5m, fee):
    compare(eth5m, fee, 10, 20, short=False)


def test_sma_cross_long_short_matches_backtesting_py_example(eth5m):
    compare(eth5m, 0.001, 10, 20, short=True)


def test_sma_cross_matches_on_real_1m_data_with_gaps(btc1m_gaps):
    compare(btc1m_gaps.iloc[:5000].reset_index(drop=True), 0.001, 7, 25, short=False)


def test_sma_cross_matches_on_backtesting_py_btcusd(btcusd_monthly):
    mine, stats = compare(btcusd_monthly, 0.002, 3, 8, short=True)
    assert stats["# Trades"] == len(mine.closed_trades)
