"""Number and time formatting shared by the desk's panes (no Textual here, but only the UI uses it)."""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import Any


def decimals_for_step(step: Any, default: int = 2) -> int:
    """Decimal places implied by a tick/step size (0.01 -> 2, 1 -> 0, 0.5 -> 1)."""
    try:
        d = Decimal(str(step)).normalize()
    except Exception:
        return default
    if d <= 0:
        return default
    return max(0, -d.as_tuple().exponent)  # type: ignore[operator]


def price_decimals(market: dict | None, default: int = 2) -> int:
    prec = (market or {}).get("precision") or {}
    return decimals_for_step(prec["price"], default) if prec.get("price") is not None else default


def amount_decimals(market: dict | None, default: int = 4) -> int:
    prec = (market or {}).get("precision") or {}
    return decimals_for_step(prec["amount"], default) if prec.get("amount") is not None else default


def fnum(x: Any, places: int = 2, *, sign: bool = False) -> str:
    if x is None:
        return "--"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return "--"
    return f"{v:+,.{places}f}" if sign else f"{v:,.{places}f}"


def hms(ts_ms: int | float | None) -> str:
    if not ts_ms:
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.gmtime(ts_ms / 1000))

