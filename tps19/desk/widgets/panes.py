"""Positions, balances, open orders, risk, signals and log panes.

The table-like panes are ``RowsPane``s: their header and totals stay put, their rows scroll and
the border says how many rows are out of view (nothing is ever cut off silently).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from .fmt import fnum, hms
from .rows import Cell, Col, RowsPane

ZERO = Decimal(0)


def _dec(x: Any) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x or 0))


def amount_text(x: Any) -> str:
    """A booked amount as typed, without exponent or trailing zeros (0.0100 -> 0.01)."""
    d = _dec(x)
    return "0" if d == 0 else f"{d.normalize():,f}"


class PnlStyle:
    """Colours for signed money from the current theme (success up, error down)."""

    def __init__(self, theme: Any) -> None:
        self.up, self.down = theme.success or "green", theme.error or "red"

    def __call__(self, x: Any, places: int = 2) -> Text:
        if x is None:
            return Text("--", style="dim")
        v = _dec(x)
        return Text(fnum(v, places, sign=True), style=self.up if v > 0 else self.down if v < 0 else "")


VENUE = Col("venue", right=False)
# the open-orders columns a narrow several-venue pane leaves out first (Col.hide): never venue,
# symbol, side, amount or price
VENUE_ORDER_HIDE = {"id": 1, "filled": 2, "oco": 3, "status": 4, "type": 5, "trigger": 6}


def venue_total_rows(totals: dict[str, Any], pnl: PnlStyle) -> list[list[Cell]]:
    """The P&L rows of several venues, as the engine adds them up (VenueSet.totals, the very
    figures of the headless ``venues`` line): one per venue in its own currency, then all venues
    in the reporting currency. Columns: venue, what, net, unrealized, realized, fees."""
    rows: list[list[Cell]] = []
    for v, r in totals["venues"].items():
        if r.get("state") != "up":
            rows.append([v, Text("down", style="bold"), "", "", "", ""])
            continue
        rows.append([v, Text(f"net {r.get('currency', '')}", style="dim"), pnl(r.get("net_pnl")),
                     pnl(r.get("unrealized_pnl")), pnl(r.get("realized_pnl")), fnum(r.get("fees"), 2)])
    t = totals["total"]
    left_out = totals.get("not_in_total")
    what = f"net {totals['currency']}" + (f" (without {', '.join(left_out)})" if left_out else "")
    rows.append([Text("all venues", style="bold"), Text(what, style="bold"), pnl(t.get("net_pnl")),
                 pnl(t.get("unrealized_pnl")), pnl(t.get("realized_pnl")), fnum(t.get("fees"), 2)])
    return rows


class PositionsPane(RowsPane):
    """Per symbol: what the account holds, what TPS19 traded (net), average entry, the mark and
    the P&L it implies; totals pinned at the bottom. Redrawn on every PositionEvent, which the
    engine publishes when the mark moves, not only on fills. With several venues each row names
    its venue and the totals are the engine's per venue and over all venues."""

    # too narrow for every column (two venues at 120 columns): held goes first (the Balances pane
    # shows the holding), then entry (the unrealized P&L stays), never a P&L figure cut short
    COLS = (Col("symbol", right=False), Col("held", hide=1), Col("net"), Col("entry", hide=2), Col("mark"),
            Col("unreal."), Col("realized"), Col("fees"))

    def show_positions(self, positions: list[tuple[str, Any]], price_places: dict[tuple[str, str], int],
                       available: bool, *, venues: bool = False, totals: dict[str, Any] | None = None) -> None:
        """``positions``: (venue, PositionEvent); ``venues``: several venues run: rows name their
        venue and the pinned rows are ``totals`` (VenueSet.totals(); None: not available). With one
        venue the total row adds its rows."""
        key = (available, venues, tuple((v, p.symbol, p.base_balance, p.net_position, p.avg_entry, p.mark, p.unrealized_pnl,
                                 p.realized_pnl, p.fees) for v, p in positions),
               None if totals is None else (tuple((v, tuple(r.items())) for v, r in totals["venues"].items()),
                                            tuple(totals["total"].items())))
        if self.unchanged(key):
            return
        if not available:
            self.message("trading layer not available")
            return
        shown = [(v, p) for v, p in positions
                 if p.base_balance != 0 or p.net_position != 0 or p.realized_pnl != 0 or p.fees != 0]
        if not shown:
            self.message("no positions")
            return
        pnl = PnlStyle(self.app.current_theme)
        rows, keys = [], []
        tot_u, tot_r, tot_f = ZERO, ZERO, ZERO
        for v, p in sorted(shown, key=lambda vp: (vp[1].symbol, vp[0])):
            pp = price_places.get((v, p.symbol), 2)
            row: list[Cell] = [p.symbol, amount_text(p.base_balance), amount_text(p.net_position), fnum(p.avg_entry, pp),
                               fnum(p.mark, pp), pnl(p.unrealized_pnl), pnl(p.realized_pnl), fnum(p.fees, 2)]
            rows.append([v, *row] if venues else row)
            keys.append(f"{v}:{p.symbol}")
            tot_u += _dec(p.unrealized_pnl)
            tot_r += _dec(p.realized_pnl)
            tot_f += _dec(p.fees)
        if venues:
            # venue | what (symbol column) | net (held..mark columns folded) | unreal. | realized | fees
            pinned = ([[r[0], r[1], "", "", "", r[2], r[3], r[4], r[5]] for r in venue_total_rows(totals, pnl)]
                      if totals is not None else [[Text("totals unavailable (see the log)", style="dim")]])
            self.show((VENUE, *self.COLS), rows, pinned=pinned, keys=keys)
            return
        net = tot_u + tot_r - tot_f
        total: list[str | Text] = [Text("total"), "", "", "", Text(f"net {fnum(net, 2, sign=True)}", style="bold"),
                 pnl(tot_u), pnl(tot_r), fnum(tot_f, 2)]
        self.show(self.COLS, rows, pinned=[total], keys=keys)


