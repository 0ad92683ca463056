"""Notifications through apprise to a local HTTP receiver (apprise's json:// URLs on 127.0.0.1):
every event class from a running paper engine, per-URL event classes, retry with backoff, dedupe
and rate limit, /metrics counters, redaction, `tps19 notify test`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from tests.engine.conftest import settings, sim, sim_settings  # noqa: F401  (a paper engine on the simulated venue)
from tps19.config import NotifySettings

DEADLINE_S = 60.0


class Receiver:
    """A loopback HTTP server that records what apprise's json:// posts, and can fail on demand."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        self.send_response(500)
                        self.end_headers()
                        return
                    receiver.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def titles(self, path: str) -> list[str]:
        with self.lock:
            return [p["title"] for where, p in self.posts if where.startswith("/" + path)]

    def bodies(self, path: str) -> list[str]:
        with self.lock:
            return [p["message"] for where, p in self.posts if where.startswith("/" + path)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


async def _until(check, what: str):
    async with asyncio.timeout(DEADLINE_S):
        while not (got := check()):
            await asyncio.sleep(0.05)
    return got


@pytest.mark.slow
async def test_every_event_class_reaches_the_receiver_from_a_running_engine(sim_settings, receiver):
    from tps19.engine.engine import Engine
    from tps19.engine.events import ConnectionEvent, ConnState, LogEvent
    from tps19.engine.metrics import EngineMetrics
    from tps19.engine.trading.events import OrderUpdate

    notify = NotifySettings(urls=f"{receiver.url('all')}, fills={receiver.url('fills-only')}",
                            stale_after_s=0.3, max_per_minute=100, retries=3, daily_summary_at="off")
    settings = sim_settings.model_copy(update={
        "notify": notify, "symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]})})
    engine = Engine(settings)
    await engine.start()
    try:
        assert engine.trading is not None and engine.notifier is not None
        await _until(lambda: engine.books["BTC/USDT"].best_ask() is not None, "a book")
        broker = engine.trading.broker
        # fills (both URLs), a rejection (the first URL only), the kill switch and its release
        receiver.fail_next = 2  # the first two posts fail: retried with backoff
        order = await broker.place_order("BTC/USDT", "buy", "market", "0.01")
        assert order.status.value == "filled"
        await broker.place_order("BTC/USDT", "buy", "market", "5")  # over the per-order cap
        await broker.kill("test kill")
        broker.release()
        # feed, venue, unknown orders, protective triggers and database errors, as the feed, the
        # live broker, the emulator and the storage code publish them
        bus = engine.bus
        bus.publish(ConnectionEvent("trades", "XRP/USDT", ConnState.STALE))
        await _until(lambda: any("stale" in t for t in receiver.titles("all")), "stale")
        bus.publish(ConnectionEvent("trades", "XRP/USDT", ConnState.CONNECTED))
        for _ in range(2):  # a flapping stream: one message in the dedupe window
            bus.publish(ConnectionEvent("book", "BTC/USDT", ConnState.RECONNECTING, detail="closed by the venue"))
        base = dict(venue_order_id=None, mode="paper", symbol="BTC/USDT", side="sell", amount=Decimal("0.01"),
                    price=None, filled=Decimal(0), avg_price=None, fee=Decimal(0))
        bus.publish(OrderUpdate(client_order_id="t19-u", type="limit", status="unknown", previous_status="new",
                                reason="timeout", **base))
        bus.publish(OrderUpdate(client_order_id="t19-u", type="limit", status="cancelled", previous_status="unknown",
                                **base))
        bus.publish(OrderUpdate(client_order_id="t19-s", type="stop_market", status="open", previous_status="open",
                                trigger_state="triggered", trigger_price=Decimal("49000"), **base))
        bus.publish(LogEvent("error", f"storing bars failed: database {engine.db.name}: store bars failed: disk full"))
        # the daily summary reads the day's fills from the database: a notifier started afresh
        # (a restart) counts the fill booked before it, with its fee in the fee's own currency
        notifier = engine.notifier
        from tps19.engine.notify.sender import Notifier
        from tps19.figures import fee
        booked = await engine.trading.store.fills()  # the market buy, one fill per level it took
        assert booked and {f.fee_currency for f in booked} == {"USDT"}
        assert sum(f.amount for f in booked) == Decimal("0.01") and order.fee > 0
        fresh = await Notifier(engine, [], notify).summary()
        assert f"fills {len(booked)}, fees {fee(order.fee)} USDT since " in fresh.body, fresh.body
        notifier.submit(await notifier.summary())
        # a lost database: the real storage watch
        engine.db.path.unlink()

        wanted = ["fill BTC/USDT", "order rejected", "kill switch engaged", "trading released", "stream stale",
                  "stream recovered", "venue connection lost", "order in UNKNOWN state", "unknown order settled",
                  "stop_market triggered", "database error", "trading HALTED", "daily summary"]
        try:
            await _until(lambda: all(any(w in t for t in receiver.titles("all")) for w in wanted), "every class")
        except TimeoutError:
            missing = [w for w in wanted if not any(w in t for t in receiver.titles("all"))]
            raise AssertionError(f"not received: {missing}; counts {dict(engine.notifier.counts)}") from None
        # the two failed posts may have been the fill's to both URLs: each is retried after its own
        # backoff, so the fills-only copy can still be on its way when "all" has everything
        counts = notifier.counts
        await _until(lambda: receiver.titles("fills-only") and counts[("fills", "sent")] >= 2, "fills to both URLs")
        titles = receiver.titles("all")
        assert sum("venue connection lost" in t for t in titles) == 1
        assert receiver.titles("fills-only") and all("fill" in t for t in receiver.titles("fills-only"))
        assert any(b.startswith("buy ") and " BTC/USDT @ " in b for b in receiver.bodies("all")), receiver.bodies("all")
        assert any("exceeds the per-order cap" in b for b in receiver.bodies("all"))
        # the receiver failed the first two posts (fills, or a rejection sent meanwhile): each retried once
        assert sum(n for (_, outcome), n in counts.items() if outcome == "retried") == 2
        assert counts[("fills", "sent")] >= 2 and not any(o == "failed" for _, o in counts)
        assert counts[("venue", "deduped")] == 1
        scrape = EngineMetrics(engine).render().decode()
        assert 'tps19_notifications_total{class="fills",outcome="sent"}' in scrape
        assert 'tps19_notifications_total{class="venue",outcome="deduped"} 1.0' in scrape
    finally:
        await engine.stop()


def _notifier(**settings):
    from tps19.engine.notify.notices import Notice
    from tps19.engine.notify.sender import Notifier

    clock = SimpleNamespace(now=100.0)
    engine = SimpleNamespace(mode="paper", trading=None)
    n = Notifier(engine, [], NotifySettings(**settings), clock=lambda: clock.now)
    return n, clock, Notice


async def test_dedupe_window_and_rate_limit():
    n, clock, Notice = _notifier(dedupe_window_s=60, max_per_minute=2)
    assert n.submit(Notice("feed", "k", "t", "b"))
    assert not n.submit(Notice("feed", "k", "t", "b"))
    clock.now += 61
    assert n.submit(Notice("feed", "k", "t", "b"))
    assert n.submit(Notice("feed", "k2", "t", "b"))
    assert not n.submit(Notice("feed", "k3", "t", "b"))  # 2 in the last minute already
    assert n.counts[("feed", "deduped")] == 1 and n.counts[("feed", "rate_limited")] == 1


def test_the_daily_summary_time_is_in_the_set_zone():
    from datetime import UTC, datetime

    n, _, _ = _notifier(daily_summary_at="18:30", timezone="Europe/Berlin")
    at = n.next_summary(datetime(2026, 12, 7, 17, 0, tzinfo=UTC))  # 18:00 in Berlin
    assert at.astimezone(UTC) == datetime(2026, 12, 7, 17, 30, tzinfo=UTC)
    assert n.next_summary(datetime(2026, 12, 7, 17, 31, tzinfo=UTC)).astimezone(UTC).day == 8


def test_notify_test_says_what_each_url_answered_and_never_shows_a_secret(receiver, monkeypatch):
    from tps19.cli import app

    closed = Receiver()
    closed.close()
    secret = "S3cretT0kenXYZ"
    monkeypatch.setenv("TPS19_NOTIFY__URLS", f"json://tps19:{secret}@127.0.0.1:{receiver.port}/hook "
                                             f"risk+fills=json://127.0.0.1:{closed.port}/gone")
    r = CliRunner().invoke(app, ["notify", "test"])
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].endswith(": delivered") and "/hook" in lines[0]
    assert "FAILED" in lines[1] and "[fills+risk]" in lines[1] and "error" in lines[1].lower()
    assert secret not in r.output
    assert receiver.titles("hook") == ["TPS19 test"]
    monkeypatch.setenv("TPS19_NOTIFY__URLS", "nosuchscheme://x")
    r = CliRunner().invoke(app, ["notify", "test"])
    assert r.exit_code == 2 and "not a URL apprise can send to" in r.output and "nosuchscheme://***" in r.output


def test_apprise_and_the_api_stack_are_imported_only_where_used():
    code = ("import sys, tps19.engine.engine, tps19.engine.headless, tps19.cli; "
            "print([m for m in ('apprise', 'fastapi', 'uvicorn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def test_headless_logs_scrub_the_notification_urls_secrets():
    from tps19.config import Settings
    from tps19.engine.headless import secrets_of

    s = Settings(notify={"urls": "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/987654321"})
    found = secrets_of(s)
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" in found and "127.0.0.1" not in found


def test_a_fill_notice_shows_the_fee_as_the_desk_and_the_json_lines_do():
    # a phone read "fee 0.39873480936 USDT" where the desk, history and JSON lines read 0.39873481
    from tps19.engine.notify.notices import notices_for
    from tps19.engine.trading.events import FillEvent

    fill = FillEvent("f1", "t19-o1", None, "paper", "BTC/USDT", "buy", Decimal("61306.09"), Decimal("0.01084"),
                     Decimal("0.39873480936"), "USDT", "taker")
    (notice,) = notices_for(fill, "paper", set(), "sim")
    assert notice.body == "buy 0.01084 BTC/USDT @ 61306.09 (fee 0.39873481 USDT, order t19-o1)"
