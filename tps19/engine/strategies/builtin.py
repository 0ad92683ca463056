"""Built-in strategies. Each has a vectorised ``events`` and an incremental ``step`` that
compute the same floats (see ``indicators``)."""

from __future__ import annotations

import math

import numpy as np
from . import indicators as ind
from .base import ParamError, Strategy
from .params import StrategyParams, param

NAN = math.nan


def _last(d, k: int = 0) -> float:  # type: ignore[no-untyped-def]
    return d[len(d) - 1 - k] if len(d) > k else NAN


# --- sma_cross -------------------------------------------------------------------------------


class SmaCrossParams(StrategyParams):
    fast: int = param(10, ge=1, description="fast SMA length (bars)")
    slow: int = param(20, ge=2, description="slow SMA length (bars)")


class SmaCross(Strategy):
    name = "sma_cross"
    description = "Long when the fast SMA crosses above the slow SMA; flat (or short) when it crosses below."
    Params = SmaCrossParams
    params: SmaCrossParams
    reasons = ("fast SMA crossed above slow SMA", "fast SMA crossed below slow SMA")

    def _check(self) -> None:
        if self.params.fast >= self.params.slow:
            raise ParamError(f"bad parameter for strategy 'sma_cross': fast ({self.params.fast}) must be < slow ({self.params.slow})")

    def lookback(self) -> int:
        return self.params.slow + 1

    def _down(self) -> float:
        return -1.0 if self.params.allow_short else 0.0

    def events(self, open_, high, low, close, volume):  # type: ignore[no-untyped-def]
        p = self.params
        side = ind.compare_means(close, p.fast, p.slow)  # exact: a tie is no cross
        # a cross is a step from -1 to 1 (or back) between two bars: look at the steps only
        step = np.flatnonzero(side[1:] != side[:-1]) + 1
        up = step[(side[step - 1] < 0) & (side[step] > 0)]
        down = step[(side[step - 1] > 0) & (side[step] < 0)]
        n = len(close)
        ev = np.full(n, np.nan)
        ev[up], ev[down] = 1.0, self._down()
        code = np.ones(n, dtype=np.int8)
        code[up] = 0
        strength = np.full(n, np.nan)
        at = np.concatenate((up, down))
        f, s = ind.means_at(close, (p.fast, p.slow), at)
        strength[at] = np.abs(f - s) / s * 100.0
        return ev, code, strength

    def step(self):  # type: ignore[no-untyped-def]
        c = list(self.bars["close"])
        p = self.params
        side = ind.compare_means_last(c, p.fast, p.slow)
        prev = ind.compare_means_last(c[:-1], p.fast, p.slow)
        if not (prev < 0 < side or side < 0 < prev):
            return NAN, -1, 0.0
        f, s = ind.sma_last(c, p.fast), ind.sma_last(c, p.slow)
        if side > 0:
            return 1.0, 0, abs(f - s) / s * 100.0
        return self._down(), 1, abs(f - s) / s * 100.0


# --- rsi_reversion ---------------------------------------------------------------------------


class RsiParams(StrategyParams):
    period: int = param(14, ge=2, description="Wilder RSI length (bars)")
    lower: float = param(30.0, gt=0, lt=100, description="buy when RSI is below this")
    upper: float = param(70.0, gt=0, lt=100, description="sell (short if allowed) when RSI is above this")
    exit: float = param(50.0, gt=0, lt=100, description="close the position when RSI crosses this level")


class RsiReversion(Strategy):
    name = "rsi_reversion"
    description = "Mean reversion on Wilder's RSI: long when oversold, out (or short) when overbought, flat at the exit level."
    Params = RsiParams
    params: RsiParams
    reasons = ("RSI below lower level (oversold)", "RSI above upper level (overbought)", "RSI crossed the exit level")

    def _check(self) -> None:
        p = self.params
        if not p.lower < p.exit < p.upper:
            raise ParamError(f"bad parameter for strategy 'rsi_reversion': need lower < exit < upper, got {p.lower} < {p.exit} < {p.upper}")

    def lookback(self) -> int:
        return 2

    def reset(self) -> None:
        super().reset()
        self.state["rsi"] = ind.WilderRSI(self.params.period)
        self.state["prev"] = NAN

    def events(self, open_, high, low, close, volume):  # type: ignore[no-untyped-def]
        p = self.params
        r = ind.rsi_array(close, p.period)
        rp = ind.shift(r)
        with np.errstate(invalid="ignore"):
            long_ = r < p.lower
            short = r > p.upper
            cross = ((rp < p.exit) & (r >= p.exit)) | ((rp > p.exit) & (r <= p.exit))
        ev = np.where(long_, 1.0, np.where(short, -1.0, np.where(cross, 0.0, np.nan)))
        code = np.where(long_, 0, np.where(short, 1, 2))
        strength = np.abs(r - p.exit) / 50.0
        return ev, code, strength

    def step(self):  # type: ignore[no-untyped-def]
        p = self.params
        r = self.state["rsi"].update(_last(self.bars["close"]))
        rp = self.state["prev"]
        self.state["prev"] = r
        strength = abs(r - p.exit) / 50.0
        if r < p.lower:
            return 1.0, 0, strength
        if r > p.upper:
            return -1.0, 1, strength
        if (rp < p.exit and r >= p.exit) or (rp > p.exit and r <= p.exit):
            return 0.0, 2, strength
        return NAN, -1, 0.0


