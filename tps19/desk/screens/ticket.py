"""Order ticket: type, amount, limit price, live validation, cost/fee/slippage estimate, review, confirm.

Every order kind: market, limit, post only, ioc (each may carry a stop-loss and a take-profit: a
bracket), stop market/limit, take profit (market/limit), trailing stop (``2%`` or a price
distance, optional activation price) and oco. The ticket shows each trigger's distance to the
market in % and bp, and a bracket's worst-case loss before review.

Paper: enter (review), enter (place). Live: enter (review), then the trader must type `y`;
enter at the live review does nothing but say so. Never one keypress from ticket to live order.
The ticket never sends anything itself: it dismisses with an ``OrderRequest`` and the app places it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from collections.abc import Callable
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from ...engine.events import BookEvent
from ...numbers import NumberError, parse_decimal

# the estimate is the engine's: the paper fill's book walk and the venue's fee rates
from ...engine.trading.book_walk import Estimate, estimate
from ...engine.trading.orders import (
    PROTECTIVE_TYPES,
    OrderRejected,
    OrderRequest,
    OrderType,
    executes_as,
    field_words,
    validate_order,
)
from ...engine.trading.review import bracket_worst_loss, trigger_distance

# (label, type) in the ticket's type list
TYPES = [("limit", "limit"), ("market", "market"), ("post only", "post_only"), ("ioc", "ioc"),
         ("stop market", "stop_market"), ("stop limit", "stop_limit"), ("take profit", "take_profit"),
         ("take profit limit", "take_profit_limit"), ("trailing stop", "trailing_stop"), ("oco", "oco")]
# which extra fields each type shows (entries: a bracket's stop-loss and take-profit)
FIELDS: dict[str, tuple[str, ...]] = {
    "limit": ("price", "sl", "tp"), "market": ("sl", "tp"), "post_only": ("price", "sl", "tp"),
    "ioc": ("price", "sl", "tp"), "stop_market": ("trigger",), "stop_limit": ("trigger", "price"),
    "take_profit": ("trigger",), "take_profit_limit": ("trigger", "price"),
    "trailing_stop": ("trail", "activation"), "oco": ("sl", "tp", "price"),
}
ALL_FIELDS = ("price", "trigger", "trail", "activation", "sl", "tp")


# Commas only as thousands separators: a decimal comma ("1,5") must not be read as fifteen.
_GROUPED = re.compile(r"[-+]?\d{1,3}(,\d{3})+(\.\d*)?")


def parse_typed_number(text: str, field: str) -> Decimal | None:
    """What the trader typed -> a positive, sane Decimal (None when blank); NumberError naming
    the field for anything else (NaN, infinity, 1e999999, 19 decimals, a decimal comma)."""
    t = text.strip().replace("_", "")
    if not t:
        return None
    if "," in t:
        if not _GROUPED.fullmatch(t):
            raise NumberError(field, "is not a number (decimals take a point; commas only group thousands)")
        t = t.replace(",", "")
    return parse_decimal(t, field, positive=True)


def ticket_order(symbol: str, side: str, otype: str, amount_text: str, price_text: str, market: dict | None,
                 ref_price: Decimal | None, extra: dict[str, str] | None = None) -> Any:
    """The ticket's fields as a validated order; OrderRejected with a one-line reason otherwise.
    ``extra``: the trigger fields' texts (trigger, trail, activation, sl, tp), used by the types
    that show them (``FIELDS``)."""
    return validate_order(ticket_request(symbol, side, otype, amount_text, price_text, extra), market,
                          ref_price=ref_price)


def ticket_request(symbol: str, side: str, otype: str, amount_text: str, price_text: str,
                   extra: dict[str, str] | None = None) -> OrderRequest:
    if not amount_text.strip():
        raise OrderRejected("enter an amount")
    shown = FIELDS.get(otype, ("price",))
    texts = {k: v for k, v in (extra or {}).items() if k in shown}
    try:
        amount = parse_typed_number(amount_text, "amount")
        price = parse_typed_number(price_text, "price") if "price" in shown else None
        kw: dict[str, Any] = {}
        for key, name in (("trigger", "trigger_price"), ("activation", "activation_price"), ("sl", "stop_loss_price"),
                          ("tp", "take_profit_price")):
            if texts.get(key, "").strip():
                kw[name] = parse_typed_number(texts[key], field_words(name))
        trail = texts.get("trail", "").strip()
        if trail:
            if trail.endswith("%"):
                kw["trailing_pct"] = parse_decimal(trail[:-1].strip(), field_words("trailing_pct"))
            else:
                kw["trailing_distance"] = parse_typed_number(trail, field_words("trailing_distance"))
    except NumberError as err:
        raise OrderRejected(str(err)) from None
    if amount is None:  # only underscores typed
        raise OrderRejected("enter an amount")
    return OrderRequest(symbol, side, otype, amount, price, **kw)


def at_trigger_text(v: Any) -> str:
    """What a validated protective order (or each leg of an OCO) sends when its level is reached.
    An OCO's price is its take-profit leg's limit; its stop-loss leg always sends a market order."""
    amount = f"{v.amount.normalize():f}"
    side = v.side.value
    fee = " (taker fee if it takes)"
    if v.type is OrderType.OCO:
        if v.price is None:
            return f"either leg: a market {side} of {amount}{fee}"
        return f"stop-loss: a market {side} of {amount}; take-profit: a limit {side} of {amount} @ {v.price:,f}{fee}"
    sends = executes_as(v.type)
    return f"a {sends.value} {side} of {amount}" + (f" @ {v.price:,f}" if v.price is not None else "") + fee


# A limit this far from the mid (as a fraction) is flagged at review: a sell limit at 1 on a 64k
# market is a typo that sells at whatever the bids are (the risk engine may also refuse it).
FAT_FINGER = Decimal("0.05")
FOLLOW_S = 0.2  # how often an open ticket looks for a newer book (its estimate follows the market)


def far_from_mid(side: str, price: Decimal | None, book: BookEvent | None, limit: Decimal = FAT_FINGER) -> str | None:
    """A one-line warning when a limit ``price`` is more than ``limit`` away from the book's mid."""
    if price is None or book is None or book.best_bid is None or book.best_ask is None:
        return None
    # the mid of the quoted prices in Decimal: a float mid reads "65,105.729999999996"
    mid = ((Decimal(repr(book.best_bid)) + Decimal(repr(book.best_ask))) / 2).normalize()
    if not mid:
        return None
    off = (price - mid) / mid
    if abs(off) <= limit:
        return None
    where = "above" if off > 0 else "below"
    crosses = (side == "buy" and off > 0) or (side == "sell" and off < 0)
    what = "it takes whatever the book offers" if crosses else "it will probably never fill"
    return f"limit {price:,f} is {abs(off) * 100:,.1f}% {where} the mid {mid:,f}: {what}"


