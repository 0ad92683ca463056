"""Risk limits changed while trading (the desk's limits screen): validated like the settings,
applied to the running risk stage and breakers at once, stored in ``risk_limit_changes`` and
logged. The newest stored value of a limit is in force after a restart too (over the setting).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from ...config import RiskSettings
from ..events import LogEvent, now_ms

log = logging.getLogger(__name__)

EDITABLE = ("max_order_notional", "max_position_notional", "max_gross_exposure", "daily_loss_limit",
            "max_drawdown_pct", "price_band_pct", "max_daily_orders", "max_orders_per_minute", "max_open_orders")


class LimitError(ValueError):
    """A limit change that is refused, as one line naming the limit (``limit``: its name, if one)."""

    def __init__(self, message: str, limit: str | None = None) -> None:
        super().__init__(message)
        self.limit = limit


def validated(current: RiskSettings, changes: dict[str, str]) -> RiskSettings:
    """``current`` with ``changes`` (name -> typed text), checked by the settings' own rules."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise LimitError(f"{unknown[0]} is not a limit that can be changed here")
    values = current.model_dump() | {k: v.strip() for k, v in changes.items()}
    try:
        return RiskSettings(**values)
    except ValidationError as err:
        e = err.errors()[0]
        name = ".".join(str(p) for p in e.get("loc", ())) or "limits"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        raise LimitError(f"invalid limit {name} (TPS19_RISK__{name.upper()}): {msg}", name) from None


def _apply(stack: Any, new: RiskSettings) -> None:
    stack.broker.risk.settings = new
    if getattr(stack, "breakers", None) is not None:
        stack.breakers.settings = new


async def change_limits(stack: Any, changes: dict[str, str], *, source: str = "desk") -> list[tuple[str, str, str]]:
    """Apply, store and log the changed limits; returns (name, old, new) of those that changed.
    Raises LimitError (nothing applied) when a value is refused."""
    from ..storage.models import RiskLimitChange

    old = stack.broker.risk.settings
    new = validated(old, changes)
    diff = [(k, str(getattr(old, k)), str(getattr(new, k))) for k in EDITABLE if getattr(old, k) != getattr(new, k)]
    if not diff:
        return []
    store = stack.store
    async with store.db.session() as s, s.begin():  # stored first: a limit in force is a limit on record
        for k, a, b in diff:
            s.add(RiskLimitChange(ts=now_ms(), mode=store.mode, exchange=store.exchange, name=k, old=a, new=b,
                                  source=source))
    _apply(stack, new)
    for k, a, b in diff:
        log.warning("risk limit %s changed from %s to %s (%s)", k, a, b, source)
        bus = getattr(stack.portfolio, "bus", None)
        if bus is not None:
            bus.publish(LogEvent("warning", "risk limit changed", {"limit": k, "old": a, "new": b, "source": source}))
    return diff


async def restore_limits(stack: Any) -> dict[str, str]:
    """Put the newest stored value of every changed limit in force; returns them."""
    from sqlmodel import col, select

    from ..storage.models import RiskLimitChange

    store = stack.store
    q = (select(RiskLimitChange).where(RiskLimitChange.mode == store.mode, RiskLimitChange.exchange == store.exchange)
         .order_by(col(RiskLimitChange.ts), col(RiskLimitChange.id)))
    async with store.db.session() as s:
        rows = (await s.execute(q)).scalars().all()
    latest = {r.name: r.new for r in rows if r.name in EDITABLE}
    if latest:
        try:
            _apply(stack, validated(stack.broker.risk.settings, latest))
        except LimitError as err:  # a stored value the settings no longer accept: the settings stand
            log.warning("stored risk limits not restored: %s", err)
            return {}
    return latest