class BalancesPane(RowsPane):
    """Per currency: free, locked in working orders (free + locked is the holding) and its value;
    equity pinned below."""

    COLS = (Col("ccy", right=False), Col("free"), Col("locked"), Col("value"))

    def show_balances(self, update: Any, available: bool) -> None:
        """``update``: the engine's latest PortfolioUpdate (None until the first one)."""
        if self.unchanged((available, update)):
            return
        if not available:
            self.message("trading layer not available")
            return
        if update is None:
            self.message("waiting for the portfolio...")
            return
        def amt(x: Any, ccy: str) -> str:
            # the valuation currency in cents; others to 8 decimals (satoshis), trailing zeros dropped
            return fnum(x, 2) if ccy == update.valuation else amount_text(_dec(x).quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN))

        excluded = set(getattr(update, "excluded", ()))

        def value(b: Any) -> Any:
            if b.value is not None:
                return fnum(b.value, 2)
            # excluded: no market values it (not in equity); unpriced: its mark has not come yet
            return Text("excluded" if b.currency in excluded else "unpriced", style="dim")

        rows = [[b.currency, amt(b.free, b.currency), amt(b.locked, b.currency), value(b)] for b in update.balances]
        equity: list[str | Text] = [Text("equity"), "", Text(update.valuation, style="dim"), fnum(update.equity, 2)]
        self.show(self.COLS, rows, pinned=[equity], keys=[b.currency for b in update.balances],
                  empty="no balances")

    def show_venue_balances(self, updates: dict[str, Any], available: dict[str, bool],
                            totals: dict[str, Any] | None) -> None:
        """Several venues: every venue's balances, each row naming its venue; pinned below, each
        venue's equity (its currency, and the reporting currency when they differ) and the total
        over all venues, as VenueSet.totals() computes them (the headless ``venues`` line)."""
        if self.unchanged(("venues", tuple(updates.items()), tuple(available.items()),
                           None if totals is None else (tuple((v, tuple(r.items())) for v, r in totals["venues"].items()),
                                                        tuple(totals["total"].items())))):
            return
        rows: list[list[Cell]] = []
        keys = []
        for v, update in updates.items():
            if not available.get(v):
                rows.append([v, Text("trading layer not available", style="dim"), "", "", ""])
                keys.append(f"{v}:")
                continue
            if update is None:
                rows.append([v, Text("waiting for the portfolio...", style="dim"), "", "", ""])
                keys.append(f"{v}:")
                continue
            excluded = set(getattr(update, "excluded", ()))
            for b in update.balances:
                places = 2 if b.currency == update.valuation else None
                def amt(x: Any) -> str:
                    return fnum(x, 2) if places == 2 else amount_text(_dec(x).quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN))
                val: Cell = fnum(b.value, 2) if b.value is not None else Text(
                    "excluded" if b.currency in excluded else "unpriced", style="dim")
                rows.append([v, b.currency, amt(b.free), amt(b.locked), val])
                keys.append(f"{v}:{b.currency}")
        pinned: list[list[Cell]] = []
        if totals is not None:
            rep = totals["currency"]
            for v, r in totals["venues"].items():
                if r.get("state") != "up":
                    pinned.append([v, Text("equity", style="dim"), "", Text("down", style="bold"), ""])
                    continue
                ccy = r.get("currency", "")
                pinned.append([v, Text("equity", style="dim"), "", Text(ccy, style="dim"), fnum(r.get("equity"), 2)])
                if ccy != rep:
                    in_rep = (r.get("in_report") or {}).get("equity")
                    pinned.append(["", Text(f"= {rep}", style="dim"), "",
                                   Text(r.get("conversion", ""), style="dim"),
                                   fnum(in_rep, 2) if in_rep is not None else Text("no rate", style="dim")])
            left_out = totals.get("not_in_total")
            pinned.append([Text("all venues", style="bold"),
                           Text("equity" + (f" (without {', '.join(left_out)})" if left_out else ""), style="bold"), "",
                           Text(rep, style="dim"), Text(fnum(totals["total"].get("equity"), 2), style="bold")])
        self.show((VENUE, *self.COLS), rows, pinned=pinned, keys=keys, empty="no balances")


