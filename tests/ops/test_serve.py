"""`tps19 serve`: the desk in a real headless Chromium through textual-serve, and the address
rules (loopback by default; another address needs --allow-remote and prints a warning)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import clean_env, tps19

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# servers.md: without the background-networking flags Chromium stalls on refused connections
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# The page's xterm.js draws on a canvas; the test reads the same terminal's buffer (what is drawn)
# by having the page's own script keep a reference to its terminal.
TERMINAL = re.compile(r"this\.terminal=new (\w+)\.Terminal\(")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser_kit():
    """Playwright's sync API, or a skip saying what is missing (before any server is started)."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium here: apt-get install chromium (.ci/run does)")
    return playwright


@pytest.fixture
def served(browser_kit, tmp_path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(tps19("serve", "--port", str(port), "--symbol", "BTC/USDT"), cwd=tmp_path,
                            env=clean_env(TPS19_DATABASE__PATH=str(tmp_path / "web.db")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its desk sessions are in its process group
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            assert proc.poll() is None, proc.stdout.read()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


def _screen(page) -> list[str]:
    return page.evaluate("""() => { const b = window.__tps19_term.buffer.active; const out = [];
        for (let i = 0; i < window.__tps19_term.rows; i++) out.push(b.getLine(b.viewportY + i).translateToString(true));
        return out; }""")


@pytest.mark.slow
def test_the_desk_in_chromium_shows_the_paper_badge_and_a_moving_book(browser_kit, served, tmp_path):
    with browser_kit.sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(str(tmp_path / "chromium"), executable_path=CHROMIUM,
                                                       headless=True, args=FLAGS,
                                                       viewport={"width": 1400, "height": 900})
        try:
            page = browser.new_page()

            def keep_terminal(route):
                body = route.fetch().text()
                assert TERMINAL.search(body), "textual-serve's script no longer creates its terminal as expected"
                route.fulfill(body=TERMINAL.sub(r"this.terminal=window.__tps19_term=new \1.Terminal(", body, count=1),
                              content_type="application/javascript")

            page.route("**/static/js/textual.js", keep_terminal)
            page.goto(served)
            page.wait_for_function("() => window.__tps19_term && window.__tps19_term.buffer.active"
                                   ".getLine(0).translateToString().includes('PAPER')", timeout=120_000)
            assert _screen(page)[0].lstrip().startswith("PAPER")

            def mid() -> str | None:
                for line in _screen(page):
                    m = re.search(r"mid ([\d,]+\.\d+)", line)
                    if m:
                        return m.group(1)
                return None

            end = time.monotonic() + 90
            first = None
            while time.monotonic() < end and first is None:
                first = mid()
                time.sleep(0.2)
            assert first, "\n".join(_screen(page))
            while time.monotonic() < end and mid() in (first, None):
                time.sleep(0.2)
            assert mid() not in (first, None), "the book's mid did not move in the browser"
        finally:
            browser.close()


def test_a_non_loopback_address_is_refused_without_allow_remote(tmp_path):
    r = subprocess.run(tps19("serve", "--host", "0.0.0.0"), cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-remote" in lines[0] and lines[0].startswith("tps19: "), r.stderr


def test_allow_remote_prints_a_warning_and_a_taken_port_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(tps19("serve", "--host", "0.0.0.0", "--port", str(port), "--allow-remote"), cwd=tmp_path,
                           env=clean_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert "WARNING" in lines[0] and "NO authentication" in lines[0]
    assert lines[1:] == [f"tps19: cannot listen on 0.0.0.0:{port}: Address already in use"], r.stderr