# --- donchian_breakout -----------------------------------------------------------------------


class DonchianParams(StrategyParams):
    entry: int = param(20, ge=1, description="breakout channel: highest high / lowest low of the previous N bars")
    exit: int = param(10, ge=1, description="exit channel (long only): close below the lowest low of the previous N bars")


class DonchianBreakout(Strategy):
    name = "donchian_breakout"
    description = "Turtle-style breakout: long above the previous N-bar high, flat below the previous M-bar low (stop-and-reverse when short is allowed)."
    Params = DonchianParams
    params: DonchianParams
    reasons = ("close broke above the entry channel high", "close broke below the entry channel low", "close fell below the exit channel low")

    def lookback(self) -> int:
        return max(self.params.entry, self.params.exit) + 1

    def events(self, open_, high, low, close, volume):  # type: ignore[no-untyped-def]
        p = self.params
        hh = ind.shift(ind.rolling_max(high, p.entry))
        ll = ind.shift(ind.rolling_min(low, p.entry))
        lx = ind.shift(ind.rolling_min(low, p.exit))
        with np.errstate(invalid="ignore", divide="ignore"):
            up = close > hh
            if p.allow_short:
                down = close < ll
                ev = np.where(up, 1.0, np.where(down, -1.0, np.nan))
                code = np.where(up, 0, 1)
            else:
                down = close < lx
                ev = np.where(up, 1.0, np.where(down, 0.0, np.nan))
                code = np.where(up, 0, 2)
            ref = ll if p.allow_short else lx
            strength = np.where(up, (close - hh) / hh, (ref - close) / ref) * 100.0
        return ev, code, strength

    def step(self):  # type: ignore[no-untyped-def]
        p = self.params
        h, lo, c = list(self.bars["high"]), list(self.bars["low"]), _last(self.bars["close"])
        hh = max(h[-p.entry - 1 : -1]) if len(h) > p.entry else NAN
        ll = min(lo[-p.entry - 1 : -1]) if len(lo) > p.entry else NAN
        lx = min(lo[-p.exit - 1 : -1]) if len(lo) > p.exit else NAN
        if c > hh:
            return 1.0, 0, (c - hh) / hh * 100.0
        if p.allow_short:
            if c < ll:
                return -1.0, 1, (ll - c) / ll * 100.0
        elif c < lx:
            return 0.0, 2, (lx - c) / lx * 100.0
        return NAN, -1, 0.0


# --- bollinger -------------------------------------------------------------------------------


class BollingerParams(StrategyParams):
    period: int = param(20, ge=2, description="band length (bars)")
    k: float = param(2.0, gt=0, description="band width in population standard deviations")


class Bollinger(Strategy):
    name = "bollinger"
    description = "Band mean reversion: long below the lower band (short above the upper band if allowed), flat when the close crosses the middle band."
    Params = BollingerParams
    params: BollingerParams
    reasons = ("close below the lower band", "close above the upper band", "close crossed the middle band")

    def lookback(self) -> int:
        return self.params.period + 1

    def events(self, open_, high, low, close, volume):  # type: ignore[no-untyped-def]
        p = self.params
        mid, sd = ind.sma_std(close, p.period)
        upper = mid + p.k * sd
        lower = mid - p.k * sd
        cp, mp = ind.shift(close), ind.shift(mid)
        with np.errstate(invalid="ignore", divide="ignore"):
            long_ = close < lower
            short = close > upper
            cross = ((cp < mp) & (close >= mid)) | ((cp > mp) & (close <= mid))
            den = p.k * sd
            strength = np.where(den > 0, np.abs(close - mid) / den / 2.0, 1.0)
        ev = np.where(long_, 1.0, np.where(short, -1.0, np.where(cross, 0.0, np.nan)))
        code = np.where(long_, 0, np.where(short, 1, 2))
        return ev, code, strength

    def step(self):  # type: ignore[no-untyped-def]
        p = self.params
        c = list(self.bars["close"])
        mid, sd = ind.sma_last(c, p.period), ind.std_last(c, p.period)
        mp = ind.sma_last(c[:-1], p.period)
        close, cp = _last(c), _last(c, 1)
        upper = mid + p.k * sd
        lower = mid - p.k * sd
        den = p.k * sd
        strength = abs(close - mid) / den / 2.0 if den > 0 else 1.0
        if close < lower:
            return 1.0, 0, strength
        if close > upper:
            return -1.0, 1, strength
        if (cp < mp and close >= mid) or (cp > mp and close <= mid):
            return 0.0, 2, strength
        return NAN, -1, 0.0
