"""The desk's frames: the book is on screen when the drain that took it returns, and rows repainted
alone (the ladder's and the tape's changed rows) read exactly as a repaint of the whole pane."""

from __future__ import annotations

from typing import Any

from tps19.desk.app import DeskApp
from tps19.desk.widgets.market.book import BookLadder
from tps19.desk.widgets.market.tape import TradeTape

from .conftest import desk_app, desk_ready, screen_text, step_market, wait_for


def _pane_lines(app: DeskApp, widget: Any) -> list[list[tuple[str, Any]]]:
    """The pane's rows as composited now (text and style of every segment)."""
    region = widget.region
    strips = app.screen._compositor.render_strips()
    return [[(seg.text, seg.style) for seg in strip.crop(region.x, region.right)]
            for strip in strips[region.y: region.bottom]]


async def test_rows_repainted_alone_read_as_the_whole_pane_repainted(settings):
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        book = app.screen.query_one("#book", BookLadder)
        tape = app.screen.query_one("#tape", TradeTape)
        now = [1_000.0]
        book.clock = lambda: now[0]  # flashes start and end when the test moves this clock, not between two looks
        for _ in range(4):
            now[0] += 0.2  # some flashes of the last step still on, some over
            before = app.state.books["BTC/USDT"]
            await step_market(pilot, app, 25)
            newest = app.state.books["BTC/USDT"]
            assert newest is not before
            await wait_for(pilot, lambda: book.event is newest, timeout=5, what="the newest book on the ladder")
            await pilot.pause()
            assert f"{newest.bids[0][0]:,.2f}" in screen_text(app)
            for _look in range(10):
                # both looks at the same text: the desk may still redraw between them (a late
                # event of the step); then they compare nothing and are taken again
                texts = [list(w._keys) for w in (book, tape)]
                partial = {w: _pane_lines(app, w) for w in (book, tape)}
                for w in (book, tape):  # the whole pane painted anew from the same state
                    w.refresh()
                await pilot.pause()
                if texts == [list(w._keys) for w in (book, tape)]:
                    break
            else:
                raise AssertionError("the panes never held still for two looks")
            for w in (book, tape):
                full = _pane_lines(app, w)
                differ = [y for y, (a, b) in enumerate(zip(partial[w], full)) if a != b]
                assert not differ and len(full) == len(partial[w]), \
                    f"{w.id}: rows {differ} repainted alone differ from a full repaint: " + repr([(partial[w][y], full[y]) for y in differ])


async def test_every_frame_draws_the_ladder_with_the_depth_note_of_its_rows(settings):
    """The border's note ("depth 7 of 15 (d)") is painted with the rows it counts, in every frame.

    A layout pass that resizes the ladder renders it at once at the new size; Textual reads the
    border's subtitle before render() runs, so a note changed while rendering went out stale, and
    the ladder's later frames (changed rows only) never repainted its border: 'depth 8 of 15 (d)'
    over 7 levels a side, CI and load ~12."""
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        book = app.screen.query_one("#book", BookLadder)
        mid = app.screen.query_one("#mid")
        seen: list[tuple[int, int, str]] = []

        def look() -> None:  # every frame: the ladder's bottom border as composited, its height, the depth asked for
            region = book.region
            if region.height < 3:
                return
            strip = app.screen._compositor.render_strips()[region.bottom - 1]
            seen.append((region.height, book.levels, "".join(seg.text for seg in strip.crop(region.x, region.right))))

        app.post_display_hook = look  # type: ignore[method-assign]
        for height, levels_key in ((4, False), (6, False), (9, False), (5, True), (8, False), (4, True)):
            seen.clear()
            mid.styles.height = height  # the row under the ladder grows or shrinks: the ladder with it
            if levels_key:
                await pilot.press("d")  # and the depth asked for changes
            await wait_for(pilot, lambda: book.region.height == 40 - 1 - 1 - 12 - height, what=f"the ladder over #mid {height} high")
            await step_market(pilot, app, 5)  # rows repainted alone after the resize
            await pilot.pause()
            assert seen, "no frame drawn"
            for rows, levels, border in seen:
                fits = min(levels, (rows - 2 - 2) // 2)  # border 2 rows, heading + mid line 2
                want = f"depth {levels}" if fits >= levels else f"depth {fits} of {levels} (d)"
                assert want in border, f"a frame drew the ladder {rows} rows high under the note {border.strip('─ ')!r}, not {want!r}"


async def test_a_book_is_on_screen_when_the_drain_that_took_it_returns(settings):
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        book = app.screen.query_one("#book", BookLadder)
        frames: list[str] = []
        app.post_display_hook = lambda: frames.append(screen_text(app))  # type: ignore[method-assign]
        # hold the desk's subscription: nothing drains it until the test does
        held, app.subs = app.subs, {}
        sub = held[app.focus]
        old = app.state.books["BTC/USDT"]
        await app.sim.step(25)
        await wait_for(pilot, lambda: any(getattr(e, "symbol", None) == "BTC/USDT" and e is not old
                                          and type(e).__name__ == "BookEvent" for e in sub._latest.values()),
                       what="a new BTC/USDT book waiting in the desk's subscription")
        app.subs = held
        frames.clear()
        app._pump()  # the drain: no loop turn, no timer after it
        newest = app.state.books["BTC/USDT"]
        assert newest is not old and book.event is newest
        shown = f"{newest.bids[0][0]:,.2f}"
        assert frames, "the drain wrote no frame"
        assert shown in frames[0], "the drain's first frame does not show the book it took"
