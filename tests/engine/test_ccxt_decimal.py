"""ccxt formats prices and amounts half-up in a decimal context of its own; the thread that placed
an order keeps its own arithmetic (ccxt's decimal_to_precision used to leave the caller's context
rounding half-up with Underflow trapped, so a fee total came out 1e-8 apart after the first order)."""

from __future__ import annotations

import decimal
import threading
from decimal import Decimal
from typing import Any

from tps19.engine.ccxt_classes import exchange_class


def _in_fresh_thread(fn: Any) -> Any:
    # a new thread starts from Python's default context, whatever earlier tests did to this one
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_formatting_an_order_leaves_the_callers_rounding_alone() -> None:
    def scenario() -> dict[str, Any]:
        from ccxt.base.decimal_to_precision import DECIMAL_PLACES, ROUND, TRUNCATE

        before = decimal.getcontext().rounding
        for flavour in ("sync", "async"):
            cls = exchange_class("cryptocom", flavour)  # type: ignore[arg-type]
            assert cls is not None
            ex = cls()
            # what amount_to_precision / price_to_precision call with a market's precision
            price = ex.decimal_to_precision("65315.655", ROUND, 2, DECIMAL_PLACES)
            amount = ex.decimal_to_precision("0.0123456", TRUNCATE, 4, DECIMAL_PLACES)
        ctx = decimal.getcontext()
        return {"before": before, "price": price, "amount": amount, "rounding": ctx.rounding,
                "underflow_trapped": bool(ctx.traps[decimal.Underflow]),
                "fee": Decimal("0.611969465").quantize(Decimal("1e-8"))}

    got = _in_fresh_thread(scenario)
    assert got["before"] == decimal.ROUND_HALF_EVEN
    assert got["price"] == "65315.66" and got["amount"] == "0.0123"  # ccxt still rounds its way
    assert got["rounding"] == decimal.ROUND_HALF_EVEN and not got["underflow_trapped"]
    assert got["fee"] == Decimal("0.61196946")  # half-even, as the figures everywhere else round it
