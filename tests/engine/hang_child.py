"""Child process: the real `tps19` CLI with the paper broker's stop made to hang the way it
did in the field (a cancel that never ends its wait).

    python -m tests.engine.hang_child BOUND_S paper --no-ui

BOUND_S replaces the 5 s shutdown bound ("-" keeps it); "HANGING" on stderr marks the
moment the stop is stuck, so a test can send its second signal exactly then. The window in which
the first signal delivered again counts as the same request is closed (0 s): that second signal,
however soon, is a second request.
"""

from __future__ import annotations

import asyncio
import sys


async def _hanging_stop(self: object) -> None:
    print("HANGING", file=sys.stderr, flush=True)
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # the defect reproduced: the cancel is swallowed and the loop goes on


def main() -> None:
    from tps19.engine import headless, shutdown
    from tps19.engine.trading.paper import PaperBroker

    bound, args = sys.argv[1], sys.argv[2:]
    if bound != "-":
        headless.SHUTDOWN_TIMEOUT_S = float(bound)
    shutdown.REPEAT_WINDOW_S = 0.0
    PaperBroker.stop = _hanging_stop  # type: ignore[method-assign]
    from tps19.cli import main as cli_main

    sys.argv = ["tps19", *args]
    cli_main()


if __name__ == "__main__":
    main()
