"""`tps19 rebalance` without --dry-run: start the engine (paper or live), show the orders that
reach the weights, ask, and send them through the broker, whose risk stage decides each one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from .common import fail

MARKS_TIMEOUT_S = 30.0


def send_rebalance(weights: dict[str, float], mode: str, yes: bool, db: Path | None, *, quiet: bool = False) -> None:
    from ..engine.assembly import check_live_allowed
    from ..run import settings_from_flags

    settings = settings_from_flags(None, list(weights), db)
    if mode == "live":
        reason = check_live_allowed(settings)
        if reason:
            fail(f"refusing to send LIVE orders: {reason}")
    code = asyncio.run(_run(settings, weights, mode, yes, quiet))
    if code:
        raise typer.Exit(code)


async def _run(settings: Any, weights: dict[str, float], mode: str, yes: bool, quiet: bool) -> int:
    from ..engine.engine import EngineError
    from ..engine.risk.rebalance import plan_orders, send_orders
    from ..launch import build_engine
    from ..run import _venue

    def say(line: str) -> None:
        typer.echo(line, err=quiet)

    async with _venue(settings) as pointed:
        engine = build_engine(pointed, mode)
        try:
            await engine.start()
        except EngineError as err:
            await engine.stop()
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
                orders = plan_orders(weights, dict(pf.balances), {s: pf.mark(s) for s in weights}, engine.markets)
            except ValueError as err:
                say(f"tps19: {err}")
                return 2
            if not orders:
                say("the holdings are at the weights already: no order")
                return 0
            for o in orders:
                say(f"{mode.upper()} {o.side} {o.amount} {o.symbol} at market (about {o.value:.2f})")
            if not await _confirmed(mode, yes, len(orders)):
                say("nothing sent")
                return 1
            for st in await send_orders(trading.broker, orders):
                why = f": {st.reason}" if st.reason else ""
                say(f"{st.symbol} {st.side} {st.amount}: {st.status.value}{why}")
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
