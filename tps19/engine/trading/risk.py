"""Pre-trade risk: the one stage every order passes before a broker sees it.

The risk stage is its own object with explicit inputs: the risk settings, a portfolio view
(signed position per symbol, net P&L; optionally an account view with gross exposure, free
balances and working orders), the feed's health and the validated order with the market's mid
(both from the order entry, ``entry.py``). It holds the day's counters, the order-rate window
and the kill switch, and knows nothing about brokers. Every refusal is one line naming the
limit and its setting (docs/risk.md lists them).

Checks that only ever refuse orders that would add risk (position cap, gross exposure, daily
loss, stale feed, a breaker's halt) let an order that reduces the position through, so a trader
at a limit can still get out. Checks that refuse any order: the kill switch, the per-order cap,
the daily/per-minute order counts, max open orders, the price band and free balance.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from ...config import RiskSettings
from .orders import OrderRejected, ValidatedOrder, type_words

# A kill switch engaged by a circuit breaker carries this prefix in its stored reason: after a
# restart it is still a breaker's halt (risk-adding orders refused, exits allowed), not a manual kill.
BREAKER = "circuit breaker: "
HUNDRED = Decimal(100)


def utc_day_start_ms(ts: float | None = None) -> int:
    d = datetime.fromtimestamp(ts if ts is not None else time.time(), UTC)
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)



def _g(x: Decimal) -> str:
    """A limit or price in a refusal, thousands grouped like the ticket shows them (all its digits)."""
    return f"{x:,f}"

class PortfolioView(Protocol):
    """What risk reads of the book: holdings and P&L, nothing it could change."""

    def position(self, symbol: str) -> Decimal:
        """Signed net position of ``symbol`` in its base currency."""
        ...

    def net_pnl(self) -> Decimal:
        """Realized + unrealized - fees, over the portfolio's lifetime."""
        ...


class AccountView(PortfolioView, Protocol):
    """A portfolio view that also knows the account: what the exposure, order-count and
    free-balance checks read (``entry.HoldingsView`` is one)."""

    def gross_exposure(self) -> Decimal:
        """Sum of |position value| over every held symbol, in the valuation currency."""
        ...

    def open_order_count(self) -> int: ...

    def shortfall(self, v: ValidatedOrder) -> str | None:
        """Why the free balance cannot pay for ``v`` (None when it can)."""
        ...


