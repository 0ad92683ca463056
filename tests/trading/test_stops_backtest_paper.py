"""One strategy with a stop-loss and a take-profit, backtested and paper-traded over the same bars,
compared exit by exit (issue 19): the bar and the exit reason exactly, the price within the
configured slippage and fees.

Paper sees each bar as the market would show it: the book at the open (the strategy's order
decided on the previous close fills there, its bracket is armed), a print at the open, then prints
walking open -> low -> high -> close in steps of at most 1 bp, each behind a book quoted the
backtest's slippage either side of it. The walk visits the low before the high: the order the
backtest's pessimistic rule assumes when a bar reaches both levels."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import numpy as np
import pytest

from tps19.engine.assembly import build_trading
from tps19.engine.backtest import BacktestConfig, run_backtest
from tps19.engine.events import BarEvent
from tps19.engine.protection import Protection
from tps19.engine.risk.sizing import Sizing
from tps19.engine.strategies import create
from tps19.engine.targets import TargetExecutor
from tps19.engine.trading.events import FillEvent

from .helpers import book, settings, trades, until

pytestmark = pytest.mark.parametrize("db_target", ["sqlite"], indirect=True)

SYM = "BTC/USDT"
SLIP = 0.0005  # 5 bp: the backtest's slippage, and half the paper book's spread
STOP, TAKE = 1.5, 2.5  # percent


def bars(n: int = 90, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 50_000 * np.exp(np.cumsum(rng.normal(0, 0.009, n)))
    open_ = np.concatenate(([50_000.0], close[:-1])) * np.exp(rng.normal(0, 0.012, n) * (rng.random(n) < 0.15))  # gaps
    wide = 1 + 4 * (rng.random(n) < 0.08)  # now and then a bar with long wicks both ways
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.005, n)) * wide)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.005, n)) * wide)
    r = lambda x: np.round(x, 2)  # noqa: E731  (on the market's tick)
    return {"ts": 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 60_000, "open": r(open_), "high": r(high),
            "low": r(low), "close": r(close), "volume": np.ones(n)}


def walk(a: float, b: float) -> list[float]:
    """Prints from a to b (b included, a not) at most 1 bp apart."""
    steps = max(1, int(np.ceil(abs(b - a) / (a * 0.0001))))
    return [round(a + (b - a) * k / steps, 2) for k in range(1, steps + 1)]


async def test_backtest_and_paper_exit_alike_bar_by_bar(bus, db, markets):
    d = bars()
    n = len(d["close"])
    strategy = create("sma_cross", {"fast": 3, "slow": 8})
    fee = float(markets[SYM]["taker"])
    bt = run_backtest(strategy, d, BacktestConfig(cash=100_000.0, fee=fee, slippage_bps=SLIP * 10_000, size=0.5,
                                                  protection=Protection(stop_loss_pct=STOP, take_profit_pct=TAKE)))
    closed = [t for t in bt.trades if not t.open]
    expected = [(t.exit_bar, t.exit_reason, t.exit_price) for t in closed]
    # the data exercises every rule: each exit kind, a gap through a level, a bar reaching both
    # levels (the stop wins), an exit in the entry bar; and no bar grazes a level within a rounding
    # of it (the comparison would hinge on a tick)
    cases = {r for _, r, _ in expected}
    for t in closed:
        lo, hi, i = t.entry_price * (1 - STOP / 100), t.entry_price * (1 + TAKE / 100), t.exit_bar
        cases |= {"both"} if d["low"][i] <= lo and d["high"][i] >= hi else set()
        cases |= {"gap"} if t.exit_reason != "signal" and not lo < d["open"][i] < hi else set()
        cases |= {"entry bar"} if i == t.entry_bar else set()
        for j in range(t.entry_bar, i + 1):
            assert abs(d["low"][j] / lo - 1) > 2e-6 and abs(d["high"][j] / hi - 1) > 2e-6
    assert cases == {"stop_loss", "take_profit", "signal", "both", "gap", "entry bar"}, expected

    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets,
                            settings=settings(daily_loss_limit=D("100000000")), exchange="cryptocom",
                            starting_balances={"USDT": D("100000")}, snapshot_interval_s=0)
    await s.start()
    fills: list[tuple[int, str, float, str]] = []  # (bar, side, price, why)
    current = {"bar": 0}

    kinds: dict[str, str] = {}  # client id -> type of every protective order armed

    def on_fill(f: Any) -> None:
        why = {"stop_market": "stop_loss", "take_profit": "take_profit"}.get(kinds.get(f.client_order_id, ""), "signal")
        fills.append((current["bar"], f.side, float(f.price), why))

    bus.on(FillEvent, on_fill)
    try:
        # half the equity: the order is sized at the mark (the previous close) and sent at the next
        # open; after a gap up a whole-equity buy would need more than the cash (the exits
        # compared do not depend on the size)
        ex = TargetExecutor(s.broker, s.portfolio, markets, [SYM], bus, strategy="cmp", min_change=D("0"),
                            protection=Protection(stop_loss_pct=STOP, take_profit_pct=TAKE),
                            sizing=Sizing("fixed", {"fraction": 0.5}))
        live = strategy.clone()
        emulator = s.broker.emulator

        async def price(p: float) -> None:
            kinds.update((cid, o.type.value) for cid, o in emulator.held.items())
            bus.publish(book(bids=((round(p * (1 - SLIP), 2), 1000.0),), asks=((round(p * (1 + SLIP), 2), 1000.0),)))
            await emulator.on_trades(trades(("sell", p, 0.001)))
            # a triggered order is sent in its own task: filled at this print's book before the next
            await until(lambda: not emulator.in_flight
                        and all(o.trigger_state.value == "armed" for o in emulator.held.values()))

        pending = None
        for i in range(n):
            current["bar"] = i
            o, h, lo, c = (float(d[k][i]) for k in ("open", "high", "low", "close"))
            bus.publish(book(bids=((round(o * (1 - SLIP), 2), 1000.0),), asks=((round(o * (1 + SLIP), 2), 1000.0),)))
            if pending is not None:
                held_before = len(emulator.held)
                await ex.submit_target(SYM, pending.target, pending)
                if pending.target > 0 and s.portfolio.balances.get("BTC", D(0)) > 0 and ex.flat_until_change.get(SYM) is None:
                    await until(lambda: len(emulator.held) >= max(held_before, 2))  # the bracket is armed
                pending = None
            await price(o)
            if s.portfolio.balances.get("BTC", D(0)) > 0 or emulator.held:
                for p in walk(o, lo) + walk(lo, h) + walk(h, c):
                    await price(p)
            else:
                await price(c)
            pending = live.on_bar(BarEvent(symbol=SYM, timeframe="1m", ts=int(d["ts"][i]), open=o, high=h, low=lo,
                                           close=c, volume=1.0, closed=True))
    finally:
        await s.stop()
    sells = [(b, why, p) for b, side, p, why in fills if side == "sell"]
    buys = [b for b, side, _, _ in fills if side == "buy"]
    assert buys == [t.entry_bar for t in bt.trades]  # the same entries
    assert [(b, why) for b, why, _ in sells] == [(b, why) for b, why, _ in expected]
    for (_, _, paper_px), (_, _, bt_px) in zip(sells, expected, strict=True):
        assert abs(paper_px / bt_px - 1) <= SLIP + fee  # within the slippage and fees
