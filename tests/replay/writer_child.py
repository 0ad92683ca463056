"""A recorder that is killed: writes numbered rows for two symbols as fast as it can (small
batches, small rotation size so compaction runs all the time), or stops after N rows and waits.

argv: DIR MODE N  (MODE "flat-out": never stops; "pause": add N rows, print 'added N', block)
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from tps19.engine.recording.writer import RecordingWriter, WriterSettings


def main() -> None:
    root, mode, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    w = RecordingWriter(root, "sim", WriterSettings(batch_rows=200, batch_s=30.0, rotate_bytes=20_000)).start()
    g = 0
    while mode == "flat-out" or g < n:
        g += 1
        sym = "BTC/USDT" if g % 3 else "ETH/USDT"
        w.add((g, time.time_ns(), g, "delta", sym, g, g - 1, [100.0 + g % 7], [1.5], [101.0], [g * 0.001],
               '{"n": %d}' % g))
        if g == 1:
            print("started", flush=True)
        if mode == "flat-out" and g % 600 == 0:
            w.sync()  # as fast as the disk takes it (faster would drop batches, reported, not tested here)
    print(f"added {g}", flush=True)
    threading.Event().wait()  # the parent kills us


if __name__ == "__main__":
    main()
