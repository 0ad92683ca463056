"""Full cyclic-GC passes at a moment the desk picks: right after a drain has written its frames.

Python starts a full (generation 2) collection on its own once enough generation-1 passes have
run: about every 10 s in the desk at 1,000 events/s, 20-35 ms of CPU each and up to 150 ms of
wall time on a busy machine (bench_desk), whenever it falls, often between a book's arrival and
its frame: one stalled frame per 10 s is the p99 of a 10 s window. Here the automatic full pass
is switched off (its threshold raised) while the desk runs and the desk runs the same pass
itself, as often, just after a frame is out: the next frame is at least 1/refresh_hz away, so
the pass falls in time the desk waits anyway. Generation-1 passes (~3 ms of CPU, up to 50-95 ms
of wall under load, about one every 2 s) move there too, run when Python would have run them
(its own count and threshold), only at the end of a drain; generation 0 stays automatic. The
thresholds are put back when the desk stops (tests run many desks in one process).
"""

from __future__ import annotations

import gc
import time

NEVER = 1 << 30  # a threshold Python's own collections never reach


class FullCollections:
    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self.runs = 0  # full passes run
        self.young_runs = 0  # generation-1 passes run
        self._saved: tuple[int, ...] | None = None
        self._last = 0.0

    @property
    def active(self) -> bool:
        return self._saved is not None

    def start(self) -> None:
        """The desk runs the full passes from now on."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(self._saved[0], NEVER, NEVER)
            self._last = time.monotonic()

    def after_frame(self) -> bool:
        """Run the passes that are due (a frame was just written). True when the full one ran."""
        if self._saved is None or not gc.isenabled():
            return False
        if time.monotonic() - self._last >= self.every_s:
            gc.collect(2)
            self.runs += 1
            self._last = time.monotonic()
            return True
        if gc.get_count()[1] > self._saved[1]:  # as many young passes as Python waits for
            gc.collect(1)
            self.young_runs += 1
        return False

    def stop(self) -> None:
        """Python's own thresholds again (unless someone changed them meanwhile)."""
        saved, self._saved = self._saved, None
        if saved is not None and gc.get_threshold()[1:] == (NEVER, NEVER):
            gc.set_threshold(*saved)
