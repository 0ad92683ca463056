"""The ``ml`` strategy: a registered model's probability of an up move becomes a long/flat target.

Both paths of the strategy API run the same features (``features.compute_features``) and the
same fitted pipeline: ``generate`` over a whole backtest, ``on_bar`` one closed bar at a time
(``FeatureWindow``). Rule: long when P(up) > ``enter``, flat when it falls below ``exit``.
A backtest refuses bars that overlap the model's training range. ``last_prediction`` is what the
runner stores as an AI decision in paper and live.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..strategies.base import ParamError, PortfolioView, SignalFrame, Strategy
from ..strategies.params import StrategyParams, param
from ..strategies.signals import Signal
from .features import FEATURE_NAMES, LOOKBACK, FeatureWindow, compute_features
from .registry import LoadedModel, ModelRefused, load_model

_threads_limited = False


def format_ms(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


class MLParams(StrategyParams):
    model: str = param(min_length=1, description="registered model id (see `tps19 models`)")
    enter: float = param(0.55, gt=0, lt=1, description="go long when P(up) is above this")
    exit: float = param(0.5, gt=0, lt=1, description="go flat when P(up) is below this")
    db: str | None = param(None, description="database holding the model registry (default: the configured one)")


@dataclass(frozen=True)
class Prediction:
    """One bar's prediction, with what the strategy did about it."""

    model_id: str
    ts: int
    probability: float
    close: float
    horizon: int
    features: dict[str, float]
    action: str = "hold"  # buy | sell | hold
    target: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def predict_rows(loaded: LoadedModel, x: np.ndarray) -> np.ndarray:
    """P(up) for feature rows (one OpenMP thread: a single row is fastest so, and the desk's
    process must not have spinning threads)."""
    global _threads_limited
    if not _threads_limited:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="openmp")
        _threads_limited = True
    return np.asarray(loaded.pipeline.predict_proba(x)[:, 1], dtype=float)


class MLStrategy(Strategy):
    name = "ml"
    description = "A trained model (tps19 train): long when P(up) > enter, flat when P(up) < exit."
    Params = MLParams
    params: MLParams
    reasons = ("model P(up) above enter", "model P(up) below exit")
    uses_database: ClassVar[bool] = True

    def __init__(self, params: Any = None, *, _loaded: LoadedModel | None = None, **kwargs: Any) -> None:
        self._loaded = _loaded
        super().__init__(params, **kwargs)

    def _check(self) -> None:
        p = self.params
        if p.allow_short:
            raise ParamError("bad parameter for strategy 'ml': allow_short is not supported (long/flat on spot)")
        if p.exit > p.enter:
            raise ParamError(f"bad parameter for strategy 'ml': need exit <= enter, got exit {p.exit} > enter {p.enter}")
        if self._loaded is None:
            db = p.db
            if db is None:
                from ...config import load_settings

                target = load_settings().database.target  # the URL of a server stays out of the params
                db = str(target)
            try:
                self._loaded = load_model(db, p.model)
            except ModelRefused as err:
                raise ParamError(str(err)) from None

    @property
    def model(self) -> LoadedModel:
        assert self._loaded is not None
        return self._loaded

    def lookback(self) -> int:
        return LOOKBACK

    def reset(self) -> None:
        super().reset()
        self.window = FeatureWindow()
        self.last_prediction: Prediction | None = None
        self._p = math.nan
        self._vector_p: np.ndarray | None = None

    def clone(self) -> Strategy:
        return MLStrategy(self.params, _loaded=self._loaded)  # one verified load, shared by every symbol

    # --- vectorised path --------------------------------------------------------------

    def check_range(self, ts: np.ndarray) -> None:
        rec = self.model.record
        if len(ts) and int(ts[0]) <= rec.end_ms and int(ts[-1]) >= rec.start_ms:
            raise ParamError(
                f"bars {format_ms(int(ts[0]))} .. {format_ms(int(ts[-1]))} overlap model {rec.id}'s training range "
                f"{format_ms(rec.start_ms)} .. {format_ms(rec.end_ms)}: backtest it on bars outside that range")

    def probabilities(self, data: Any) -> np.ndarray:
        """P(up) for every bar of a frame with ts/open/high/low/close/volume (NaN in warm-up)."""
        cols = {k: np.asarray(data[k], dtype=float) for k in ("open", "high", "low", "close", "volume")}
        x = compute_features(np.asarray(data["ts"], dtype=np.int64), cols["open"], cols["high"], cols["low"],
                             cols["close"], cols["volume"])
        ok = ~np.isnan(x).any(axis=1)
        p = np.full(len(x), np.nan)
        if ok.any():
            p[ok] = predict_rows(self.model, x[ok])
        return p

    def generate(self, data: Any) -> SignalFrame:
        if "ts" not in data:
            raise ParamError("the ml strategy needs each bar's time (a ts column) for its features")
        ts = np.asarray(data["ts"], dtype=np.int64)
        self.check_range(ts)
        self._vector_p = self.probabilities(data)
        return super().generate(data)

    def events(self, open_, high, low, close, volume):  # type: ignore[no-untyped-def]
        p = self._vector_p if self._vector_p is not None else np.full(len(close), np.nan)
        return self._rule(p)

    def _rule(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore"):
            up, down = p > self.params.enter, p < self.params.exit
        ev = np.where(up, 1.0, np.where(down, 0.0, np.nan))
        return ev, np.where(up, 0, 1), np.abs(p - 0.5) * 2.0

    # --- incremental path -------------------------------------------------------------

    def step(self) -> tuple[float, int, float]:
        ev, code, strength = self._rule(np.array([self._p]))
        return float(ev[0]), int(code[0]), float(strength[0]) if not math.isnan(strength[0]) else 0.0

    def on_bar(self, bar: Any, portfolio: PortfolioView | None = None) -> Signal | None:
        row = self.window.update(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)
        self._p = math.nan if row is None else float(predict_rows(self.model, row[None, :])[0])
        signal = super().on_bar(bar, portfolio)
        if row is None:
            self.last_prediction = None
            return signal
        action = "hold" if signal is None else ("buy" if signal.direction > 0 else "sell")
        self.last_prediction = Prediction(
            model_id=self.model.id, ts=int(bar.ts), probability=self._p, close=float(bar.close),
            horizon=self.model.horizon, features={n: round(float(v), 6) for n, v in zip(FEATURE_NAMES, row, strict=True)},
            action=action, target=self.target)
        return signal
