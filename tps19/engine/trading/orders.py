"""One order model and state machine for paper and live trading, plus pre-trade validation.

States::

    new -> open -> partially_filled -> filled
    new -> unknown -> (any state new can reach, except unknown)
      \\       \\          \\-> cancelled / expired
       \\       \\-> filled / cancelled / expired
        \\-> partially_filled / filled / cancelled / rejected / expired

``partially_filled -> partially_filled`` is legal (another partial fill). Anything else raises
``IllegalTransition``. ``filled``, ``cancelled``, ``rejected`` and ``expired`` are terminal.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from enum import Enum
from collections.abc import Iterable
from typing import Any, Self

from ...numbers import NumberError, to_decimal
from ..events import now_ms


class OrderStatus(str, Enum):
    NEW = "new"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    # the venue's answer was ambiguous (5xx, timeout, lost reply): it may hold the order or not,
    # until a lookup by client order id settles it
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.NEW: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.OPEN, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}),
    S.OPEN: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
WORKING = frozenset({S.NEW, S.UNKNOWN, S.OPEN, S.PARTIALLY_FILLED})


class IllegalTransition(ValueError):
    pass


def check_transition(src: OrderStatus | str, dst: OrderStatus | str) -> None:
    src, dst = OrderStatus(src), OrderStatus(dst)
    if dst not in TRANSITIONS[src]:
        raise IllegalTransition(f"order cannot go from {src.value} to {dst.value}")


class RecordedEnum(str, Enum):
    """An enum whose records may hold a value outside it: ``parse`` reads such a value as ``"?"``
    (each subclass has the member ``UNKNOWN = "?"``)."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: str) -> Self:
        try:
            return cls(value)
        except ValueError:
            return cls("?")


class OrderType(RecordedEnum):
    MARKET = "market"
    LIMIT = "limit"
    POST_ONLY = "post_only"
    IOC = "ioc"
    # protective kinds (docs/orders.md): held until their trigger, then a market or limit order
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT = "take_profit"
    TAKE_PROFIT_LIMIT = "take_profit_limit"
    TRAILING_STOP = "trailing_stop"
    # a request for two protective legs sharing one OCO group (never a stored order's type)
    OCO = "oco"
    # only on records: a refused request's type that is none of the above (the reason names it)
    UNKNOWN = "?"


class Side(RecordedEnum):
    BUY = "buy"
    SELL = "sell"
    # only on records: a refused request's side, or a venue order that did not say
    UNKNOWN = "?"


SIDES = ("buy", "sell")
ENTRY_TYPES = (OrderType.MARKET, OrderType.LIMIT, OrderType.POST_ONLY, OrderType.IOC)
PROTECTIVE_TYPES = (OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT,
                    OrderType.TRAILING_STOP)
ORDER_TYPES = ENTRY_TYPES + PROTECTIVE_TYPES + (OrderType.OCO,)
# what a protective order becomes at its trigger
_EXECUTES_AS = {OrderType.STOP_MARKET: OrderType.MARKET, OrderType.TAKE_PROFIT: OrderType.MARKET,
                OrderType.TRAILING_STOP: OrderType.MARKET, OrderType.STOP_LIMIT: OrderType.LIMIT,
                OrderType.TAKE_PROFIT_LIMIT: OrderType.LIMIT}
# a stop protects against the price going the wrong way; a take-profit takes the right way
STOP_KINDS = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP})


def executes_as(otype: OrderType | str) -> OrderType:
    """The order type sent to the market: a protective kind's market or limit order, else itself."""
    t = OrderType.parse(str(otype))
    return _EXECUTES_AS.get(t, t)


def is_protective(otype: OrderType | str) -> bool:
    return OrderType.parse(str(otype)) in PROTECTIVE_TYPES


class TriggerState(RecordedEnum):
    """Where a protective order is: held with its trigger (``armed``), triggered and being sent
    (``triggered``), its market/limit order at the venue (``working``), or ended (cancelled,
    expired, refused) before its trigger was reached: no longer watched (``disarmed``)."""

    ARMED = "armed"
    TRIGGERED = "triggered"
    WORKING = "working"
    DISARMED = "disarmed"
    UNKNOWN = "?"


def new_client_order_id() -> str:
    """Unique, venue-safe (<= 36 chars, [A-Za-z0-9-]) id generated by TPS19 before sending."""
    return f"t19-{int(time.time() * 1000):x}-{secrets.token_hex(8)}"


