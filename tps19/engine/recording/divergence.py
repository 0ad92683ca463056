"""The divergence ledger: why a session's P&L differs from what the strategy should have made.

Two runs of the same strategy on the same recording are compared order by order (the k-th
order of a symbol in one with the k-th in the other). For a matched pair the P&L difference,
valued at the final mark, is split exactly along the path an order takes:

    price per unit  = mid at the decision                               -> decision timing
                    + (book walk at the decision - mid)                 -> slippage vs the book at decision time
                    + (model's fill at execution - book walk at decision) -> latency (decision -> execution)
                    + (fill price - model's fill at execution)          -> unexplained (the paper fill model
                                                                           at that point does not explain it)
    quantity filled (taker / maker)                                     -> partial or missed fills / queue position
    fee rate                                                            -> fee tier

Orders only one run has are decision timing (a late or missed bar). Whatever the pieces do not
add up to (an order without a recorded book, rounding) is unexplained too. Amounts are in the
quote currency and in basis points of the reference run's traded notional.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
CAUSES = ("decision_timing", "latency", "slippage", "fees", "partial_missed", "queue", "unexplained")


@dataclass
class OrderRun:
    """One order as a run made it: what was filled, at what price and fee, on which books."""

    client_order_id: str
    symbol: str
    side: str
    amount: Decimal
    filled: Decimal = ZERO
    cost: Decimal = ZERO  # sum of price x amount of the fills
    fee: Decimal = ZERO
    maker: bool = False
    decision_book: Any = None  # BookEvent
    execution_book: Any = None
    # what the paper fill model fills at this order's execution point (a replay's own fill; for a
    # recorded session the replay at the recorded points): the fill price no model explains is
    # the difference
    model_avg: Decimal | None = None

    @property
    def sign(self) -> int:
        return 1 if self.side == "buy" else -1

    @property
    def avg(self) -> Decimal | None:
        return self.cost / self.filled if self.filled else None


@dataclass
class PairLedger:
    symbol: str
    reference: str | None
    subject: str | None
    gap: Decimal
    causes: dict[str, Decimal]


@dataclass
class Ledger:
    reference_pnl: Decimal
    subject_pnl: Decimal
    notional: Decimal  # the reference run's traded notional (the bp base)
    causes: dict[str, Decimal] = field(default_factory=lambda: {c: ZERO for c in CAUSES})
    pairs: list[PairLedger] = field(default_factory=list)

    @property
    def gap(self) -> Decimal:
        return self.subject_pnl - self.reference_pnl

    def bp(self, amount: Decimal) -> float:
        return float(amount / self.notional * 10_000) if self.notional else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference_pnl": str(self.reference_pnl), "subject_pnl": str(self.subject_pnl), "gap": str(self.gap),
            "gap_bp": round(self.bp(self.gap), 4), "notional": str(self.notional),
            "causes": {c: {"amount": str(v), "bp": round(self.bp(v), 4)} for c, v in self.causes.items()},
            "orders": [{"symbol": p.symbol, "reference": p.reference, "subject": p.subject, "gap": str(p.gap),
                        "causes": {c: str(v) for c, v in p.causes.items() if v}} for p in self.pairs],
        }


def _walk_vwap(book: Any, side: str, qty: Decimal) -> Decimal | None:
    """Average price of taking ``qty`` from ``book`` (a BookEvent) on the far side; the last level
    prices what the visible book does not hold."""
    if book is None or qty <= 0:
        return None
    levels = book.asks if side == "buy" else book.bids
    if not levels:
        return None
    left, cost = qty, ZERO
    last = ZERO
    for p, s in levels:
        price, size = Decimal(repr(p)), Decimal(repr(s))
        take = min(size, left)
        cost += take * price
        left -= take
        last = price
        if left <= 0:
            break
    if left > 0:
        cost += left * last
    return cost / qty


def _mid(book: Any) -> Decimal | None:
    if book is None or not book.bids or not book.asks:
        return None
    return (Decimal(repr(book.bids[0][0])) + Decimal(repr(book.asks[0][0]))) / 2


def orders_of(updates: list[Any], fills: list[Any], books_at: dict[str, tuple[Any, Any]] | None = None) -> list[OrderRun]:
    """OrderRuns (placement order) from OrderUpdates and FillEvents (objects or recorded dicts)."""
    def get(x: Any, k: str) -> Any:
        return x[k] if isinstance(x, dict) else getattr(x, k)

    runs: dict[str, OrderRun] = {}
    for u in updates:
        cid = get(u, "client_order_id")
        if cid not in runs:
            runs[cid] = OrderRun(cid, get(u, "symbol"), get(u, "side"), Decimal(str(get(u, "amount"))))
    for f in fills:
        run = runs.get(get(f, "client_order_id") or "")
        if run is None:
            continue
        amt, price = Decimal(str(get(f, "amount"))), Decimal(str(get(f, "price")))
        run.filled += amt
        run.cost += amt * price
        run.fee += Decimal(str(get(f, "fee")))
        run.maker = run.maker or get(f, "liquidity") == "maker"
    out = list(runs.values())
    if books_at:
        for r in out:
            r.decision_book, r.execution_book = books_at.get(r.client_order_id, (None, None))
            r.model_avg = r.avg
    return out


def _pnl(o: OrderRun, mark: Decimal) -> Decimal:
    return o.sign * (o.filled * mark - o.cost) - o.fee


def ledger(reference: list[OrderRun], subject: list[OrderRun], marks: dict[str, Decimal]) -> Ledger:
    """Attribute ``subject``'s P&L minus ``reference``'s to causes, order by order."""
    ref_by: dict[str, list[OrderRun]] = defaultdict(list)
    sub_by: dict[str, list[OrderRun]] = defaultdict(list)
    for o in reference:
        ref_by[o.symbol].append(o)
    for o in subject:
        sub_by[o.symbol].append(o)
    led = Ledger(reference_pnl=ZERO, subject_pnl=ZERO, notional=sum((o.cost for o in reference), ZERO))
    for sym in sorted(set(ref_by) | set(sub_by)):
        mark = marks.get(sym, ZERO)
        refs, subs = ref_by[sym], sub_by[sym]
        for k in range(max(len(refs), len(subs))):
            r = refs[k] if k < len(refs) else None
            s = subs[k] if k < len(subs) else None
            pr = _pnl(r, mark) if r else ZERO
            ps = _pnl(s, mark) if s else ZERO
            led.reference_pnl += pr
            led.subject_pnl += ps
            causes = {c: ZERO for c in CAUSES}
            gap = ps - pr
            if r is None or s is None or r.side != s.side:
                causes["decision_timing"] = gap
            else:
                _split(r, s, mark, causes)
                causes["unexplained"] += gap - sum(causes.values(), ZERO)
            for c, v in causes.items():
                led.causes[c] += v
            led.pairs.append(PairLedger(sym, r.client_order_id if r else None, s.client_order_id if s else None,
                                        gap, causes))
    return led


def _split(r: OrderRun, s: OrderRun, mark: Decimal, causes: dict[str, Decimal]) -> None:
    sign = r.sign
    qc = min(r.filled, s.filled)
    # the fee tier: what the subject paid beyond the reference's rate on the subject's notional
    rate_r = r.fee / r.cost if r.cost else ZERO
    causes["fees"] = -(s.fee - rate_r * s.cost)
    # quantity: fills one run got and the other did not, valued at the mark (maker: queue position)
    extra_s = s.filled - qc
    extra_r = r.filled - qc
    qty_effect = ZERO
    if extra_s or extra_r:
        avg_s, avg_r = s.avg or ZERO, r.avg or ZERO
        qty_effect = sign * (extra_s * (mark - avg_s) - extra_r * (mark - avg_r)) - rate_r * (extra_s * avg_s - extra_r * avg_r)
        causes["queue" if (r.maker or s.maker) else "partial_missed"] = qty_effect
    if qc <= 0 or r.avg is None or s.avg is None:
        return
    # price on the quantity both filled, along the order's path (a lower buy price is a gain)
    price_gap = -sign * (s.avg - r.avg) * qc - rate_r * (s.avg - r.avg) * qc
    leg_r, leg_s = _legs(r, qc), _legs(s, qc)
    if leg_r is None or leg_s is None:
        causes["unexplained"] += price_gap
        return
    (mid_r, dec_r, exe_r), (mid_s, dec_s, exe_s) = leg_r, leg_s
    unit = {"decision_timing": mid_s - mid_r, "slippage": (dec_s - mid_s) - (dec_r - mid_r),
            "latency": (exe_s - dec_s) - (exe_r - dec_r), "unexplained": (s.avg - exe_s) - (r.avg - exe_r)}
    for cause, d in unit.items():
        causes[cause] += -sign * d * qc - rate_r * d * qc


def _legs(o: OrderRun, qty: Decimal) -> tuple[Decimal, Decimal, Decimal] | None:
    """(mid at the decision, walk of ``qty`` on the book at the decision, the model's fill at the
    execution); ``qty`` is what both runs filled, so a quantity difference stays out of slippage."""
    if o.maker:  # a resting order's price is its limit: no book walk explains or moves it
        return (o.avg, o.avg, o.model_avg) if o.avg is not None and o.model_avg is not None else None
    mid = _mid(o.decision_book)
    dec = _walk_vwap(o.decision_book, o.side, qty)
    if mid is None or dec is None or o.model_avg is None:
        return None
    return mid, dec, o.model_avg


@dataclass
class BarBacktest:
    """The bar engine (signal on a bar's close, fill at the next bar's open, a flat taker fee) on the
    session's own closed bars: what a bar backtest of the same period says, and its gap."""

    pnl: Decimal  # over the session's bars (equity at the end minus at the last warm-up bar)
    gap: Decimal  # session P&L minus this
    trades: int
    bars: int

    def as_dict(self) -> dict[str, Any]:
        return {"pnl": str(self.pnl), "gap_vs_session": str(self.gap), "trades": self.trades, "bars": self.bars}