EMU_NOTE = " · emu: protects only while TPS19 runs"


def order_state(o: Any) -> str:
    """An order's state as the orders pane shows it: a protective order's trigger state (armed,
    triggered, working) and where it lives (emu: held by TPS19; venue: venue-native)."""
    if getattr(o, "trigger_state", None) is None:
        return str(o.status)
    where = "emu" if o.placement == "emulated" else "venue"
    state = o.trigger_state if o.trigger_state != "working" else f"working {o.status}"
    return f"{state} {where}"


class OrdersTable(RowsPane):
    """Working orders of every symbol; the row cursor (up/down) picks the order `c` cancels
    (a leg of an OCO group: its whole group, after confirmation)."""

    # the state and the OCO group before the numbers: on a narrow pane the right end is cropped
    COLS = (Col("id", right=False), Col("symbol", right=False), Col("side", right=False), Col("type", right=False),
            Col("status", right=False), Col("oco", right=False), Col("amount"), Col("price"), Col("trigger"),
            Col("filled"))
    TRIGGER, OCO = 8, 5  # shown only while an order has a trigger / an OCO group (the pane is narrow)

    def __init__(self, **kw: Any) -> None:
        super().__init__("no open orders", cursor=True, **kw)

    def show_orders(self, venue_orders: list[tuple[str, Any]], price_places: dict[tuple[str, str], int],
                    *, venues: bool = False) -> None:
        """``venue_orders``: (venue, OrderUpdate); ``venues``: several venues run, each row names its venue."""
        if self.unchanged((venues, tuple((v, o.client_order_id, o.status, o.filled, getattr(o, "trigger_state", None),
                                          getattr(o, "trigger_price", None), o.amount) for v, o in venue_orders))):
            return
        orders = [o for _, o in venue_orders]
        theme = self.app.current_theme
        rows = []
        emulated = False
        for v, o in venue_orders:
            c = (theme.success or "green") if o.side == "buy" else (theme.error or "red")
            pp = price_places.get((v, o.symbol), 2)
            trigger = getattr(o, "trigger_price", None)
            state = getattr(o, "trigger_state", None)
            emulated = emulated or (state in ("armed", "triggered") and o.placement == "emulated")
            if trigger is not None:
                trig: Any = fnum(trigger, pp)
            elif o.type == "trailing_stop":
                trig = Text("waits", style="dim")  # not active before its activation price trades
            else:
                trig = ""
            group = getattr(o, "oco_group", None)
            rows.append([o.client_order_id[-6:], o.symbol, Text(o.side, style=c), o.type, order_state(o),
                         group[-4:] if group else "", amount_text(o.amount),
                         fnum(o.price, pp) if o.price is not None else "mkt", trig, amount_text(o.filled)])
        keep = [i for i in range(len(self.COLS))
                if (i != self.TRIGGER or any(getattr(o, "trigger_state", None) for o in orders))
                and (i != self.OCO or any(getattr(o, "oco_group", None) for o in orders))]
        cols = [self.COLS[i] for i in keep]
        rows = [[r[i] for i in keep] for r in rows]
        if venues:
            # the venue column costs ~13 cells: at 140 columns it pushed the price off the pane's right
            # edge. With several venues a row reads venue, what, amount, price, trigger, then the state
            # and the short id last (the row cursor, not the id, picks the order `c` cancels)
            names = [c.name for c in cols]
            order = [names.index(n) for n in ("symbol", "side", "type", "amount", "price", "trigger", "status", "oco",
                                               "filled", "id") if n in names]
            # too narrow for every column (120 columns): the short id goes first, then filled, oco,
            # status, type, trigger; the border says which. The right end was cropped: a resting
            # order's price read "60,000.0" beside a sim-binance row
            cols = [VENUE, *(replace(cols[i], hide=VENUE_ORDER_HIDE.get(cols[i].name, 0)) for i in order)]
            rows = [[v, *(r[i] for i in order)] for r, (v, _) in zip(rows, venue_orders)]
        # the pane's title says what "emu" means: an emulated stop protects nothing while TPS19 is down
        base = str(self.border_title or "").split(EMU_NOTE)[0]
        title = base + EMU_NOTE if emulated else base
        if self.border_title != title:
            self.border_title = title
        self.show(cols, rows, keys=[o.client_order_id for o in orders], empty="no open orders")

    def selected_order_id(self) -> str | None:
        return self.selected_key()


