"""The desk's footer shows the screen's extra keys that fit the terminal (issue 20's leftover)."""

from __future__ import annotations

from .conftest import desk_app, desk_ready, screen_text, wait_for

BASE = ("b Buy", "s Sell", "c Cancel", "h History", "p P&L", "l Log", "? Help", "q Quit", "f9 Kill switch")


def _footer(app) -> str:
    return screen_text(app).splitlines()[-1]


async def test_the_footer_adds_the_desks_extra_keys_while_they_fit(settings):
    app = desk_app(settings, "paper")
    async with app.run_test(size=(80, 24)) as pilot:
        await desk_ready(pilot, app)  # the engine up: a desk closed while it starts is another test's subject
        # 80 columns: the usual keys, whole; no room for an extra one
        await wait_for(pilot, lambda: all(k in _footer(app) for k in BASE), what=lambda: f"the usual keys: {_footer(app)!r}")
        assert "Depth" not in _footer(app)

        await pilot.resize_terminal(120, 40)
        # 120 columns: the extras in the screen's order, as many as fit, each whole
        await wait_for(pilot, lambda: "m Models" in _footer(app), what=lambda: f"the extra keys: {_footer(app)!r}")
        line = _footer(app)
        for key in (*BASE, "d Depth", "C Cancel all", "r Risk limits", "m Models"):
            assert key in line, f"{key!r} not in the footer {line!r}"
        assert "Backtest" not in line  # the next extra would not fit 120 columns
        assert line.index("d Depth") < line.index("C Cancel all") < line.index("r Risk limits") < line.index("m Models")

        await pilot.press("d")  # a key the footer shows works as it says
        book = app.screen.query_one("#book")
        await wait_for(pilot, lambda: book.levels == 20, what="depth 20")

        await pilot.resize_terminal(80, 24)
        # the final state, not the first frame without "Depth": a frame at the new width can still
        # be laid out for the old one (extras cropped away, a usual key cut); seen in a loaded run
        await wait_for(pilot, lambda: "Depth" not in _footer(app) and all(k in _footer(app) for k in BASE),
                       what=lambda: f"the extras gone and the usual keys whole: {_footer(app)!r}")
