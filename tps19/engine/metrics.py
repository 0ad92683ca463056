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
    """Counters fed by the engine's bus, gauges read from the engine when scraped."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.book_messages = Counter("tps19_book_messages", "Order book updates published, per symbol",
                                     ["symbol"], registry=r)
        self.feed_latency = Histogram("tps19_feed_latency_seconds",
                                      "Local receive time minus the exchange timestamp of a book update",
                                      ["symbol"], buckets=LATENCY_BUCKETS, registry=r)
        self.resyncs = Counter("tps19_resyncs", "Stream resyncs (fresh snapshot after a gap or a crossed book)",
                               ["stream", "symbol"], registry=r)
        self.orders = Counter("tps19_orders", "Order state changes, by the state reached", ["state"], registry=r)
        self.fills = Counter("tps19_fills", "Fills booked", ["symbol", "side"], registry=r)
        self.rejections = Counter("tps19_rejections", "Orders rejected, by reason", ["reason"], registry=r)
        r.register(_StateCollector(engine))
        self._last_ts: dict[str, int] = {}

    def attach(self) -> None:
        """Start counting: synchronous bus callbacks, cheap enough to run on every publish."""
        bus = self.engine.bus
        bus.on(BookEvent, self._on_book)
        bus.on(ConnectionEvent, self._on_connection)
        bus.on(OrderUpdate, self._on_order)
        bus.on(FillEvent, self._on_fill)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def _on_book(self, e: BookEvent) -> None:
        self.book_messages.labels(e.symbol).inc()
        # only a timestamp that moved says how late the data is (the feed's own rule)
        if e.ts and e.ts != self._last_ts.get(e.symbol):
            self._last_ts[e.symbol] = e.ts
            self.feed_latency.labels(e.symbol).observe(max(0.0, time.time() - e.ts / 1000))

    def _on_connection(self, e: ConnectionEvent) -> None:
        if e.state == ConnState.RESYNC:
            self.resyncs.labels(e.stream, e.symbol).inc()

    def _on_order(self, e: OrderUpdate) -> None:
        if e.status == e.previous_status:
            return
        self.orders.labels(e.status).inc()
        if e.status == "rejected":
            self.rejections.labels(rejection_kind(e.reason)).inc()

    def _on_fill(self, e: FillEvent) -> None:
        self.fills.labels(e.symbol, e.side).inc()


class _StateCollector(Collector):
    """Gauges of the engine's state now, read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Any]:
        return []  # the families depend on what is running: collected fresh on every scrape

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        engine = self.engine
        stale = GaugeMetricFamily("tps19_stale_streams", "Streams not fresh now (1 each)", labels=["stream", "symbol"])
        feed = engine.feed
        if feed is not None:
            for stream, symbol in feed.stale_streams():
                stale.add_metric([stream, symbol], 1)
        yield stale
        yield GaugeMetricFamily("tps19_stale_streams_count", "Number of streams not fresh now",
                                value=len(feed.stale_streams()) if feed is not None else 0)
        yield GaugeMetricFamily("tps19_bus_dropped", "Events dropped by full event-bus subscriber queues (total)",
                                value=engine.bus.dropped())
        yield GaugeMetricFamily("tps19_bus_published", "Events published on the engine's bus (total)",
                                value=engine.bus.published)
        # 1 while the storage watch holds every order (lock lost, database file deleted or replaced):
        # the alert a pager would page on, beside /healthz's reason
        yield GaugeMetricFamily("tps19_storage_halt", "1 while orders are halted because the engine's database or "
                                "its lock is lost", value=float(engine.storage_problem is not None))
        notifier = engine.notifier
        if notifier is not None:
            sent = CounterMetricFamily("tps19_notifications", "Notifications by event class and outcome (sent, failed, "
                                       "retried, deduped, rate_limited, dropped)", labels=["class", "outcome"])
            for (cls, outcome), n in sorted(notifier.counts.items()):
                sent.add_metric([cls, outcome], n)
            yield sent
        trading = engine.trading
        if trading is None:
            return
        mode = [trading.mode]
        equity, _unpriced = trading.portfolio.equity()
        yield _gauge("tps19_equity", "Equity in the valuation currency (priced holdings)", mode, float(equity))
        pnl = trading.broker.risk.pnl_today()
        if pnl is not None:
            yield _gauge("tps19_pnl_today", "Net P&L since the UTC day's start (the daily loss limit's figure)",
                         mode, float(pnl))
        yield _gauge("tps19_kill_switch", "1 while the kill switch is engaged", mode, float(trading.broker.killed))
        open_orders = GaugeMetricFamily("tps19_open_orders", "Working orders now", labels=["mode", "symbol"])
        counts: dict[str, int] = {}
        for o in trading.broker.open_orders():
            counts[o.symbol] = counts.get(o.symbol, 0) + 1
        for symbol, n in sorted(counts.items()):
            open_orders.add_metric([trading.mode, symbol], n)
        yield open_orders


def _gauge(name: str, doc: str, labels: list[str], value: float) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=["mode"])
    g.add_metric(labels, value)
    return g
