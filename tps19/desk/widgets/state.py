"""What the desk knows, folded from engine bus events.

The app drains its bus subscription on a timer and calls ``DeskState.apply``; the panes read
from here when they redraw. Everything is bounded (deques, latest-per-key dicts), so a busy
market can never grow the UI's memory. No Textual imports here.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from decimal import Decimal
from dataclasses import dataclass, field
from typing import Any

from ...engine.events import (BarEvent, BookEvent, ConnectionEvent, LogEvent, StorageAlert, TickerEvent, Trade,
                              TradeEvent, VenueEvent)

from ...engine.strategies.signals import DecisionEvent, SignalEvent
from ...engine.trading import events as tev

WORKING = ("new", "unknown", "open", "partially_filled")
MAX_TRADES = 300
MAX_BARS = 240
MAX_LOG = 500
MAX_SIGNALS = 200
MAX_FILLS = 200
MAX_EQUITY_POINTS = 2_000


# The engine's portfolio summary (equity, P&L today, balances free/locked), published on every
# mark change; absent from an engine that predates it (the desk then says it is waiting).
PortfolioUpdate: Any = getattr(tev, "PortfolioUpdate", None)


def event_types() -> tuple[type, ...]:
    """Every bus event type the desk listens to."""
    types = (BookEvent, TradeEvent, TickerEvent, BarEvent, ConnectionEvent, LogEvent, tev.OrderUpdate, tev.FillEvent,
             tev.PositionEvent, tev.BalanceDiscrepancy, tev.KillSwitchEvent, tev.TradingIssue, tev.EquitySnapshot,
             SignalEvent, DecisionEvent, VenueEvent, StorageAlert)
    return types + ((PortfolioUpdate,) if PortfolioUpdate is not None else ())


# trading issues that put a line in the risk pane's attention rows (a protection that failed)
ATTENTION_KINDS = frozenset({"stop_unsendable", "oco_both_filled"})


@dataclass
class DeskState:
    symbols: list[str]
    books: dict[str, BookEvent] = field(default_factory=dict)
    tickers: dict[str, TickerEvent] = field(default_factory=dict)
    trades: dict[str, deque[Trade]] = field(default_factory=dict)
    bars: dict[str, OrderedDict[int, BarEvent]] = field(default_factory=dict)
    conn: dict[tuple[str, str], ConnectionEvent] = field(default_factory=dict)
    orders: OrderedDict[str, Any] = field(default_factory=OrderedDict)  # client_order_id -> OrderUpdate
    fills: dict[str, deque[Any]] = field(default_factory=dict)
    positions: dict[str, Any] = field(default_factory=dict)  # symbol -> PositionEvent
    equity: Any = None  # last EquitySnapshot (stored every minute)
    portfolio: Any = None  # last PortfolioUpdate (every mark change)
    peak_net: Any = None  # best net P&L seen since the desk started (drawdown is measured from it)
    equity_points: deque[tuple[int, Any]] = field(default_factory=lambda: deque(maxlen=MAX_EQUITY_POINTS))
    kill: Any = None  # last KillSwitchEvent
    storage: StorageAlert | None = None  # last StorageAlert: orders halted while .halted (lock or file lost)
    venue: VenueEvent | None = None  # the engine's venue, once it has started
    signals: deque[Any] = field(default_factory=lambda: deque(maxlen=MAX_SIGNALS))
    log: deque[LogEvent] = field(default_factory=lambda: deque(maxlen=MAX_LOG))
    new_log: list[LogEvent] = field(default_factory=list)  # since the last redraw
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (severity, message) to notify
    # what needs the trader now: a stop that triggered but could not be sent (the risk pane's first rows)
    attention: deque[str] = field(default_factory=lambda: deque(maxlen=5))

    def __post_init__(self) -> None:
        for s in self.symbols:
            self.trades.setdefault(s, deque(maxlen=MAX_TRADES))
            self.bars.setdefault(s, OrderedDict())
            self.fills.setdefault(s, deque(maxlen=MAX_FILLS))

    # -- folding events ------------------------------------------------------------
    def apply(self, events: list[Any]) -> set[str]:
        """Fold events in; return the names of the panes whose data changed."""
        dirty: set[str] = set()
        for e in events:
            if isinstance(e, BookEvent):
                self.books[e.symbol] = e
                dirty.add("book")
            elif isinstance(e, TradeEvent):
                self.trades.setdefault(e.symbol, deque(maxlen=MAX_TRADES)).extend(e.trades)
                dirty.add("tape")
            elif isinstance(e, TickerEvent):
                self.tickers[e.symbol] = e
                dirty.add("status")
            elif isinstance(e, BarEvent):
                bars = self.bars.setdefault(e.symbol, OrderedDict())
                bars[e.ts] = e
                while len(bars) > MAX_BARS:
                    bars.popitem(last=False)
                dirty.add("chart")
            elif isinstance(e, ConnectionEvent):
                self._connection(e)
                dirty.add("status")
            elif isinstance(e, LogEvent):
                self._add_log(e)
                if e.level == "error":
                    self.alerts.append(("error", e.message))
            elif isinstance(e, tev.OrderUpdate):
                self._order(e)
                dirty.update(("orders", "book", "risk"))
                if e.trigger_state is not None or e.stop_loss_price is not None or e.take_profit_price is not None:
                    dirty.add("chart")  # the chart marks stop and target levels
            elif isinstance(e, tev.FillEvent):
                self.fills.setdefault(e.symbol, deque(maxlen=MAX_FILLS)).append(e)
                dirty.update(("chart", "positions", "tape"))
            elif isinstance(e, tev.PositionEvent):
                self.positions[e.symbol] = e
                dirty.update(("positions", "risk"))
            elif isinstance(e, tev.EquitySnapshot):
                self.equity = e
                dirty.update(("positions", "risk"))
            elif PortfolioUpdate is not None and isinstance(e, PortfolioUpdate):
                self._portfolio(e)
                dirty.update(("balances", "risk", "equity"))
            elif isinstance(e, tev.KillSwitchEvent):
                self.kill = e
                dirty.update(("risk", "status"))
                what = "ENGAGED" if e.engaged else "released"
                msg = f"kill switch {what}" + (f": {e.cancelled} cancelled, {e.failed} failed" if e.engaged else "")
                self.alerts.append(("warning" if e.engaged else "information", msg))
                self._log_local("warning" if e.engaged else "info", msg, detail=e.detail)
            elif isinstance(e, StorageAlert):
                self.storage = e
                dirty.update(("risk", "status"))
                if not e.halted:  # a halt is told by its error log line (an alert already)
                    self.alerts.append(("information", f"trading resumes: {e.reason}"))
            elif isinstance(e, tev.TradingIssue):
                if e.kind in ATTENTION_KINDS:
                    self.attention.append(e.message)
                    dirty.update(("risk", "status"))
                self.alerts.append(("error" if e.kind in ATTENTION_KINDS else "warning", e.message))
                self._log_local("warning", e.message, kind=e.kind, count=e.count)
            elif isinstance(e, tev.BalanceDiscrepancy):
                self._log_local("warning", f"balance discrepancy {e.currency}: venue {e.venue}, expected {e.expected}",
                                detail=e.detail)
            elif isinstance(e, SignalEvent):
                self.signals.append(e)
                dirty.add("signals")
            elif isinstance(e, DecisionEvent) and e.shadow:  # the running model's show as its signals
                self.signals.append(e)
                dirty.add("signals")
            elif isinstance(e, VenueEvent):
                self.venue = e
                dirty.add("status")
        if self.new_log:
            dirty.add("log")
        return dirty

    def _connection(self, e: ConnectionEvent) -> None:
        key = (e.stream, e.symbol)
        prev = self.conn.get(key)
        self.conn[key] = e
        if e.stream == "book" and prev is not None and prev.state != e.state:
            if e.state.value in ("reconnecting", "stale", "stopped"):
                self.alerts.append(("warning", f"{e.symbol} book feed {e.state.value}: {e.detail}".rstrip(": ")))
                self._log_local("warning", f"{e.symbol} book feed {e.state.value}", detail=e.detail)
            elif e.state.value == "connected" and prev.state.value != "connecting":
                self._log_local("info", f"{e.symbol} book feed connected again")

    def _order(self, e: Any) -> None:
        self.orders[e.client_order_id] = e
        self.orders.move_to_end(e.client_order_id)
        self._trim_orders()
        if e.status == "rejected":
            self.alerts.append(("error", f"order rejected: {e.side} {e.amount} {e.symbol}: {e.reason or 'no reason given'}"))
            self._log_local("error", f"rejected: {e.side} {e.amount.normalize():f} {e.symbol}: {e.reason}")
        elif e.trigger_state in ("armed", "triggered") and (e.previous_status is None or e.trigger_state == "triggered"):
            where = "held by TPS19" if e.placement == "emulated" else "at the venue"
            self._log_local("info", f"{e.trigger_state}: {e.side} {e.amount.normalize():f} {e.symbol} {e.type} "
                            f"trigger {_plain(e.trigger_price) if e.trigger_price is not None else 'waits'} ({where})",
                            id=e.client_order_id[-6:])
        elif e.previous_status != e.status:
            if e.price is not None:
                at = f" @ {_plain(e.price)}"
            elif e.trigger_price is not None:  # a stop or take-profit leg: its kind and level, not "market"
                at = f" {e.type} trigger {_plain(e.trigger_price)}"
            else:
                at = " market"
            fill = f" filled {e.filled.normalize():f}" if e.filled else ""
            self._log_local("info", f"{e.status}: {e.side} {e.amount.normalize():f} {e.symbol}{at}{fill}",
                            id=e.client_order_id[-6:])

    def _portfolio(self, e: Any) -> None:
        self.portfolio = e
        self.peak_net = e.net_pnl if self.peak_net is None else max(self.peak_net, e.net_pnl)
        if e.unpriced:
            return  # equity without a holding's value is no chart point (it would read as a jump)
        # one live equity point per second is plenty for a chart whose history is minute snapshots
        if self.equity_points and e.ts // 1000 == self.equity_points[-1][0] // 1000:
            self.equity_points[-1] = (e.ts, e.equity)
        else:
            self.equity_points.append((e.ts, e.equity))

    @property
    def drawdown(self) -> Any:
        """How far net P&L is below the best figure seen since the desk started (None before any)."""
        if self.portfolio is None or self.peak_net is None:
            return None
        return self.peak_net - self.portfolio.net_pnl

    def _trim_orders(self, keep_done: int = 50) -> None:
        done = [k for k, o in self.orders.items() if o.status not in WORKING]
        for k in done[:-keep_done] if len(done) > keep_done else []:
            del self.orders[k]

    def _add_log(self, e: LogEvent) -> None:
        self.log.append(e)
        self.new_log.append(e)
        if len(self.new_log) > MAX_LOG:
            del self.new_log[: len(self.new_log) - MAX_LOG]

    def _log_local(self, level: str, message: str, **fields: Any) -> None:
        self._add_log(LogEvent(level=level, message=message, fields={k: v for k, v in fields.items() if v not in (None, "")}))

    def note(self, level: str, message: str, **fields: Any) -> None:
        """A desk-side log line (the UI's own errors), shown in the log pane."""
        self._log_local(level, message, **fields)

    # -- views ---------------------------------------------------------------------
    def working_orders(self, symbol: str | None = None) -> list[Any]:
        return [o for o in self.orders.values() if o.status in WORKING and (symbol is None or o.symbol == symbol)]


def _plain(value: Decimal) -> str:
    """A price as a trader writes it: 64000, never 6.4E+4 (Decimal.normalize alone prints exponents)."""
    return f"{value.normalize():f}"
