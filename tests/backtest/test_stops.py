"""Protective exits in backtests (issue 19): the intrabar rule, bar by bar, against the vectorised
search; the exit reasons; staying flat until the raw signal changes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tps19.engine.backtest.simulate import Changes, SimConfig, simulate_changes, sparse_changes
from tps19.engine.strategies.base import target_changes
from tps19.engine.backtest.stops import apply_protection, segmented_cummax
from tps19.engine.protection import EXIT_REASONS, Protection, ProtectionError, parse_protection

SL, TP, TR = EXIT_REASONS.index("stop_loss"), EXIT_REASONS.index("take_profit"), EXIT_REASONS.index("trailing_stop")


def oracle(open_, high, low, eff, raw, p: Protection, slip: float) -> list[tuple[int, float, float, str]]:
    """The rules of the issue, one bar at a time: (fill bar, target after, price before slippage,
    reason of the position it closes) for every fill."""
    n = len(open_)
    out: list[tuple[int, float, float, str]] = []
    held, entry, best, blocked = 0.0, 0.0, 0.0, False
    decided = 0.0
    for i in range(n):
        if i > 0 and decided != held:  # the previous close's decision fills at this open
            s_old, s_new = np.sign(held), np.sign(decided)
            out.append((i, decided, float(open_[i]), "signal"))
            if decided != 0 and s_new != s_old:
                entry = open_[i] * (1 + slip * s_new)
                best = entry
            held = decided
        exited = False
        if held != 0:
            s = 1.0 if held > 0 else -1.0
            stop, tp = p.levels(entry, int(s))
            trail = p.trailing_level(best, int(s))
            cands = [(v, why) for v, why in ((stop, "stop_loss"), (trail, "trailing_stop")) if v is not None]
            if cands:
                # the stop nearer the price (a tie: the stop-loss)
                lvl, why = max(cands, key=lambda c: (s * c[0], c[1] == "stop_loss"))
            else:
                lvl, why = None, ""
            o, hi, lo = open_[i], high[i], low[i]
            fill = None
            if lvl is not None and s * o <= s * lvl:
                fill = (o, why)
            elif tp is not None and s * o >= s * tp:
                fill = (o, "take_profit")
            elif lvl is not None and ((lo <= lvl) if s > 0 else (hi >= lvl)):
                fill = (lvl, why)
            elif tp is not None and ((hi >= tp) if s > 0 else (lo <= tp)):
                fill = (tp, "take_profit")
            if fill is not None:
                out.append((i, 0.0, float(fill[0]), fill[1]))
                held, exited = 0.0, True
            else:
                best = max(best, hi) if s > 0 else min(best, lo)
        if exited:
            blocked = True
        if blocked and raw[i] != (raw[i - 1] if i else 0.0):
            blocked = False
        decided = 0.0 if blocked else eff[i]
    return out


def vectorised(open_, high, low, eff, raw, p, slip):
    n = len(open_)
    at, held = target_changes(eff)
    ch = sparse_changes(open_, n, at, held, 1.0)
    raw_at, _ = target_changes(raw)
    out = apply_protection(ch, raw_at, open_, high, low, slip * 10_000, p)
    reasons = out.reason if out.reason is not None else np.zeros(len(out.bar), dtype=np.int8)
    return out, [(int(b), float(t), float(px), EXIT_REASONS[int(r)])
                 for b, t, px, r in zip(out.bar, out.target, out.price, reasons, strict=True)]


def bars(seed: int, n: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.012, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.004, n) * (rng.random(n) < 0.2))  # gaps
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, n)))
    return open_, high, low, close


def raw_targets(rng: np.random.Generator, n: int, short: bool, same_side: bool) -> np.ndarray:
    vals = [-1.0, 0.0, 1.0] if short else [0.0, 1.0]
    if same_side:
        vals += [0.5] + ([-0.5] if short else [])
    ev = np.where(rng.random(n) < 0.08, rng.choice(vals, n), np.nan)
    held = np.zeros(n)
    cur = 0.0
    for i, e in enumerate(ev):
        cur = cur if math.isnan(e) else e
        held[i] = cur
    return held


PROTECTIONS = [
    Protection(stop_loss_pct=1.5),
    Protection(take_profit_pct=2.0),
    Protection(stop_loss_pct=1.0, take_profit_pct=1.5),
    Protection(trailing_pct=1.2),
    Protection(stop_loss_pct=2.0, trailing_pct=1.0),
    Protection(stop_loss_pct=0.8, take_profit_pct=3.0, trailing_pct=1.5),
    Protection(stop_loss_pct=0.5, take_profit_pct=0.6),
]


@pytest.mark.parametrize("seed", range(24))
def test_vectorised_exits_are_the_bar_by_bar_rules(seed: int) -> None:
    """Every fill (bar, target, price, reason) of the vectorised search equals a plain bar-by-bar
    reading of the rules: longs and shorts, gaps, slippage, stop/take-profit/trailing mixes,
    raw targets resized on the same side, and sized targets that resize every bar."""
    rng = np.random.default_rng(1000 + seed)
    n = 400
    open_, high, low, _close = bars(seed, n)
    short = seed % 2 == 1
    raw = raw_targets(rng, n, short, same_side=seed % 3 == 0)
    if seed % 4 >= 2:  # a sizing rule: every bar a new size on the raw side, now and then 0
        factor = rng.uniform(0.3, 1.0, n) * (rng.random(n) > 0.05)
        eff = raw * factor
    else:
        eff = raw.copy()
    p = PROTECTIONS[seed % len(PROTECTIONS)]
    slip = [0.0, 0.0005][seed % 2 == 0 and seed % 3 != 0]
    _, got = vectorised(open_, high, low, eff, raw, p, slip)
    want = oracle(open_, high, low, eff, raw, p, slip)
    assert [(b, t, r) for b, t, _, r in got] == [(b, t, r) for b, t, _, r in want]
    assert np.allclose([x[2] for x in got], [x[2] for x in want], rtol=1e-12, atol=0)
    assert any(r != "signal" for *_, r in got)  # the case exercises the protection


def _frame(open_, high, low, close):
    return (np.asarray(x, dtype=float) for x in (open_, high, low, close))


def run(open_, high, low, close, raw, p, slip_bps=0.0, fee=0.0):
    open_, high, low, close = _frame(open_, high, low, close)
    n = len(open_)
    at, held = target_changes(np.asarray(raw, dtype=float))
    ch = sparse_changes(open_, n, at, held, 1.0)
    ch = apply_protection(ch, at, open_, high, low, slip_bps, p)
    ts = np.arange(n, dtype=np.int64) * 60_000
    return simulate_changes(ts, close, ch, SimConfig(10_000.0, fee, slip_bps, 1.0))


def test_stop_fills_at_its_level_inside_the_bar_and_at_the_open_on_a_gap() -> None:
    #          0     1     2     3     4     5
    open_ = [100, 100, 100, 99.5, 97.0, 97.0]
    high = [100, 101, 101, 100, 97.5, 98]
    low = [100, 99.5, 99.0, 97.0, 96.0, 96]
    close = [100, 100, 99.5, 98.0, 97.0, 97]
    # long from bar 1's open at 100, stop 2 % -> 98: bar 3's low 97 reaches it inside the bar
    _, _, _, trades = run(open_, high, low, close, [1, 1, 1, 1, 1, 1], Protection(stop_loss_pct=2))
    t = trades[0]
    assert (t.entry_bar, t.exit_bar, t.exit_price, t.exit_reason) == (1, 3, 98.0, "stop_loss")
    # the same with a gap: bar 3 opens at 97.5, below the stop: the exit is the open
    gap_open = [100, 100, 100, 97.5, 97.0, 97.0]
    _, _, _, trades = run(gap_open, high, low, close, [1, 1, 1, 1, 1, 1], Protection(stop_loss_pct=2))
    assert (trades[0].exit_bar, trades[0].exit_price, trades[0].exit_reason) == (3, 97.5, "stop_loss")


def test_entry_bar_is_checked_after_its_fill_and_stop_wins_a_bar_reaching_both() -> None:
    open_ = [100, 100, 100, 100]
    high = [100, 103, 100, 100]
    low = [100, 97, 100, 100]
    close = [100, 100, 100, 100]
    # entered at bar 1's open; the same bar reaches the stop (98) and the take-profit (102)
    _, _, _, trades = run(open_, high, low, close, [1, 1, 1, 1], Protection(stop_loss_pct=2, take_profit_pct=2))
    assert (trades[0].entry_bar, trades[0].exit_bar, trades[0].exit_price, trades[0].exit_reason) == (
        1, 1, 98.0, "stop_loss")
    # only the take-profit reached: out at 102 in the entry bar
    _, _, _, trades = run(open_, high, [100, 99, 100, 100], close, [1, 1, 1, 1],
                          Protection(stop_loss_pct=2, take_profit_pct=2))
    assert (trades[0].exit_bar, trades[0].exit_price, trades[0].exit_reason) == (1, 102.0, "take_profit")


def test_trailing_stop_moves_with_each_high_after_the_bar_and_shorts_mirror() -> None:
    open_ = [100, 100, 104, 109, 108]
    high = [100, 105, 110, 109, 108]
    low = [100, 99, 103, 104.4, 100]
    close = [100, 104, 109, 108, 101]
    # trailing 5 %: bar 1 checks 95 (from the entry 100), then 105 -> 99.75 at bar 2, 110 -> 104.5
    # at bar 3: bar 3's low 104.4 reaches it (bar 2's own high did not move bar 2's stop)
    _, _, _, trades = run(open_, high, low, close, [1] * 5, Protection(trailing_pct=5))
    t = trades[0]
    assert (t.exit_bar, t.exit_reason) == (3, "trailing_stop")
    assert t.exit_price == pytest.approx(104.5)
    # a short on the mirrored prices: the same bars and reason
    m = lambda xs: [200 - x for x in xs]  # noqa: E731
    _, _, _, trades = run(m(open_), m(low), m(high), m(close), [-1] * 5, Protection(trailing_pct=5))
    t = trades[0]
    assert (t.side, t.exit_bar, t.exit_reason) == ("short", 3, "trailing_stop")
    assert t.exit_price == pytest.approx(90 * 1.05)  # 5 % above the lowest low so far (90, bar 2)


def test_short_stop_and_take_profit_mirror_the_long_rules() -> None:
    open_ = [100, 100, 101, 99, 97]
    high = [100, 101, 102.5, 99, 97]
    low = [100, 99, 100, 96, 97]
    close = [100, 101, 101, 97, 97]
    _, _, _, trades = run(open_, high, low, close, [-1] * 5, Protection(stop_loss_pct=2, take_profit_pct=3))
    assert (trades[0].side, trades[0].exit_bar, trades[0].exit_price, trades[0].exit_reason) == (
        "short", 2, 102.0, "stop_loss")
    _, _, _, trades = run(open_, [100, 101, 101.5, 99, 97], low, close, [-1] * 5,
                          Protection(stop_loss_pct=2, take_profit_pct=3))
    assert (trades[0].exit_bar, trades[0].exit_price, trades[0].exit_reason) == (3, 97.0, "take_profit")


def test_flat_after_a_protective_exit_until_the_raw_signal_changes() -> None:
    n = 12
    open_ = np.full(n, 100.0)
    high = np.full(n, 100.5)
    low = np.full(n, 99.5)
    low[3] = 97.0  # stop hit at bar 3
    close = np.full(n, 100.0)
    raw = np.array([0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1], dtype=float)  # entry at 1, exit signal at 7, entry at 9
    _, _, _, trades = run(open_, high, low, close, raw, Protection(stop_loss_pct=2))
    assert [(t.entry_bar, t.exit_bar, t.exit_reason) for t in trades] == [(2, 3, "stop_loss"), (10, None, "end")]


def test_protection_flags_refuse_bad_values_in_one_line() -> None:
    for kwargs, word in (({"stop_loss": 0}, "--stop-loss"), ({"stop_loss": 100}, "--stop-loss"),
                         ({"trailing_stop": -1}, "--trailing-stop"), ({"trailing_stop": 100}, "--trailing-stop"),
                         ({"take_profit": float("nan")}, "--take-profit"), ({"take_profit": 0}, "--take-profit")):
        with pytest.raises(ProtectionError) as err:
            parse_protection(**kwargs)
        assert word in str(err.value) and "\n" not in str(err.value)
    assert parse_protection() is None


def test_segmented_running_max_restarts_per_segment() -> None:
    rng = np.random.default_rng(5)
    lens = rng.integers(0, 70, 300)
    lens[7] = 1000
    v = rng.normal(size=int(lens.sum()))
    want = np.concatenate([np.maximum.accumulate(v[o:o + k]) for o, k in zip(np.cumsum(lens) - lens, lens, strict=True) if k])
    assert np.array_equal(segmented_cummax(v, lens), want)


def test_changes_without_protection_are_untouched() -> None:
    open_ = np.full(5, 100.0)
    ch = sparse_changes(open_, 5, np.array([1]), np.array([1.0]), 1.0)
    assert apply_protection(ch, np.array([1]), open_, open_, open_, 0.0, None) is ch
    assert isinstance(ch, Changes)
