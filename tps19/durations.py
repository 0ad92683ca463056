"""Durations written by hand (`--retrain-every 1d`, TPS19_ML__RETRAIN_EVERY=6h): dependency-free,
read by the settings and the engine alike."""

from __future__ import annotations

import math

_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_every(text: str) -> int:
    """'1d', '6h', '30m', '90s', '2w' -> milliseconds; ValueError (one line) otherwise."""
    t = text.strip().lower()
    try:
        n = float(t[:-1])
        unit = _UNITS[t[-1]]
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"bad --retrain-every {text!r}: expected a number and s, m, h, d or w (e.g. 1d, 6h)") from None
    if not (n > 0 and math.isfinite(n)):
        raise ValueError(f"bad --retrain-every {text!r}: must be positive")
    return int(n * unit)
