"""Keep ccxt from changing the decimal arithmetic of the thread that calls it.

ccxt's ``decimal_to_precision`` (behind ``amount_to_precision``, ``price_to_precision`` and every
order ccxt formats) sets the *calling thread's* decimal context: rounding ``ROUND_HALF_UP`` and
``Underflow`` trapped, and never puts it back. After the first order a thread's ``Decimal`` sums
and ``quantize`` calls that do not name their rounding then rounded half-up, before it half-even:
the same figure could come out a unit of the last place apart depending on whether ccxt had
formatted something first in that thread (seen: a two-venue fee total 1.00546693 against
1.00546692). Here ccxt's function runs in a local copy of the context, so it still rounds as ccxt
means to and the caller's context is left as it was.
"""

from __future__ import annotations

import decimal
import functools
import sys
from typing import Any, Callable

_GUARDED = "_tps19_keeps_decimal_context"


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(fn, _GUARDED, False):
        return fn

    @functools.wraps(fn)
    def in_local_context(*args: Any, **kwargs: Any) -> Any:
        with decimal.localcontext():
            return fn(*args, **kwargs)

    setattr(in_local_context, _GUARDED, True)
    return in_local_context


def keep_decimal_context() -> None:
    """Guard ccxt's ``decimal_to_precision`` wherever ccxt binds it (idempotent; ccxt modules not
    imported yet are left alone: call again after importing more of ccxt). ``Exchange.__init__``
    copies the function onto each instance, so exchanges made before this call keep the old one."""
    for name in ("ccxt.base.decimal_to_precision", "ccxt.base.exchange", "ccxt", "ccxt.async_support"):
        module = sys.modules.get(name)
        # the module's own dict, not getattr: a package entered lean completes its whole import on
        # the first read of a name it lacks (ccxt_classes)
        fn = vars(module).get("decimal_to_precision") if module is not None else None
        if callable(fn):
            setattr(module, "decimal_to_precision", _guarded(fn))