def D(x: Any) -> Decimal:
    """Decimal from a ccxt number/str without binary-float noise (0.1 -> Decimal('0.1'))."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, float):
        return Decimal(repr(x))
    return Decimal(x)


def D_or_none(x: Any) -> Decimal | None:
    if x is None:
        return None
    try:
        d = D(x)
    except (InvalidOperation, ValueError, TypeError):
        return None
    return d if d.is_finite() else None


@dataclass(slots=True, frozen=True, kw_only=True)
class ProtectiveTerms:
    """What a protective order or a bracket adds to an order, as asked (OrderRequest) and as
    validated (ValidatedOrder). Keyword-only: each order's own fields keep their positions."""

    trigger_price: Decimal | None = None
    trailing_pct: Decimal | None = None
    trailing_distance: Decimal | None = None
    activation_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    # a bracket's protection as % of the entry's fill price (strategies' --stop-loss 2 = 2 %)
    stop_loss_pct: Decimal | None = None
    take_profit_pct: Decimal | None = None
    trailing_stop_pct: Decimal | None = None


@dataclass(slots=True, frozen=True)
class OrderRequest(ProtectiveTerms):
    """One order as asked. A protective kind takes ``trigger_price`` (a trailing stop
    ``trailing_pct`` or ``trailing_distance`` and an optional ``activation_price``); an entry
    (market/limit/post_only/ioc) given ``stop_loss_price`` and/or ``take_profit_price`` is a
    bracket; ``oco`` takes both and places two legs sharing one OCO group."""

    symbol: str
    side: str
    type: str
    amount: Decimal
    price: Decimal | None = None
    client_order_id: str | None = None
    oco_group: str | None = None
    parent_id: str | None = None


@dataclass(slots=True)
class OrderState:
    """In-memory order; mirrors the ``orders`` table row."""

    client_order_id: str
    mode: str
    exchange: str
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None
    status: OrderStatus = OrderStatus.NEW
    venue_order_id: str | None = None
    filled: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    fee: Decimal = Decimal(0)
    reason: str | None = None
    adopted: bool = False
    created_ms: int = field(default_factory=now_ms)
    updated_ms: int = field(default_factory=now_ms)
    # protective orders (None on plain entries)
    trigger_price: Decimal | None = None
    trailing_pct: Decimal | None = None
    trailing_distance: Decimal | None = None
    activation_price: Decimal | None = None
    high_water: Decimal | None = None  # trailing: the best price since activation (sell: high, buy: low)
    placement: str | None = None  # "emulated" (held by TPS19) | "venue" (venue-native)
    trigger_state: TriggerState | None = None
    triggered_ms: int | None = None
    checked_ms: int | None = None  # when the trigger was last compared with the market (blind-window check)
    oco_group: str | None = None  # legs of one group: one filling cancels the others
    parent_id: str | None = None  # a bracket leg's entry
    # a bracket entry's protection, placed as an OCO sized to what fills
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    stop_loss_pct: Decimal | None = None
    take_profit_pct: Decimal | None = None
    trailing_stop_pct: Decimal | None = None

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled

    @property
    def protective(self) -> bool:
        return self.type in PROTECTIVE_TYPES

    @property
    def held(self) -> bool:
        """Held by TPS19's emulator: armed, or triggered and not yet handed to the venue."""
        return (self.placement == "emulated" and self.status is OrderStatus.NEW
                and self.trigger_state in (TriggerState.ARMED, TriggerState.TRIGGERED))

    @property
    def is_bracket(self) -> bool:
        return (not self.protective and any(x is not None for x in (
            self.stop_loss_price, self.take_profit_price, self.stop_loss_pct, self.take_profit_pct,
            self.trailing_stop_pct)))

    @property
    def exec_type(self) -> OrderType:
        return executes_as(self.type)

    @property
    def is_working(self) -> bool:
        return self.status in WORKING

    def transition(self, dst: OrderStatus | str, reason: str | None = None) -> OrderStatus:
        """Move to ``dst`` (raises IllegalTransition); returns the previous status."""
        dst = OrderStatus(dst)
        check_transition(self.status, dst)
        prev = self.status
        self.status = dst
        if dst in (OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED) \
                and self.trigger_state == TriggerState.ARMED:
            self.trigger_state = TriggerState.DISARMED  # an armed stop cancelled is no longer armed
        if reason is not None:
            self.reason = reason
        self.updated_ms = now_ms()
        return prev

    def add_fill(self, price: Decimal, amount: Decimal, fee_quote: Decimal = Decimal(0)) -> None:
        """Book a fill's size/price into filled and avg_price (status is moved separately)."""
        if amount <= 0:
            raise ValueError("fill amount must be positive")
        total = self.filled + amount
        if self.avg_price is None or self.filled == 0:
            self.avg_price = price
        else:
            self.avg_price = (self.avg_price * self.filled + price * amount) / total
        self.filled = total
        self.fee += fee_quote
        self.updated_ms = now_ms()

    def status_after_fill(self) -> OrderStatus:
        return OrderStatus.FILLED if self.filled >= self.amount else OrderStatus.PARTIALLY_FILLED


    def copy(self) -> OrderState:
        return replace(self)


