"""The live divergence alert: fills the book at send time does not explain are said, once."""

from __future__ import annotations

from decimal import Decimal

from tps19.engine.bus import EventBus
from tps19.engine.events import BookEvent, LogEvent
from tps19.engine.recording.watch import DivergenceWatch
from tps19.engine.trading.events import FillEvent, OrderUpdate


def _order(bus: EventBus, cid: str, status: str, prev: str | None, filled: str = "0") -> None:
    bus.publish(OrderUpdate(cid, None, "live", "BTC/USDT", "buy", "market", Decimal("2"), None, Decimal(filled), None,
                            Decimal(0), status, prev))


def _fill(bus: EventBus, cid: str, price: str, amount: str) -> None:
    bus.publish(FillEvent(f"f-{cid}-{price}", cid, None, "live", "BTC/USDT", "buy", Decimal(price), Decimal(amount),
                          Decimal(0), "USDT", "taker"))


def test_fills_the_book_explains_raise_nothing_and_unexplained_ones_alert_once():
    bus = EventBus()
    logs: list[LogEvent] = []
    bus.on(LogEvent, logs.append)
    watch = DivergenceWatch(bus, threshold_bps=5.0).start()
    bus.publish(BookEvent("BTC/USDT", ((99.0, 5.0),), ((100.0, 1.0), (101.0, 5.0)), 1, 1))
    # 2 bought as the book said: 1 at 100, 1 at 101
    _order(bus, "a", "open", None)
    _fill(bus, "a", "100", "1")
    _fill(bus, "a", "101", "1")
    _order(bus, "a", "filled", "open", "2")
    assert watch.unexplained == 0 and watch.orders == 1 and not logs
    # the next buy of 2 against the same book fills at 101.5 on average: 1 quote unit per unit worse
    _order(bus, "b", "open", None)
    _fill(bus, "b", "101.5", "2")
    _order(bus, "b", "filled", "open", "2")
    assert watch.unexplained == Decimal("2")  # 203 paid, the book walk says 201
    assert abs(watch.unexplained_bps - 2 / 404 * 10_000) < 1e-9
    alerts = [e for e in logs if "unexplained" in e.message]
    assert len(alerts) == 1 and alerts[0].level == "warning" and alerts[0].fields["unexplained_bp"] == 49.5
    # said once, not on every fill after
    _order(bus, "c", "open", None)
    _fill(bus, "c", "101.5", "2")
    _order(bus, "c", "filled", "open", "2")
    assert len([e for e in logs if "unexplained" in e.message]) == 1


def test_paper_orders_and_resting_fills_are_not_judged():
    bus = EventBus()
    watch = DivergenceWatch(bus, threshold_bps=5.0).start()
    bus.publish(BookEvent("BTC/USDT", ((99.0, 5.0),), ((100.0, 1.0),), 1, 1))
    bus.publish(OrderUpdate("p", None, "paper", "BTC/USDT", "buy", "market", Decimal("1"), None, Decimal(0), None,
                            Decimal(0), "open", None))
    _order(bus, "m", "open", None)
    bus.publish(FillEvent("f", "m", None, "live", "BTC/USDT", "buy", Decimal("98"), Decimal("1"), Decimal(0), "USDT",
                          "maker"))
    _order(bus, "m", "filled", "open", "1")
    assert watch.orders == 0 and watch.unexplained == 0


def test_the_alert_is_a_notification():
    from tps19.engine.notify.notices import notices_for

    bus = EventBus()
    logs: list[LogEvent] = []
    bus.on(LogEvent, logs.append)
    watch = DivergenceWatch(bus, threshold_bps=1.0).start()
    bus.publish(BookEvent("BTC/USDT", ((99.0, 5.0),), ((100.0, 5.0),), 1, 1))
    _order(bus, "x", "open", None)
    _fill(bus, "x", "100.5", "1")
    _order(bus, "x", "filled", "open", "1")
    assert watch.alerted
    (notice,) = notices_for(logs[-1], "live", set())
    assert notice.cls == "risk" and "49.75 bp" in notice.body and "diverge" in notice.title