class RiskPane(RowsPane):
    """Kill switch, exposure, P&L today against the daily loss limit, drawdown, limits in force."""

    COLS = (Col("", right=False), Col(""))

    def __init__(self, text: str = "", **kw: Any) -> None:
        super().__init__(text, header=False, **kw)

    def show_trading(self, state: Any, trading: Any, limits: Any, total: Any = None) -> None:
        """Draw from the desk's state (positions, the engine's PortfolioUpdate), the trading stack
        (None: not available: kill switch, orders today) and the risk settings ``limits``;
        ``total``: with several venues, where all of them stand against the limits over all
        venues (``VenueSet.limits``, the figures order entry enforces)."""
        caps = [("max order", f"{limits.max_order_notional:,}"), ("max position", f"{limits.max_position_notional:,}")]
        if trading is None:
            self.show_risk(available=False, exposure={}, pnl_today=None, loss_limit=limits.daily_loss_limit,
                           drawdown=None, limits=caps, kill=False)
            return
        exposure = {s: abs(p.base_balance) * p.mark for s, p in state.positions.items()
                    if p.base_balance and p.mark is not None}
        risk = getattr(trading.broker, "risk", None)
        pf = state.portfolio
        # the figure the daily loss limit enforces (the engine's, counted from the day's first stored snapshot)
        pnl_today = pf.pnl_today if pf is not None else (risk.pnl_today() if risk is not None else None)
        if risk is not None:
            caps.insert(1, ("orders today", f"{risk.orders_today} / {limits.max_daily_orders}"))
        monitor = getattr(trading, "risk_metrics", None)
        self.show_risk(available=True, exposure=exposure, pnl_today=pnl_today, loss_limit=limits.daily_loss_limit,
                       drawdown=state.drawdown, limits=caps, kill=bool(getattr(trading.broker, "killed", False)),
                       metrics=metric_rows(getattr(monitor, "latest", None)),
                       attention=list(getattr(state, "attention", ())), total=total_rows(total))

    def show_risk(self, *, available: bool, exposure: dict[str, Decimal], pnl_today: Decimal | None,
                  loss_limit: Decimal, drawdown: Decimal | None, limits: list[tuple[str, str]], kill: bool,
                  metrics: list[tuple[str, str]] | None = None, attention: list[str] | None = None,
                  total: list[tuple[str, str, str]] | None = None) -> None:
        metrics = metrics or []
        attention = attention or []
        total = total or []
        if self.unchanged((available, tuple(exposure.items()), pnl_today, loss_limit, drawdown, tuple(limits), kill,
                           tuple(metrics), tuple(attention), tuple(total))):
            return
        theme = self.app.current_theme
        dim = "dim"
        rows: list[list[Any]] = []
        for msg in attention:  # a protective order that could not be sent: first, in reverse
            rows.append([Text("ATTENTION", style="bold reverse " + (theme.error or "red")), Text(msg, style="bold")])
        if kill:
            rows.append([Text("kill switch", style="bold"), Text("ENGAGED", style="bold reverse " + (theme.warning or "yellow"))])
        else:
            rows.append([Text("kill switch", style=dim), Text("off", style=theme.success or "green")])
        if not available:
            rows.append([Text("trading", style=dim), "layer not available"])
        else:
            rows.append([Text("P&L today", style=dim), self._pnl_today(pnl_today, loss_limit, theme)])
            rows.append([Text("drawdown", style=dim), fnum(drawdown, 2)])
            # per currency it is the Balances pane's value column
            rows.append([Text("exposure", style=dim), fnum(sum(exposure.values(), ZERO), 2)])
            # the limits over every venue right below the focused venue's own figures
            rows += [[Text(k, style=dim), Text(v, style=theme.error or "red") if warn else v] for k, v, warn in total]
            rows += [[Text(k, style=dim), v] for k, v in metrics]
        rows += [[Text(k, style=dim), v] for k, v in limits]
        self.show(self.COLS, rows)

    @staticmethod
    def _pnl_today(pnl_today: Decimal | None, loss_limit: Decimal, theme: Any) -> Text:
        if pnl_today is None:
            return Text(f"-- / -{fnum(loss_limit, 0)}", style="dim")
        used = -pnl_today / loss_limit * 100 if loss_limit else ZERO
        style = (theme.error or "red") if used >= 80 else ""
        return Text(f"{fnum(pnl_today, 2, sign=True)} / -{fnum(loss_limit, 0)}", style=style)