@dataclass
class DivergenceReport:
    ledger: Ledger  # the session (subject) against the strategy at bar close with no latency (reference)
    session_orders: int
    replay_matches: bool  # a replay at the recorded points reproduces the session's fills
    mode: str
    rows: int
    elapsed_s: float
    bar_backtest: BarBacktest | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "session_orders": self.session_orders, "replay_matches_session": self.replay_matches,
                "rows": self.rows, "elapsed_s": round(self.elapsed_s, 3), "ledger": self.ledger.as_dict(),
                "bar_backtest": self.bar_backtest.as_dict() if self.bar_backtest else None}


def bar_backtest(root: Any, meta: dict[str, Any], session_pnl: Decimal) -> BarBacktest | None:
    """The recorded strategy run by the bar engine on the recording's warm-up and closed bars."""
    import json

    from .format import VIEW_BAR, WARMUP
    from .reader import read_rows

    if not meta.get("strategy"):
        return None
    import numpy as np

    from ..backtest import BacktestConfig, run_backtest
    from ..strategies.registry import create

    warm: dict[str, dict[int, list[float]]] = defaultdict(dict)
    live: dict[str, dict[int, list[float]]] = defaultdict(dict)
    for r in read_rows(root, kinds=[WARMUP, VIEW_BAR]):
        d = json.loads(r[12])
        if r[4] == WARMUP:
            for c in d["candles"]:
                warm[r[5]][int(c[0])] = [float(x or 0) for x in c[1:6]]
        elif d.get("closed"):
            live[r[5]][int(d["ts"])] = [d["open"], d["high"], d["low"], d["close"], d["volume"]]
    balances = {k: float(v) for k, v in (meta.get("balances") or {}).items()}
    markets = meta.get("markets") or {}
    quotes = [(markets.get(s) or {}).get("quote") for s in live]
    pnl, trades, bars = Decimal(0), 0, 0
    for sym, rows in live.items():
        m = markets.get(sym) or {}
        allbars = {**warm.get(sym, {}), **rows}
        ts = np.array(sorted(allbars), dtype=np.int64)
        if len(rows) < 2 or len(ts) < 3:
            continue
        cols = np.array([allbars[t] for t in ts.tolist()], dtype=float)
        cash = balances.get(m.get("quote", ""), 0.0) / max(1, quotes.count(m.get("quote")))
        if cash <= 0:
            continue
        strat = create(meta["strategy"], [f"{k}={v}" for k, v in (meta.get("params") or {}).items()])
        res = run_backtest(strat, {"ts": ts, "open": cols[:, 0], "high": cols[:, 1], "low": cols[:, 2],
                                   "close": cols[:, 3], "volume": cols[:, 4]},
                           BacktestConfig(cash=cash, fee=float(m.get("taker") or 0.0)))
        k0 = int(np.searchsorted(ts, min(rows)))  # the first session bar
        start = float(res.equity[k0 - 1]) if k0 > 0 else cash
        pnl += Decimal(repr(float(res.equity[-1]) - start))
        trades += int(np.count_nonzero(res.fills.bar >= k0))
        bars += len(rows)
    return BarBacktest(pnl=pnl, gap=session_pnl - pnl, trades=trades, bars=bars)


