"""`tps19 ...` with third-party code that logs secrets: once the engine has started, a library
logger, asyncio and a warning each carry the configured secrets (raw, in a JSON body, in an
exception's repr), as a careless dependency would. Run as `python -m tests.engine.leaky_child ARGS`."""

from __future__ import annotations

import json
import logging
import os
import runpy
import sys
import warnings

from tps19.engine.engine import Engine

_start = Engine.start


async def _leaky_start(self: Engine) -> None:
    await _start(self)
    secrets = [os.environ[k] for k in ("TPS19_EXCHANGE__API_KEY", "TPS19_EXCHANGE__SECRET", "TPS19_EXCHANGE__PASSWORD")]
    body = json.dumps({"api_key": secrets[0], "secret": secrets[1], "password": secrets[2]})
    logging.getLogger("ccxt.base.exchange").warning("POST private/create-order %s", body)
    try:
        raise RuntimeError(f"signing failed for {secrets!r}")
    except RuntimeError:
        logging.getLogger("asyncio").error("Task exception was never retrieved", exc_info=True)
    warnings.warn(f"unclosed client session with password {secrets[2]!r}", RuntimeWarning, stacklevel=1)


Engine.start = _leaky_start  # type: ignore[method-assign]
sys.argv = ["tps19", *sys.argv[1:]]
runpy.run_module("tps19.cli", run_name="__main__")
