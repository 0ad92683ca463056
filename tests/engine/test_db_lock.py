"""One engine per database and mode: a second one is refused, naming the first; a killed holder
leaves no lock behind."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tps19.engine.engine import Engine, EngineError
from tps19.engine.storage.lock import DatabaseInUse, InstanceLock

DEADLINE_S = 90.0  # overall bound for a process to reach a state; conditions are polled, never slept on


class Proc:
    """A `tps19 paper --no-ui` process whose JSON lines are read on a thread (no blocking readline)."""

    def __init__(self, tmp_path: Path, db: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TPS19_")}
        env["TPS19_LOG__SUMMARY_INTERVAL_S"] = "0.5"
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tps19.cli", "paper", "--no-ui", "--symbol", "BTC/USDT", "--db", str(db)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._q.put(line)
        self._q.put(None)

    def wait_event(self, *events: str) -> dict:
        """The first JSON record whose event is one of ``events`` (fails on EOF or deadline)."""
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            try:
                line = self._q.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            rec = json.loads(line)
            if rec["event"] in events:
                return rec
        raise AssertionError(f"none of {events} seen; output so far:\n{''.join(self.lines)}")

    def finish(self) -> tuple[int, str]:
        try:
            self.popen.wait(timeout=DEADLINE_S)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
        while (line := self._q.get(timeout=DEADLINE_S)) is not None:
            self.lines.append(line)
        assert self.popen.stderr is not None
        return self.popen.returncode, self.popen.stderr.read()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=DEADLINE_S)


@pytest.mark.slow
def test_second_process_on_the_same_database_is_refused_and_a_killed_holder_leaves_no_lock(tmp_path):
    db = tmp_path / "shared.db"
    first = Proc(tmp_path, db)
    second = third = None
    try:
        first.wait_event("started")

        second = Proc(tmp_path, db)
        rec = second.wait_event("started", "error")
        assert rec["event"] == "error", "a second engine started on a database another one is trading on"
        code, err = second.finish()
        assert code == 2
        assert "Traceback" not in err
        message = rec["message"]
        assert "\n" not in message
        assert f"pid {first.popen.pid}" in message and socket.gethostname() in message and "paper" in message
        assert len([l for l in second.lines if f"pid {first.popen.pid}" in l]) == 1

        first.popen.send_signal(signal.SIGKILL)
        first.kill()

        third = Proc(tmp_path, db)
        assert third.wait_event("started", "error")["event"] == "started", "the SIGKILLed holder's lock was left behind"
        third.popen.send_signal(signal.SIGTERM)
        code, err = third.finish()
        assert code == 0, err
    finally:
        for p in (first, second, third):
            if p is not None:
                p.kill()


@pytest.mark.slow
async def test_second_engine_in_one_process_is_refused_naming_the_holder(sim_settings):
    first = Engine(sim_settings)
    await first.start()
    try:
        second = Engine(sim_settings)
        with pytest.raises(EngineError) as info:
            await second.start()
        await second.stop()
        assert f"pid {os.getpid()}" in str(info.value) and "paper" in str(info.value)
        assert "\n" not in str(info.value)
        assert second.venue is None, "the refused engine went on to connect to the venue"
    finally:
        await first.stop()
    # the lock goes with the engine that held it
    again = Engine(sim_settings)
    await again.start()
    await again.stop()


def test_paper_and_live_may_share_a_file_but_not_a_mode(tmp_path):
    db = tmp_path / "t.db"
    paper, live, paper2 = InstanceLock(db, "paper"), InstanceLock(db, "live"), InstanceLock(db, "paper")
    paper.acquire()
    try:
        live.acquire()  # they book into different rows: see tps19/engine/storage/lock.py
        with pytest.raises(DatabaseInUse, match=f"pid {os.getpid()}"):
            paper2.acquire()
    finally:
        paper.release()
        live.release()
    paper2.acquire()
    paper2.release()


def test_two_spellings_of_one_database_share_one_lock(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    monkeypatch.chdir(tmp_path / "d")
    a, b = InstanceLock("x.db", "paper"), InstanceLock(tmp_path / "d" / ".." / "d" / "x.db", "paper")
    a.acquire()
    try:
        with pytest.raises(DatabaseInUse):
            b.acquire()
    finally:
        a.release()
