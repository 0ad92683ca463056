"""Protective exits in a backtest: stop-loss, take-profit and trailing stop, inside each bar.

The intrabar rule (docs/orders.md, ``protection.INTRABAR_RULE``): from the entry bar on (after
the fill at its open) every bar of a position is checked. A long whose bar opens at or below its
stop exits at that open (a gap), otherwise a bar whose low reaches the stop exits at the stop;
likewise the take-profit on the open and the high. When one bar's range reaches both the stop
wins (we cannot know which came first: the pessimistic rule). A bar opening beyond a level is
decided by its open, the bar's first price. The trailing stop is ``(1 - trailing)`` below the
highest price since the entry (the entry fill, then each bar's high once that bar has been
checked); a stop-loss and a trailing stop act as one stop at the higher of the two levels, and the
exit is named after that one. Shorts mirror every rule. A signal's own fill at a bar's open
comes before that bar's check (the strategy's order was sent at the previous close).

After a protective exit the strategy is flat until its *raw* target (before sizing) next
changes: the effective targets decided from the exit's bar until then are 0, so continuous
targets (``vol_target`` sizing, a model's resizing) do not re-enter on the next bar.

How it is computed, without a per-bar loop: a *run* is a position from its opening fill to the
change that closes it. Each run's levels depend only on its entry (the fill bar's open and the
slippage), so the first exit of every run is found at once: the runs' bars are laid end to end
(one gather), the levels repeated over them, the trailing stop's best price is a segmented
running maximum (runs bucketed by length, ``np.maximum.accumulate`` along rows), and the first
crossing per run is the first index per run of ``flatnonzero``. An exit blocks the run's span
until the next raw change; only when a blocked span would swallow a later run, or a run outlives a
raw change after its exit (sizing or a breaker shaped the targets), is the pass repeated with the
exits known so far (each pass is vectorised; one pass is the rule for plain strategies).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..protection import BREAKER, SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, Protection
from .config import BacktestConfig
from .simulate import Changes, SimConfig, simulate_changes
from .simulate import target_changes as dense_changes
from .trades import FillTable, TradeTable

#: A strategy's own levels per bar (``Strategy.protection_columns``): NaN where none.
LEVEL_KEYS = ("stop_loss_price", "take_profit_price", "stop_loss_pct", "take_profit_pct", "trailing_pct")

_CHUNK = 1 << 20  # bars per vectorised block: bounds the temporaries on a 20M-bar history


@dataclass(frozen=True)
class Runs:
    """Positions of a change list: change ``first[r]`` opens run r at fill bar ``start[r]``; its
    bars are ``start[r] .. end[r] - 1`` (``end`` is the fill bar of the change that closes it, or
    the number of bars)."""

    first: np.ndarray
    start: np.ndarray
    end: np.ndarray
    side: np.ndarray  # +1 long, -1 short
    entry: np.ndarray  # entry fill price (slippage included)


@dataclass(frozen=True)
class Exits:
    """The first protective exit of each run: ``bar`` -1 where none; ``price`` before slippage."""

    bar: np.ndarray
    price: np.ndarray
    reason: np.ndarray


def runs_of(ch: Changes, n: int, slip: float) -> Runs:
    t = ch.target
    prev = np.concatenate(([0.0], t[:-1]))
    s = np.sign(t)
    opens = (t != 0.0) & (s != np.sign(prev))
    closes = (t == 0.0) | (s != np.sign(prev))  # a change that ends the position held before it
    first = np.flatnonzero(opens)
    close_idx = np.flatnonzero(closes)
    k = np.searchsorted(close_idx, first, side="right")  # the first close after the opening change
    end = np.full(len(first), n, dtype=np.int64)
    closed = k < len(close_idx)
    end[closed] = ch.bar[close_idx[k[closed]]]
    side = s[first]
    return Runs(first, ch.bar[first], end, side,
                ch.price[first] * (1.0 + slip * side))


def run_levels(runs: Runs, protection: Protection | None,
               columns: dict[str, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stop price, take-profit price, trailing fraction) per run, NaN where none: the command
    line's protection over the strategy's own levels of the entry's decision bar."""
    r = len(runs.first)
    decided = runs.start - 1

    def col(key: str) -> np.ndarray:
        if columns is None or key not in columns:
            return np.full(r, np.nan)
        return np.asarray(columns[key], dtype=float)[decided]

    sl_px, tp_px = col("stop_loss_price"), col("take_profit_price")
    sl_pct, tp_pct, tr_pct = col("stop_loss_pct"), col("take_profit_pct"), col("trailing_pct")
    if protection is not None:
        if protection.stop_loss_pct is not None:
            sl_pct[:], sl_px[:] = protection.stop_loss_pct, np.nan
        if protection.take_profit_pct is not None:
            tp_pct[:], tp_px[:] = protection.take_profit_pct, np.nan
        if protection.trailing_pct is not None:
            tr_pct[:] = protection.trailing_pct
        if protection.stop_loss_price is not None:
            sl_px[:] = protection.stop_loss_price
        if protection.take_profit_price is not None:
            tp_px[:] = protection.take_profit_price
    e, s = runs.entry, runs.side
    stop = np.where(np.isfinite(sl_px), sl_px, e * (1.0 - s * sl_pct / 100.0))
    tp = np.where(np.isfinite(tp_px), tp_px, e * (1.0 + s * tp_pct / 100.0))
    tp[tp <= 0] = np.nan  # a short's take-profit of 100 % or more: a price nothing trades at
    return stop, tp, tr_pct / 100.0


