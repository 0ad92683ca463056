"""The notifier: engine events to every configured URL, from a background task.

Trading never waits on it: events are read from the bus's own queue, each URL's send runs in its
own task (apprise, with a timeout), a failed send is retried with backoff (1 s, 2 s, 4 s ... 60 s,
``retries`` times), the same event key is sent once per dedupe window (a flapping feed is one
message), and at most ``max_per_minute`` messages go out a minute (the rest are counted). A
stream stale longer than ``stale_after_s`` is told, and its recovery; a daily summary goes at the
set time. Counters for /metrics are in ``counts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from ..events import ConnectionEvent, ConnState, LogEvent, StorageAlert
from ..trading.events import FillEvent, KillSwitchEvent, OrderUpdate, TradingIssue
from .notices import Notice, notices_for
from .targets import Target

if TYPE_CHECKING:
    from ...config import NotifySettings


class Engine(Protocol):
    """What the notifier reads of the engine (its mode, bus and trading stack)."""

    mode: str
    bus: Any
    trading: Any
    settings: Any

log = logging.getLogger("tps19.notify")

SEND_TIMEOUT_S = 15.0
MAX_IN_FLIGHT = 200
EVENTS = (FillEvent, OrderUpdate, KillSwitchEvent, StorageAlert, LogEvent, TradingIssue, ConnectionEvent)


class Notifier:
    def __init__(self, engine: Engine, targets: list[Target], settings: NotifySettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.targets = targets
        self.settings = settings
        self.clock = clock
        # (class, outcome) -> count; outcome: sent, failed, retried, deduped, rate_limited, dropped
        self.counts: Counter[tuple[str, str]] = Counter()
        self._last_sent: dict[str, float] = {}
        self._minute: deque[float] = deque()
        self._triggered: set[str] = set()
        self._stale: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._stale_told: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: list[asyncio.Task[Any]] = []
        self._sub: Any = None

    @property
    def venue(self) -> str:
        settings = getattr(self.engine, "settings", None)
        return settings.exchange.id if settings is not None else ""

    @property
    def tag(self) -> str:
        """The mode and the venue, as every title names them."""
        return f"{self.engine.mode.upper()} {self.venue}".strip()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._sub = self.engine.bus.subscribe(*EVENTS, coalesce=None, maxsize=10_000)
        self._main = [asyncio.create_task(self._pump(), name="notify:pump")]
        if self.settings.daily_summary_at != "off":
            self._main.append(asyncio.create_task(self._daily(), name="notify:daily"))

    async def stop(self, flush_s: float = 2.0) -> None:
        """Stop reading events; sends under way get ``flush_s`` to finish (a stop is not held up)."""
        for t in self._main:
            t.cancel()
        for t in self._main:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for h in self._stale.values():
            h.cancel()
        if self._sub is not None:
            self._sub.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=flush_s)
            for t in pending:
                t.cancel()
                self.counts[("any", "dropped")] += 1

    # -- events --------------------------------------------------------------------------
    async def _pump(self) -> None:
        while True:
            for e in await self._sub.wait():
                try:
                    self.handle(e)
                except Exception as err:  # a notice that cannot be built must not end the notifier
                    log.warning("notify: event %s not turned into a notice: %s", type(e).__name__, err)

    def handle(self, e: Any) -> None:
        if isinstance(e, ConnectionEvent):
            self._stream(e)
        for notice in notices_for(e, self.engine.mode, self._triggered, self.venue):
            self.submit(notice)

    def _stream(self, e: ConnectionEvent) -> None:
        """A stream stale for stale_after_s is told once; its recovery after that too."""
        key = (e.stream, e.symbol)
        if e.state == ConnState.STALE:
            if key not in self._stale and key not in self._stale_told:
                since = self.clock()
                self._stale[key] = asyncio.get_running_loop().call_later(
                    self.settings.stale_after_s, self._stale_for_long, key, since)
        elif e.state == ConnState.CONNECTED:
            handle = self._stale.pop(key, None)
            if handle is not None:
                handle.cancel()
            told = self._stale_told.pop(key, None)
            if told is not None:
                self.submit(Notice("feed", f"fresh:{key}", f"TPS19 {self.tag}: stream recovered",
                                   f"stream {e.stream} {e.symbol} is live again after {self.clock() - told:.1f}s stale"))

    def _stale_for_long(self, key: tuple[str, str], since: float) -> None:
        self._stale.pop(key, None)
        self._stale_told[key] = since
        self.submit(Notice("feed", f"stale:{key}", f"TPS19 {self.tag}: stream stale",
                           f"stream {key[0]} {key[1]} has been stale for {self.clock() - since:.1f}s"))

    # -- sending -----------------------------------------------------------------------
    def submit(self, notice: Notice) -> bool:
        """Queue ``notice`` for every URL that wants its class; False when deduped or rate limited."""
        now = self.clock()
        last = self._last_sent.get(notice.key)
        if last is not None and now - last < self.settings.dedupe_window_s:
            self.counts[(notice.cls, "deduped")] += 1
            return False
        while self._minute and now - self._minute[0] > 60.0:
            self._minute.popleft()
        if len(self._minute) >= self.settings.max_per_minute and notice.cls != "test":
            self.counts[(notice.cls, "rate_limited")] += 1
            return False
        self._last_sent[notice.key] = now
        self._minute.append(now)
        for target in self.targets:
            if not target.wants(notice.cls):
                continue
            if len(self._tasks) >= MAX_IN_FLIGHT:
                self.counts[(notice.cls, "dropped")] += 1
                continue
            task = asyncio.get_running_loop().create_task(self._deliver(target, notice))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def _deliver(self, target: Target, notice: Notice) -> None:
        delay = 1.0
        for attempt in range(self.settings.retries + 1):
            ok, why = await send(target, notice.title, notice.body)
            if ok:
                self.counts[(notice.cls, "sent")] += 1
                return
            if attempt < self.settings.retries:
                self.counts[(notice.cls, "retried")] += 1
                await asyncio.sleep(delay)
                delay = min(60.0, delay * 2)
        self.counts[(notice.cls, "failed")] += 1
        log.warning("notify: %s not delivered to %s after %d tries: %s", notice.cls, target.shown,
                    self.settings.retries + 1, why)

    # -- the daily summary -------------------------------------------------------------
    def next_summary(self, now: datetime) -> datetime:
        hh, mm = (int(x) for x in self.settings.daily_summary_at.split(":"))
        local = now.astimezone(ZoneInfo(self.settings.timezone))
        at = local.replace(hour=hh, minute=mm, second=0, microsecond=0)
        return at if at > local else at + timedelta(days=1)

    async def _daily(self) -> None:
        from datetime import UTC

        while True:
            now = datetime.now(UTC)
            at = self.next_summary(now)
            await asyncio.sleep((at - now).total_seconds())
            try:
                self.submit(await self.summary(at))
            except Exception as err:  # a database that cannot answer must not end the daily summaries
                log.warning("notify: daily summary not built: %s", err)

    async def summary(self, at: datetime | None = None) -> Notice:
        """Equity and P&L now; fills and fees booked in the day (24 h of wall time in the summary's zone)
        up to ``at``, read from the database: a restart in between loses none of them."""
        from ...figures import fee

        zone = ZoneInfo(self.settings.timezone)
        end = (at or datetime.now(zone)).astimezone(zone)
        start = end - timedelta(days=1)  # zone-aware: the same wall time yesterday, across a DST change too
        e, mode = self.engine, self.tag
        parts = []
        if e.trading is not None:
            s = e.trading.summary()
            parts.append(f"equity {s.get('equity', '?')}")
            if "pnl_today" in s:
                parts.append(f"P&L today {s['pnl_today']}")
            parts.append(f"realized {s.get('realized_pnl', '?')}, unrealized {s.get('unrealized_pnl', '?')}")
            parts.append(f"open orders {s.get('open_orders', 0)}" + (", KILL SWITCH ENGAGED" if s.get("killed") else ""))
            fills = await e.trading.store.fills_since(int(start.timestamp() * 1000))
            fees: dict[str, Decimal] = {}
            for f in fills:
                if f.fee:
                    fees[f.fee_currency or "?"] = fees.get(f.fee_currency or "?", Decimal(0)) + f.fee
            paid = ", ".join(f"{fee(v, c)} {c}" for c, v in sorted(fees.items())) or "none"
            parts.append(f"fills {len(fills)}, fees {paid} since {start.strftime('%Y-%m-%d %H:%M %Z')}")
        day = end.strftime("%Y-%m-%d %H:%M %Z")
        return Notice("summary", f"summary:{day}", f"TPS19 {mode} daily summary {day}", "; ".join(parts))


async def send(target: Target, title: str, body: str) -> tuple[bool, str]:
    """One message to one URL: (delivered, what the service said)."""
    try:
        result = await target.apprise.async_notify(body=body, title=title, timeout=SEND_TIMEOUT_S)
    except Exception as err:  # apprise's own failure: reported, never raised into the engine
        return False, f"{type(err).__name__}: {err}"
    ok = bool(result) and getattr(result, "failed_count", 0) == 0
    said = []
    for r in getattr(result, "results", ()):
        for line in r.logs() if hasattr(r, "logs") else ():
            said.append(str(line).split(" - ", 2)[-1])
    return ok, "; ".join(said) or ("delivered" if ok else "not delivered")
