"""What a venue's answers mean for the live broker: which errors say "refused" and which leave the
order's fate unknown, and how far an order status has come (RANK). Pure functions, no I/O."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from .orders import OrderStatus

S = OrderStatus
RANK = {S.NEW: 0, S.UNKNOWN: 0, S.OPEN: 1, S.PARTIALLY_FILLED: 2, S.FILLED: 3, S.CANCELLED: 3, S.REJECTED: 3, S.EXPIRED: 3}


def ccxt_errors() -> Any:
    from ..ccxt_classes import ccxt_base

    return ccxt_base()  # the sync package's errors are shared with async/pro


# venue error codes that say "something failed inside" rather than "your order is refused"
# (cryptocom: ERR_INTERNAL, SYS_ERROR, request timeout)
AMBIGUOUS_CODES = frozenset({"50001", "10001", "40801"})


def venue_error_code(e: BaseException) -> str | None:
    """The venue's error code when ccxt's message carries the venue's JSON answer
    (``"<exchange id> {json body}"``); None for a plain-text page or no body at all."""
    text = str(e)
    i = text.find("{")
    if i < 0:
        return None
    try:
        body = json.loads(text[i:])
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("code", body.get("error_code"))
    return str(code) if code not in (None, 0, "0", "") else None


def is_network(e: BaseException) -> bool:
    ccxt = ccxt_errors()
    return isinstance(e, (asyncio.TimeoutError, TimeoutError, ccxt.NetworkError, ConnectionError, OSError))


def definite_rejection(e: BaseException) -> bool:
    """True only when the venue itself refused the order (so it holds nothing). Anything else
    -- a 5xx, a plain-text gateway page (ccxt raises a bare ExchangeError for it), a timeout,
    a dropped reply -- is ambiguous: the venue may have processed the order."""
    ccxt = ccxt_errors()
    if is_network(e):
        return False
    if isinstance(e, (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.BadRequest, ccxt.AuthenticationError,
                      ccxt.NotSupported, ccxt.ArgumentsRequired)):  # BadSymbol is a BadRequest
        return True
    if type(e) is ccxt.ExchangeError:
        code = venue_error_code(e)
        return code is not None and code not in AMBIGUOUS_CODES
    return False


class LookupResult:
    FOUND, ABSENT, UNKNOWN = "found", "absent", "unknown"