# --------------------------------------------------------------------------------------------
# Pre-trade validation against a ccxt market dict
# --------------------------------------------------------------------------------------------

# ccxt precision modes (ccxt.base.decimal_to_precision)
DECIMAL_PLACES = 2
SIGNIFICANT_DIGITS = 3
TICK_SIZE = 4


# A refusal reads in the words the trader sees on the ticket, whichever door the order came in
# by (desk ticket, control API, strategy): one computation, the same words everywhere.
FIELD_WORDS: dict[str, str] = {
    "amount": "amount", "price": "price", "trigger_price": "trigger price", "trailing_pct": "trailing %",
    "trailing_distance": "trailing distance", "activation_price": "activation price",
    "stop_loss_price": "stop-loss", "take_profit_price": "take-profit", "stop_loss_pct": "stop-loss %",
    "take_profit_pct": "take-profit %", "trailing_stop_pct": "trailing stop %",
}


def field_words(name: str) -> str:
    """An order field as a trader names it (``stop_loss_price`` -> ``stop-loss``)."""
    return FIELD_WORDS.get(name, name.replace("_", " "))


def type_words(otype: OrderType | str) -> str:
    """An order type as a trader names it (``stop_market`` -> ``stop market``, ``oco`` -> ``OCO``)."""
    v = otype.value if isinstance(otype, OrderType) else str(otype)
    return {"oco": "OCO", "ioc": "IOC"}.get(v, v.replace("_", " "))


class OrderRejected(Exception):
    """A pre-trade check failed; ``reason`` is one line for the trader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True, frozen=True)
class ValidatedOrder(ProtectiveTerms):
    symbol: str
    side: Side
    type: OrderType
    amount: Decimal
    price: Decimal | None
    notional: Decimal | None  # amount * (limit price, else trigger, else reference price)
    notes: tuple[str, ...] = ()  # what rounding changed

    @property
    def protective(self) -> bool:
        """A protective order or an OCO: it only ever reduces a position (reduce-only on spot)."""
        return self.type in PROTECTIVE_TYPES or self.type is OrderType.OCO

    @property
    def is_bracket(self) -> bool:
        return not self.protective and any(x is not None for x in (
            self.stop_loss_price, self.take_profit_price, self.stop_loss_pct, self.take_profit_pct,
            self.trailing_stop_pct))


def _step(precision: Any, mode: int) -> Decimal | None:
    if precision is None:
        return None
    p = D(precision)
    if mode == TICK_SIZE:
        return p if p > 0 else None
    if mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(p))
    return None  # SIGNIFICANT_DIGITS is handled separately


# Enough digits that rounding a validated number (< 1e15, <= 18 decimals: 33 digits) to any
# market step is exact; the default context's 28 would silently round the quotient first.
_ROUNDING_PREC = 80


def round_to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """``value`` rounded to a multiple of ``step``, exactly. Raises ``decimal.DecimalException``
    (an ArithmeticError) for values no market could trade, e.g. 1e999999 or NaN."""
    with localcontext() as ctx:
        ctx.prec = _ROUNDING_PREC
        n = (value / step).to_integral_value(rounding=rounding)
        return (n * step).normalize() if n != 0 else Decimal(0)


def _round_sig(value: Decimal, digits: int, rounding: str) -> Decimal:
    if value == 0:
        return value
    exp = value.adjusted() - digits + 1
    with localcontext() as ctx:
        ctx.prec = _ROUNDING_PREC
        return value.quantize(Decimal(1).scaleb(exp), rounding=rounding)


def _checked(value: Any, field: str) -> Decimal:
    """A trader's amount or price: positive, finite, below 1e15, at most 18 decimals."""
    try:
        return to_decimal(value, field_words(field), positive=True)
    except NumberError as err:
        raise OrderRejected(str(err)) from None


