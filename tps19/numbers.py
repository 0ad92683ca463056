"""Strict numbers for everything a person types or configures: order amounts and prices, CLI
flags, strategy parameters, settings.

Python's Decimal and float happily accept ``NaN``, ``sNaN``, ``Infinity`` and ``1e999999``; the
arithmetic that follows then raises (``decimal.Overflow``, ``InvalidOperation``) or quietly
produces garbage far from where the number was typed. Every such value is refused here, at the
edge, with one line that names the field.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

# No price, amount, balance or cap in any market comes near 1e15; beyond it lies a typo or an attack.
MAX_ABS = Decimal("1e15")
# ccxt markets tick at most at 1e-18 (wei-sized amounts); more decimals than that are noise.
MAX_DECIMALS = 18
# A number longer than this is not something a person typed: refuse before parsing it.
MAX_TEXT = 64


class NumberError(ValueError):
    """A refused number; ``str()`` is one line naming the field, e.g. ``amount is too large``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}".strip())
        self.field = field
        self.problem = problem


def _limit_text(max_abs: Decimal) -> str:
    power = max_abs.adjusted()
    return f"1e{power}" if power >= 6 and max_abs == Decimal((0, (1,), power)) else f"{max_abs:f}"


def check_decimal(d: Decimal, field: str, *, positive: bool = False, non_negative: bool = False,
                  max_abs: Decimal = MAX_ABS, max_decimals: int | None = MAX_DECIMALS) -> Decimal:
    """Return ``d`` if it is finite, below ``max_abs`` in size and has at most ``max_decimals``
    significant decimal places (and is > 0 / >= 0 when asked); raise NumberError otherwise."""
    want = "a positive number" if positive else "a number that is not negative" if non_negative else "a finite number"
    if d.is_nan():
        raise NumberError(field, f"must be {want}, not NaN")
    if d.is_infinite():
        raise NumberError(field, f"must be {want}, not infinity")
    if d.is_zero():
        if positive:
            raise NumberError(field, f"must be {want}")
        return Decimal(0)  # "0E-999999" and "-0" are plain zero
    if d.adjusted() >= max_abs.adjusted() and d.copy_abs() >= max_abs:  # copy_abs: exact, no context
        raise NumberError(field, f"is too large (must be below {_limit_text(max_abs)})")
    if positive and d < 0:
        raise NumberError(field, f"must be {want}")
    if non_negative and d < 0:
        raise NumberError(field, "must not be negative")
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    if exp < 0:
        # trailing zeros are not precision: 1.50000000000000000000 is 1.5
        zeros = _trailing_zeros(digits, -exp)
        if zeros:
            digits, exp = digits[: len(digits) - zeros], exp + zeros
            d = Decimal((sign, digits, exp))
        if max_decimals is not None and -exp > max_decimals:
            raise NumberError(field, f"has too many decimal places (at most {max_decimals})")
    return d


def _trailing_zeros(digits: tuple[int, ...], at_most: int) -> int:
    n = 0
    for x in reversed(digits):
        if x != 0 or n >= at_most:
            break
        n += 1
    return n


def to_decimal(value: Any, field: str, *, positive: bool = False, non_negative: bool = False,
               max_abs: Decimal = MAX_ABS, max_decimals: int | None = MAX_DECIMALS) -> Decimal:
    """A sane Decimal from a Decimal, int, float or text, or NumberError naming ``field``."""
    kw: dict[str, Any] = dict(positive=positive, non_negative=non_negative, max_abs=max_abs, max_decimals=max_decimals)
    if isinstance(value, bool) or value is None:
        raise NumberError(field, "is not a number")
    if isinstance(value, Decimal):
        return check_decimal(value, field, **kw)
    if isinstance(value, int):
        # compare as int first: Decimal(10**100000) is exact but costly, and the answer is known
        if abs(value) >= max_abs:
            raise NumberError(field, f"is too large (must be below {_limit_text(max_abs)})")
        return check_decimal(Decimal(value), field, **kw)
    if isinstance(value, float):
        if math.isnan(value):
            return check_decimal(Decimal("NaN"), field, **kw)
        if math.isinf(value):
            return check_decimal(Decimal("Infinity"), field, **kw)
        # repr, not the binary expansion: 0.1 is Decimal('0.1')
        return check_decimal(Decimal(repr(value)), field, **kw)
    if isinstance(value, str):
        return parse_decimal(value, field, **kw)
    raise NumberError(field, "is not a number")


def parse_decimal(text: str, field: str, *, positive: bool = False, non_negative: bool = False,
                  max_abs: Decimal = MAX_ABS, max_decimals: int | None = MAX_DECIMALS) -> Decimal:
    """Text a person typed (surrounding blanks allowed) -> sane Decimal, or NumberError."""
    t = text.strip()
    if not t:
        raise NumberError(field, "is empty")
    if len(t) > MAX_TEXT:
        raise NumberError(field, f"is too long to be a number (at most {MAX_TEXT} characters)")
    if not t.isascii():
        # Decimal() accepts other scripts' digits ('١٢'); nobody types those into a ticket on purpose
        raise NumberError(field, "is not a number")
    try:
        d = Decimal(t)
    except (InvalidOperation, ValueError):
        raise NumberError(field, "is not a number") from None
    return check_decimal(d, field, positive=positive, non_negative=non_negative, max_abs=max_abs,
                         max_decimals=max_decimals)


def to_float(value: Any, field: str, *, positive: bool = False, non_negative: bool = False,
             max_abs: Decimal = MAX_ABS) -> float:
    """A finite float of sane size (CLI flags, strategy parameters), or NumberError."""
    d = to_decimal(value, field, positive=positive, non_negative=non_negative, max_abs=max_abs, max_decimals=None)
    return float(d)


__all__ = ["MAX_ABS", "MAX_DECIMALS", "MAX_TEXT", "NumberError", "check_decimal", "parse_decimal", "to_decimal", "to_float"]
