"""The Backtest screen in a tiny host app (headless Pilot)."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Button, DataTable, Input, Select, Static

from tps19.desk.screens.backtest import BacktestScreen

from .conftest import DATA


class Host(App[None]):
    def __init__(self, screen: BacktestScreen) -> None:
        super().__init__()
        self._bt = screen
        self.finished: list[BacktestScreen.Finished] = []

    def on_mount(self) -> None:
        self.push_screen(self._bt)

    def on_backtest_screen_finished(self, msg: BacktestScreen.Finished) -> None:
        self.finished.append(msg)


async def _wait(pilot, screen):
    await pilot.app.workers.wait_for_complete()
    for _ in range(50):
        await pilot.pause(0.02)
        if not screen.running:
            break


async def test_run_from_the_form_shows_metrics_equity_and_trades():
    screen = BacktestScreen()
    app = Host(screen)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        screen.query_one("#bt-strategy", Select).value = "sma_cross"
        screen.query_one("#bt-params", Input).value = "fast=10 slow=20"
        screen.query_one("#bt-data", Input).value = str(DATA / "freqtrade_ETH_BTC_5m.csv")
        await pilot.click("#bt-run")
        await _wait(pilot, screen)
        assert screen.error is None, screen.error
        res, _ = screen.result
        assert res.metrics["trades"] == 184
        metrics = screen.query_one("#bt-metrics", DataTable)
        assert metrics.row_count >= 15
        assert screen.query_one("#bt-trades", DataTable).row_count == 185
        assert "done" in str(screen.query_one("#bt-status", Static).render())
        assert not screen.query_one("#bt-run", Button).disabled


async def test_bad_params_show_an_error_not_a_crash():
    screen = BacktestScreen(data=DATA / "freqtrade_ETH_BTC_5m.csv", strategy="bollinger", params="period=oops")
    app = Host(screen)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+r")
        await _wait(pilot, screen)
        assert screen.result is None and "period" in screen.error
        assert "error" in str(screen.query_one("#bt-status", Static).render())
        assert app.finished and app.finished[-1].error
        # then a good run on the same screen works
        screen.query_one("#bt-params", Input).value = "period=20 k=2"
        await pilot.press("ctrl+r")
        await _wait(pilot, screen)
        assert screen.error is None and screen.result[0].strategy == "bollinger"


async def test_stops_from_the_form_show_each_trades_exit_reason():
    screen = BacktestScreen(data=DATA / "freqtrade_ETH_BTC_5m.csv", strategy="sma_cross", params="fast=10 slow=20")
    app = Host(screen)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        screen.query_one("#bt-stop", Input).value = "0"  # out of range: the flag's one line, no crash
        await pilot.press("ctrl+r")
        await _wait(pilot, screen)
        assert screen.result is None and "--stop-loss 0 is out of range" in screen.error
        screen.query_one("#bt-stop", Input).value = "1"
        screen.query_one("#bt-take", Input).value = "1.5"
        await pilot.press("ctrl+r")
        await _wait(pilot, screen)
        assert screen.error is None, screen.error
        res, _ = screen.result
        assert res.config.protection.stop_loss_pct == 1.0 and res.config.protection.take_profit_pct == 1.5
        table = screen.query_one("#bt-trades", DataTable)
        why = [table.get_row_at(i)[6] for i in range(table.row_count)]
        assert why == [{"stop_loss": "stop", "take_profit": "profit"}.get(t.exit_reason, t.exit_reason)
                       for t in res.trades]
        assert {"stop", "profit", "signal"} <= set(why)
        metrics = screen.query_one("#bt-metrics", DataTable)
        rows = [metrics.get_row_at(i) for i in range(metrics.row_count)]
        assert any(r[0] == "Intrabar rule" and "stop (pessimistic)" in r[1] for r in rows)
