from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user who configured nothing but ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPS19_")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def tps19(*args: str) -> list[str]:
    return [sys.executable, "-c", "from tps19.cli import main; main()", *args]


def read_until(proc: subprocess.Popen, pattern: str, timeout: float = 60.0) -> re.Match[str]:
    """The first stdout line of ``proc`` matching ``pattern`` (the lines before it are skipped)."""
    end = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m
    raise AssertionError(f"{pattern!r} not seen; got:\n{''.join(seen[-20:])}")


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@dataclass
class ExchangeProcess:
    proc: subprocess.Popen
    base_url: str
    control_url: str


@pytest.fixture(scope="module")
def exchange_process() -> Iterator[ExchangeProcess]:
    """A standalone `tps19 exchange` with its fault switchboard, for the module."""
    proc = subprocess.Popen(tps19("exchange", "--port", "0", "--control-port", "0", "--rate", "50"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        base = read_until(proc, r"(http://127\.0\.0\.1:\d+)/exchange/v1").group(1)
        control = read_until(proc, r"fault switchboard on (http://127\.0\.0\.1:\d+)/faults").group(1)
        yield ExchangeProcess(proc, base, control)
    finally:
        stop(proc)


def db_env(tmp: Path) -> dict[str, str]:
    return {"TPS19_DATABASE__PATH": str(tmp / "ops.db")}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, show: Callable[[], Any] | None = None) -> Any:
    """Poll ``check`` every 0.2 s until it is truthy and return that (a guard against a hang, not a
    timing assertion); the failure names ``what`` and the last result (or ``show()``'s)."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:g}s (last: {show() if show else last!r})")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A Prometheus scrape: (sample name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
