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


def tied_bars() -> pd.DataFrame:
    """Waves (whose crossovers trade) separated by flat stretches at non-dyadic levels (0.1, 0.3, ...)
    longer than the slow window: there the fast and slow averages are exactly equal, so no crossover
    may fire, and the first cross after the stretch is no cross either (the previous bar was a tie,
    not "below"). A left-to-right float sum of ten 0.1s gives 0.09999999999999999 per bar, of twenty
    0.10000000000000002: an engine comparing those rounded sums sees false crosses on every flat
    stretch (illiquid 1m bars are often flat)."""
    close: list[float] = []
    wave = np.sin(np.linspace(0.0, 6 * np.pi, 181)[1:-1])  # no sin(6 pi) ~ -7e-16: a level off by an ulp
    # levels only rise: leaving a flat stretch downwards would skip a down-cross while long, and the
    # next up-cross makes backtesting.py (exclusive_orders) close and reopen the long on one bar
    for level in (0.1, 0.3, 0.7, 1.1, 1.3, 2.1):
        close += (level * (1.0 + 0.2 * wave)).tolist() + [level] * 45
    c = np.array(close)
    o = np.concatenate(([c[0]], c[:-1]))
    ts = 1_700_000_000_000 + np.arange(len(c), dtype=np.int64) * 60_000
    return pd.DataFrame({"ts": ts, "open": o, "high": np.maximum(o, c), "low": np.minimum(o, c), "close": c,
                         "volume": 1.0})


@pytest.mark.parametrize("short", [False, True])
def test_exactly_tied_averages_do_not_cross(short):
    from tps19.engine.events import BarEvent

    df = tied_bars()
    mine, stats = compare(df, 0.001, 10, 20, short=short)
    # the crossovers fire on the slopes only, never inside a flat stretch
    flat = np.flatnonzero(np.diff(df.close.to_numpy()) == 0) + 1
    assert not set(t.entry_bar - 1 for t in mine.closed_trades) & set(flat.tolist())
    # and the bar-by-bar (live) path takes the same decisions as the vectorised one
    strat = create("sma_cross", {"fast": 10, "slow": 20, "allow_short": short})
    live = [strat.on_bar(BarEvent("X/Y", "1m", int(r.ts), r.open, r.high, r.low, r.close, r.volume, True))
            for r in df.itertuples(index=False)]
    frame = create("sma_cross", {"fast": 10, "slow": 20, "allow_short": short}).generate(df)
    assert live == [frame.signal_at(i) for i in range(len(df))]
