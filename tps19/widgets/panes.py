"""Positions & P&L, open orders, risk, signals and log panes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable, RichLog

from .fmt import fnum, hms


def _dec(x: Any) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x or 0))


class ContentPane(Widget):
    """A pane whose content is a plain message or a Rich renderable: the positions, risk and signals panes."""

    def __init__(self, text: str = "", **kw: Any) -> None:
        super().__init__(**kw)
        self.content: Any = Text(text, style="dim")
        self._key: Any = None
        self._rows = 1

    def unchanged(self, key: Any) -> bool:
        """True when ``key`` (what the pane would show) is what it shows already."""
        if key == self._key:
            return True
        self._key = key
        return False

    def set(self, content: Any) -> None:
        self.content = Text(content, style="dim") if isinstance(content, str) else content
        rows = len(content.rows) + 1 if isinstance(content, Table) else str(content).count("\n") + 1
        self.refresh(layout=rows != self._rows)  # a relayout only when the height can change
        self._rows = rows

    def render(self) -> Any:
        return self.content


class PositionsPane(ContentPane, can_focus=True):
    def show(self, positions: dict[str, Any], equity: Any, price_places: dict[str, int], available: bool) -> None:
        key = (available, getattr(equity, "equity", None),
               tuple((p.symbol, p.net_position, p.avg_entry, p.unrealized_pnl, p.realized_pnl, p.fees) for p in positions.values()))
        if self.unchanged(key):
            return
        if not available:
            self.set("trading layer not available")
            return
        rows = [p for p in positions.values() if p.net_position != 0 or p.realized_pnl != 0 or p.fees != 0]
        if not rows:
            self.set("no positions")
            return
        theme = self.app.current_theme
        t = Table(box=None, padding=(0, 1), expand=True, show_edge=False, header_style="dim")
        for name, just in (("symbol", "left"), ("net", "right"), ("avg entry", "right"), ("unreal.", "right"),
                           ("realized", "right"), ("fees", "right")):
            t.add_column(name, justify=just, no_wrap=True)
        tot_u, tot_r, tot_f = Decimal(0), Decimal(0), Decimal(0)

        def pnl(x: Any) -> Text:
            if x is None:
                return Text("--", style="dim")
            v = _dec(x)
            return Text(fnum(v, 2, sign=True), style=(theme.success or "green") if v > 0 else (theme.error or "red") if v < 0 else "")

        for p in sorted(rows, key=lambda p: p.symbol):
            pp = price_places.get(p.symbol, 2)
            t.add_row(p.symbol, f"{p.net_position.normalize():f}", fnum(p.avg_entry, pp),
                      pnl(p.unrealized_pnl), pnl(p.realized_pnl), fnum(p.fees, 2))
            tot_u += _dec(p.unrealized_pnl)
            tot_r += _dec(p.realized_pnl)
            tot_f += _dec(p.fees)
        t.add_row(Text("total", style="bold"), "", Text(f"net {fnum(tot_u + tot_r - tot_f, 2, sign=True)}", style="bold"),
                  pnl(tot_u), pnl(tot_r), fnum(tot_f, 2))
        if equity is not None:
            t.add_row(Text("equity", style="bold"), "", fnum(equity.equity, 2), "", "", "")
        self.set(t)


class OrdersTable(DataTable):
    """Working orders; the row cursor picks the order `c` cancels."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = False
        self.add_columns("id", "symbol", "side", "type", "amount", "price", "filled", "status")
        self.show_header = True
        self._sig: tuple = ()

    def show(self, orders: list[Any], price_places: dict[str, int]) -> None:
        sig = tuple((o.client_order_id, o.status, o.filled) for o in orders)
        if sig == getattr(self, "_sig", None):
            return
        self._sig = sig
        keep = self.selected_order_id()
        theme = self.app.current_theme
        self.clear()
        for o in orders:
            c = (theme.success or "green") if o.side == "buy" else (theme.error or "red")
            pp = price_places.get(o.symbol, 2)
            self.add_row(o.client_order_id[-6:], o.symbol, Text(o.side, style=c), o.type, f"{o.amount.normalize():f}",
                         fnum(o.price, pp) if o.price is not None else "mkt", f"{o.filled.normalize():f}", o.status,
                         key=o.client_order_id)
        if keep is not None:
            try:
                self.move_cursor(row=self.get_row_index(keep))
            except Exception:
                pass

    def selected_order_id(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:
            return None
        return key.value


class RiskPane(ContentPane, can_focus=True):
    """Kill switch, exposure, P&L today against the daily loss limit, drawdown, limits in force."""

    def __init__(self, text: str = "", **kw: Any) -> None:
        super().__init__(text, **kw)
        self._day: tuple[int, Decimal] | None = None  # (UTC day start ms, net P&L the day started from)
        self._peak_net: Decimal | None = None

    def show_trading(self, trading: Any, limits: Any) -> None:
        """Draw from the trading stack (None: not available) and the risk settings ``limits``."""
        caps = [("max order", f"{limits.max_order_notional:,}"), ("max position", f"{limits.max_position_notional:,}")]
        if trading is None:
            self.show(available=False, exposure={}, pnl_today=None, loss_limit=limits.daily_loss_limit, drawdown=None,
                      limits=caps, kill=False)
            return
        pf = trading.portfolio
        exposure: dict[str, Decimal] = {}
        for s, p in getattr(pf, "positions", {}).items():
            mark = pf.mark(s)
            if p.qty and mark is not None:
                exposure[s] = abs(p.qty) * mark
        try:
            net = pf.totals()["net_pnl"]
        except Exception:
            net = None
        pnl_today = drawdown = None
        if net is not None:
            from ..engine.trading.risk import utc_day_start_ms

            day = utc_day_start_ms()
            if self._day is None or self._day[0] != day:
                # P&L "today" counts from the first figure the desk saw this UTC day (see docs/desk.md).
                self._day = (day, net if self._day is not None else Decimal(0))
                self._peak_net = net
            pnl_today = net - self._day[1]
            self._peak_net = max(self._peak_net or net, net)
            drawdown = self._peak_net - net
        risk = getattr(trading.broker, "risk", None)
        if risk is not None:
            caps.insert(1, ("orders today", f"{risk.orders_today} / {limits.max_daily_orders}"))
        kill = bool(getattr(trading.broker, "killed", False))
        monitor = getattr(trading, "risk_metrics", None)
        self.show(available=True, exposure=exposure, pnl_today=pnl_today, loss_limit=limits.daily_loss_limit,
                  drawdown=drawdown, limits=caps, kill=kill, metrics=metric_rows(getattr(monitor, "latest", None)))

    def show(self, *, available: bool, exposure: dict[str, Decimal], pnl_today: Decimal | None, loss_limit: Decimal,
             drawdown: Decimal | None, limits: list[tuple[str, str]], kill: bool,
             metrics: list[tuple[str, str]] | None = None) -> None:
        metrics = metrics or []
        if self.unchanged((available, tuple(exposure.items()), pnl_today, loss_limit, drawdown, tuple(limits), kill,
                           tuple(metrics))):
            return
        theme = self.app.current_theme
        t = Table.grid(padding=(0, 1), expand=True)
        t.add_column(style="dim", no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        if kill:
            t.add_row(Text("kill switch", style="bold"), Text("ENGAGED", style="bold reverse " + (theme.warning or "yellow")))
        else:
            t.add_row("kill switch", Text("off", style=theme.success or "green"))
        if not available:
            t.add_row("trading", "layer not available")
        else:
            total = sum(exposure.values(), Decimal(0))
            for sym, v in sorted(exposure.items()):
                t.add_row(f"exposure {sym}", fnum(v, 2))
            t.add_row("exposure total", fnum(total, 2))
            if pnl_today is not None:
                used = -pnl_today / loss_limit * 100 if loss_limit else Decimal(0)
                style = (theme.error or "red") if used >= 80 else ""
                t.add_row("P&L today", Text(f"{fnum(pnl_today, 2, sign=True)} / -{fnum(loss_limit, 0)}", style=style))
            if drawdown is not None:
                t.add_row("drawdown", fnum(drawdown, 2))
            for k, v in metrics:
                t.add_row(k, v)
        for k, v in limits:
            t.add_row(k, v)
        self.set(t)


def metric_rows(ev: Any) -> list[tuple[str, str]]:
    """The live risk metrics (engine/risk/monitor.py's latest event) as Risk pane rows."""
    if ev is None:
        return []
    r = ev.report
    rows = [("leverage", f"{r.leverage:.2f}x")]
    if ev.drawdown_pct is not None:
        rows.append(("from peak", f"-{ev.drawdown_pct:.2f}%" if ev.drawdown_pct >= 0.005 else "0.00%"))
    if r.bars < 20:
        rows.append(("VaR/CVaR", f"n/a ({r.bars} bars)"))
        return rows
    rows += [("vol (annual)", f"{r.volatility_annual * 100:.1f}%"),
             ("VaR 95/99", f"{r.var['95'] * 100:.2f}% / {r.var['99'] * 100:.2f}%"),
             ("CVaR 95/99", f"{r.cvar['95'] * 100:.2f}% / {r.cvar['99'] * 100:.2f}%")]
    pairs = [(a, b, c) for a, row in r.correlation.items() for b, c in row.items() if a < b and c is not None]
    if pairs:
        a, b, c = max(pairs, key=lambda p: abs(p[2]))
        rows.append((f"corr {a.split('/')[0]}/{b.split('/')[0]}", f"{c:+.2f}"))
    return rows


class SignalsPane(ContentPane, can_focus=True):
    def show(self, signals: list[Any], running: bool) -> None:
        if self.unchanged((len(signals), signals[-1] if signals else None, running)):
            return
        if not signals:
            self.set("no strategy running" if not running else "no signals yet")
            return
        t = Table.grid(padding=(0, 1), expand=True)
        theme = self.app.current_theme
        for s in reversed(signals[-8:]):
            d = s.direction
            c = (theme.success or "green") if d > 0 else (theme.error or "red") if d < 0 else "dim"
            t.add_row(Text(hms(s.ts), style="dim"), s.symbol, Text({1: "BUY", -1: "SELL", 0: "hold"}[d], style=c),
                      f"{s.target:+.2f}", Text(s.strategy, style="dim"), Text(s.signal.reason, overflow="ellipsis", no_wrap=True))
        self.set(t)


class LogPane(RichLog):
    def __init__(self, **kw: Any) -> None:
        super().__init__(max_lines=500, wrap=False, markup=False, highlight=False, **kw)

    def add(self, events: list[Any]) -> None:
        theme = self.app.current_theme
        colors = {"error": theme.error or "red", "warning": theme.warning or "yellow", "debug": "dim"}
        for e in events:
            line = Text(no_wrap=True)
            line.append(hms(e.ts) + " ", style="dim")
            line.append(f"{e.level[:4].upper():4} ", style="bold " + colors.get(e.level, ""))
            line.append(e.message)
            if e.fields:
                line.append("  " + " ".join(f"{k}={_short(v)}" for k, v in e.fields.items()), style="dim")
            self.write(line)


def _short(v: Any) -> str:
    s = ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
    return s if len(s) <= 60 else s[:57] + "..."
