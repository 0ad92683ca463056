"""Turn a strategy's target position into orders through the broker (and so its risk checks).

Spot sizing: each running symbol gets the value of the strategy's own holding plus an equal share
of the quote currency it shares with the other running symbols. The target is a fraction of that
capital held in the base currency; the difference to what is held now becomes one market order.
Buys never spend more quote than is free (less a fee margin), sells never sell more than is held.

A strategy trades only its own position: it starts flat and manages what its own orders bought
(client ids ``s19-<name>-...``, counted from the booked fills, so a restart resumes it). Holdings
the account had before, or that the trader bought, are left alone unless ``adopt_holdings``
(`tps19 paper|live --adopt-holdings`), which lets the strategy manage the whole base balance.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter, deque
from collections.abc import Iterable
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any, Protocol

from ..numbers import MAX_DECIMALS
from .events import BarEvent, LogEvent

if TYPE_CHECKING:
    from .risk.sizing import Sizing
    from .bus import EventBus
    from .strategies.signals import Signal
    from .trading import Broker, Portfolio

class Protects(Protocol):
    """Protective exits for every entry (``engine/protection.py``'s ``Protection``): percentages
    of the entry price (2.0 = 2 %) or absolute prices, each None when not placed."""

    @property
    def stop_loss_pct(self) -> float | None: ...
    @property
    def take_profit_pct(self) -> float | None: ...
    @property
    def trailing_pct(self) -> float | None: ...
    @property
    def stop_loss_price(self) -> float | None: ...
    @property
    def take_profit_price(self) -> float | None: ...


FEE_MARGIN = Decimal("0.995")  # leave room for the taker fee on a buy
ZERO = Decimal(0)


def passing_failure(reason: str | None) -> bool:
    """An order refused for a reason that passes (the database, the venue's reachability), not a
    risk limit or a bad order: worth submitting again once it has passed."""
    text = (reason or "").lower()
    return any(k in text for k in ("database", "could not record", "internal error", "never reached the venue",
                                   "storageerror", "connect"))


def strategy_prefix(name: str) -> str:
    """The client order id prefix of a strategy's orders (venue-safe: [A-Za-z0-9-], short)."""
    return f"s19-{re.sub(r'[^A-Za-z0-9]', '', name)[:8] or 'strat'}-"


def strategy_order_id(prefix: str) -> str:
    """<= 36 characters, as Crypto.com's client_oid allows."""
    return f"{prefix}{int(time.time() * 1000):x}-{secrets.token_hex(5)}"


def own_delta(fill: Any, base: str) -> Decimal:
    """How a fill moves the base quantity its order's owner holds (a fee paid in base is gone)."""
    d = fill.amount if fill.side == "buy" else -fill.amount
    if fill.fee and fill.fee_currency == base:
        d -= fill.fee
    return d


class TargetExecutor:
    def __init__(self, broker: Broker, portfolio: Portfolio, markets: dict[str, dict[str, Any]], symbols: list[str],
                 bus: EventBus | None = None,
                 *, min_change: Decimal = Decimal("0.02"), max_order_notional: Decimal | None = None,
                 strategy: str = "strategy", adopt_holdings: bool = False,
                 sizing: Sizing | None = None, timeframe_ms: int = 60_000,
                 protection: Protects | None = None) -> None:
        self.broker = broker
        self.portfolio = portfolio
        self.markets = markets
        self.bus = bus
        self.min_change = min_change  # ignore re-balances smaller than 2% of the symbol's capital
        # A strategy order larger than the trader's per-order cap is cut to the cap (and logged),
        # rather than refused: the cap is a limit on size, not a veto on the strategy.
        self.max_order_notional = max_order_notional
        quotes = Counter(markets[s]["quote"] for s in symbols if s in markets)
        self.quote_share = {s: Decimal(1) / quotes[markets[s]["quote"]] for s in symbols if s in markets}
        self.orders_sent = 0
        self.skipped = 0
        self.prefix = strategy_prefix(strategy)
        self.adopt_holdings = adopt_holdings
        self.own: dict[str, Decimal] = {s: ZERO for s in symbols if s in markets}  # base bought by this strategy
        # every entry carries these protective exits (a bracket: an OCO sized to what fills)
        self.protection = protection
        # after a protective exit the strategy stays flat until its raw target changes:
        # symbol -> the raw target in force when the stop (or take-profit) sold
        self.flat_until_change: dict[str, float] = {}
        self.last_raw: dict[str, float] = {}
        # symbol -> (target, signal) whose order failed for a passing reason (the database was down,
        # trading halted for it, the venue unreachable): re-evaluated on the next bar and when the
        # database is back, since a strategy emits a target once, when it changes
        self.pending: dict[str, tuple[float, Any]] = {}
        if bus is not None:
            from .trading.events import FillEvent, OrderUpdate

            bus.on(FillEvent, self._on_fill)
            bus.on(OrderUpdate, self._on_order)
        # position sizing: the same rule and function as the backtest (engine/risk/sizing.py)
        self.sizing = sizing
        self.timeframe_ms = timeframe_ms
        self.closes: dict[str, deque[float]] = {s: deque(maxlen=1000) for s in self.own}
        if bus is not None and sizing is not None and sizing.name == "vol_target":
            bus.on(BarEvent, self._on_bar)

    def _on_bar(self, ev: BarEvent) -> None:
        if ev.closed and ev.symbol in self.closes:
            self.closes[ev.symbol].append(ev.close)

    def sized(self, symbol: str, target_fraction: float) -> float:
        """The strategy's target after the sizing rule (capped at the rule's cap)."""
        if self.sizing is None:
            return target_fraction
        from .risk.sizing import sigma_from_closes, size_fraction

        sigma = None
        if self.sizing.name == "vol_target":
            sigma = sigma_from_closes(list(self.closes.get(symbol, ())), self.timeframe_ms, int(self.sizing.p["lookback"]))
        return float(size_fraction(self.sizing, target_fraction, sigma_daily=sigma))

    def resume(self, booked_fills: Iterable[Any]) -> None:
        """Resume the strategy's own position from the broker's booked fills (call once, before
        new fills arrive)."""
        for f in booked_fills:
            self._count(f)

    def _on_fill(self, f: Any) -> None:
        self._count(f)

    def _on_order(self, u: Any) -> None:
        """A protective exit of this strategy's position filled: flat until the raw target changes."""
        if (u.trigger_state is not None and u.filled > 0 and u.symbol in self.own
                and u.client_order_id.startswith(self.prefix) and u.symbol not in self.flat_until_change):
            self.flat_until_change[u.symbol] = self.last_raw.get(u.symbol, 1.0)
            self._log("info", "protective exit: the strategy stays flat until its signal changes", symbol=u.symbol,
                      order=u.type, client_order_id=u.client_order_id)

    def _count(self, f: Any) -> None:
        if f.symbol in self.own and (f.client_order_id or "").startswith(self.prefix):
            self.own[f.symbol] += own_delta(f, self.markets[f.symbol]["base"])

    def _amount(self, symbol: str, amount: Decimal) -> str | None:
        """An amount as a log shows it: at the market's precision, with its unit."""
        from .trade_log import decimals_of, with_unit

        m = self.markets[symbol]
        return with_unit(amount, decimals_of((m.get("precision") or {}).get("amount")), m["base"])

    def held(self, symbol: str) -> Decimal:
        """What the strategy may sell: its own holding (never more than the account holds), or
        the whole base balance when it adopted the holdings."""
        balance = self.portfolio.balances.get(self.markets[symbol]["base"], ZERO)
        if self.adopt_holdings:
            return max(balance, ZERO)
        return max(ZERO, min(self.own.get(symbol, ZERO), balance))

    def _log(self, level: str, message: str, **fields: Any) -> None:
        if self.bus is not None:
            self.bus.publish(LogEvent(level=level, message=message, fields=fields))

    def plan(self, symbol: str, target_fraction: float) -> tuple[str, Decimal] | None:
        """The (side, amount) that moves the holding to the target, or None when no order is due."""
        mark = self.portfolio.mark(symbol)
        if mark is None or mark <= 0:
            return None
        m = self.markets[symbol]
        balances = self.portfolio.balances
        base_qty = self.held(symbol)
        quote_qty = balances.get(m["quote"], Decimal(0))
        capital = base_qty * mark + quote_qty * self.quote_share.get(symbol, Decimal(1))
        if capital <= 0:
            return None
        target = Decimal(str(max(0.0, min(1.0, target_fraction))))  # spot: no shorts, no leverage
        change_value = target * capital - base_qty * mark
        if abs(change_value) < self.min_change * capital:
            return None
        from .risk.sizing import outside_band

        if not outside_band(self.sizing, float(target), float(base_qty * mark / capital)):
            return None  # vol_target: the size is held inside its band (as in the backtest)
        if change_value > 0:
            spend = min(change_value, quote_qty * FEE_MARGIN)
            return ("buy", spend / mark) if spend > 0 else None
        amount = min(-change_value / mark, base_qty)
        return ("sell", amount) if amount > 0 else None

    def _bracket(self, signal: Signal | None) -> dict[str, Decimal]:
        """The protective exits an entry carries: the command line's over the strategy's own."""
        own = getattr(signal, "protection", None)
        p = self.protection
        if own is not None:
            p = p.merged(own) if p is not None and hasattr(p, "merged") else (p or own)
        if p is None:
            return {}
        out: dict[str, Decimal] = {}
        for src, dst in (("stop_loss_pct", "stop_loss_pct"), ("take_profit_pct", "take_profit_pct"),
                         ("trailing_pct", "trailing_stop_pct"), ("stop_loss_price", "stop_loss_price"),
                         ("take_profit_price", "take_profit_price")):
            v = getattr(p, src, None)
            if v is not None:
                out[dst] = Decimal(repr(float(v)))
        if "stop_loss_price" in out:
            out.pop("stop_loss_pct", None)
        if "take_profit_price" in out:
            out.pop("take_profit_pct", None)
        return out

    async def _unprotect(self, symbol: str) -> list[Any]:
        """Cancel this strategy's protective orders on ``symbol`` before it sells by itself (they
        would otherwise sell coins it no longer holds); returns them."""
        legs = [o for o in self.broker.open_orders(symbol)
                if o.trigger_state is not None and o.client_order_id.startswith(self.prefix)]
        for o in legs:
            await self.broker.cancel(o.client_order_id, group=False)
        return legs

    async def _reprotect(self, symbol: str, legs: list[Any]) -> None:
        """What the strategy still holds after a partial sell keeps the levels it had."""
        amount = self.held(symbol)
        if amount <= 0 or not legs:
            return
        from .trading.orders import OrderRequest

        group = None
        for o in legs:
            if o.type.value == "trailing_stop":
                kw: dict[str, Any] = {"trailing_pct": o.trailing_pct, "trailing_distance": o.trailing_distance}
            else:
                kw = {"trigger_price": o.trigger_price}
            r = await self.broker.place(OrderRequest(symbol, o.side.value, o.type.value, amount, o.price,
                                                     client_order_id=strategy_order_id(self.prefix),
                                                     oco_group=group or (group := strategy_order_id(self.prefix)), **kw))
            if r.status.value == "rejected":
                self._log("warning", "protection not replaced after a partial sell", symbol=symbol, reason=r.reason)

    async def submit_target(self, symbol: str, target_fraction: float, signal: Signal) -> None:
        raw = target_fraction
        blocked = self.flat_until_change.get(symbol)
        self.last_raw[symbol] = raw
        if blocked is not None:
            if raw == blocked:
                self.skipped += 1
                self._log("info", "target not acted on: flat after a protective exit until the signal changes",
                          symbol=symbol, target=raw)
                return
            del self.flat_until_change[symbol]  # a new signal: the strategy trades again
        if self.broker.open_orders(symbol, protective=False):
            self.skipped += 1
            self._log("info", "target not acted on: orders still working", symbol=symbol, target=target_fraction)
            return
        planned = self.plan(symbol, self.sized(symbol, target_fraction))
        if planned is None:
            self.skipped += 1
            self.pending.pop(symbol, None)  # nothing to do: the holding is at the target
            return
        side, amount = planned
        mark = self.portfolio.mark(symbol)
        if self.bus is not None:
            from .trading.events import DecisionEvent

            self.bus.publish(DecisionEvent(symbol, target_fraction, side, amount, mark))
        cap = self.max_order_notional
        if cap is not None and mark and amount * mark > cap:
            self._log("warning", "strategy order cut to the per-order cap", symbol=symbol,
                      wanted=self._amount(symbol, amount),
                      cap=str(cap))
            amount = cap * Decimal("0.999") / mark
        # A quotient of Decimals carries 28 digits; orders take at most MAX_DECIMALS (the broker then
        # rounds to the market's step). Round down: never trade more than the plan allows.
        amount = amount.quantize(Decimal(1).scaleb(-MAX_DECIMALS), rounding=ROUND_DOWN)
        from .trading.orders import OrderRequest

        legs: list[Any] = []
        bracket = self._bracket(signal) if side == "buy" else {}
        if side == "sell":
            legs = await self._unprotect(symbol)
        order = await self.broker.place(OrderRequest(
            symbol, side, "market", amount, client_order_id=strategy_order_id(self.prefix),
            stop_loss_pct=bracket.get("stop_loss_pct"), take_profit_pct=bracket.get("take_profit_pct"),
            trailing_stop_pct=bracket.get("trailing_stop_pct"), stop_loss_price=bracket.get("stop_loss_price"),
            take_profit_price=bracket.get("take_profit_price")))
        if legs:
            await self._reprotect(symbol, legs)
        self.orders_sent += 1
        self._log("info", "strategy order", symbol=symbol, side=side, amount=self._amount(symbol, order.amount),
                  target=target_fraction, status=order.status.value, client_order_id=order.client_order_id,
                  reason=order.reason or "")
        if order.status.value == "rejected" and passing_failure(order.reason):
            self.pending[symbol] = (raw, signal)
            self._log("warning", "strategy target pending: its order failed for a passing reason; re-evaluated on "
                      "the next bar and when the database is back", symbol=symbol, target=raw, reason=order.reason or "")
        else:
            self.pending.pop(symbol, None)

    async def retry_pending(self, symbol: str | None = None) -> int:
        """Re-evaluate the pending targets (of ``symbol``, or all): each is submitted again, unless
        a newer target superseded it. Returns how many were submitted."""
        done = 0
        for sym in [s for s in list(self.pending) if symbol is None or s == symbol]:
            target, signal = self.pending.pop(sym)
            if self.last_raw.get(sym) != target:
                continue
            self._log("info", "strategy target re-evaluated", symbol=sym, target=target)
            await self.submit_target(sym, target, signal)
            done += 1
        return done
