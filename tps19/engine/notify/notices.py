"""Engine events as notification texts: which event class (a URL's tag), which dedupe key, what
a trader reads on the phone. Pure: the notifier (sender.py) decides when and whether to send."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ...figures import fee as fee_text
from ..events import ConnectionEvent, ConnState, LogEvent, StorageAlert, now_ms
from ..trading.events import FillEvent, KillSwitchEvent, OrderUpdate, TradingIssue

DIVERGENCE_ALERT = "live fills diverge from the book"  # recording/watch.py's warning
MODEL_LIFECYCLE = "model lifecycle: "  # ml/lifecycle.py's verdicts and failed retrains


@dataclass(frozen=True)
class Notice:
    cls: str  # an event class (targets.CLASSES)
    key: str  # the same key within the dedupe window is sent once
    title: str
    body: str
    ts: int = field(default_factory=now_ms)


def _num(d: Decimal | None) -> str:
    return "?" if d is None else f"{d.normalize():f}"


def notices_for(e: Any, mode: str, triggered: set[str], venue: str = "") -> list[Notice]:
    """The notices one bus event makes (``triggered``: client ids whose trigger was already told);
    titles name the mode and the venue (one process may run several)."""
    tag = f"{mode.upper()} {venue}".strip()
    if isinstance(e, FillEvent):
        return [Notice("fills", f"fill:{e.fill_id}", f"TPS19 {tag} fill {e.symbol}",
                       f"{e.side} {_num(e.amount)} {e.symbol} @ {_num(e.price)} (fee {fee_text(e.fee)} "
                       f"{e.fee_currency or ''}, order {e.client_order_id})")]
    if isinstance(e, OrderUpdate):
        return _order_notices(e, tag, triggered)
    if isinstance(e, KillSwitchEvent):
        if e.engaged:
            what = "circuit breaker tripped" if "breaker" in e.detail else "kill switch engaged"
            return [Notice("risk", f"kill:{e.detail}", f"TPS19 {tag}: {what}",
                           f"{e.detail or what}; {e.cancelled} orders cancelled"
                           + (f", {e.failed} could not be cancelled" if e.failed else ""))]
        return [Notice("risk", "kill:released", f"TPS19 {tag}: trading released", "the kill switch was released")]
    if isinstance(e, StorageAlert):
        if e.halted:
            return [Notice("storage", f"storage:{e.reason}", f"TPS19 {tag}: trading HALTED", e.reason)]
        return [Notice("storage", "storage:resumed", f"TPS19 {tag}: trading resumes", e.reason)]
    if isinstance(e, LogEvent) and e.message.startswith(DIVERGENCE_ALERT):
        f = e.fields
        return [Notice("risk", "divergence", f"TPS19 {tag}: live fills diverge from the book",
                       f"unexplained {f.get('unexplained_bp')} bp of taker notional over {f.get('orders')} orders "
                       f"(alert at {f.get('threshold_bp')} bp): see `tps19 divergence` on the recording")]
    if isinstance(e, LogEvent) and e.message.startswith(MODEL_LIFECYCLE):
        what = e.message.removeprefix(MODEL_LIFECYCLE)
        f = e.fields
        detail = ", ".join(f"{k} {f[k]}" for k in ("champion", "challenger", "pairs", "p_value", "alpha", "error")
                           if k in f)
        return [Notice("models", f"models:{what[:40]}:{f.get('challenger', '')}", f"TPS19 {tag}: {what.split(':')[0]}",
                       what + (f" ({detail})" if detail else ""))]
    if isinstance(e, LogEvent) and e.level == "error" and "database" in e.message:
        if e.message.startswith("trading halted"):
            return []  # the StorageAlert says it
        return [Notice("storage", f"dberror:{e.message[:80]}", f"TPS19 {tag}: database error", e.message)]
    if isinstance(e, TradingIssue) and e.kind in ("db", "database"):
        return [Notice("storage", f"dberror:{e.message[:80]}", f"TPS19 {tag}: database error", e.message)]
    if isinstance(e, ConnectionEvent) and e.state == ConnState.RECONNECTING:
        return [Notice("venue", f"venue:{e.stream}", f"TPS19 {tag}: venue connection lost",
                       f"stream {e.stream} {e.symbol}: reconnecting" + (f" ({e.detail})" if e.detail else ""))]
    return []


def _order_notices(e: OrderUpdate, tag: str, triggered: set[str]) -> list[Notice]:
    out = []
    what = f"{e.side} {_num(e.amount)} {e.symbol} {e.type} (order {e.client_order_id})"
    if e.trigger_state == "triggered" and e.client_order_id not in triggered:
        triggered.add(e.client_order_id)
        out.append(Notice("protective", f"trigger:{e.client_order_id}", f"TPS19 {tag}: {e.type} triggered",
                          f"{what} triggered at {_num(e.trigger_price)}"))
    if e.status == e.previous_status:
        return out
    if e.status == "rejected":
        reason = (e.reason or "").removeprefix("not sent: ")
        out.append(Notice("rejections", f"rejected:{e.symbol}:{reason[:60]}", f"TPS19 {tag}: order rejected",
                          f"{what}: {reason}"))
    elif e.status == "unknown":
        out.append(Notice("unknown", f"unknown:{e.client_order_id}", f"TPS19 {tag}: order in UNKNOWN state",
                          f"{what}: {e.reason or 'no answer from the venue'}; it is being looked up"))
    elif e.previous_status == "unknown":
        out.append(Notice("unknown", f"settled:{e.client_order_id}", f"TPS19 {tag}: unknown order settled",
                          f"{what}: {e.status}" + (f", filled {_num(e.filled)}" if e.filled else "")))
    return out