def _limit(market: dict, kind: str, bound: str) -> Decimal | None:
    return D_or_none(((market.get("limits") or {}).get(kind) or {}).get(bound))


def validate_order(
    req: OrderRequest,
    market: dict | None,
    *,
    precision_mode: int = TICK_SIZE,
    ref_price: Decimal | None = None,
) -> ValidatedOrder:
    """Check and round an order against the market's precision and limits.

    Amount rounds down to the step (never more than asked). A limit price rounds to the tick
    on the trader's side: a buy down, a sell up (never a worse price than asked). A protective
    order's amount is not rounded (it must match what it protects: off the step is refused);
    its trigger rounds to the nearest tick. Raises ``OrderRejected`` with a reason; nothing
    invalid reaches a venue.
    """
    if market is None:
        raise OrderRejected(f"unknown market {req.symbol}")
    if market.get("active") is False:
        raise OrderRejected(f"market {req.symbol} is not tradable")
    if req.side not in SIDES:
        raise OrderRejected(f"side must be buy or sell, not {req.side!r}")
    otype = OrderType.parse(req.type)
    if otype not in ORDER_TYPES:
        raise OrderRejected(f"order type must be one of {', '.join(t.value for t in ORDER_TYPES)}, "
                            f"not {req.type!r}") from None
    amount = _checked(req.amount, "amount")
    if otype in PROTECTIVE_TYPES or otype is OrderType.OCO:
        return _validate_protective(req, otype, amount, market, precision_mode, ref_price)
    price: Decimal | None = None
    if otype is OrderType.MARKET:
        if req.price is not None:
            raise OrderRejected("a market order takes no price")
    else:
        if req.price is None:
            raise OrderRejected(f"a {type_words(otype)} order needs a price")
        price = _checked(req.price, "price")
    _no_trigger_fields(req, otype)
    try:
        amount, price, notes = _round(req, amount, price, market, precision_mode)
    except (ArithmeticError, ValueError, TypeError):
        # the inputs are sane, so only a market with absurd precision data gets here
        raise OrderRejected(f"{req.symbol}'s precision data cannot round this order") from None
    # a sell rounds its price up to the tick: that can cross the size limit
    amount = _checked(amount, "amount")
    price = _checked(price, "price") if price is not None else None
    if ref_price is not None and not (isinstance(ref_price, Decimal) and ref_price.is_finite()):
        ref_price = None  # a broken quote is no reference
    v = _check_limits(req, otype, amount, price, market, ref_price, notes)
    bracket = _bracket(req, market, precision_mode, price if price is not None else ref_price, notes)
    return replace(v, notes=tuple(notes), **bracket) if bracket else v


def _no_trigger_fields(req: OrderRequest, otype: OrderType) -> None:
    for name in ("trigger_price", "trailing_pct", "trailing_distance", "activation_price"):
        if getattr(req, name) is not None:
            raise OrderRejected(f"a {type_words(otype)} order takes no {field_words(name)} (that is for stop and "
                                "take-profit kinds)")


def _pct(value: Any, name: str, *, below_100: bool = True) -> Decimal:
    try:
        d = to_decimal(value, field_words(name))
    except NumberError as err:
        raise OrderRejected(str(err)) from None
    if d <= 0 or (below_100 and d >= 100):
        raise OrderRejected(f"{field_words(name)} must be above 0 and below 100 (a percentage), not {d:f}")
    return d


def _trigger(value: Any, name: str, side: str, market: dict, precision_mode: int, notes: list[str]) -> Decimal:
    """A trigger level: positive, rounded to the nearest tick (noted when that moved it)."""
    p = _checked(value, name)
    prec = (market.get("precision") or {}).get("price")
    try:
        if precision_mode == SIGNIFICANT_DIGITS and prec is not None:
            new = _round_sig(p, int(prec), ROUND_HALF_EVEN)
        else:
            step = _step(prec, precision_mode)
            new = round_to_step(p, step, ROUND_HALF_EVEN) if step is not None else p
    except (ArithmeticError, ValueError, TypeError):
        raise OrderRejected(f"{market.get('symbol', '?')}'s precision data cannot round the {field_words(name)}") from None
    if new <= 0:
        raise OrderRejected(f"{field_words(name)} {p:f} is below the tick size")
    if new != p:
        notes.append(f"{field_words(name)} {p:f} rounded to {new:f}")
    return new