async def divergence(root: Any, settings: Any, *, latency_ms: int = 0) -> DivergenceReport:
    """The ledger of a session recorded with ``--record``: the session as it happened against the
    same strategy replayed at each bar's close (``latency_ms`` after it)."""
    import asyncio
    import json
    import time

    from .format import FILL, ORDER
    from .reader import RecordingError, read_rows
    from .replayer import ReplayOptions, replay_backtest

    t0 = time.perf_counter()
    recorded = await replay_backtest(root, settings, ReplayOptions(timing="recorded"))
    if not recorded.meta.get("mode"):
        raise RecordingError(f"{root}: not a session recorded with --record (market data only): nothing to compare")
    ideal = await replay_backtest(root, settings, ReplayOptions(timing="ideal", latency_ms=latency_ms))
    updates: list[dict[str, Any]] = []
    fills: list[dict[str, Any]] = []
    for r in read_rows(root, kinds=[ORDER, FILL]):
        (updates if r[4] == ORDER else fills).append(json.loads(r[12]))
    session = orders_of(updates, fills)
    # the books each session order saw: the replay at the recorded points made the same orders in
    # the same places, k-th for k-th per symbol
    replayed = orders_of(recorded.updates, recorded.fills, recorded.books_at)
    by_sym: dict[str, list[OrderRun]] = defaultdict(list)
    for o in replayed:
        by_sym[o.symbol].append(o)
    seen: dict[str, int] = defaultdict(int)
    for o in session:
        k = seen[o.symbol]
        seen[o.symbol] += 1
        if k < len(by_sym[o.symbol]):
            twin = by_sym[o.symbol][k]
            o.decision_book, o.execution_book, o.model_avg = twin.decision_book, twin.execution_book, twin.avg
    matches = [(o.side, o.filled, o.cost, o.fee) for o in session] == [(o.side, o.filled, o.cost, o.fee) for o in replayed]
    reference = orders_of(ideal.updates, ideal.fills, ideal.books_at)
    led = ledger(reference, session, recorded.marks)
    bars = await asyncio.to_thread(bar_backtest, root, recorded.meta, led.subject_pnl)
    return DivergenceReport(ledger=led, session_orders=len(session), replay_matches=matches,
                            mode=str(recorded.meta.get("mode")), rows=recorded.rows + ideal.rows,
                            elapsed_s=time.perf_counter() - t0, bar_backtest=bars)
