"""Paint the desk's frame in the same callback that updated its panes.

Textual paints a widget's ``refresh()`` three loop turns and a timer later: the widget's own task
sees the flag when it next goes idle and posts an Update to its screen, the screen's idle
resumes its update timer, and that timer ticks on a fixed 1/60 s grid. On a loaded machine every
turn lets other callbacks (the engine's websocket reads) run first and every sleep is a wake-up
the kernel may serve late: bench_desk measured 31 ms median / 109 ms p99 from the desk's drain
to the book being rendered at load 8 with 2 busy loops. ``paint_now`` does what the screen's
update timer would do, right away, when the frame only repaints widgets (no layout, no scroll,
no style or compose work, the desk screen on top): the same compositor, the same lines, the
same bytes, one loop turn sooner. Anything else is left to Textual's own path.

This touches Textual internals (``Screen._on_timer_update``, ``_dirty_widgets``, a widget's
``_repaint_required``); ``supported()`` checks they exist so a Textual that renames them only
loses the shortcut, never a frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.screen import Screen
from textual.widget import Widget

_SCREEN_ATTRS = ("_on_timer_update", "_dirty_widgets", "_layout_required", "_scroll_required", "_repaint_required",
                 "_recompose_required", "_compositor")
_WIDGET_ATTRS = ("_repaint_required", "_layout_required", "_scroll_required", "_refresh_styles_required",
                 "_recompose_required")


def supported(screen: Screen[Any], widget: Widget) -> bool:
    """The Textual internals ``paint_now`` relies on are there."""
    return all(hasattr(screen, a) for a in _SCREEN_ATTRS) and all(hasattr(widget, a) for a in _WIDGET_ATTRS)


def paint_now(screen: Screen[Any], widgets: Iterable[Widget], *, only: bool = False) -> bool:
    """Render and write ``widgets``' pending repaints now, as the screen's update timer would.

    Returns False (nothing done; Textual paints them on its own path, as always) when the frame
    needs more than a repaint: a layout, a scroll, styles or a recompose pending on the screen or
    one of the widgets, a batch update open, or the screen not the one on top. ``only``: a frame
    of these widgets alone, even when others are waiting for the screen's next update (they
    keep waiting: the caller paints them next)."""
    app = screen.app
    batch: object = getattr(app, "_batch_count", None)
    if screen is not app.screen or batch is None or batch or not getattr(app, "_running", False):
        return False
    if screen._layout_required or screen._scroll_required or screen._recompose_required:  # type: ignore[attr-defined]
        return False
    todo: list[Widget] = []
    for w in widgets:
        if w._layout_required or w._scroll_required or w._refresh_styles_required or w._recompose_required:  # type: ignore[attr-defined]
            return False
        if w._repaint_required and w.display and w.is_mounted:  # type: ignore[attr-defined]
            todo.append(w)
    if only:
        if not todo:
            return True
        if screen._repaint_required:  # type: ignore[attr-defined]
            return False  # a whole-screen repaint is due: one frame for everything, Textual's
        waiting = set(screen._dirty_widgets)  # type: ignore[attr-defined]
        screen._dirty_widgets.clear()  # type: ignore[attr-defined]
    elif not todo and not screen._dirty_widgets and not screen._repaint_required:  # type: ignore[attr-defined]
        return True
    for w in todo:
        # the widget's own idle would post this Update to the screen a loop turn later
        w._repaint_required = False  # type: ignore[attr-defined]
        screen._dirty_widgets.add(w)  # type: ignore[attr-defined]
    screen._on_timer_update()  # type: ignore[attr-defined]
    if only and waiting:
        screen._dirty_widgets.update(waiting)  # type: ignore[attr-defined]
        screen.check_idle()  # their Update came already: the screen's idle resumes its timer for them
    return True