def _order_of_levels(side: str, stop: Decimal | None, take: Decimal | None, what: str) -> None:
    """A sell protects a long: its take-profit above its stop (a buy, covering a short: below)."""
    if stop is None or take is None:
        return
    if side == "sell" and take <= stop:
        raise OrderRejected(f"take-profit {take:f} is not above the stop-loss {stop:f}: on a long ({what}) "
                            "the take-profit must be above the stop")
    if side == "buy" and take >= stop:
        raise OrderRejected(f"take-profit {take:f} is not below the stop-loss {stop:f}: on a short ({what}) "
                            "the take-profit must be below the stop")


def _validate_protective(req: OrderRequest, otype: OrderType, amount: Decimal, market: dict, precision_mode: int,
                         ref_price: Decimal | None) -> ValidatedOrder:
    notes: list[str] = []
    side = req.side
    for name in ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct"):
        if getattr(req, name) is not None:
            raise OrderRejected(f"a {field_words(name)} belongs to an entry (a bracket), not to a {type_words(otype)} order")
    # the amount must be exactly what it protects: off the step it is refused, not rounded
    prec = market.get("precision") or {}
    astep = _step(prec.get("amount"), precision_mode) if precision_mode != SIGNIFICANT_DIGITS else None
    if astep is not None:
        try:
            on_step = round_to_step(amount, astep, ROUND_DOWN)
        except ArithmeticError:
            raise OrderRejected(f"{req.symbol}'s precision data cannot check this amount") from None
        if on_step != amount:
            raise OrderRejected(f"amount {amount:f} is off the amount step {astep:f} of {req.symbol} "
                                f"(nearest below: {on_step:f})")
    trigger = trailing_pct = trailing_distance = activation = stop = take = None
    price: Decimal | None = None
    if otype is OrderType.OCO:
        if req.trigger_price is not None or req.trailing_pct is not None or req.trailing_distance is not None:
            raise OrderRejected("an OCO takes a stop-loss and a take-profit, not a trigger price or a trail")
        if req.stop_loss_price is None or req.take_profit_price is None:
            raise OrderRejected("an OCO needs both a stop-loss and a take-profit")
        stop = _trigger(req.stop_loss_price, "stop_loss_price", side, market, precision_mode, notes)
        take = _trigger(req.take_profit_price, "take_profit_price", side, market, precision_mode, notes)
        _order_of_levels(side, stop, take, f"this {side} OCO")
        if req.price is not None:  # the take-profit leg as a limit order at this price
            price = _checked(req.price, "price")
    else:
        if req.stop_loss_price is not None or req.take_profit_price is not None:
            raise OrderRejected(f"a {type_words(otype)} order takes a trigger price; a stop-loss and a take-profit "
                                "belong to an entry (a bracket) or an OCO")
        if executes_as(otype) is OrderType.MARKET:
            if req.price is not None:
                raise OrderRejected(f"a {type_words(otype)} order takes no limit price (it sends a market order at its "
                                    "trigger)")
        else:
            if req.price is None:
                raise OrderRejected(f"a {type_words(otype)} order needs a limit price (the order it sends at its trigger)")
            price = _checked(req.price, "price")
        if otype is OrderType.TRAILING_STOP:
            if req.trigger_price is not None:
                raise OrderRejected("a trailing stop takes a trailing % or a trailing distance, not a trigger price")
            if (req.trailing_pct is None) == (req.trailing_distance is None):
                raise OrderRejected("a trailing stop needs one of a trailing % or a trailing distance")
            if req.trailing_pct is not None:
                trailing_pct = _pct(req.trailing_pct, "trailing_pct")
            else:
                trailing_distance = _checked(req.trailing_distance, "trailing_distance")
            if req.activation_price is not None:
                activation = _trigger(req.activation_price, "activation_price", side, market, precision_mode, notes)
        else:
            if req.trailing_pct is not None or req.trailing_distance is not None or req.activation_price is not None:
                raise OrderRejected(f"a {type_words(otype)} order takes no trailing %, trailing distance or "
                                    "activation price")
            if req.trigger_price is None:
                raise OrderRejected(f"a {type_words(otype)} order needs a trigger price")
            trigger = _trigger(req.trigger_price, "trigger_price", side, market, precision_mode, notes)
    if price is not None:
        try:
            _, price, more = _round(req, amount, price, market, precision_mode)
        except (ArithmeticError, ValueError, TypeError):
            raise OrderRejected(f"{req.symbol}'s precision data cannot round this order") from None
        notes.extend(more)
    if ref_price is not None and not (isinstance(ref_price, Decimal) and ref_price.is_finite()):
        ref_price = None
    ref = price or trigger or stop or ref_price
    v = _check_limits(req, otype, amount, price, market, ref, notes)
    return replace(v, trigger_price=trigger, trailing_pct=trailing_pct, trailing_distance=trailing_distance,
                   activation_price=activation, stop_loss_price=stop, take_profit_price=take)