def total_rows(total: Any) -> list[tuple[str, str, str]]:
    """The risk pane's rows of the limits over every venue (``VenueSet.limits``): P&L today of
    all venues against their daily loss limit and their gross exposure against its cap, each
    marked (third item non-empty) from 80 % of its limit, as the venue's own P&L today is."""
    if total is None:
        return []
    if total.unavailable is not None:
        return [("all venues", "limits unknown (log)", "!")]
    out = []
    loss, cap = total.daily_loss_limit, total.max_gross_exposure
    if total.pnl_unknown or total.pnl_today is None:  # a venue's marks not all known yet: no total
        today = "--"
        used = ZERO
    else:
        today = fnum(total.pnl_today, 2, sign=True)
        used = -total.pnl_today / loss * 100 if loss else ZERO
    out.append(("all P&L today", f"{today} / -{fnum(loss, 0)}" if loss is not None else today, "!" if used >= 80 else ""))
    gross = total.gross_exposure
    used = gross / cap * 100 if cap else ZERO
    out.append(("all exposure", f"{fnum(gross, 0)} / {fnum(cap, 0)}" if cap is not None else fnum(gross, 0),
                "!" if used >= 80 else ""))
    return out


def metric_rows(ev: Any) -> list[tuple[str, str]]:
    """The live risk metrics (engine/risk/monitor.py's latest event) as Risk pane rows."""
    if ev is None:
        return []
    r = ev.report
    rows = [("leverage", f"{r.leverage:.2f}x")]
    if ev.drawdown_pct is not None:
        rows.append(("from peak", f"-{ev.drawdown_pct:.2f}%" if ev.drawdown_pct >= 0.005 else "0.00%"))
    if r.bars < 20:
        rows.append(("VaR/CVaR", f"n/a ({r.bars} bar{'' if r.bars == 1 else 's'})"))
        return rows

    def pct(x: float) -> str:
        text = f"{x * 100:.2f}%"
        return "0.00%" if text == "-0.00%" else text

    h = getattr(r, "horizon", "bar")
    rows += [("vol (annual)", f"{r.volatility_annual * 100:.1f}%"),
             (f"VaR 95/99 ({h})", f"{pct(r.var['95'])} / {pct(r.var['99'])}"),
             (f"CVaR 95/99 ({h})", f"{pct(r.cvar['95'])} / {pct(r.cvar['99'])}")]
    if r.var_1d:  # the one-day figure: historical from 30 days of bars, else sqrt-scaled
        rows.append((f"VaR 1d ({r.one_day_method})", f"{pct(r.var_1d['95'])} / {pct(r.var_1d['99'])}"))
    pairs = [(a, b, c) for a, row in r.correlation.items() for b, c in row.items() if a < b and c is not None]
    if pairs:
        a, b, c = max(pairs, key=lambda p: abs(p[2]))
        rows.append((f"corr {a.split('/')[0]}/{b.split('/')[0]}", f"{c:+.2f}"))
    return rows


