"""Child process: the real `tps19` CLI whose engine, once its stop has begun, waits for a line on
stdin before stopping (the stop is then certainly running when a test's next signal lands).

    python -m tests.replay.signal_child paper --no-ui --record DIR

"STOPPING" on stderr marks that moment. The window in which the first signal delivered again is
the same request is held open (3600 s), so the test's repeat counts as one however loaded the
machine is (coreutils `timeout` repeats it micro- to milliseconds later).
"""

from __future__ import annotations

import asyncio
import sys


def main() -> None:
    from tps19.engine import shutdown
    from tps19.engine.engine import Engine

    shutdown.REPEAT_WINDOW_S = 3600.0
    real_stop = Engine.stop

    async def held_stop(self: Engine) -> None:
        print("STOPPING", file=sys.stderr, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await real_stop(self)

    Engine.stop = held_stop  # type: ignore[method-assign]
    from tps19.cli import main as cli_main

    sys.argv = ["tps19", *sys.argv[1:]]
    cli_main()


if __name__ == "__main__":
    main()
