"""Tables of the ML layer (tps19/engine/ml): the model registry and the outcomes joined to
``ai_decisions`` once a decision's horizon has passed. Analytics: floats, not money."""

from __future__ import annotations

from sqlalchemy import Column
from sqlmodel import JSON, Field, SQLModel


class MLModel(SQLModel, table=True):
    """A trained model: the fitted pipeline is the joblib file ``artifact`` (relative to the
    database's directory), whose sha256 is ``content_hash``."""

    __tablename__ = "ml_models"
    id: str = Field(primary_key=True)
    created_ms: int
    kind: str  # logreg | lasso | hgb | rf (what `--model auto` kept)
    feature_version: str
    features: list = Field(default_factory=list, sa_column=Column(JSON))
    params: dict = Field(default_factory=dict, sa_column=Column(JSON))
    exchange: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    data_source: str | None = None
    start_ms: int
    end_ms: int
    bars: int
    cv: dict = Field(default_factory=dict, sa_column=Column(JSON))
    oos: dict = Field(default_factory=dict, sa_column=Column(JSON))
    libraries: dict = Field(default_factory=dict, sa_column=Column(JSON))
    feature_stats: dict = Field(default_factory=dict, sa_column=Column(JSON))  # PSI reference bins
    content_hash: str
    artifact: str
    # where it came from: {"parent": model id | None, "trigger": "cli" | "schedule" | "drift", the
    # data range and window, the drift figures that triggered it} (None: trained before lineage)
    lineage: dict | None = Field(default=None, sa_column=Column(JSON))


class MLPromotion(SQLModel, table=True):
    """A champion/challenger decision by the promotion rule (engine/ml/promotion.py), with its
    evidence: every promotion and every refusal is a row."""

    __tablename__ = "ml_promotions"
    id: int | None = Field(default=None, primary_key=True)
    created_ms: int
    champion: str = Field(index=True)
    challenger: str = Field(index=True)
    decision: str  # promote | refuse
    applied: bool  # promoted in the running engine (--auto-promote), or only proposed
    p_value: float
    pairs: int
    evidence: dict = Field(default_factory=dict, sa_column=Column(JSON))


class AIDecisionOutcome(SQLModel, table=True):
    """What happened after an ``ai_decisions`` row: the close-to-close return over the model's
    horizon, and whether the predicted direction was right."""

    __tablename__ = "ai_decision_outcomes"
    decision_id: int = Field(primary_key=True, foreign_key="ai_decisions.id")
    resolved_ms: int
    close_then: float
    close_after: float
    outcome_return: float
    up: bool  # the price rose over the horizon
    hit: bool  # predicted direction (probability > 0.5 means up) was right