class FeedHealth(Protocol):
    """``MarketFeed`` is one: is this stream of this symbol connected and current?"""

    def fresh(self, stream: str, symbol: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """The risk stage's answer: accepted, or refused with one line for the trader."""

    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


ACCEPT = Decision()


def _reduces(qty: Decimal, after: Decimal) -> bool:
    return abs(after) < abs(qty) and (after == 0 or (after > 0) == (qty > 0))


class RiskEngine:
    def __init__(self, settings: RiskSettings, portfolio: PortfolioView | None = None, *,
                 orders_today: int = 0, account: AccountView | None = None, feed: FeedHealth | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        # without a portfolio view the position cap and the loss limit are skipped
        self.portfolio = portfolio
        self.account = account  # without one exposure, open orders and free balance are skipped
        self.feed = feed  # without one the stale-feed check is skipped
        self.orders_today = orders_today
        self._day = utc_day_start_ms()
        self.killed = False
        self.kill_reason = ""
        # source -> reason: while any is set nothing is placed, exits included (the engine lost its
        # database lock or file: another engine may be trading the same account)
        self.holds: dict[str, str] = {}
        self.rejections = 0
        self._pnl_day_start: Decimal | None = None  # net P&L when this UTC day was first seen
        self._clock = clock
        self._recent: deque[float] = deque()  # times of the orders counted in the last minute
        # the portfolio level's check over every venue (multivenue.VenueSet), given the exposure
        # this order adds in this venue's valuation currency; None: this venue alone
        self.total: Callable[[ValidatedOrder, Decimal], str | None] | None = None

    def _view(self) -> PortfolioView | None:
        return self.portfolio

    def _roll(self) -> None:
        day = utc_day_start_ms()
        if day != self._day:
            self._day = day
            self.orders_today = 0
            self._pnl_day_start = None

    # ---------------------------------------------------------------- kill switch
    def engage(self, reason: str) -> None:
        self.killed = True
        self.kill_reason = reason

    def release(self) -> None:
        self.killed = False
        self.kill_reason = ""

    def hold(self, source: str, reason: str) -> None:
        self.holds[source] = reason

    def lift(self, source: str) -> None:
        self.holds.pop(source, None)

    @property
    def halted_by_breaker(self) -> bool:
        """Engaged by a circuit breaker: risk-adding orders are refused, exits still pass."""
        return self.killed and self.kill_reason.startswith(BREAKER)

    # ---------------------------------------------------------------- the day
    def set_day_start(self, net_pnl: Decimal) -> None:
        """Restore today's starting net P&L (e.g. from the day's first stored snapshot)."""
        self._roll()
        self._pnl_day_start = net_pnl

    def pnl_today(self) -> Decimal | None:
        """Net P&L since the engine first saw this UTC day (None without a portfolio)."""
        view = self._view()
        if view is None:
            return None
        self._roll()
        now = view.net_pnl()
        if self._pnl_day_start is None:
            self._pnl_day_start = now
        return now - self._pnl_day_start

    def count(self) -> None:
        self._roll()
        self.orders_today += 1
        self._recent.append(self._clock())

    def orders_last_minute(self) -> int:
        cutoff = self._clock() - 60.0
        recent = self._recent
        while recent and recent[0] <= cutoff:
            recent.popleft()
        return len(recent)

    # ---------------------------------------------------------------- the check
    def decide(self, v: ValidatedOrder, mid: Decimal | None = None) -> Decision:
        """Accept ``v`` or refuse it with the reason. ``mid`` is the market's mid price (the
        price band is skipped without one)."""
        self._roll()
        if self.holds:
            return Decision("trading halted: " + "; ".join(self.holds.values()))
        if v.protective:
            why = self._trigger_checks(v, mid)
            if why is not None:
                return Decision(why)
            if v.side == "sell":  # spot: a protective sell only ever reduces what is held
                return self._protective_sell(v)
        if self.killed and not self.kill_reason.startswith(BREAKER):
            return Decision(f"kill switch engaged{': ' + self.kill_reason if self.kill_reason else ''}; release it to trade")
        why = self._order_checks(v, mid)
        if why is not None:
            return Decision(why)
        account = self.account
        if account is not None:
            why = self._account_checks(account, v)
            if why is not None:
                return Decision(why)
        view = self._view()
        if view is None:  # nothing tells an exit from new risk: a halt refuses everything
            return Decision(self._halt_reason()) if self.killed else ACCEPT
        qty = view.position(v.symbol)
        after = qty + (v.amount if v.side == "buy" else -v.amount)
        if _reduces(qty, after):
            return ACCEPT
        return self._adding_checks(view, account, v, qty, after)

    def _order_checks(self, v: ValidatedOrder, mid: Decimal | None) -> str | None:
        s = self.settings
        if v.notional is None:
            return f"no price for {v.symbol} to check the order value against the cap"
        if v.notional > s.max_order_notional:
            return f"order value {v.notional:,.2f} exceeds the per-order cap {_g(s.max_order_notional)}"
        if self.orders_today >= s.max_daily_orders:
            return f"daily order limit reached ({s.max_daily_orders} orders)"
        if self.orders_last_minute() >= s.max_orders_per_minute:
            return f"order rate limit reached ({s.max_orders_per_minute} orders in the last minute)"
        if v.price is not None and mid is not None and mid > 0:
            off = abs(v.price - mid) / mid * HUNDRED
            if off > s.price_band_pct:
                return (f"limit price {_g(v.price)} is {off:.2f}% from the mid {_g(mid.normalize())}: outside the "
                        f"{s.price_band_pct}% price band (fat finger?)")
        return None

    def _trigger_checks(self, v: ValidatedOrder, mid: Decimal | None) -> str | None:
        return trigger_problem(v, mid, self.settings.price_band_pct)

    def _protective_sell(self, v: ValidatedOrder) -> Decision:
        """A protective sell passes the kill switch and the breakers (it only reduces a position),
        but never sells more than is held."""
        view = self._view()
        if view is None:
            return ACCEPT
        held = view.position(v.symbol)
        if v.amount > held:
            return Decision(f"this {type_words(v.type)} sells {v.amount:f} of {v.symbol} but {held:f} is held: a protective "
                            "sell never sells more than is held (reduce-only on spot)")
        cap = self.settings.max_open_orders
        account = self.account
        if account is not None and account.open_order_count() >= cap:
            return Decision(f"{cap} orders already open: the open-order limit")
        return ACCEPT

    def _halt_reason(self) -> str:
        return (f"trading halted by the {self.kill_reason}; only orders that reduce a position are allowed "
                "until the trader releases the halt")

    def _account_checks(self, account: AccountView, v: ValidatedOrder) -> str | None:
        cap = self.settings.max_open_orders
        if account.open_order_count() >= cap:
            return f"{cap} orders already open: the open-order limit"
        return account.shortfall(v)

    def _adding_checks(self, view: PortfolioView, account: AccountView | None, v: ValidatedOrder,
                       qty: Decimal, after: Decimal) -> Decision:
        if self.killed:  # a breaker's halt: only exits pass
            return Decision(self._halt_reason())
        watched = getattr(self.feed, "symbols", None)
        if watched is not None and v.symbol not in watched:
            # no feed of it here: "stale" would send the trader looking for a broken connection
            return Decision(f"{v.symbol} is not watched on this venue (watched: {', '.join(watched)}): no live book "
                            "to price or check it against; add it with --symbol (VENUE:SYMBOL with several venues)")
        if self.feed is not None and not self.feed.fresh("book", v.symbol):
            return Decision(f"{v.symbol}'s order book feed is stale or resyncing; only orders that reduce a position "
                            "are allowed until it is live again")
        pnl = self.pnl_today()
        limit = self.settings.daily_loss_limit
        if pnl is not None and pnl <= -limit:
            return Decision(f"daily loss limit reached (P&L today {pnl:,.2f} <= -{_g(limit)}); only orders that reduce a position are allowed")
        px = v.notional / v.amount if v.amount and v.notional is not None else None
        if px is None:
            return ACCEPT
        exposure = abs(after) * px
        pcap = self.settings.max_position_notional
        if exposure > pcap:
            return Decision(f"position after this order would be {exposure:,.2f} > the position cap {_g(pcap)}")
        if account is not None:
            gross = account.gross_exposure() + (abs(after) - abs(qty)) * px
            gcap = self.settings.max_gross_exposure
            if gross > gcap:
                return Decision(f"gross exposure after this order would be {gross:,.2f} > the gross exposure cap {_g(gcap)}")
        if self.total is not None:
            why = self.total(v, (abs(after) - abs(qty)) * px)
            if why is not None:
                return Decision(why)
        return ACCEPT

    def check(self, v: ValidatedOrder, mid: Decimal | None = None) -> None:
        """``decide`` for callers that want an exception: raises OrderRejected with the reason."""
        d = self.decide(v, mid)
        if d.reason is not None:
            raise OrderRejected(d.reason)


def trigger_problem(v: ValidatedOrder, mid: Decimal | None, band_pct: Decimal) -> str | None:
    """Why a protective order's levels are refused against the market's ``mid``: outside the
    price band, or already reached (it would trigger at once). The order ticket shows the same
    line at review."""
    from .orders import OrderType, trigger_hit

    if v.type is OrderType.OCO:
        levels = [(OrderType.STOP_MARKET, v.stop_loss_price, "stop-loss"),
                  (OrderType.TAKE_PROFIT, v.take_profit_price, "take-profit")]
    else:
        levels = [(v.type, v.trigger_price, "trigger")]
    if mid is None or mid <= 0:
        return None
    for kind, level, name in levels:
        if level is None:
            continue
        off = abs(level - mid) / mid * HUNDRED
        if off > band_pct:
            return (f"{name} price {level:f} is {off:.2f}% from the mid {mid.normalize():f}: outside the "
                    f"{band_pct}% price band (fat finger?)")
        if trigger_hit(kind, v.side.value, level, mid):
            where = "at or below" if level >= mid else "at or above"
            what = f"{type_words(kind)} trigger" if name == "trigger" else name
            return (f"{v.side.value} {what} {level:f} would trigger at once: the market "
                    f"(mid {mid.normalize():f}) is already {where} it")
    if v.price is not None:
        off = abs(v.price - mid) / mid * HUNDRED
        if off > band_pct:
            return (f"limit price {v.price:f} is {off:.2f}% from the mid {mid.normalize():f}: outside the "
                    f"{band_pct}% price band (fat finger?)")
    return None


class _Callables:
    def __init__(self, position_of: Callable[[str], Decimal], net_pnl: Callable[[], Decimal]) -> None:
        self.position = position_of
        self.net_pnl = net_pnl


class RiskGate(RiskEngine):
    """The risk engine over two plain functions instead of a portfolio (scripts, tests):
    set ``position_of`` and ``net_pnl``; until both are set the position cap and the loss limit
    are skipped."""

    def __init__(self, settings: RiskSettings, *, orders_today: int = 0) -> None:
        super().__init__(settings, orders_today=orders_today)
        self.position_of: Callable[[str], Decimal] | None = None
        self.net_pnl: Callable[[], Decimal] | None = None

    def _view(self) -> PortfolioView | None:
        if self.position_of is None or self.net_pnl is None:
            return None
        return _Callables(self.position_of, self.net_pnl)

