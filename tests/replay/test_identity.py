"""A paper session recorded with --record, backtested with --replay: the same orders and fills;
and the divergence ledger on it (zero unexplained) and on planted differences."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from tests.replay.session import Session, record_session
from tps19.engine.recording.divergence import divergence, ledger, orders_of
from tps19.engine.recording.format import EXECUTION, FILL, ORDER, VIEW_TRADES
from tps19.engine.recording.reader import inspect, read_rows
from tps19.engine.recording.replayer import ReplayOptions, replay_backtest
from tps19.engine.trading.events import OrderUpdate

pytestmark = pytest.mark.slow
EPS = Decimal("1e-9")  # quote currency: Decimal division leaves ~1e-24 of rounding in a split


def _zero(x: Decimal) -> bool:
    return abs(x) < EPS


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Session:
    return record_session(tmp_path_factory.mktemp("session"))


def _fills(fills) -> list[tuple]:
    return [(f.symbol, f.side, f.price, f.amount, f.fee, f.liquidity) for f in fills]


def _orders(updates) -> list[list[tuple]]:
    """Each order's updates, in placement order: (symbol, side, type, amount, price, status, filled,
    average price, fee) after every change."""
    by: dict[str, list[tuple]] = {}
    for u in updates:
        by.setdefault(u.client_order_id, []).append(
            (u.symbol, u.side, u.type, u.amount, u.price, u.status, u.filled, u.avg_price, u.fee))
    return list(by.values())


def _replay(session: Session, **kw):
    return asyncio.run(replay_backtest(session.root, session.settings, ReplayOptions(**kw)))


def test_paper_session_replayed_gives_the_same_orders_and_fills(session):
    info = inspect(session.root)
    assert info.by_kind.get("delta", 0) > 50 and info.by_kind.get("trade", 0) > 5
    assert info.by_kind.get("fill") == len(session.fills)
    # the resting limit order was judged where the paper broker judged it (its queue coalesces books)
    assert info.by_kind.get("broker.book", 0) + info.by_kind.get("broker.trades", 0) > 0
    # the recording ends between two of the broker's actions: every execution it holds comes with
    # the order changes it committed (a cut between them made the replay trade an extra order)
    executed = {json.loads(r[12])["client_order_id"] for r in read_rows(session.root, kinds=[EXECUTION])}
    changed = {json.loads(r[12])["client_order_id"] for r in read_rows(session.root, kinds=[ORDER])}
    assert executed <= changed, executed - changed
    result = _replay(session)
    assert result.timing == "recorded"
    assert _fills(result.fills) == _fills(session.fills)
    live, replayed = _orders(session.updates), _orders(result.updates)
    assert len(replayed) == len(live)
    for a, b in zip(live, replayed):
        # the same changes; the recording may end between two of an order's changes (an expiry
        # committed after the engine began to stop), the replay then has that one more
        assert b[: len(a)] == a and len(b) - len(a) <= 1
    # the engine ran on the recording's clock: each fill is stamped with the receive time of the
    # event that caused it — inside the recording's span (a replay on the wall clock would stamp it
    # after the recording ended), never after the live fill was committed. No bound on how long the
    # live commit took: it passed 1 s once with both cores busy.
    assert info.first_ns is not None and info.last_ns is not None
    first_ms, last_ms = info.first_ns // 1_000_000, -(-info.last_ns // 1_000_000)
    assert all(first_ms <= b.ts <= last_ms and b.ts <= a.ts for a, b in zip(session.fills, result.fills))
    assert result.book_frames > 50 and result.books_published > 10


def test_a_paper_session_has_no_unexplained_divergence(session):
    report = asyncio.run(divergence(session.root, session.settings))
    assert report.mode == "paper" and report.replay_matches
    led = report.ledger
    assert report.session_orders == len({f.client_order_id for f in session.fills} | {u.client_order_id for u in session.updates})
    assert _zero(led.causes["unexplained"])
    assert _zero(sum(led.causes.values()) - led.gap)  # every unit of the gap has a cause
    # the bar backtest of the same bars beside it, with its own gap
    bars = report.bar_backtest
    assert bars is not None and bars.bars > 3 and bars.gap == led.subject_pnl - bars.pnl
    json.dumps(report.as_dict())


def _ledger(session: Session, ref_kw: dict, sub_kw: dict):
    ref, sub = _replay(session, **ref_kw), _replay(session, **sub_kw)
    return ledger(orders_of(ref.updates, ref.fills, ref.books_at), orders_of(sub.updates, sub.fills, sub.books_at),
                  ref.marks), ref, sub


def test_planted_latency_is_attributed_to_latency(session):
    led, ref, sub = _ledger(session, {"timing": "ideal"}, {"timing": "ideal", "latency_ms": 100})
    assert [f.side for f in ref.fills if f.client_order_id.startswith("s19-")]
    assert not _zero(led.gap)
    assert not _zero(led.causes["latency"])
    for cause in ("fees", "decision_timing", "slippage", "unexplained"):
        assert _zero(led.causes[cause]), (cause, led.as_dict())


def test_planted_fee_tier_is_attributed_to_fees(session):
    led, _, _ = _ledger(session, {"timing": "recorded"}, {"timing": "recorded", "taker": Decimal("0.002"),
                                                          "maker": Decimal("0.001")})
    assert led.gap < 0
    assert _zero(led.causes["fees"] - led.gap)
    assert all(_zero(v) for c, v in led.causes.items() if c != "fees"), led.as_dict()


def _crafted(root, markets, *, with_limit: bool = True) -> dict:
    """A recorded paper session written row by row: a book that never reaches 64,000, one
    resting limit buy at 64,000 placed by hand, and one print at 63,990 that goes through it."""
    import itertools

    from tps19.engine.recording.format import EXECUTION, META, ORDER, VIEW_BOOK, VIEW_TRADES
    from tps19.engine.recording.tap import Recorder
    from tps19.engine.recording.writer import WriterSettings

    t = itertools.count(1_800_000_000_000_000_000, 1_000_000)
    rec = Recorder(root, "sim", "sim", WriterSettings(batch_rows=1000), clock_ns=lambda: next(t)).start()
    rec.set_markets(markets)
    rec.meta({"mode": "paper", "exchange_id": "sim", "symbols": ["BTC/USDT"], "markets": markets,
              "balances": {"USDT": "100000", "BTC": "1"}, "timeframe": "1m", "book_depth": 50})

    def book(u: int, bid: str, ask: str) -> None:
        rec.frame(json.dumps({"id": -1, "method": "subscribe", "code": 0, "result": {
            "instrument_name": "BTC_USDT", "subscription": "book.BTC_USDT.50", "channel": "book", "depth": 50,
            "data": [{"bids": [[bid, "1.5", "1"]], "asks": [[ask, "2", "1"]], "u": u, "t": 1_800_000_000_000 + u}]}}))
        rec.event(VIEW_BOOK, "BTC/USDT", "", seq=u)

    def prints(ids_prices: list[tuple[str, str]]) -> None:
        rec.frame(json.dumps({"id": -1, "method": "subscribe", "code": 0, "result": {
            "instrument_name": "BTC_USDT", "subscription": "trade.BTC_USDT", "channel": "trade",
            "data": [{"d": i, "t": 1_800_000_000_500, "p": p, "q": "0.5", "s": "SELL", "i": "BTC_USDT"}
                     for i, p in ids_prices]}}))
        rec.event(VIEW_TRADES, "BTC/USDT", [i for i, _ in ids_prices])

    book(1, "64010", "64020")
    if with_limit:
        cid = "t19-limit"
        rec.event(EXECUTION, "BTC/USDT", {"client_order_id": cid, "symbol": "BTC/USDT", "book_seq": 1, "book_ts": None})
        rec.event(ORDER, "BTC/USDT", {"client_order_id": cid, "symbol": "BTC/USDT", "side": "buy", "type": "limit",
                                      "amount": "0.2", "price": "64000", "status": "open"})
    book(2, "64005", "64015")
    prints([("p-1", "63990")])  # through the resting buy: it fills
    book(3, "64008", "64018")
    rec.close()
    return markets


def test_a_dropped_print_is_attributed_to_the_fill_it_caused(session, tmp_path):
    from tps19.engine.recording.replayer import read_meta

    root = tmp_path / "crafted"
    _crafted(root, read_meta(session.root)["markets"])
    settings = session.settings

    def run(**kw):
        return asyncio.run(replay_backtest(root, settings, ReplayOptions(**kw)))

    ref, sub = run(), run(drop_prints=frozenset({"p-1"}))
    assert _fills(ref.fills) == [("BTC/USDT", "buy", Decimal("64000"), Decimal("0.2"), Decimal("5.12"), "maker")]
    assert sub.fills == []  # without the print nothing went through the order
    led = ledger(orders_of(ref.updates, ref.fills, ref.books_at), orders_of(sub.updates, sub.fills, sub.books_at),
                 ref.marks)
    # the missed maker fill, valued at the final mark (64,013) net of its fee
    assert led.gap == -(Decimal("0.2") * (Decimal("64013") - Decimal("64000")) - Decimal("5.12"))
    assert led.causes["queue"] == led.gap
    assert all(_zero(v) for c, v in led.causes.items() if c != "queue"), led.as_dict()
