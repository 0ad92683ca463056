"""The engine: venue, market feed, storage and (when present) trading, wired to one bus.

Both front ends use it the same way: the Textual desk subscribes to ``engine.bus``, and
`--no-ui` runs it with the JSON-lines logger instead. Nothing here knows about Textual.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from ..aio import cancel_and_wait
from ..config import Settings
from .bus import EventBus
from .ccxt_classes import ccxt_base
from .events import BarEvent, ConnectionEvent, LogEvent, StorageAlert, VenueEvent
from .feed import MarketFeed, bar_event
from .orderbook import L2Book
from .storage import Bar, Database
from .storage.errors import StorageError, storage_error
from .storage.lock import instance_lock
from .storage.watch import StorageWatch
from .venue import Venue, VenueError, open_venue

if TYPE_CHECKING:
    from pathlib import Path

    from .notify.sender import Notifier
    from .recording.tap import Recorder
    from .strategies.base import Strategy
    from .strategies.runner import StrategyRunner
    from .targets import TargetExecutor
    from .assembly import TradingStack


def strategy_protection(settings: Settings, override: Any = None) -> tuple[Any, Any]:
    """The (Protection, Sizing) a strategy's entries use in paper/live: ``override`` or the
    ``stops`` settings (the --stop-loss/--take-profit/--trailing-stop flags); fixed_fractional
    places the stop its size assumes, and a --stop-loss wins over it and sizes it (protection.py)."""
    from .protection import Protection, with_sizing
    from .risk.sizing import Sizing

    stops = settings.stops
    protection = override
    if protection is None and any(v is not None for v in (stops.stop_loss_pct, stops.take_profit_pct,
                                                          stops.trailing_pct)):
        protection = Protection(stop_loss_pct=stops.stop_loss_pct, take_profit_pct=stops.take_profit_pct,
                                trailing_pct=stops.trailing_pct)
    return with_sizing(protection, Sizing(settings.risk.sizing, dict(settings.risk.sizing_params)))


class EngineError(Exception):
    """The engine cannot start; the message is for the trader, one line."""


class Engine:
    def __init__(self, settings: Settings, mode: str = "paper", strategy: Strategy | None = None,
                 shadow: Strategy | None = None, record_dir: Path | None = None, protection: Any = None,
                 lifecycle: Any = None) -> None:
        if mode not in ("paper", "live"):
            raise ValueError(f"mode must be paper or live, not {mode!r}")
        self.settings = settings
        self.mode = mode
        self.symbols = list(settings.symbols.watch)
        self.bus = EventBus()
        self.books: dict[str, L2Book] = {s: L2Book(s) for s in self.symbols}
        self.db = Database(settings.database.target)
        self.db_lock = instance_lock(self.db, mode, settings.exchange.id)
        self.venue: Venue | None = None
        self.feed: MarketFeed | None = None
        self.markets: dict[str, Any] = {}
        self.trading: TradingStack | None = None
        self.strategy = strategy
        # protective exits on every strategy entry (engine/protection.py's Protection, or None)
        self.protection = protection
        self.shadow = shadow  # a model that predicts on the same bars, decisions stored, no orders
        if lifecycle is None and (settings.ml.retrain_every or settings.ml.retrain_on_drift):
            from .ml.lifecycle import lifecycle_config

            lifecycle = lifecycle_config(settings.ml)
        self.lifecycle_config = lifecycle  # ml/lifecycle.py LifecycleConfig: retrain, shadow, promote
        self.lifecycle: Any = None
        self.runner: StrategyRunner | None = None
        self.executor: TargetExecutor | None = None
        self.started_at: float | None = None
        self._bar_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self.record_dir = record_dir
        self.recorder: Recorder | None = None
        self.divergence_watch: Any = None  # live: the unexplained-divergence alert
        self.storage_watch: StorageWatch | None = None
        self.storage_problem: str | None = None  # set while orders are halted for it (healthz names it)
        self._retry_task: asyncio.Task[int] | None = None
        self.notifier: Notifier | None = None

    # -- helpers -------------------------------------------------------------------
    def log(self, level: str, message: str, **fields: Any) -> None:
        self.bus.publish(LogEvent(level=level, message=message, fields=fields))

    @property
    def venue_name(self) -> str:
        return self.venue.name if self.venue else self.settings.exchange.id

    def venue_event(self) -> VenueEvent:
        return VenueEvent(name=self.venue_name, mode=self.mode, trading=self.trading is not None)

    def announce(self) -> None:
        """Publish the engine's standing state again, for a subscriber that joined after start
        (what it missed is not replayed): the venue, and each market stream's connection state."""
        self.bus.publish(self.venue_event())
        if self.feed is not None:
            for (stream, symbol), st in list(self.feed.stats.streams.items()):
                self.bus.publish(ConnectionEvent(stream=stream, symbol=symbol, state=st.state))

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        # One engine per database and mode (two would overwrite each other's balances); taken
        # before the database is opened and held until stop().
        try:
            await self.db_lock.acquire_async()
            await self.db.open(probe_write=True)
        except Exception as err:
            await self.db_lock.release_async()
            if isinstance(err, StorageError):  # already one line naming the database
                raise EngineError(str(err)) from None
            raise EngineError(f"cannot open database {self.db.name}: {err}") from None
        self._start_notifier()
        try:
            self.venue = await open_venue(self.settings)
        except VenueError as err:
            raise EngineError(str(err)) from None
        self.log("info", "venue connected", venue=self.venue_name, mode=self.mode)
        if self.record_dir is not None:
            self._start_recorder()
        await self._load_markets()
        if self.recorder is not None:
            self.recorder.set_markets(self.markets)
        missing = [s for s in self.symbols if s not in self.markets]
        if missing:
            raise EngineError(f"symbol(s) not listed on {self.venue_name}: {', '.join(missing)}")
        # a timeframe the venue has no candles for would leave the bars (and a strategy) silent forever
        offered = getattr(self.venue.client, "timeframes", None) or {}
        timeframe = self.settings.symbols.timeframe
        if offered and timeframe not in offered:
            raise EngineError(f"timeframe {timeframe} is not offered by {self.venue_name} "
                              f"(TPS19_SYMBOLS__TIMEFRAME; it offers {', '.join(offered)})")
        self.feed = MarketFeed(
            self.venue.client,
            self.symbols,
            self.bus,
            self.settings.feed,
            depth=self.settings.symbols.book_depth,
            timeframe=self.settings.symbols.timeframe,
            books=self.books,
        )
        # Trading subscribes to books before the feed publishes the first one: the portfolio marks
        # and the paper broker fill from books, and on a quiet market no second book may come soon.
        await self._start_trading()
        self.storage_watch = StorageWatch(self.db, self.db_lock, self._storage_changed)
        self.storage_watch.start()
        if self.recorder is not None:
            if self.trading is not None:
                self.recorder.tap_broker(self.trading.broker)
            self._record_meta()
        await self.feed.start()
        self._bar_task = asyncio.create_task(self._persist_bars(), name="engine:bars")
        if self.strategy is not None:
            await self._start_strategy()
        self.started_at = time.monotonic()
        self.bus.publish(self.venue_event())
        self.log("info", "engine started", symbols=self.symbols, mode=self.mode, db=self.db.name)

    def _start_notifier(self) -> None:
        """Notifications from the start on (a reconciliation's unknown orders included)."""
        urls = self.settings.notify.urls
        if urls is None:
            return
        from .notify.sender import Notifier
        from .notify.targets import NotifyConfigError, parse_targets

        try:
            targets = parse_targets(urls.get_secret_value())
        except NotifyConfigError as err:
            raise EngineError(str(err)) from None
        self.notifier = Notifier(self, targets, self.settings.notify)
        self.notifier.start()
        self.log("info", "notifications on", urls=[t.shown for t in targets])

    def _start_recorder(self) -> None:
        """Tap the venue's websockets and the bus before anything is received or published."""
        from .recording.tap import Recorder
        from .recording.writer import WriterSettings

        assert self.venue is not None and self.record_dir is not None
        rs = self.settings.recording
        ws = WriterSettings(batch_rows=rs.batch_rows, batch_s=rs.batch_s, rotate_bytes=int(rs.rotate_mb * (1 << 20)),
                            retention_days=rs.retention_days)
        try:
            self.recorder = Recorder(self.record_dir, self.venue.exchange_id, self.venue.exchange_id, ws,
                                     on_problem=lambda msg, fields: self.log("warning", msg, **fields)).start()
        except OSError as err:
            raise EngineError(f"cannot record to {self.record_dir}: {err}") from None
        self.recorder.tap_client(self.venue.client)
        self.recorder.tap_bus(self.bus)
        self.log("info", "recording", dir=str(self.record_dir))

    def _record_meta(self) -> None:
        """What a replay needs to run the same session: the markets, the broker's starting state,
        the strategy and its parameters, the settings that shape decisions."""
        assert self.recorder is not None
        meta: dict[str, Any] = {
            "mode": self.mode, "venue": self.venue_name, "exchange_id": self.venue.exchange_id if self.venue else None,
            "symbols": self.symbols, "timeframe": self.settings.symbols.timeframe,
            "book_depth": self.settings.symbols.book_depth,
            "markets": {s: self.markets.get(s) for s in self.symbols},
            "strategy": self.strategy.name if self.strategy is not None else None,
            "params": self.strategy.param_dict() if self.strategy is not None else {},
            "risk": self.settings.risk.model_dump(mode="json"),
            "adopt_holdings": self.settings.strategy.adopt_holdings,
            "precision_mode": getattr(self.venue.client, "precisionMode", None) if self.venue else None,
        }
        if self.trading is not None:
            meta["balances"] = {k: str(v) for k, v in self.trading.portfolio.balances.items()}
            meta["latency_s"] = getattr(self.trading.broker, "latency_s", None)
        self.recorder.meta(meta)

    async def _load_markets(self) -> None:
        assert self.venue is not None
        ccxt = ccxt_base()

        delay = 0.5
        for attempt in range(5):
            try:
                self.markets = await self.venue.client.load_markets()
                return
            except ccxt.AuthenticationError:
                raise EngineError(f"{self.venue_name} rejected the API credentials") from None
            except (ccxt.NetworkError, ccxt.ExchangeError) as err:
                self.log("warning", "load markets failed, retrying", attempt=attempt + 1, error=type(err).__name__)
                await asyncio.sleep(delay)
                delay *= 2
        raise EngineError(f"cannot load markets from {self.venue_name}")

    async def _start_trading(self) -> None:
        from .assembly import build_trading

        assert self.venue is not None
        self.trading = await build_trading(
            mode=self.mode, bus=self.bus, db=self.db, client=self.venue.client, markets=self.markets, settings=self.settings
        )
        if self.mode == "live":
            from .recording.watch import DivergenceWatch

            # fills the book does not explain, said while the run is on (docs/replay.md)
            self.divergence_watch = DivergenceWatch(self.bus, self.settings.recording.unexplained_alert_bps).start()
        # no new risk on a symbol whose book is stale or resyncing
        self.trading.unit.attach_feed(self.feed)
        await self.trading.start()

    async def _start_strategy(self) -> None:
        """Run the strategy on closed bars; its targets go through the broker's risk checks."""
        from .strategies.runner import StrategyRunner
        from .strategies.signals import SignalEvent
        from .targets import TargetExecutor
        from .history import timeframe_ms
        from .risk.sizing import Sizing

        strategy = self.strategy
        assert self.venue is not None and strategy is not None
        timeframe = self.settings.symbols.timeframe
        sink: TargetExecutor | None = None
        if self.trading is not None:
            protection, sizing = strategy_protection(self.settings, self.protection)
            self.executor = TargetExecutor(self.trading.broker, self.trading.portfolio, self.markets, self.symbols, self.bus,
                                           max_order_notional=self.settings.risk.max_order_notional,
                                           strategy=strategy.name, adopt_holdings=self.settings.strategy.adopt_holdings,
                                           sizing=sizing, timeframe_ms=timeframe_ms(timeframe), protection=protection)
            self.executor.resume(await self.trading.store.fills())
            sink = self.executor
        else:
            self.log("warning", "strategy runs without a broker: signals only")
        runner = self.runner = StrategyRunner(self.bus, strategy, symbols=self.symbols, timeframe=timeframe, db=self.db,
                                              order_sink=sink, shadows=[self.shadow] if self.shadow else (),
                                              books=self.books)
        if self.lifecycle_config is not None and self.lifecycle_config.active:
            from .ml.lifecycle import ModelLifecycle

            if not hasattr(strategy, "model"):
                raise EngineError("--retrain-every / --retrain-on-drift need --strategy ml (a model to retrain)")
            self.lifecycle = ModelLifecycle(runner, self.db, self.lifecycle_config, self.symbols[0], timeframe,
                                            notify=lambda level, message, fields: self.log(level, message, **fields),
                                            client=self.venue.client, exchange=self.settings.exchange.id)
            runner.after_bar.append(self.lifecycle.on_bar)
        # Warm up on recent closed candles so indicators are ready; warm-up never trades.
        for symbol in self.symbols:
            try:
                candles = await self.venue.client.fetch_ohlcv(symbol, timeframe, limit=300)
            except Exception as err:
                self.log("warning", "strategy warm-up failed", symbol=symbol, error=type(err).__name__)
                continue
            closed = candles[:-1]  # the last candle is still forming
            if self.recorder is not None:
                self.recorder.warmup(symbol, timeframe, closed)
            if self.executor is not None and symbol in self.executor.closes:
                self.executor.closes[symbol].extend(float(c[4]) for c in closed)  # vol_target sizing's history
            last = None
            for c in closed:
                bar = bar_event(symbol, timeframe, c, closed=True)
                sig = runner.warm_up(symbol, bar)
                if self.lifecycle is not None:
                    self.lifecycle.observe(bar)
                last = sig or last
            if closed:
                runner.last_ts[symbol] = int(closed[-1][0])
            if last is not None:
                self.bus.publish(SignalEvent(strategy=strategy.name, symbol=symbol, timeframe=timeframe,
                                             ts=int(closed[-1][0]), signal=last, params=strategy.param_dict(),
                                             warmup=True))
        runner.start()
        self.log("info", "strategy running", strategy=strategy.name, params=strategy.param_dict(),
                 trading=sink is not None)

    async def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.recorder is not None:
            # the recording ends where the session does (a replay must not trade on what the
            # feed still published while the engine stopped) — and between two of the broker's
            # actions: an execution or a judged book/print is recorded with the orders and fills
            # it committed, never cut after its point and before its outcome (the commit awaits
            # the database, long on a busy machine; a replay would act on the point alone)
            # the paper broker's lock is only ever held over local work; a live broker's is held
            # over venue calls, and a stop must not wait on the venue
            broker = self.trading.broker if self.trading is not None else None
            lock = getattr(broker, "lock", None) if getattr(broker, "mode", None) == "paper" else None
            if isinstance(lock, asyncio.Lock):
                async with lock:
                    self.recorder.taking = False
            self.recorder.taking = False
        # Each part stops even if the one before failed; a failure is logged, never swallowed silently.
        parts: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        if self.storage_watch is not None:
            parts.append(("storage watch", self.storage_watch.stop))
        if self.runner is not None:
            parts.append(("strategy runner", self.runner.stop))
        if self.lifecycle is not None:
            parts.append(("model lifecycle", self.lifecycle.stop))
        if self.trading is not None:
            parts.append(("trading", self.trading.stop))
        if self.feed is not None:
            parts.append(("market feed", self.feed.stop))
        if self._bar_task is not None:
            parts.append(("bar storage", partial(cancel_and_wait, [self._bar_task])))
        if self.venue is not None:
            parts.append(("venue", self.venue.close))
        if self.recorder is not None:
            parts.append(("recording", partial(asyncio.to_thread, self.recorder.close)))
        if self.notifier is not None:
            parts.append(("notifications", self.notifier.stop))
        parts.append(("database", self.db.close))
        for name, stop in parts:
            try:
                await stop()
            except Exception as err:
                self.log("error", "stopping failed", part=name, error=type(err).__name__, detail=str(err)[:200])
        await self.db_lock.release_async()

    async def _backfill(self, missed: dict[tuple[str, str], int], stored: dict[tuple[str, str], int]) -> None:
        """The closed bars the venue has since the first one that could not be stored, stored now."""
        if self.venue is None:
            return
        exchange = self.settings.exchange.id
        for (symbol, timeframe), since in list(missed.items()):
            last = stored.get((symbol, timeframe))
            if last is None:
                continue  # back-filled when this symbol's next bar is stored
            try:
                candles = await self.venue.client.fetch_ohlcv(symbol, timeframe, since=since, limit=1000)
                rows = [Bar(exchange=exchange, symbol=symbol, timeframe=timeframe, ts=int(c[0]), open=c[1], high=c[2],
                            low=c[3], close=c[4], volume=c[5]) for c in candles if since <= int(c[0]) <= last]
                async with self.db.session() as s:
                    for r in rows:
                        await s.merge(r)
                    await s.commit()
            except Exception as err:
                self.log("warning", f"back-filling {symbol} {timeframe} bars failed (retried with the next bar): "
                         f"{storage_error(self.db.name, 'store bars', err)}")
                continue
            del missed[(symbol, timeframe)]
            self.log("info", f"back-filled {len(rows)} {symbol} {timeframe} bars missed while the database "
                     "did not take writes", database=self.db.name)

    def _storage_changed(self, reason: str | None) -> None:
        """The storage watch's verdict: halt every order now, or allow them again."""
        self.storage_problem = reason
        risk = self.trading.broker.risk if self.trading is not None else None
        if reason is not None:
            if risk is not None:
                risk.hold("storage", reason)
            self.log("error", "trading halted: " + reason, database=self.db.name)
        else:
            if risk is not None:
                risk.lift("storage")
            self.log("info", "engine lock held again: trading resumes", database=self.db.name)
            if self.executor is not None and self.executor.pending:
                # targets whose orders failed while the database was away
                self._retry_task = asyncio.get_running_loop().create_task(self.executor.retry_pending(),
                                                                          name="engine:retry-targets")
        self.bus.publish(StorageAlert(database=self.db.name, halted=reason is not None,
                                      reason=reason or "engine lock held again"))

    async def _persist_bars(self) -> None:
        """Closed candles go to the bars table (the history backtests read)."""
        sub = self.bus.subscribe(BarEvent, coalesce=None, maxsize=10_000)
        exchange = self.settings.exchange.id
        missed: dict[tuple[str, str], int] = {}  # (symbol, timeframe) -> first bar not stored
        try:
            while True:
                events = await sub.wait()
                rows = [
                    Bar(exchange=exchange, symbol=e.symbol, timeframe=e.timeframe, ts=e.ts, open=e.open, high=e.high,
                        low=e.low, close=e.close, volume=e.volume)
                    for e in events
                    if e.closed
                ]
                if rows:
                    try:
                        async with self.db.session() as s:
                            for r in rows:
                                await s.merge(r)
                            await s.commit()
                    except Exception as err:
                        for r in rows:  # back-filled from the venue once the database takes writes again
                            key = (r.symbol, r.timeframe)
                            missed[key] = min(missed.get(key, r.ts), r.ts)
                        named = storage_error(self.db.name, "store bars", err)  # names the database and the operation
                        self.log("error", f"storing bars failed: {named}", error=type(err).__name__)
                        continue
                    if missed:
                        await self._backfill(missed, {(r.symbol, r.timeframe): r.ts for r in rows})
        finally:
            sub.close()

    # -- views for front ends ------------------------------------------------------
    def summary(self, symbol: str) -> dict[str, Any]:
        """One line of market state per symbol (headless log, status bar)."""
        from ..figures import as_decimal, price

        book = self.books[symbol]
        bb, ba = book.best_bid(), book.best_ask()
        market = self.markets.get(symbol)
        # prices as strings at the market's precision (a float's 65105.729999999996 is no price)
        out: dict[str, Any] = {"symbol": symbol, "bid": price(bb[0], market) if bb else None,
                               "ask": price(ba[0], market) if ba else None}
        if bb and ba:
            b, a = as_decimal(bb[0]), as_decimal(ba[0])
            assert b is not None and a is not None
            out["mid"] = f"{((b + a) / 2).normalize():f}"
            out["spread"] = price(a - b, market)
        if self.feed is not None:
            st = self.feed.stats.get("book", symbol)
            tr = self.feed.stats.get("trades", symbol)
            out.update(state=st.state.value, book_msgs=st.messages, trades=tr.messages, resyncs=st.resyncs,
                       latency_ms=None if st.latency_ms is None else round(st.latency_ms, 1))
            # Every stream's state and count, so an operator (or benchmarks/soak.py) sees a dead tape too.
            out["streams"] = {stream: [s.state.value, s.messages] for (stream, sym), s in self.feed.stats.streams.items()
                              if sym == symbol}
        return out
