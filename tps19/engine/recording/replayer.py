"""`tps19 backtest --replay DIR`: an event-driven backtest on recorded books and prints.

The recording is read in its global receive order. Books are rebuilt from the venue's frames;
the strategy, the target executor, the risk stage and the paper broker are the engine's own
(``build_trading``'s PaperBroker: book walk, queue position, consumed liquidity, the venue's
fees), on an engine clock that is the recording's. What the broker is shown follows the
recording:

* a session recorded by the engine (``--record``) says which books and prints the feed
  published, in which order, and where each order executed: the replay publishes the same books
  (rebuilt from the frames at the same sequence numbers) and prints in that order, and with
  ``timing="recorded"`` executes each decision at the point the recording executed it. A paper
  session replayed so gives the same orders and fills, price for price.
* a recording of market data only (``tps19 record``, an import) is published frame by frame and
  each decision executes at its bar's close plus ``latency_ms`` of recording time.

The planted differences the divergence ledger uses are options here: ``latency_ms``, a fee tier
(``maker``/``taker``), prints left out (``drop_prints``).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..events import BarEvent, BookEvent, Trade, TradeEvent
from .books import Book, prints_of
from .format import (
    BOOK,
    BROKER_BOOK,
    BROKER_TRADES,
    CANDLE,
    DECISION,
    DELTA,
    EXECUTION,
    META,
    ORDER,
    SIGNAL,
    TRADE,
    VIEW_BAR,
    VIEW_BOOK,
    VIEW_TRADES,
    WARMUP,
)
from .reader import RecordingError, inspect, read_rows

_GATED: contextvars.ContextVar[bool] = contextvars.ContextVar("tps19_replay_gated", default=False)


@dataclass
class ReplayOptions:
    strategy: Any = None  # a Strategy; None: the recorded one (meta), if any
    timing: str = "recorded"  # "recorded" | "ideal" (decision at the bar's close + latency_ms)
    latency_ms: int = 0
    maker: Decimal | None = None  # a fee tier other than the recorded venue's
    taker: Decimal | None = None
    drop_prints: frozenset[str] = frozenset()  # print ids the replay leaves out
    start_ns: int | None = None
    end_ns: int | None = None
    manual_orders: bool = True  # re-send orders the recording placed by hand (not the strategy's)
    progress: Callable[[int], None] | None = None  # called with rows done, every 50k rows


@dataclass
class ReplayResult:
    meta: dict[str, Any]
    orders: list[Any] = field(default_factory=list)  # final OrderUpdate per order, in placement order
    updates: list[Any] = field(default_factory=list)  # every OrderUpdate
    fills: list[Any] = field(default_factory=list)  # FillEvent
    signals: list[Any] = field(default_factory=list)
    executions: list[Any] = field(default_factory=list)  # ExecutionEvent
    # client order id -> (book at the decision, book at the execution) (BookEvents)
    books_at: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    rows: int = 0
    book_frames: int = 0
    books_published: int = 0
    prints: int = 0
    bars: int = 0
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the process meanwhile (a fair figure on a shared machine)
    first_ns: int | None = None
    last_ns: int | None = None
    final_balances: dict[str, Decimal] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)
    timing: str = "recorded"

    @property
    def book_events_per_s(self) -> float:
        return self.book_frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def book_events_per_cpu_s(self) -> float:
        return self.book_frames / self.cpu_s if self.cpu_s > 0 else 0.0


class _ClientStub:
    """What the paper stack reads of a ccxt client: its id, precision mode and the fee schedule
    the recorded session charged (from the recorded markets)."""

    def __init__(self, exchange_id: str, precision_mode: int, markets: dict[str, dict[str, Any]]) -> None:
        self.id = exchange_id
        self.precisionMode = precision_mode
        self._fees = {s: {"maker": m.get("maker"), "taker": m.get("taker")} for s, m in markets.items()
                      if m.get("maker") is not None and m.get("taker") is not None}
        self.has: dict[str, bool] = {"fetchTradingFees": bool(self._fees)}

    async def fetch_trading_fees(self) -> dict[str, dict[str, Any]]:
        return self._fees


def read_meta(root: Path) -> dict[str, Any]:
    metas = [json.loads(r[12]) for r in read_rows(root, kinds=[META])]
    return metas[0] if metas else {}


@dataclass
class _Plan:
    """Where the recording made and executed its decisions (timing="recorded")."""

    # (symbol, bar ts) -> (gseq the plan was made at, whether the recording executed an order for it)
    release: dict[tuple[str, int], tuple[int, bool]] = field(default_factory=dict)
    manual: dict[int, dict[str, Any]] = field(default_factory=dict)  # execution gseq -> the order placed by hand
    strategy_exec: set[int] = field(default_factory=set)
    broker_points: bool = False  # the recording says where the paper broker judged resting orders
    unplanned: set[tuple[str, int]] = field(default_factory=set)  # signals the recording shows no plan for


def _plan(root: Path, opts: ReplayOptions) -> _Plan:
    plan = _Plan()
    signals: dict[str, list[tuple[int, int]]] = defaultdict(list)  # symbol -> [(gseq, bar ts)]
    decisions: dict[str, list[int]] = defaultdict(list)
    execs: dict[str, list[tuple[int, str]]] = defaultdict(list)
    first_update: dict[str, dict[str, Any]] = {}
    for r in read_rows(root, kinds=[SIGNAL, DECISION, EXECUTION, ORDER, BROKER_BOOK], start_ns=opts.start_ns,
                       end_ns=opts.end_ns):
        if r[4] == BROKER_BOOK:
            plan.broker_points = True
            continue
        data = json.loads(r[12])
        if r[4] == SIGNAL:
            signals[r[5]].append((r[1], int(data["ts"])))
        elif r[4] == DECISION:
            decisions[r[5]].append(r[1])
        elif r[4] == EXECUTION:
            execs[r[5]].append((r[1], data["client_order_id"]))
            if data["client_order_id"].startswith("s19-"):
                plan.strategy_exec.add(r[1])
        elif data.get("client_order_id") not in first_update:
            first_update[data["client_order_id"]] = data
    for sym, sigs in signals.items():
        for i, (g, ts) in enumerate(sigs):
            nxt = sigs[i + 1][0] if i + 1 < len(sigs) else None
            hit = next((d for d in decisions.get(sym, ()) if d > g and (nxt is None or d < nxt)), None)
            if hit is None and nxt is None:
                plan.unplanned.add((sym, ts))  # the session's last signal: the recording may have ended first
                continue
            plan.release[(sym, ts)] = (hit, True) if hit is not None else (g, False)
    for sym, ex in execs.items():
        for g, cid in ex:
            if not cid.startswith("s19-") and cid in first_update:
                plan.manual[g] = first_update[cid]
    return plan


class _Gate:
    """A strategy order held until the stream reaches the point the recording executed it (or,
    with a latency setting, until the recording's clock passes ``at_ns``)."""

    def __init__(self, at_ns: int | None = None) -> None:
        self.open = asyncio.Event()
        self.done = asyncio.Event()
        self.at_ns = at_ns


class _Bars:
    """Bars of ``timeframe`` built from prints (for recordings the engine did not publish bars in)."""

    def __init__(self, timeframe_ms: int) -> None:
        self.tf = timeframe_ms
        self.open: dict[str, list[float]] = {}  # symbol -> [ts, o, h, l, c, v]

    def add(self, symbol: str, t: Trade, timeframe: str) -> BarEvent | None:
        start = t.ts - t.ts % self.tf
        bar = self.open.get(symbol)
        closed = None
        if bar is not None and start > bar[0]:
            closed = BarEvent(symbol, timeframe, int(bar[0]), bar[1], bar[2], bar[3], bar[4], bar[5], True)
            bar = None
        if bar is None:
            self.open[symbol] = [start, t.price, t.price, t.price, t.price, t.amount]
        elif start == bar[0]:
            bar[2] = max(bar[2], t.price)
            bar[3] = min(bar[3], t.price)
            bar[4] = t.price
            bar[5] += t.amount
        return closed


async def replay_backtest(root: Path, settings: Any, opts: ReplayOptions | None = None) -> ReplayResult:
    """Run the recording at ``root`` through the paper broker (and the strategy, if any)."""
    from ...aio import cancel_and_wait
    from ..bus import EventBus
    from ..clock import use_clock
    from ..history import timeframe_ms
    from ..risk.sizing import Sizing
    from ..storage import Database
    from ..strategies.runner import StrategyRunner
    from ..strategies.signals import SignalEvent
    from ..targets import TargetExecutor
    from ..assembly import build_trading
    from ..trading.events import DecisionEvent, ExecutionEvent, FillEvent, OrderUpdate

    opts = opts or ReplayOptions()
    root = Path(root)
    meta = read_meta(root)
    recorded = bool(meta.get("mode"))  # an engine session (not market data only)
    timing = opts.timing if recorded else "ideal"
    exchange_id = str(meta.get("exchange_id") or _venue_of(root))
    symbols: list[str] = list(meta.get("symbols") or [])
    markets: dict[str, dict[str, Any]] = {s: dict(m) for s, m in (meta.get("markets") or {}).items() if m}
    kinds = inspect(root).by_kind
    if kinds.get("frame") and not (kinds.get(BOOK) or kinds.get(DELTA)):
        # a venue without a frame parser (dialects.py: sim-binance) is recorded raw: no book to
        # fill against, so every order was refused and the session's purchases counted at no value
        raise RecordingError(f"{root}: a {exchange_id} recording holds its {kinds['frame']} venue frames raw "
                             "(no book rows): the replay backtest and divergence cannot rebuild its books; "
                             "record a sim (Crypto.com-format) venue for them")
    if not markets:
        raise RecordingError(f"{root}: the recording has no market definitions (record it with --record or "
                             "`tps19 record`, which store them)")
    symbols = [s for s in symbols if s in markets] or list(markets)
    timeframe = str(meta.get("timeframe") or "1m")
    depth = int(meta.get("book_depth") or 50)
    risk = settings.risk
    if meta.get("risk"):
        risk = risk.model_validate(meta["risk"])
    for m in markets.values():  # a planted fee tier replaces what the recorded venue charged
        if opts.maker is not None:
            m["maker"] = float(opts.maker)
        if opts.taker is not None:
            m["taker"] = float(opts.taker)
    settings = settings.model_copy(update={"risk": risk})
    balances = {k: Decimal(v) for k, v in (meta.get("balances") or {}).items()} or None
    strategy = opts.strategy
    if strategy is None and meta.get("strategy"):
        from ..strategies.registry import create

        strategy = create(meta["strategy"], [f"{k}={v}" for k, v in (meta.get("params") or {}).items()])
    plan = _plan(root, opts) if timing == "recorded" else _Plan()

    result = ReplayResult(meta=meta, timing=timing)
    now = [0]
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="tps19-replay-") as tmp, use_clock(lambda: now[0]):
        bus = EventBus()
        db = Database(Path(tmp) / "replay.db")
        await db.open()
        stack = await build_trading(mode="paper", bus=bus, db=db, client=_ClientStub(exchange_id, int(meta.get("precision_mode") or 4), markets),
                                    markets=markets, settings=settings, exchange=exchange_id,
                                    starting_balances=balances, latency_s=0.0)
        broker: Any = stack.broker
        broker.risk._clock = lambda: now[0] / 1e9  # orders-per-minute on the recording's clock
        await broker.start()
        # the replay hands the broker its events itself, in order (its own task would take them later)
        if broker._task is not None:
            await cancel_and_wait([broker._task])
            broker._task = None
        if broker._sub is not None:
            broker._sub.close()
            bus.unsubscribe(broker._sub)
            broker._sub = None
        last_update: dict[str, Any] = {}
        order_ids: list[str] = []

        def on_update(ev: OrderUpdate) -> None:
            if ev.client_order_id not in last_update:
                order_ids.append(ev.client_order_id)
            last_update[ev.client_order_id] = ev
            result.updates.append(ev)

        bus.on(OrderUpdate, on_update)
        bus.on(FillEvent, result.fills.append)
        bus.on(SignalEvent, result.signals.append)
        decided_on: dict[str, Any] = {}

        def on_decision(ev: Any) -> None:
            decided_on[ev.symbol] = broker.books.get(ev.symbol)

        def on_execution(ev: ExecutionEvent) -> None:
            result.executions.append(ev)
            book = broker.books.get(ev.symbol)
            decided = decided_on.pop(ev.symbol, None) if ev.client_order_id.startswith("s19-") else None
            result.books_at[ev.client_order_id] = (decided or book, book)

        bus.on(DecisionEvent, on_decision)
        bus.on(ExecutionEvent, on_execution)

        # targets waiting for their point in the stream: (symbol, target, signal, bar ts, due ns or -gseq, gated)
        pending: list[tuple[str, float, Any, int, int, bool]] = []
        gates: dict[str, list[_Gate]] = defaultdict(list)
        inflight: dict[str, list[asyncio.Task[None]]] = defaultdict(list)
        arrived = asyncio.Event()
        runner = executor = None
        bar_ts = [0]
        if strategy is not None:
            executor = TargetExecutor(broker, stack.portfolio, markets, symbols, bus,
                                      max_order_notional=risk.max_order_notional, strategy=strategy.name,
                                      adopt_holdings=bool(meta.get("adopt_holdings")),
                                      sizing=Sizing(risk.sizing, dict(risk.sizing_params)),
                                      timeframe_ms=timeframe_ms(timeframe))

            def sink(symbol: str, target: float, signal: Any) -> None:
                # ideal timing: planned at the bar's close, executed latency_ms later
                due = now[0]
                gated = opts.latency_ms > 0
                if timing == "recorded" and (symbol, bar_ts[0]) in plan.unplanned:
                    return  # recorded as the session's last signal, never planned before the recording ended
                if timing == "recorded" and (symbol, bar_ts[0]) in plan.release:
                    g, gated = plan.release[(symbol, bar_ts[0])]
                    due = -g
                pending.append((symbol, target, signal, bar_ts[0], due, gated))

            runner = StrategyRunner(bus, strategy, symbols=symbols, timeframe=timeframe, order_sink=sink)
            runner._sub.close()
            bus.unsubscribe(runner._sub)
        builder = _Bars(timeframe_ms(timeframe)) if not recorded else None

        # held before the broker's lock is taken (a held order must not block the next one)
        submit_order = broker._submit

        async def gated_submit(o: Any, v: Any) -> Any:
            if not _GATED.get():
                return await submit_order(o, v)
            gate = _Gate(None if timing == "recorded" else now[0] + opts.latency_ms * 1_000_000)
            gates[o.symbol].append(gate)
            arrived.set()
            await gate.open.wait()
            try:
                return await submit_order(o, v)
            finally:
                gate.done.set()

        broker._submit = gated_submit

        async def submit(p: tuple[str, float, Any, int, int, bool]) -> None:
            _GATED.set(p[5])
            assert executor is not None
            await executor.submit_target(p[0], p[1], p[2])

        async def settle(symbol: str) -> None:
            """Let the symbol's submissions run until each is held at its gate or finished."""
            while True:
                tasks = [t for t in inflight[symbol] if not t.done()]
                inflight[symbol] = tasks
                if not tasks or len(gates[symbol]) >= len(tasks):
                    return
                arrived.clear()
                waiter = asyncio.ensure_future(arrived.wait())
                await asyncio.wait({waiter, *tasks}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()

        async def release(due: Callable[[tuple[str, float, Any, int, int, bool]], bool]) -> None:
            if not pending or executor is None:
                return
            go = [p for p in pending if due(p)]
            if go and dirty:
                await show_dirty()
            for p in go:
                pending.remove(p)
                inflight[p[0]].append(asyncio.create_task(submit(p)))
                await settle(p[0])

        async def executed_at(symbol: str) -> None:
            """The recording executed a strategy order of ``symbol`` here: so does the replay."""
            await settle(symbol)
            if gates[symbol]:
                gate = gates[symbol].pop(0)
                gate.open.set()
                await gate.done.wait()
                await settle(symbol)

        books: dict[str, Book] = defaultdict(Book)
        prints: dict[str, Trade] = {}
        orders = broker.orders

        def resting(symbol: str) -> bool:
            return bool(orders) and bool(broker._resting(symbol))

        dirty: set[str] = set()  # data-only: books changed since they were last shown to the broker

        async def show_dirty() -> None:
            """Before anything reads the books (a decision, an order, the end): publish the changed ones."""
            for sym in sorted(dirty):
                await publish_book(sym, books[sym])
            dirty.clear()

        # recorded broker points: the books/prints published, until the broker judges on them
        shown_books: dict[tuple[str, int | None], BookEvent] = {}
        shown_trades: dict[tuple[str, tuple[str | None, ...]], TradeEvent] = {}
        at_points = timing == "recorded" and plan.broker_points

        async def publish_book(symbol: str, b: Book, seq: int | None = None) -> None:
            """``seq``: the sequence number the feed published this book under (a view row's)."""
            bids, asks = b.levels(depth)
            ev = BookEvent(symbol, bids, asks, b.ts, b.seq if seq is None else seq)
            bus.publish(ev)
            result.books_published += 1
            if at_points:
                shown_books[(symbol, ev.seq)] = ev
                _bound(shown_books)
                return
            if resting(symbol):
                async with broker.lock:
                    await broker.on_book_cross(ev)

        async def publish_trades(symbol: str, trades: tuple[Trade, ...]) -> None:
            if not trades:
                return
            ev = TradeEvent(symbol, trades)
            if symbol in dirty and resting(symbol):
                dirty.discard(symbol)
                await publish_book(symbol, books[symbol])
            bus.publish(ev)
            result.prints += len(trades)
            if at_points:
                shown_trades[(symbol, tuple(t.id for t in trades))] = ev
                _bound(shown_trades)
            elif resting(symbol):
                async with broker.lock:
                    await broker.on_trades(ev)
            if builder is not None and runner is not None:
                for t in trades:
                    bar = builder.add(symbol, t, timeframe)
                    if bar is not None:
                        await on_bar(bar)

        async def on_bar(bar: BarEvent) -> None:
            bus.publish(bar)
            if runner is not None and bar.closed:
                result.bars += 1
                bar_ts[0] = bar.ts
                await runner.handle(bar)
                await release(lambda p: p[4] >= 0 and p[4] <= now[0])

        for r in read_rows(root, start_ns=opts.start_ns, end_ns=opts.end_ns):
            g, ns, kind, symbol = r[1], r[2], r[4], r[5]
            now[0] = ns
            result.rows += 1
            if result.first_ns is None:
                result.first_ns = ns
            result.last_ns = ns
            if opts.progress is not None and result.rows % 50_000 == 0:
                opts.progress(result.rows)
            if pending:
                await release(lambda p: (p[4] >= 0 and p[4] <= ns) or (p[4] < 0 and -p[4] <= g))
            if timing != "recorded" and opts.latency_ms > 0:
                for sym_gates in gates.values():
                    while sym_gates and sym_gates[0].at_ns is not None and sym_gates[0].at_ns <= ns:
                        gate = sym_gates.pop(0)
                        await show_dirty()
                        gate.open.set()
                        await gate.done.wait()
            if kind == DELTA or kind == BOOK:
                b = books[symbol]
                if kind == BOOK:
                    b.snapshot(r[8] or [], r[9] or [], r[10] or [], r[11] or [], r[6], r[3])
                elif b.seq is not None and r[6] is not None and r[6] <= b.seq:
                    continue  # a diff the snapshot already holds (Binance sends some before it)
                else:
                    b.apply(r[8], r[9], r[10], r[11], r[6], r[3])
                result.book_frames += 1
                if not recorded:
                    # a resting order is checked against every update; otherwise nothing reads the
                    # book until a decision or an order does (published then, like a coalescing feed)
                    if resting(symbol):
                        dirty.discard(symbol)
                        await publish_book(symbol, b)
                    else:
                        dirty.add(symbol)
            elif kind == TRADE:
                got = [t for t in prints_of(r[12], exchange_id) if t.id not in opts.drop_prints]
                if recorded:
                    for t in got:
                        prints[t.id] = t  # type: ignore[index]
                else:
                    await publish_trades(symbol, tuple(got))
            elif not recorded:
                continue  # market data only: the frames are the stream (views are informative)
            elif kind == VIEW_BOOK:
                if symbol in books:
                    await publish_book(symbol, books[symbol], r[6])
            elif kind == VIEW_TRADES:
                shown = json.loads(r[12])
                if shown and isinstance(shown[0], list):  # the prints as the feed published them
                    seen = tuple(Trade(int(t[1]), str(t[2]), float(t[3]), float(t[4]), t[0]) for t in shown
                                 if t[0] not in opts.drop_prints)
                    for t in seen:
                        prints.pop(t.id, None)  # type: ignore[arg-type]
                else:  # ids of prints received as frames
                    seen = tuple(prints.pop(i) for i in shown if i in prints)
                await publish_trades(symbol, seen)
            elif kind == VIEW_BAR:
                d = json.loads(r[12])
                await on_bar(BarEvent(**d))
            elif kind == BROKER_BOOK and at_points:
                shown = shown_books.pop((symbol, r[6]), None)
                if shown is not None:
                    async with broker.lock:
                        await broker.on_book_cross(shown)
            elif kind == BROKER_TRADES and at_points:
                shown_t = shown_trades.pop((symbol, tuple(json.loads(r[12]))), None)
                if shown_t is not None:
                    async with broker.lock:
                        await broker.on_trades(shown_t)
            elif kind == WARMUP and runner is not None:
                d = json.loads(r[12])
                for c in d["candles"]:
                    runner.warm_up(symbol, BarEvent(symbol, d["timeframe"], int(c[0]), float(c[1]), float(c[2]),
                                                    float(c[3]), float(c[4]), float(c[5] or 0), True))
                if d["candles"]:
                    runner.last_ts[symbol] = int(d["candles"][-1][0])
            elif kind == EXECUTION and timing == "recorded":
                if g in plan.strategy_exec:
                    await executed_at(symbol)
                elif opts.manual_orders and g in plan.manual:
                    o = plan.manual[g]
                    await broker.place_order(o["symbol"], o["side"], o["type"], o["amount"], o.get("price"))
            elif kind == CANDLE:
                pass  # the engine's bars are its view.bar rows; data-only recordings build bars from prints
        # decisions due after the recording ended are not executed
        pending.clear()
        await show_dirty()  # the final marks
        # an order still held was decided but never executed before the recording ended (the
        # engine stopped between its decision and its execution): it is not executed either
        leftover = [task for ts in inflight.values() for task in ts if not task.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            await asyncio.wait(leftover)
        result.orders = [last_update[c] for c in order_ids]
        result.final_balances = dict(stack.portfolio.balances)
        result.marks = dict(stack.portfolio.marks)
        await broker.stop()
        await db.close()
    result.elapsed_s = time.perf_counter() - t0
    result.cpu_s = time.process_time() - c0
    return result


def _bound(d: dict[Any, Any], keep: int = 2048) -> None:
    """Forget the oldest half of what the broker was shown but never judged on (its queue
    coalesces books: most are superseded before it takes them)."""
    if len(d) > keep:
        for k in list(d)[: keep // 2]:
            del d[k]


def _venue_of(root: Path) -> str:
    from .format import partitions

    parts = partitions(root)
    return parts[0][0] if parts else "sim"
