"""The desk's `v` screen: the divergence ledger of the session it is recording."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.ui.conftest import desk_app, desk_ready, screen_text, settings, step_market, wait_for  # noqa: F401

pytestmark = pytest.mark.slow


async def test_v_shows_the_ledger_of_the_recorded_session(settings, tmp_path):  # noqa: F811
    app = desk_app(settings, "paper", record_dir=tmp_path / "rec")
    async with app.run_test(size=(130, 40)) as pilot:
        await desk_ready(pilot, app)
        order = await app.engine.trading.broker.place_order("BTC/USDT", "buy", "market", Decimal("0.01"))
        assert order.status.value == "filled"
        await step_market(pilot, app, 20)
        await pilot.press("e")
        await wait_for(pilot, lambda: "unexplained" in screen_text(app), timeout=60, what="the ledger on screen")
        text = screen_text(app)
        assert "paper session (1 orders)" in text
        assert "reproduces every fill" in text and "does NOT" not in text
        assert "gap" in text and "latency" in text and "fee tier" not in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: "Book BTC/USDT" in screen_text(app), what="back on the desk")


async def test_v_on_a_session_not_recorded_says_how_to_record(settings):  # noqa: F811
    app = desk_app(settings, "paper")
    async with app.run_test(size=(130, 40)) as pilot:
        await desk_ready(pilot, app)
        await pilot.press("e")
        await wait_for(pilot, lambda: "--record DIR" in screen_text(app), what="how to record a session")