def _bracket(req: OrderRequest, market: dict, precision_mode: int, entry: Decimal | None,
             notes: list[str]) -> dict[str, Any]:
    """An entry's protection (a bracket): levels rounded and in order around the entry price."""
    out: dict[str, Any] = {}
    side = req.side
    exit_side = "sell" if side == "buy" else "buy"
    if req.stop_loss_price is not None:
        out["stop_loss_price"] = _trigger(req.stop_loss_price, "stop_loss_price", exit_side, market, precision_mode, notes)
    if req.take_profit_price is not None:
        out["take_profit_price"] = _trigger(req.take_profit_price, "take_profit_price", exit_side, market,
                                            precision_mode, notes)
    for name in ("stop_loss_pct", "take_profit_pct", "trailing_stop_pct"):
        if getattr(req, name) is not None:
            out[name] = _pct(getattr(req, name), name, below_100=name != "take_profit_pct")
    if "stop_loss_price" in out and "stop_loss_pct" in out:
        raise OrderRejected("give the stop-loss as a price or as a percentage, not both")
    if "take_profit_price" in out and "take_profit_pct" in out:
        raise OrderRejected("give the take-profit as a price or as a percentage, not both")
    stop, take = out.get("stop_loss_price"), out.get("take_profit_price")
    _order_of_levels(exit_side, stop, take, f"this {side} entry's bracket")
    if entry is not None:
        long = side == "buy"
        if stop is not None and (stop >= entry if long else stop <= entry):
            raise OrderRejected(f"stop-loss {stop:f} is on the wrong side of the entry price {entry:f}: "
                                f"a {'long' if long else 'short'}'s stop must be {'below' if long else 'above'} it")
        if take is not None and (take <= entry if long else take >= entry):
            raise OrderRejected(f"take-profit {take:f} is on the wrong side of the entry price {entry:f}: "
                                f"a {'long' if long else 'short'}'s take-profit must be {'above' if long else 'below'} it")
    return out


def _round(req: OrderRequest, amount: Decimal, price: Decimal | None, market: dict,
           precision_mode: int) -> tuple[Decimal, Decimal | None, list[str]]:
    notes: list[str] = []
    prec = market.get("precision") or {}
    if precision_mode == SIGNIFICANT_DIGITS:
        if prec.get("amount") is not None:
            new = _round_sig(amount, int(prec["amount"]), ROUND_DOWN)
            if new != amount:
                notes.append(f"amount {amount} rounded to {new}")
            amount = new
        if price is not None and prec.get("price") is not None:
            new = _round_sig(price, int(prec["price"]), ROUND_FLOOR if req.side == "buy" else ROUND_CEILING)
            if new != price:
                notes.append(f"price {price} rounded to {new}")
            price = new
    else:
        astep = _step(prec.get("amount"), precision_mode)
        if astep is not None:
            new = round_to_step(amount, astep, ROUND_DOWN)
            if new == 0:
                raise OrderRejected(f"amount {amount} is below the amount step {astep} of {req.symbol}")
            if new != amount:
                notes.append(f"amount {amount} rounded down to {new} (step {astep})")
            amount = new
        pstep = _step(prec.get("price"), precision_mode)
        if price is not None and pstep is not None:
            new = round_to_step(price, pstep, ROUND_FLOOR if req.side == "buy" else ROUND_CEILING)
            if new == 0:
                raise OrderRejected(f"price {price} is below the tick size {pstep} of {req.symbol}")
            if new != price:
                notes.append(f"price {price} rounded to {new} (tick {pstep})")
            price = new
    return amount, price, notes


