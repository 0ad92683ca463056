"""The book ladder's border says how many levels it draws: still true after the pane is resized
(the two-venue desk snapshot once read 'depth 7 of 15' over a ladder of 6 levels a side, after
the positions pane grew and the ladder shrank)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tps19.desk.widgets.market.book import BookLadder
from tps19.engine.events import BookEvent

from .conftest import screen_text


class LadderApp(App[None]):
    CSS = "BookLadder { border: round white; height: 22; width: 50; }"

    def compose(self) -> ComposeResult:
        yield BookLadder(levels=15, id="book")


async def test_the_depth_note_follows_the_ladder_when_it_shrinks_and_grows():
    app = LadderApp()
    async with app.run_test(size=(60, 30)) as pilot:
        book = app.query_one(BookLadder)
        book.set_symbol("BTC/USDT", 2, 4)
        book.show(BookEvent(symbol="BTC/USDT", bids=[(100.0 - i, 1.0) for i in range(20)],
                            asks=[(101.0 + i, 1.0) for i in range(20)], ts=1, seq=1), {})
        await pilot.pause()
        for height in (18, 14, 10, 16, 22):
            book.styles.height = height
            await pilot.pause()
            await pilot.pause()
            text = screen_text(app)
            # every level has size 1: its row reads "1.0000" (amount places 4)
            per_side = sum(1 for line in text.splitlines() if "1.0000 " in line) // 2
            assert 0 < per_side < 15
            assert f"depth {per_side} of 15 (d)" in text, (height, per_side, book.border_subtitle)