def segmented_cummax(v: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Running maximum of ``v`` restarting at each segment (segments of ``lens`` laid end to end).
    Segments are bucketed by length (widths 1, 2, 4, ...) and each bucket is one 2-D
    ``np.maximum.accumulate`` along its rows: exact, and at most twice the elements."""
    out = np.empty_like(v)
    lens = np.asarray(lens, dtype=np.int64)
    offs = np.cumsum(lens) - lens
    width = np.zeros(len(lens), dtype=np.int64)
    big = lens > 1
    width[big] = np.ceil(np.log2(lens[big])).astype(np.int64)
    for w in np.unique(width[lens > 0]).tolist():
        sel = np.flatnonzero((width == w) & (lens > 0))
        if w == 0:
            out[offs[sel]] = v[offs[sel]]
            continue
        cols = np.arange(1 << w)
        mask = cols < lens[sel, None]
        idx = np.where(mask, offs[sel, None] + cols, 0)
        block = np.where(mask, v[idx], -np.inf)
        np.maximum.accumulate(block, axis=1, out=block)
        out[idx[mask]] = block[mask]
    return out


def first_exits(open_: np.ndarray, high: np.ndarray, low: np.ndarray, runs: Runs, stop: np.ndarray,
                tp: np.ndarray, trail: np.ndarray) -> Exits:
    """The first bar of each run that reaches a level, its exit price and reason (module doc)."""
    r = len(runs.start)
    bar = np.full(r, -1, dtype=np.int64)
    price = np.full(r, np.nan)
    reason = np.full(r, SIGNAL, dtype=np.int8)
    live = (np.isfinite(stop) | np.isfinite(tp) | np.isfinite(trail)) & (runs.end > runs.start)
    trailing = live & np.isfinite(trail)
    for sel, search in ((np.flatnonzero(live & ~trailing), _fixed_hits), (np.flatnonzero(trailing), _trailing_hits)):
        for part in _chunks(runs, sel):
            hit, at, level, by_trail = search(open_, high, low, runs, part, stop[part], tp[part], trail[part])
            runs_hit = part[hit]
            p, why = _exit_price(open_, low, high, at, runs.side[runs_hit], level, tp[runs_hit], by_trail)
            bar[runs_hit], price[runs_hit], reason[runs_hit] = at, p, why
    return Exits(bar, price, reason)


def _chunks(runs: Runs, sel: np.ndarray) -> list[np.ndarray]:
    """``sel``'s runs in groups spanning at most _CHUNK bars each (a longer run is a group)."""
    if not len(sel):
        return []
    cuts = np.searchsorted(runs.start[sel], np.arange(int(runs.start[sel[0]]) + _CHUNK, int(runs.end[sel[-1]]), _CHUNK))
    return [part for part in np.split(sel, np.unique(cuts)) if len(part)]


def _exit_price(open_: np.ndarray, low: np.ndarray, high: np.ndarray, at: np.ndarray, side: np.ndarray,
                stop: np.ndarray, tp: np.ndarray, by_trail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Price and reason at each run's first bar reaching a level (``stop`` the stop in force
    there, NaN none): a bar opening beyond a level exits at its open; otherwise a bar reaching
    the stop exits at the stop (even when it reaches the take-profit too), else at the take-profit."""
    o = open_[at]
    so = side * o
    s_stop = np.where(np.isfinite(stop), side * stop, -np.inf)
    s_tp = np.where(np.isfinite(tp), side * tp, np.inf)
    down = np.where(side > 0, low[at], -high[at])
    gap_stop, gap_tp = so <= s_stop, so >= s_tp
    is_stop = gap_stop | (~gap_tp & (down <= s_stop))
    price = np.where(gap_stop | gap_tp, o, np.where(is_stop, stop, tp))
    why = np.where(is_stop, np.where(by_trail, TRAILING_STOP, STOP_LOSS), TAKE_PROFIT).astype(np.int8)
    return price, why


def _fixed_hits(open_: np.ndarray, high: np.ndarray, low: np.ndarray, runs: Runs, part: np.ndarray,
                stop: np.ndarray, tp: np.ndarray, trail: np.ndarray) -> tuple[np.ndarray, ...]:
    """Runs with fixed levels: the bars from the first run's start to the last one's end are
    compared in place (no gather) with the levels spread over them (gaps between runs get levels
    no price reaches); the first hit of each run is the first index per run of the hits."""
    start, end, side = runs.start[part], runs.end[part], runs.side[part]
    lo, hi = int(start[0]), int(end[-1])
    lens = np.diff(np.concatenate((np.ravel(np.column_stack((start, end))), [hi])))  # run, gap, run, gap, ...

    def spread(per_run: np.ndarray, fill: float) -> np.ndarray:
        vals = np.empty(2 * len(per_run))
        vals[0::2], vals[1::2] = np.where(np.isnan(per_run), fill, per_run), fill
        return np.repeat(vals, lens)

    long = side > 0
    hit = np.zeros(hi - lo, dtype=bool)
    for levels, mine, price, reached, fill in ((stop, long, low, np.less_equal, -np.inf),
                                               (stop, ~long, high, np.greater_equal, np.inf),
                                               (tp, long, high, np.greater_equal, np.inf),
                                               (tp, ~long, low, np.less_equal, -np.inf)):
        use = mine & np.isfinite(levels)
        if use.any():
            hit |= reached(price[lo:hi], spread(np.where(use, levels, fill), fill))
    which, at = _first_per_run(np.flatnonzero(hit), start - lo, end - lo)
    return which, at + lo, stop[which], np.zeros(len(at), dtype=bool)


def _first_per_run(hits: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(runs with a hit, their first hit) from the sorted hit positions: one search per run."""
    j = np.searchsorted(hits, start, side="left")
    first = hits[np.minimum(j, len(hits) - 1)] if len(hits) else np.zeros(len(start), dtype=np.int64)
    which = np.flatnonzero((j < len(hits)) & (first < end))
    return which, first[which]


def _trailing_hits(open_: np.ndarray, high: np.ndarray, low: np.ndarray, runs: Runs, part: np.ndarray,
                   stop: np.ndarray, tp: np.ndarray, trail: np.ndarray) -> tuple[np.ndarray, ...]:
    """Runs with a trailing stop: their bars laid end to end (one gather), in signed space (a
    short's prices negated, so every rule is the long one); the best price before each bar is a
    segmented running maximum of the highs, started at the entry."""
    m = len(part)
    start, side, entry = runs.start[part], runs.side[part], runs.entry[part]
    lens = runs.end[part] - start
    total = int(lens.sum())
    heads = np.cumsum(lens) - lens
    # bar index of every laid-out element: +1 steps, with a jump at each run's start
    idx = np.ones(total, dtype=np.int64)
    idx[heads[1:]] = start[1:] - (start[:-1] + lens[:-1] - 1)
    idx[0] = start[0]
    np.cumsum(idx, out=idx)
    if (side > 0).all():
        up, down = high[idx], low[idx]
    else:
        sgn = np.repeat(side, lens) > 0
        up = np.where(sgn, high[idx], -low[idx])
        down = np.where(sgn, low[idx], -high[idx])
    s_stop = np.where(np.isfinite(stop), side * stop, -np.inf)
    s_tp = np.where(np.isfinite(tp), side * tp, np.inf)
    best = segmented_cummax(up, lens)
    before = np.empty(total)  # the best price before each bar: the entry, then the highs checked
    before[1:] = best[:-1]
    before[heads] = -np.inf
    np.maximum(before, np.repeat(side * entry, lens), out=before)
    trail_level = before * np.repeat(1.0 - side * trail, lens)
    level = np.maximum(trail_level, np.repeat(s_stop, lens))
    hit = down <= level
    if np.isfinite(s_tp).any():
        hit |= up >= np.repeat(s_tp, lens)
    which, k = _first_per_run(np.flatnonzero(hit), heads, heads + lens)
    by_trail = trail_level[k] > s_stop[which]  # the higher level names the exit; a tie is the stop-loss
    return which, idx[k], side[which] * level[k], by_trail


def _earlier_max(v: np.ndarray) -> np.ndarray:
    """For each element, the largest of the elements before it (-1 for the first)."""
    if not len(v):
        return v
    return np.concatenate(([-1], np.maximum.accumulate(v)[:-1]))


def _raw_next(raw_at: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """The first raw change decided on or after bar ``x`` (``n`` when none): the end of the flat
    span a protective exit at ``x`` starts."""
    k = np.searchsorted(raw_at, x, side="left")
    return np.where(k < len(raw_at), raw_at[np.minimum(k, max(len(raw_at) - 1, 0))] if len(raw_at) else n, n)


@dataclass(frozen=True)
class Spans:
    """Known protective exits, by bar: each flat until the raw change decided on ``until``."""

    bar: np.ndarray
    until: np.ndarray
    price: np.ndarray
    reason: np.ndarray

    def plus(self, bar: np.ndarray, until: np.ndarray, price: np.ndarray, reason: np.ndarray) -> Spans:
        b = np.concatenate((self.bar, bar))
        order = np.argsort(b, kind="stable")
        return Spans(b[order], np.concatenate((self.until, until))[order], np.concatenate((self.price, price))[order],
                     np.concatenate((self.reason, reason))[order])


def _assembled(ch: Changes, open_: np.ndarray, n: int, spans: Spans) -> Changes:
    """``ch`` with the protective exits in: for each exit at bar x (price, reason) a change to 0
    after bar x's own open fill, the targets decided on bars ``[x, r)`` set to 0 and the target
    held at r (the raw change that ends the flat span) restored there."""
    if not len(spans.bar):
        return ch
    xs, rs = spans.bar, spans.until
    decided = ch.bar - 1
    wide = rs > xs  # a raw change on the exit's own bar leaves no flat span
    i = np.searchsorted(xs[wide], decided, side="right") - 1
    inside = (i >= 0) & (decided < rs[wide][np.maximum(i, 0)]) if wide.any() else np.zeros(len(decided), dtype=bool)
    keep = ~inside
    zeros_at = xs[wide & (xs < n - 1)]
    j = np.searchsorted(decided, rs, side="right") - 1  # the last change decided on or before r
    known = (j >= 0) & (decided[np.maximum(j, 0)] == rs)
    ends = rs[(rs < n - 1) & ~known]  # a decision on the last bar never fills
    j = j[(rs < n - 1) & ~known]
    held = np.where(j >= 0, ch.target[np.maximum(j, 0)], 0.0)
    bars = np.concatenate((ch.bar[keep], zeros_at + 1, ends + 1, xs))
    target = np.concatenate((ch.target[keep], np.zeros(len(zeros_at)), held, np.zeros(len(xs))))
    price = np.concatenate((ch.price[keep], open_[zeros_at + 1], open_[ends + 1], spans.price))
    reason = np.concatenate((_reasons(ch)[keep], np.full(len(zeros_at) + len(ends), SIGNAL, dtype=np.int8),
                             spans.reason))
    # at one bar: its open fill first, then the protective exit inside it. The parts are each in
    # bar order: a stable sort of the concatenation only merges runs (timsort)
    key = bars * 2
    key[len(bars) - len(xs):] += 1
    order = np.argsort(key, kind="stable")
    return _normalised(bars[order], target[order], reason[order], open_, price[order])


def _reasons(ch: Changes) -> np.ndarray:
    return ch.reason if ch.reason is not None else np.full(len(ch.bar), SIGNAL, dtype=np.int8)


def _normalised(bars: np.ndarray, target: np.ndarray, reason: np.ndarray, open_: np.ndarray,
                price: np.ndarray | None = None) -> Changes:
    """Changes without the ones that change nothing, with ``before`` recomputed."""
    # a stretch of equal targets keeps its first: the ones kept then differ from their neighbours
    keep = target != np.concatenate(([0.0], target[:-1]))
    bars, target, reason = bars[keep], target[keep], reason[keep]
    if price is not None:
        price = price[keep]
    before = np.concatenate(([0.0], target[:-1]))
    return Changes(bars, target, before, open_[bars] if price is None else price, reason)


def apply_protection(ch: Changes, raw_at: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                     slippage_bps: float, protection: Protection | None,
                     columns: dict[str, np.ndarray] | None = None) -> Changes:
    """The changes the simulator fills once protective exits are in: each exit is a change to 0
    at its bar and price (before slippage) with its reason, after that bar's own open fill, and
    the targets decided from then until the next raw change (``raw_at``: decision bars of the
    strategy's own target changes, before sizing) are 0."""
    n = len(open_)
    if (protection is None or protection.empty) and not columns:
        return ch
    open_ = np.asarray(open_, dtype=float)
    high, low = np.asarray(high, dtype=float), np.asarray(low, dtype=float)
    raw_at = np.asarray(raw_at, dtype=np.int64)
    if len(raw_at) > 1 and not (np.diff(raw_at) > 0).all():
        raw_at = np.unique(raw_at)
    slip = slippage_bps / 10_000.0
    none = np.zeros(0, dtype=np.int64)
    spans = Spans(none, none, np.zeros(0), np.zeros(0, dtype=np.int8))
    while True:
        cur = _assembled(ch, open_, n, spans)
        runs = runs_of(cur, n, slip)  # a run cut by a known exit ends at it: only new runs find exits
        stop, tp, trail = run_levels(runs, protection, columns)
        ex = first_exits(open_, high, low, runs, stop, tp, trail)
        has = ex.bar >= 0
        reach = np.zeros(len(has), dtype=np.int64)
        reach[has] = _raw_next(raw_at, ex.bar[has], n)
        decided = runs.start - 1
        # Not yet known: a run starting inside an earlier run's flat span (not traded, but it may
        # go on past that span's end), and any run within reach of one, or of a run whose flat
        # span ends before the position would have ended (what follows that raw change is a new
        # entry): what those do can reach at most the raw change after their end. The exits
        # known are kept; the next pass is made with them.
        unknown = _earlier_max(reach) > decided
        outlives = has & (reach < runs.end - 1)
        horizon = _raw_next(raw_at, runs.end - 1, n)
        while True:
            more = unknown | (_earlier_max(np.where(unknown | outlives, horizon, -1)) > decided)
            if (more == unknown).all():
                break
            unknown = more
        ok = has & ~unknown
        spans = spans.plus(ex.bar[ok], reach[ok], ex.price[ok], ex.reason[ok])
        if not unknown.any() and not outlives.any():
            return _assembled(ch, open_, n, spans)


def simulate_target(ts: np.ndarray, cols: dict[str, np.ndarray], target: np.ndarray, config: BacktestConfig,
                    raw_at: np.ndarray, columns: dict[str, np.ndarray] | None = None,
                    unhalted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, FillTable, TradeTable]:
    """``simulate`` of a dense target with the run's protective exits (``config.protection`` over
    the strategy's own ``columns``; flat after one until a raw change, ``raw_at``). ``unhalted``:
    the target before the drawdown breaker; a change the breaker made where it did not change is
    named ``breaker``."""
    open_ = np.asarray(cols["open"], dtype=float)
    ch = dense_changes(open_, target, config.size)
    if unhalted is not None and len(ch.bar):
        u = np.asarray(unhalted, dtype=float)
        d = ch.bar - 1
        asked = u[d] != np.where(d > 0, u[np.maximum(d - 1, 0)], 0.0)
        ch = replace(ch, reason=np.where(asked, SIGNAL, BREAKER).astype(np.int8))
    ch = apply_protection(ch, raw_at, open_, cols["high"], cols["low"], config.slippage_bps, config.protection, columns)
    return simulate_changes(np.asarray(ts, dtype=np.int64), np.asarray(cols["close"], dtype=float), ch,
                            SimConfig(config.cash, config.fee, config.slippage_bps, config.size))


@dataclass(frozen=True)
class GuardedTargets:
    """A dense target column with its protective exits: ``target`` as decided, 0 in the flat
    spans after each exit; the exits' bars, prices (before slippage) and reasons."""

    target: np.ndarray
    bar: np.ndarray
    price: np.ndarray
    reason: np.ndarray


def guarded_targets(open_: np.ndarray, high: np.ndarray, low: np.ndarray, target: np.ndarray, raw_at: np.ndarray,
                    slippage_bps: float, protection: Protection | None,
                    columns: dict[str, np.ndarray] | None = None) -> GuardedTargets:
    """``apply_protection`` for a simulator that reads dense targets (the portfolio's): the exits
    apart, and the targets with the flat spans in (an exit at bar x is decided 0 from bar x on)."""
    open_ = np.asarray(open_, dtype=float)
    n = len(open_)
    target = np.asarray(target, dtype=float)
    out = apply_protection(dense_changes(open_, target, 1.0), raw_at, open_, high, low, slippage_bps, protection, columns)
    reason = _reasons(out)
    protective = np.isin(reason, (STOP_LOSS, TAKE_PROFIT, TRAILING_STOP))
    if not protective.any():
        return GuardedTargets(target, np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int8))
    decided = np.where(protective, out.bar, out.bar - 1)
    order = np.lexsort((~protective, decided))  # at one decision bar a signal's change is the later word
    decided, vals = decided[order], out.target[order]
    k = np.searchsorted(decided, np.arange(n), side="right") - 1
    dense = np.where(k >= 0, vals[np.maximum(k, 0)], 0.0)
    return GuardedTargets(dense, out.bar[protective], out.price[protective], reason[protective])