class SignalsPane(RowsPane):
    """Strategy signals, newest first: time, symbol, direction, target, reason (the reason is the
    last column so that a narrow pane cuts only its end; the signal's full text is in the log)."""

    COLS = (Col("time", right=False), Col("sym", right=False), Col("dir", right=False), Col("target"),
            Col("reason", right=False))

    def show_signals(self, signals: list[Any], running: bool, status: str | None = None) -> None:
        """``status``: the running strategy's last bar and next decision (in the border's title;
        the subtitle says how many rows are hidden)."""
        if not hasattr(self, "_title"):
            self._title = str(self.border_title or "Signals")
        title = f"{self._title} · {status}" if status else self._title
        if self.border_title != title:
            self.border_title = title
        if self.unchanged((len(signals), signals[-1] if signals else None, running)):
            return
        if not signals:
            self.message("no strategy running" if not running else "no signals yet")
            return
        theme = self.app.current_theme
        rows = []
        for s in reversed(signals):
            d = s.direction
            warm = bool(getattr(s, "warmup", False))  # decided on history at start: never traded
            c = "dim" if warm else (theme.success or "green") if d > 0 else (theme.error or "red") if d < 0 else "dim"
            rows.append([Text(hms(s.ts), style="dim"), s.symbol.split("/")[0],
                         Text({1: "BUY", -1: "SELL", 0: "hold"}.get(d, str(d)), style=c),
                         f"{s.target:.2f}", Text(("warm-up, not traded: " if warm else "") + _reason(s), style="dim")])
        self.show(self.COLS, rows)


def strategy_clock(runner: Any, symbol: str) -> str | None:
    """"last bar 10:41 · next decision 10:43": the bar the running strategy last decided on (its
    open time) and when the next one closes, for ``symbol`` (None without a strategy)."""
    if runner is None:
        return None
    from ...engine.history import timeframe_ms

    last = (getattr(runner, "last_ts", None) or {}).get(symbol)
    tf = getattr(runner, "timeframe", None)
    if last is None or not tf:
        return f"{getattr(runner.prototype, 'name', 'strategy')}: waiting for the first closed bar"
    step = timeframe_ms(tf)
    return f"last bar {hms(last)} · next decision {hms(last + 2 * step)} ({tf})"


def _reason(s: Any) -> str:
    sig = getattr(s, "signal", None)
    reason = getattr(sig, "reason", "") or getattr(s, "reason", "") or ""
    return " ".join(str(reason).split())


class LogPane(RichLog):
    def __init__(self, **kw: Any) -> None:
        super().__init__(max_lines=500, wrap=False, markup=False, highlight=False, **kw)

    def add(self, events: list[Any]) -> None:
        for e in events:
            self.write(log_line(e, self.app.current_theme))


def log_line(e: Any, theme: Any, *, full: bool = False) -> Text:
    """One log event as a line: time, level, message, fields (cut at 60 characters unless ``full``)."""
    colors = {"error": theme.error or "red", "warning": theme.warning or "yellow", "debug": "dim"}
    line = Text(no_wrap=not full)
    line.append(hms(e.ts) + " ", style="dim")
    line.append(f"{e.level[:4].upper():4} ", style="bold " + colors.get(e.level, ""))
    line.append(e.message)
    if e.fields:
        line.append("  " + " ".join(f"{k}={_short(v, full)}" for k, v in e.fields.items()), style="dim")
    return line


def _short(v: Any, full: bool = False) -> str:
    s = ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    return s if full or len(s) <= 60 else s[:57] + "..."
