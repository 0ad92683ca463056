"""`tps19 rebalance` after the weights: start the engine (paper or live), show the orders that
reach the weights with what the risk stage would say of each, then (not with --dry-run) ask and
send them through the broker, whose risk stage decides each one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer

from .common import fail

MARKS_TIMEOUT_S = 30.0


def send_rebalance(weights: dict[str, float], mode: str, yes: bool, db: Path | None, *, dry_run: bool = False,
                   json_out: dict[str, Any] | None = None) -> None:
    """``json_out``: the weights' JSON object, printed once with the planned orders added."""
    from ..engine.assembly import check_live_allowed
    from ..run import settings_from_flags

    settings = settings_from_flags(None, list(weights), db)
    if mode == "live":
        reason = check_live_allowed(settings)
        if reason:
            fail(f"refusing to send LIVE orders: {reason}")
    code = asyncio.run(_run(settings, weights, mode, yes, dry_run, json_out))
    if code:
        raise typer.Exit(code)


async def _run(settings: Any, weights: dict[str, float], mode: str, yes: bool, dry_run: bool,
               json_out: dict[str, Any] | None) -> int:
    from ..engine.engine import EngineError
    from ..engine.risk.rebalance import plan_orders, preview, send_orders
    from ..launch import build_engine
    from ..run import _venue

    quiet = json_out is not None

    def say(line: str) -> None:
        typer.echo(line, err=quiet)

    def emit(orders: list[Any], refusals: list[str | None], error: str | None = None) -> None:
        if json_out is not None:
            json_out["orders"] = None if error else [o.as_dict() | {"refused": r} for o, r in zip(orders, refusals)]
            if error:
                json_out["orders_error"] = error
            typer.echo(json.dumps(json_out))

    async with _venue(settings) as pointed:
        engine = build_engine(pointed, mode)
        try:
            await engine.start()
        except EngineError as err:
            await engine.stop()
            if dry_run:  # the weights stand; the orders need the venue
                say(f"tps19: cannot plan the orders: {err}")
                emit([], [], str(err))
                return 0
            fail(str(err), code=1)
        try:
            trading = engine.trading
            assert trading is not None
            pf = trading.portfolio
            loop = asyncio.get_running_loop()
            end = loop.time() + MARKS_TIMEOUT_S
            while any(pf.mark(s) is None for s in weights) and loop.time() < end:
                await asyncio.sleep(0.1)
            try:
                orders = plan_orders(weights, dict(pf.balances), {s: pf.mark(s) for s in weights}, engine.markets,
                                     precision_mode=int(getattr(getattr(engine.venue, "client", None),
                                                                "precisionMode", 4) or 4),
                                     max_value=trading.broker.risk.settings.max_order_notional)
            except ValueError as err:
                say(f"tps19: {err}")
                emit([], [], str(err))
                return 2
            refusals = preview(trading.broker, orders)
            emit(orders, refusals)
            if not orders:
                say("the holdings are at the weights already: no order")
                return 0
            for o, why in zip(orders, refusals):
                note = f"  REFUSED by the risk stage: {why}" if why else ""
                say(f"{mode.upper()} {o.side} {o.amount:f} {o.symbol} at market (about {o.value:,.2f}){note}")
            if dry_run:
                say(f"dry run: {len(orders)} order(s), nothing sent")
                return 0
            if not await _confirmed(mode, yes, len(orders)):
                say("nothing sent")
                return 1
            for st in await send_orders(trading.broker, orders):
                why = f": {st.reason}" if st.reason else ""
                say(f"{st.symbol} {st.side} {st.amount:f}: {st.status.value}{why}")
            return 0
        finally:
            await engine.stop()


async def _confirmed(mode: str, yes: bool, n: int) -> bool:
    if mode == "paper" and yes:
        return True
    if mode == "live":
        typed = await asyncio.to_thread(typer.prompt, f"type yes to send these {n} LIVE orders", default="")
        return str(typed).strip().lower() == "yes"
    return bool(await asyncio.to_thread(typer.confirm, f"send these {n} paper orders?", default=False))
