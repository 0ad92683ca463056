"""Prometheus metrics of a running engine, every name prefixed ``tps19_``.

Two sources, both read-only views of the engine: bus callbacks count what happens as it is
published (book messages and their feed latency, resyncs, order states, fills, rejections), and a
collector reads the current state at scrape time (stale streams, equity, P&L today, kill switch,
event-bus drops). Each ``EngineMetrics`` has its own registry: two engines in one process (tests)
never share counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .events import BookEvent, ConnectionEvent, ConnState
from .trading.events import FillEvent, OrderUpdate

if TYPE_CHECKING:
    from .engine import Engine

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Exchange timestamp -> engine, in seconds: a healthy feed is in the first buckets, a lagging one
# (stale after TPS19_FEED__STALE_AFTER_S) in the last.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# A rejection's reason is free text with amounts in it; a label must come from a small fixed set.
REJECTION_KINDS = (
    ("kill switch", "kill_switch"),
    ("trading halted", "halted"),
    ("per-order cap", "order_notional_cap"),
    ("daily order limit", "daily_order_limit"),
    ("order rate limit", "order_rate_limit"),
    ("price band", "price_band"),
    ("open-order limit", "open_order_limit"),
    ("feed is stale", "stale_feed"),
    ("daily loss limit", "daily_loss_limit"),
    ("gross exposure", "gross_exposure_cap"),
    ("position cap", "position_cap"),
    ("not enough free", "insufficient_balance"),
    ("insufficient", "insufficient_balance"),
    ("takes no price", "invalid_order"),
    ("needs a price", "invalid_order"),
    ("no price", "no_price"),
    ("no reference price", "no_price"),
    ("precision", "order_limits"),
    ("below the", "order_limits"),
    ("above the", "order_limits"),
    ("unknown market", "invalid_order"),
    ("not tradable", "invalid_order"),
    ("side must", "invalid_order"),
    ("order type", "invalid_order"),
    ("could not record", "database"),
    ("never reached the venue", "not_sent"),
)


def rejection_kind(reason: str | None) -> str:
    """A bounded label for a rejection reason (``venue`` when the exchange refused it)."""
    text = (reason or "").lower()
    for needle, kind in REJECTION_KINDS:
        if needle in text:
            return kind
    return "not_sent" if text.startswith("not sent") else "venue"


class EngineMetrics:
    """Counters fed by the engine's bus, gauges read from the engine when scraped.

    ``EngineMetrics(engine)``: one venue, series labelled as they always were.
    ``EngineMetrics.of_venues({"sim": e1, "sim-binance": e2})``: several venues in one registry,
    every series with a ``venue`` label first (the exchange id)."""

    def __init__(self, engine: Engine | None = None, *, venues: dict[str, Engine] | None = None) -> None:
        if (engine is None) == (venues is None):
            raise ValueError("one engine or a dict of venues")
        self.engines: dict[str | None, Engine] = {None: engine} if engine is not None else {}
        self.engines.update(venues or {})
        self.engine = next(iter(self.engines.values()))
        v = ["venue"] if venues is not None else []
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.book_messages = Counter("tps19_book_messages", "Order book updates published, per symbol",
                                     [*v, "symbol"], registry=r)
        self.feed_latency = Histogram("tps19_feed_latency_seconds",
                                      "Local receive time minus the exchange timestamp of a book update",
                                      [*v, "symbol"], buckets=LATENCY_BUCKETS, registry=r)
        self.resyncs = Counter("tps19_resyncs", "Stream resyncs (fresh snapshot after a gap or a crossed book)",
                               [*v, "stream", "symbol"], registry=r)
        self.orders = Counter("tps19_orders", "Order state changes, by the state reached", [*v, "state"], registry=r)
        self.fills = Counter("tps19_fills", "Fills booked", [*v, "symbol", "side"], registry=r)
        self.rejections = Counter("tps19_rejections", "Orders rejected, by reason", [*v, "reason"], registry=r)
        r.register(_StateCollector(self.engines))
        self._last_ts: dict[tuple[str | None, str], int] = {}

    @classmethod
    def of_venues(cls, venues: dict[str, Engine]) -> EngineMetrics:
        return cls(venues=venues)

    def attach(self) -> None:
        """Start counting: synchronous bus callbacks, cheap enough to run on every publish."""
        for venue, engine in self.engines.items():
            bus = engine.bus
            bus.on(BookEvent, partial(self._on_book, venue))
            bus.on(ConnectionEvent, partial(self._on_connection, venue))
            bus.on(OrderUpdate, partial(self._on_order, venue))
            bus.on(FillEvent, partial(self._on_fill, venue))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def _on_book(self, venue: str | None, e: BookEvent) -> None:
        self.book_messages.labels(*_v(venue), e.symbol).inc()
        # only a timestamp that moved says how late the data is (the feed's own rule)
        if e.ts and e.ts != self._last_ts.get((venue, e.symbol)):
            self._last_ts[(venue, e.symbol)] = e.ts
            self.feed_latency.labels(*_v(venue), e.symbol).observe(max(0.0, time.time() - e.ts / 1000))

    def _on_connection(self, venue: str | None, e: ConnectionEvent) -> None:
        if e.state == ConnState.RESYNC:
            self.resyncs.labels(*_v(venue), e.stream, e.symbol).inc()

    def _on_order(self, venue: str | None, e: OrderUpdate) -> None:
        if e.status == e.previous_status:
            return
        self.orders.labels(*_v(venue), e.status).inc()
        if e.status == "rejected":
            self.rejections.labels(*_v(venue), rejection_kind(e.reason)).inc()

    def _on_fill(self, venue: str | None, e: FillEvent) -> None:
        self.fills.labels(*_v(venue), e.symbol, e.side).inc()


def _v(venue: str | None) -> tuple[str, ...]:
    return () if venue is None else (venue,)


class _StateCollector(Collector):
    """Gauges of the engines' state now, read at scrape time (a ``venue`` label with several)."""

    def __init__(self, engines: dict[str | None, Engine]) -> None:
        self.engines = engines

    def describe(self) -> list[Any]:
        return []  # the families depend on what is running: collected fresh on every scrape

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        several = None not in self.engines
        v = ["venue"] if several else []

        def fam(cls: Any, name: str, doc: str, labels: list[str]) -> Any:
            return cls(name, doc, labels=[*v, *labels])

        stale = fam(GaugeMetricFamily, "tps19_stale_streams", "Streams not fresh now (1 each)", ["stream", "symbol"])
        stale_n = fam(GaugeMetricFamily, "tps19_stale_streams_count", "Number of streams not fresh now", [])
        dropped = fam(GaugeMetricFamily, "tps19_bus_dropped", "Events dropped by full event-bus subscriber queues (total)", [])
        published = fam(GaugeMetricFamily, "tps19_bus_published", "Events published on the engine's bus (total)", [])
        # 1 while the storage watch holds every order (lock lost, database file deleted or replaced):
        # the alert a pager would page on, beside /healthz's reason
        storage_halt = fam(GaugeMetricFamily, "tps19_storage_halt", "1 while orders are halted because the engine's "
                           "database or its lock is lost", [])
        sent = fam(CounterMetricFamily, "tps19_notifications", "Notifications by event class and outcome (sent, failed, "
                   "retried, deduped, rate_limited, dropped)", ["class", "outcome"])
        equity = fam(GaugeMetricFamily, "tps19_equity", "Equity in the valuation currency (priced holdings)", ["mode"])
        pnl_today = fam(GaugeMetricFamily, "tps19_pnl_today",
                        "Net P&L since the UTC day's start (the daily loss limit's figure)", ["mode"])
        kill = fam(GaugeMetricFamily, "tps19_kill_switch", "1 while the kill switch is engaged", ["mode"])
        open_orders = fam(GaugeMetricFamily, "tps19_open_orders", "Working orders now", ["mode", "symbol"])
        any_notifier = any_pnl = any_trading = False
        for venue, engine in self.engines.items():
            lv = list(_v(venue))
            feed = engine.feed
            streams = feed.stale_streams() if feed is not None else []
            for stream, symbol in streams:
                stale.add_metric([*lv, stream, symbol], 1)
            stale_n.add_metric(lv, len(streams))
            dropped.add_metric(lv, engine.bus.dropped())
            published.add_metric(lv, engine.bus.published)
            storage_halt.add_metric(lv, float(engine.storage_problem is not None))
            notifier = engine.notifier
            if notifier is not None:
                any_notifier = True
                for (cls, outcome), n in sorted(notifier.counts.items()):
                    sent.add_metric([*lv, cls, outcome], n)
            trading = engine.trading
            if trading is None:
                continue
            any_trading = True
            mode = [*lv, trading.mode]
            eq, _unpriced = trading.portfolio.equity()
            equity.add_metric(mode, float(eq))
            pnl = trading.broker.risk.pnl_today()
            if pnl is not None:
                any_pnl = True
                pnl_today.add_metric(mode, float(pnl))
            kill.add_metric(mode, float(trading.broker.killed))
            counts: dict[str, int] = {}
            for o in trading.broker.open_orders():
                counts[o.symbol] = counts.get(o.symbol, 0) + 1
            for symbol, n in sorted(counts.items()):
                open_orders.add_metric([*mode, symbol], n)
        yield stale
        yield stale_n
        yield dropped
        yield published
        yield storage_halt
        if any_notifier:
            yield sent
        if any_trading:
            yield equity
            if any_pnl:
                yield pnl_today
            yield kill
            yield open_orders