def _check_limits(req: OrderRequest, otype: OrderType, amount: Decimal, price: Decimal | None, market: dict,
                  ref_price: Decimal | None, notes: list[str]) -> ValidatedOrder:
    amin, amax = _limit(market, "amount", "min"), _limit(market, "amount", "max")
    if amin is not None and amount < amin:
        raise OrderRejected(f"amount {amount} is below the minimum {amin} for {req.symbol}")
    if amax is not None and amount > amax:
        raise OrderRejected(f"amount {amount} is above the maximum {amax} for {req.symbol}")
    if price is not None:
        pmin, pmax = _limit(market, "price", "min"), _limit(market, "price", "max")
        if pmin is not None and price < pmin:
            raise OrderRejected(f"price {price} is below the minimum {pmin} for {req.symbol}")
        if pmax is not None and price > pmax:
            raise OrderRejected(f"price {price} is above the maximum {pmax} for {req.symbol}")
    ref = price if price is not None else ref_price
    notional = amount * ref if ref is not None else None
    cmin, cmax = _limit(market, "cost", "min"), _limit(market, "cost", "max")
    if notional is not None:
        if cmin is not None and notional < cmin:
            raise OrderRejected(f"order value {notional} is below the minimum {cmin} for {req.symbol}")
        if cmax is not None and notional > cmax:
            raise OrderRejected(f"order value {notional} is above the maximum {cmax} for {req.symbol}")
    elif cmin is not None or cmax is not None:
        raise OrderRejected(f"no reference price for {req.symbol} to check the minimum order value")
    return ValidatedOrder(req.symbol, Side(req.side), otype, amount, price, notional, tuple(notes))


def trigger_hit(otype: OrderType, side: str, trigger: Decimal, price: Decimal) -> bool:
    """Does ``price`` reach the trigger? A sell stop fires at or below its level, a sell
    take-profit at or above; a buy mirrors both."""
    stop = otype in STOP_KINDS
    below = (side == "sell") == stop
    return price <= trigger if below else price >= trigger


def trailing_trigger(side: str, high_water: Decimal, pct: Decimal | None, distance: Decimal | None) -> Decimal:
    """A trailing stop's level from its best price since activation: a sell trails below the
    high, a buy above the low."""
    off = high_water * pct / 100 if pct is not None else (distance or Decimal(0))
    return high_water - off if side == "sell" else high_water + off


def one_reserve_per_list(orders: Iterable[OrderState]) -> list[OrderState]:
    """Working orders as the venue reserves for them: a venue-native OCO list's legs share one
    reserve (the venue holds the larger leg's need once), so only its larger leg counts."""
    out: list[OrderState] = []
    lists: dict[str, OrderState] = {}
    for o in orders:
        if o.placement == "venue" and o.oco_group and o.is_working:
            cur = lists.get(o.oco_group)
            if cur is None or o.remaining > cur.remaining:
                lists[o.oco_group] = o
        else:
            out.append(o)
    return out + list(lists.values())


def fee_rate(market: dict | None, liquidity: str) -> Decimal:
    """The market's maker/taker rate as Decimal (ccxt's 0.0025 float -> Decimal('0.0025'))."""
    if not market:
        return Decimal(0)
    v = market.get("maker" if liquidity == "maker" else "taker")
    d = D_or_none(v)
    return d if d is not None and not math.isnan(float(d)) else Decimal(0)


__all__ = [
    "ENTRY_TYPES", "PROTECTIVE_TYPES", "STOP_KINDS", "TriggerState", "executes_as", "is_protective", "trigger_hit",
    "trailing_trigger", "one_reserve_per_list",
    "OrderStatus", "OrderType", "Side", "OrderState", "OrderRequest", "OrderRejected", "IllegalTransition",
    "TRANSITIONS", "TERMINAL", "WORKING", "ValidatedOrder", "validate_order", "check_transition",
    "new_client_order_id", "fee_rate", "D", "D_or_none", "round_to_step", "ROUND_HALF_EVEN",
]
