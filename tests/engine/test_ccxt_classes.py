"""ccxt's exchange classes loaded one exchange at a time (tps19/engine/ccxt_classes.py) are the
classes a full `import ccxt.pro` gives, and every exchange id a user may configure still works.

Each case runs in a fresh interpreter: this test process has long imported the whole of ccxt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# what either way of importing leaves in ccxt's three packages, and what the two exchanges TPS19
# connects to describe themselves as (urls, options, fees, capabilities: what a client runs on)
_SURVEY = r"""
def survey():
    import ccxt, ccxt.async_support, ccxt.pro
    from tps19.engine.ccxt_classes import exchange_class
    packages = {"sync": ccxt, "async": ccxt.async_support, "pro": ccxt.pro}
    names = {f: sorted(k for k in vars(p) if not k.startswith("__")) for f, p in packages.items()}
    same = all(exchange_class(i, f) is getattr(p, i) for f, p in packages.items() for i in p.exchanges)
    described = {f"{f}.{i}": json.dumps(getattr(p, i)().describe(), sort_keys=True, default=lambda o: type(o).__name__)
                 for f, p in packages.items() for i in ("cryptocom", "binance")}
    return {"names": names, "every_id_same_class": same, "described": described,
            "counts": {f: len(p.exchanges) for f, p in packages.items()}}
"""

_LEAN_FIRST = _SURVEY + r"""
import asyncio, json, sys
from tps19.engine.ccxt_classes import exchange_class
from tps19.config import Settings
from tps19.engine.venue import VenueError, open_venue

out = {}
lean = {(f, i): exchange_class(i, f) for f in ("sync", "async", "pro") for i in ("cryptocom", "binance")}
# which exchanges' modules were imported to get those six classes
out["exchange_modules"] = sorted(m.rsplit(".", 1)[1] for m in sys.modules
                                 if m.count(".") >= 1 and m.rsplit(".", 1)[0] in ("ccxt", "ccxt.async_support", "ccxt.pro")
                                 and m.rsplit(".", 1)[1] not in ("base", "abstract", "async_support", "pro", "static_dependencies"))
out["lean_repr"] = sorted(f"{c.__module__}.{c.__qualname__}" for c in lean.values())

async def venue(exchange_id):
    try:
        v = await open_venue(Settings(exchange={"id": exchange_id}), private=False)
    except VenueError as err:
        return f"VenueError: {err}"
    await v.client.close()
    return f"{type(v.client).__module__}.{type(v.client).__qualname__}"

import ccxt
sync_only = sorted(set(ccxt.exchanges) - set(__import__("ccxt.pro").pro.exchanges))[0]
out["venues"] = {i: asyncio.run(venue(i)) for i in ("kraken", "bybit", "no-such-venue", sync_only)}
out["sync_only"] = sync_only
out["survey"] = survey()
import ccxt.pro
out["lean_is_full"] = all(c is getattr({"sync": ccxt, "async": ccxt.async_support, "pro": ccxt.pro}[f], i)
                          for (f, i), c in lean.items())
print(json.dumps(out))
"""

_FULL_FIRST = _SURVEY + r"""
import json
import ccxt, ccxt.async_support, ccxt.pro
print(json.dumps({"survey": survey()}))
"""


def _child(code: str, cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPS19_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def lean(tmp_path_factory) -> dict:
    """What a process that loaded the desk's venues lean (as `tps19 paper` does) then saw."""
    return _child(_LEAN_FIRST, tmp_path_factory.mktemp("lean"))


def test_one_exchange_loads_alone_and_is_the_class_of_the_full_import(lean, tmp_path):
    full = _child(_FULL_FIRST, tmp_path)
    # the desk's two venues, sync/async/pro, without the other ~75 exchanges' modules
    assert lean["exchange_modules"] == ["binance", "binance", "binance", "cryptocom", "cryptocom", "cryptocom"]
    assert lean["lean_repr"] == sorted(f"ccxt.{p}{i}.{i}" for p in ("", "async_support.", "pro.")
                                       for i in ("cryptocom", "binance"))
    # the same objects a later `import ccxt.pro` hands out, and that package then holds exactly
    # what a full import's does, every exchange included
    assert lean["lean_is_full"]
    assert lean["survey"]["names"] == full["survey"]["names"]
    assert lean["survey"]["counts"] == full["survey"]["counts"] and full["survey"]["counts"]["pro"] > 50
    assert lean["survey"]["described"] == full["survey"]["described"]
    assert lean["survey"]["every_id_same_class"] and full["survey"]["every_id_same_class"]


def test_any_exchange_id_a_user_configures_still_opens_after_the_lean_load(lean):
    venues = lean["venues"]
    assert venues["kraken"] == "ccxt.pro.kraken.kraken"
    assert venues["bybit"] == "ccxt.pro.bybit.bybit"
    assert venues["no-such-venue"].startswith("VenueError: unknown exchange 'no-such-venue'")
    assert venues[lean["sync_only"]] == (f"VenueError: exchange '{lean['sync_only']}' has no websocket client "
                                         "in ccxt.pro; TPS19 needs one")
