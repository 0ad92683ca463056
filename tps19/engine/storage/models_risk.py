"""Tables of the risk layer (tps19/engine/risk): every change of a risk limit made in the desk."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class RiskLimitChange(SQLModel, table=True):
    """One limit changed by the trader: the newest row per (mode, exchange, name) is in force,
    also after a restart, over the setting."""

    __tablename__ = "risk_limit_changes"
    id: int | None = Field(default=None, primary_key=True)
    ts: int = Field(index=True)
    mode: str
    exchange: str
    name: str  # a RiskSettings field, e.g. max_order_notional
    old: str
    new: str
    source: str = "desk"