class TicketScreen(ModalScreen[Any]):
    CSS_PATH = "ticket.tcss"
    BINDINGS = [
        Binding("escape", "back", "back / close"),
        Binding("enter", "go", "review / place", show=True),
        Binding("y", "confirm_live", "confirm (live)", show=False),
        Binding("ctrl+t", "toggle_type", "market/limit"),
    ]

    def __init__(self, *, mode: str, side: str, symbol: str, market: dict | None, book_fn: Any,
                 trading_available: bool, kill_engaged: bool = False,
                 admit_fn: Callable[[Any], str | None] | None = None,
                 venues: list[str] | None = None, venue_fn: Callable[[str], dict[str, Any]] | None = None,
                 **kw: Any) -> None:
        super().__init__(**kw)
        # several venues: a venue row chooses where the order goes; venue_fn(venue) gives that
        # venue's market, book_fn, admit_fn, trading_available and kill_engaged (its own book,
        # fees, limits and balance: the estimate and the checks are that venue's)
        self.venues = venues or []
        self.venue_fn = venue_fn
        self.venue: str | None = self.venues[0] if self.venues else None
        self.mode, self.side, self.symbol, self.market = mode, side, symbol, market
        self.book_fn = book_fn  # () -> latest BookEvent for the symbol (the ticket re-reads it on every change)
        self.trading_available = trading_available and OrderRequest is not None
        self.kill_engaged = kill_engaged
        # the engine's order entry (validation and the risk stage with the limits in force, the
        # free balance): OrderRequest -> the reason it would be refused, or None. One source of
        # limits for the ticket, the engine and the Risk pane; nothing is sent or counted.
        self.admit_fn = admit_fn
        self.stage = "edit"
        self.validated: Any = None
        self.error: str | None = None
        self.warning: str | None = None  # fat-finger warning shown at review
        self.estimate: Estimate | None = None
        self._book_seen: Any = None  # the book the estimate was computed from
        self._prefilled = ""  # the price field's pre-filled best price (compose)
        self.add_class(f"-{side}")
        if mode == "live":
            self.add_class("-live")

    def compose(self) -> ComposeResult:
        book = self.book_fn()
        ref = (book.best_bid if self.side == "buy" else book.best_ask) if book is not None else None
        pp = _pp(self.market)
        self._prefilled = f"{ref:.{pp}f}" if ref is not None else ""
        with Vertical() as v:
            v.border_title = self._title()
            if self.venues:
                with Horizontal():
                    yield Label("venue")
                    yield Select([(x, x) for x in self.venues], value=self.venues[0], allow_blank=False, id="venue",
                                 compact=True)
            with Horizontal():
                yield Label("type")
                yield Select(TYPES, value="limit", allow_blank=False, id="type", compact=True)
            with Horizontal():
                yield Label("amount")
                yield Input(placeholder=f"{self.symbol.split('/')[0]} amount", id="amount", compact=True)
            with Horizontal(id="row-price"):
                yield Label("price")
                yield Input(value=self._prefilled, placeholder="limit price", id="price", compact=True)
            for key, label, hint in (("trigger", "trigger", "trigger price"),
                                     ("trail", "trail", "2% or a price distance"),
                                     ("activation", "activate", "optional activation price"),
                                     ("sl", "stop-loss", "optional stop-loss price"),
                                     ("tp", "take-prof", "optional take-profit price")):
                with Horizontal(id=f"row-{key}"):
                    yield Label(label)
                    yield Input(placeholder=hint, id=key, compact=True)
            yield Static(id="check")
            yield Static(id="review", classes="review")
            yield Static(self._hint(), id="hint")

    def on_mount(self) -> None:
        self._show_fields()
        self.query_one("#amount", Input).focus()
        self._revalidate()
        self.set_interval(FOLLOW_S, self._follow_book, name="ticket-follow-book")

    def _follow_book(self) -> None:
        """A newer book: the estimate (what fills now, at what average, fee, slippage) is redone."""
        if self.stage == "sent" or self.book_fn() is self._book_seen:
            return
        if self.stage == "edit":
            self._revalidate()
        elif self.validated is not None:
            self._show_estimate(self.validated)

    # -- validation ------------------------------------------------------------------
    def _type(self) -> str:
        return str(self.query_one("#type", Select).value)

    def _hint(self) -> str:
        if self.stage == "review":
            return "LIVE: type y to send, escape to edit" if self.mode == "live" else "enter places the order, escape to edit"
        return "enter reviews · ctrl+t market/limit · escape closes"

    def on_input_changed(self, _: Input.Changed) -> None:
        self._revalidate()

    def _title(self) -> str:
        where = f" on {self.venue}" if self.venue else ""
        return f"{'LIVE ' if self.mode == 'live' else 'paper '}{self.side.upper()} {self.symbol}{where}"

    def on_select_changed(self, event: Select.Changed) -> None:
        if self.stage != "edit":  # the order under review is the one sent (its rows are disabled)
            return
        if event.select.id == "venue" and self.venue_fn is not None and event.value != self.venue:
            self.venue = str(event.value)
            parts = self.venue_fn(self.venue)
            self.market, self.book_fn, self.admit_fn = parts["market"], parts["book_fn"], parts["admit_fn"]
            self.trading_available = parts["trading_available"] and OrderRequest is not None
            self.kill_engaged = parts["kill_engaged"]
            self._book_seen = None
            self.query_one(Vertical).border_title = self._title()
        self._show_fields()
        self._revalidate()

    def _show_fields(self) -> None:
        """Only the fields the chosen type takes are shown (and read)."""
        otype = self._type()
        shown = FIELDS.get(otype, ())
        for key in ALL_FIELDS:
            self.query_one(f"#row-{key}").display = key in shown
        price = self.query_one("#price", Input)
        price.disabled = "price" not in shown
        oco = otype == "oco"
        # an OCO needs both levels, and its price is the take-profit leg's limit: the entry's
        # pre-filled best price there would turn that leg into a limit at today's price
        self.query_one("#sl", Input).placeholder = "stop-loss trigger (required)" if oco else "optional stop-loss price"
        self.query_one("#tp", Input).placeholder = ("take-profit trigger (required)" if oco
                                                    else "optional take-profit price")
        price.placeholder = "take-profit leg's limit (blank: market)" if oco else "limit price"
        if oco and price.value == self._prefilled:
            price.value = ""

    def _extra(self) -> dict[str, str]:
        return {k: self.query_one(f"#{k}", Input).value for k in ALL_FIELDS if k != "price"}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_go()

    def _revalidate(self) -> None:
        check = self.query_one("#check", Static)
        self.validated, self.error = None, None
        if not self.trading_available:
            self.error = "trading layer not available: orders cannot be placed"
            check.update(Text(self.error, style="bold"))
            return
        otype = self._type()
        protective_sell = self.side == "sell" and otype in {t.value for t in PROTECTIVE_TYPES} | {"oco"}
        if self.kill_engaged and not protective_sell:
            self.error = ("kill switch engaged: release it (f9) before placing orders (stops and take-profits "
                          "that sell may still be placed)")
            check.update(Text(self.error, style="bold"))
            return
        amount_text = self.query_one("#amount", Input).value
        book = self.book_fn()
        theme = self.app.current_theme
        if not amount_text.strip():
            self.error = "enter an amount"
            check.update(Text(self.error, style="dim"))
            return
        ref = None
        if book is not None:
            r = book.best_ask if self.side == "buy" else book.best_bid
            ref = Decimal(repr(r)) if r is not None else None
        try:
            v = ticket_order(self.symbol, self.side, otype, amount_text, self.query_one("#price", Input).value,
                             self.market, ref, self._extra())
        except OrderRejected as err:
            self.error = err.reason
            check.update(Text(err.reason, style="bold " + (theme.error or "red")))
            return
        refused = self.admit_fn(self._request(v)) if self.admit_fn else None
        if refused:
            self.error = refused
            check.update(Text(self.error, style="bold " + (theme.error or "red")))
            return
        self.validated = v
        self._show_estimate(v)

    def _show_estimate(self, v: Any) -> None:
        """One read of the book, one estimate, drawn in the panel and (in review) in the review box:
        two reads drew two moments of the book on one screen (fills now @ 65,315.65 in the panel,
        @ 65,315.85 in the review box) and left the trader to guess which holds."""
        book = self.book_fn()
        self._book_seen = book
        if v.protective:
            self.estimate = None
            self.warning = None
            self.query_one("#check", Static).update(self._trigger_table(v, book))
        else:
            self.estimate = estimate(self.side, v.type, v.amount, v.price, book, self.market)
            self.warning = far_from_mid(self.side, v.price, book) if v.type != "market" else None
            self.query_one("#check", Static).update(self._estimate_table(v, self.estimate, book))
        if self.stage == "review":
            self.query_one("#review", Static).update(self._review_text(v))

    def _levels(self, v: Any) -> list[tuple[str, Decimal]]:
        out = []
        for name, level in (("trigger", v.trigger_price), ("activation", v.activation_price),
                            ("stop-loss", v.stop_loss_price), ("take-profit", v.take_profit_price)):
            if level is not None:
                out.append((name, level))
        return out

    def _distance_rows(self, t: Table, v: Any, book: BookEvent | None) -> None:
        """Each level's distance to the market (the mid), in % and bp."""
        pp = _pp(self.market)
        mid = Decimal(repr(book.mid)) if book is not None and book.mid else None
        for name, level in self._levels(v):
            if mid is None:
                t.add_row(name, f"{level:,.{pp}f}  (no market yet)")
                continue
            pct, bp = trigger_distance(level, mid)
            where = "above" if pct > 0 else "below"
            t.add_row(name, f"{level:,.{pp}f}  {abs(pct):.2f}% ({abs(bp):,.0f} bp) {where} the mid")
        if v.trailing_pct is not None or v.trailing_distance is not None:
            trail = f"{v.trailing_pct.normalize():f}%" if v.trailing_pct is not None else f"{v.trailing_distance:,f}"
            t.add_row("trails", f"{trail} {'below the high' if v.side == 'sell' else 'above the low'}"
                                + ("" if v.activation_price is not None else " from now"))

    def _worst_loss(self, v: Any, est: Estimate | None) -> Decimal | None:
        """A bracket's loss if its stop-loss fills at its level (quote currency)."""
        if not v.is_bracket or v.stop_loss_price is None:
            return None
        entry = v.price if v.price is not None else (est.avg_price if est is not None else None)
        if entry is None:
            return None
        taker = v.type is OrderType.MARKET or (est is not None and est.taker_amount > 0)
        return bracket_worst_loss(v.side.value, v.amount, entry, v.stop_loss_price, self.market, entry_taker=taker)

    def _trigger_table(self, v: Any, book: BookEvent | None) -> Table:
        quote = self.symbol.split("/")[1] if "/" in self.symbol else ""
        t = Table.grid(padding=(0, 2))
        t.add_column(style="dim")
        t.add_column(justify="right")
        t.add_row("at trigger", at_trigger_text(v))
        self._distance_rows(t, v, book)
        if v.notional is not None:
            # a trailing stop's level moves: its notional is valued at the market now
            where = "at the level" if (v.price or v.trigger_price or v.stop_loss_price) else "at the market now"
            t.add_row("notional", f"{v.notional:,.2f} {quote} {where}")
        if v.side == "sell":
            t.add_row("kill switch", "keeps working (it only reduces a position)")
        for n in v.notes:
            t.add_row("note", n)
        return t

    def _estimate_table(self, v: Any, est: Estimate, book: BookEvent | None) -> Table:
        pp = _pp(self.market)
        quote = self.symbol.split("/")[1] if "/" in self.symbol else ""
        t = Table.grid(padding=(0, 2))
        t.add_column(style="dim")
        t.add_column(justify="right")
        t.add_row("notional", f"{est.notional:,.2f} {quote}" if est.notional is not None else "--")
        t.add_row("fee (est.)", f"{est.fee:,.4f} {quote}  ({est.fee_rate * 100:.3f}%)" if est.fee is not None else "--")
        if est.avg_price is not None:
            t.add_row("fills now", f"{est.taker_amount.normalize():f} @ avg {est.avg_price:,.{pp}f}")
            t.add_row("slippage", f"{est.slippage_bps:.1f} bp vs best" if est.slippage_bps is not None else "--")
        elif v.type != "market":
            t.add_row("fills now", "none: rests on the book")
        if est.short_book:
            t.add_row(Text("warning", style="bold"), "visible book is thinner than the amount")
        if v.is_bracket:
            self._distance_rows(t, v, book)
            loss = self._worst_loss(v, est)
            if loss is not None:
                t.add_row(Text("worst case", style="bold"), f"-{loss:,.2f} {quote} at the stop-loss (fees in; a gap loses more)")
        if self.warning:
            t.add_row(Text("WARNING", style="bold reverse " + (self.app.current_theme.warning or "yellow")),
                      Text(self.warning, style="bold"))
        for n in v.notes:
            t.add_row("note", n)
        return t

    # -- stages ------------------------------------------------------------------------
    def action_go(self) -> None:
        if self.stage == "edit":
            self._revalidate()
            if self.validated is None:
                self.app.bell()
                return
            self._to_review()
        elif self.stage == "review":
            if self.mode == "live":
                self.notify("LIVE order: type y to send it, escape to edit", severity="warning")
                return
            self._place()

    def action_confirm_live(self) -> None:
        if self.stage == "review" and self.mode == "live":
            self._place()

    def _to_review(self) -> None:
        v = self.validated
        self.stage = "review"
        self.add_class("-review")
        # the estimate action_go has just made, from the book the panel shows
        self.query_one("#review", Static).update(self._review_text(v))
        for w in self.query(Input):
            w.disabled = True
        # the order reviewed is the order sent: neither its type nor its venue changes in review (a
        # venue chosen there redrew the panel for the new venue under the old venue's review box,
        # and enter then sent the order to the new venue)
        for sel in self.query(Select):
            sel.disabled = True
        self.query_one("#hint", Static).update(self._hint())
        self.set_focus(None)
        # on a short terminal (80x24) the review and its "type y" line sit below the screen's edge:
        # the ticket scrolls so the review, the last thing to read before sending, is what shows
        box = self.query_one(Vertical)
        self.call_after_refresh(box.scroll_end, animate=False)

    def _review_text(self, v: Any) -> Text:
        """What the review box says: the order, its notional, what fills now (the same estimate as the
        panel above it), its levels, the worst case, the warning and how to send it."""
        pp = _pp(self.market)
        quote = self.symbol.split("/")[1] if "/" in self.symbol else ""
        price = f"{v.price:,.{pp}f}" if v.price is not None else "market"
        est = self.estimate
        # a market order's notional is the estimate's (what the book fills now), as in the panel above
        value = est.notional if v.price is None and est is not None and est.notional is not None else v.notional
        notional = f"{value:,.2f} {quote}" if value is not None else "--"
        head = "LIVE ORDER: REAL MONEY" if self.mode == "live" else "paper order"
        fills = (f"fills now {est.taker_amount.normalize():f} @ avg {est.avg_price:,.{pp}f}\n"
                 if est is not None and est.avg_price is not None else "")
        for name, level in self._levels(v):
            fills += f"{name} {level:,.{pp}f}\n"
        if v.trailing_pct is not None or v.trailing_distance is not None:
            fills += f"trailing {v.trailing_pct.normalize():f}%\n" if v.trailing_pct is not None else f"trailing {v.trailing_distance:,f}\n"
        loss = self._worst_loss(v, est)
        if loss is not None:
            fills += f"worst case -{loss:,.2f} {quote} at the stop-loss\n"
        warn = self.app.current_theme.warning or "yellow"
        return Text.assemble((head + "\n", "bold"), f"{v.side.upper()} {v.amount.normalize():f} {self.symbol} ",
                             f"{v.type} @ {price}\nnotional {notional}\n", fills,
                             (f"WARNING: {self.warning}\n" if self.warning else "", "bold reverse " + warn),
                             ("type y to send · escape to edit" if self.mode == "live" else "enter to place · escape to edit",
                              "bold"))

    def _place(self) -> None:
        v = self.validated
        if v is None:
            return
        self.stage = "sent"
        self.dismiss(self._request(v))

    @staticmethod
    def _request(v: Any) -> OrderRequest:
        """The validated order as the request the broker places (trigger fields and bracket included)."""
        return OrderRequest(v.symbol, v.side.value, v.type.value, v.amount, v.price,
                            trigger_price=v.trigger_price, trailing_pct=v.trailing_pct,
                            trailing_distance=v.trailing_distance, activation_price=v.activation_price,
                            stop_loss_price=v.stop_loss_price, take_profit_price=v.take_profit_price)

    def action_back(self) -> None:
        if self.stage == "review":
            self.stage = "edit"
            self.remove_class("-review")
            for w in self.query(Input):
                w.disabled = False
            for sel in self.query(Select):
                sel.disabled = False
            self._show_fields()
            self.query_one("#hint", Static).update(self._hint())
            self.query_one("#amount", Input).focus()
        else:
            self.dismiss(None)

    def action_toggle_type(self) -> None:
        if self.stage != "edit":
            return
        sel = self.query_one("#type", Select)
        sel.value = "market" if sel.value != "market" else "limit"


def _pp(market: dict | None) -> int:
    from ..widgets.fmt import price_decimals

    return price_decimals(market)
