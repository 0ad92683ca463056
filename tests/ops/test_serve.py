"""`tps19 serve`: the desk in a real headless Chromium through textual-serve behind its login, the
guard over HTTP (nothing served before login, throttled failures, origin and host checks), and
the address rules (loopback by default; another address needs --allow-remote and a password)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import clean_env, read_until, tps19

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


PASSWORD = "correct horse battery"


def _group(pgid: int) -> list[int]:
    """The pids of a process group (the server and the desks it started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


def _proc_text(pid: int, what: str) -> str:
    try:
        return (Path("/proc") / str(pid) / what).read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Served:
    def __init__(self, proc: subprocess.Popen, url: str, banner: str) -> None:
        self.proc, self.url, self.banner = proc, url, banner


@contextlib.contextmanager
def serving(tmp_path: Path, *args: str, **env: str) -> Iterator[Served]:
    """`tps19 serve` on a free loopback port, its desks in its process group, stopped at the end."""
    port = _free_port()
    proc = subprocess.Popen(tps19("serve", "--port", str(port), "--symbol", "BTC/USDT", *args), cwd=tmp_path,
                            env=clean_env(TPS19_DATABASE__PATH=str(tmp_path / "web.db"), **env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its desk sessions are in its process group
    try:
        banner = read_until(proc, r"^tps19 serve: the .*", timeout=60).group(0)
        yield Served(proc, f"http://127.0.0.1:{port}/", banner)
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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def http(url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with _opener.open(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def _ws_status(url: str, headers: dict[str, str]) -> int:
    """The HTTP status a websocket handshake to ``url`` gets (101: opened)."""
    import aiohttp

    async def go() -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url, headers=headers) as ws:
                    await ws.close()
                    return 101
            except aiohttp.WSServerHandshakeError as err:
                return err.status

    return asyncio.run(go())


def _screen(page) -> list[str]:
    return page.evaluate("""() => { const b = window.__tps19_term.buffer.active; const out = [];
        for (let i = 0; i < window.__tps19_term.rows; i++) out.push(b.getLine(b.viewportY + i).translateToString(true));
        return out; }""")


def _keep_terminal(route):
    body = route.fetch().text()
    assert TERMINAL.search(body), "textual-serve's script no longer creates its terminal as expected"
    route.fulfill(body=TERMINAL.sub(r"this.terminal=window.__tps19_term=new \1.Terminal(", body, count=1),
                  content_type="application/javascript")


@pytest.mark.slow
def test_the_desk_in_chromium_behind_its_login(browser_kit, tmp_path, pg_server):
    """A browser meets the login page, a wrong password is refused, the right one opens the paper
    desk with a moving book; the database URL's password is in no command line and no banner
    (the desk process gets it in its environment); SIGTERM with the browser connected ends it all."""
    db_url = pg_server.lease().replace("tps19@", "tps19:S3cretPW@")  # the test server trusts any password
    with serving(tmp_path, "--db", db_url, TPS19_SERVE__PASSWORD=PASSWORD) as served, \
            browser_kit.sync_playwright() as p:
        assert "S3cretPW" not in served.banner and "login required" in served.banner, served.banner
        browser = p.chromium.launch_persistent_context(str(tmp_path / "chromium"), executable_path=CHROMIUM,
                                                       headless=True, args=FLAGS,
                                                       viewport={"width": 1400, "height": 900})
        try:
            page = browser.new_page()
            page.route("**/static/js/textual.js", _keep_terminal)
            page.goto(served.url)
            assert page.url.endswith("/login")
            page.fill("#password", "not the password")
            page.click("button[type=submit]")
            page.wait_for_selector(".error")
            assert page.inner_text(".error") == "Wrong password."
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
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

            # `ps` shows every user each process's command line: the password is on none that serve
            # started (its own is the user's choice: docs/operations.md puts it in the env file)
            pids = [pid for pid in _group(served.proc.pid) if pid != served.proc.pid]
            desks = [pid for pid in pids if " paper" in _proc_text(pid, "cmdline")]
            assert len(desks) == 1, [_proc_text(pid, "cmdline") for pid in pids]
            for pid in pids:
                assert "S3cretPW" not in _proc_text(pid, "cmdline"), _proc_text(pid, "cmdline")
            environ = _proc_text(desks[0], "environ")
            assert f"TPS19_DATABASE__URL={db_url}" in environ  # delivered, out of sight
            assert "TPS19_SERVE__PASSWORD" not in environ  # the desk has no use for the login

            t0 = time.monotonic()
            served.proc.send_signal(signal.SIGTERM)
            code = served.proc.wait(timeout=30)
            took = time.monotonic() - t0
            print(f"serve stopped {took:.2f}s after SIGTERM with a browser connected")
            assert code == 0
            assert _group(served.proc.pid) == [], "a desk process outlived the server"
            out = served.proc.stdout.read()
            assert "S3cretPW" not in out and "Traceback" not in out, out
        finally:
            browser.close()
            pg_server.give_back(db_url.replace("tps19:S3cretPW@", "tps19@"))


def test_nothing_of_the_desk_is_served_before_login_and_failures_are_throttled(tmp_path):
    with serving(tmp_path, TPS19_SERVE__PASSWORD=PASSWORD) as served:
        url = served.url
        status, headers, _ = http(url)
        assert status == 303 and headers["Location"] == "/login"
        assert http(url + "static/js/textual.js")[0] == 401
        assert _ws_status(url.replace("http", "ws") + "ws", {}) == 401
        status, _, page = http(url + "login")
        assert status == 200 and 'type="password"' in page and "<script" not in page
        # five wrong passwords are answered; then even the right one waits
        for _ in range(5):
            assert http(url + "login", {"password": "guess"})[0] == 401
        status, headers, page = http(url + "login", {"password": PASSWORD})
        assert status == 429 and int(headers["Retry-After"]) >= 1 and "Too many failed logins" in page
        assert not [pid for pid in _group(served.proc.pid) if pid != served.proc.pid], "a desk was started"
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=30) == 0
        log = served.proc.stdout.read()
        assert log.count("failed login from 127.0.0.1") == 5 and "guess" not in log, log


def test_a_login_opens_the_desk_to_that_browser_only_and_from_its_own_page(tmp_path):
    with serving(tmp_path, TPS19_SERVE__PASSWORD=PASSWORD) as served:
        status, headers, _ = http(served.url + "login", {"password": PASSWORD})
        assert status == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        session = cookie.split(";")[0]
        assert http(served.url, headers={"Cookie": session})[0] == 200
        assert http(served.url, headers={"Cookie": "tps19_session=forged"})[0] == 303
        # another web site open in the same browser cannot drive the desk through its websocket
        ws = served.url.replace("http", "ws") + "ws"
        assert _ws_status(ws, {"Cookie": session, "Origin": "https://evil.example"}) == 403
        # logging out ends the session
        assert http(served.url + "logout", {}, headers={"Cookie": session})[0] == 303
        assert http(served.url, headers={"Cookie": session})[0] == 303


def test_without_a_password_the_loopback_desk_answers_loopback_names_only(tmp_path):
    """A DNS-rebinding page (evil.example resolving to 127.0.0.1) reaches the port through the
    browser with its own Host header: refused; so is a websocket from another origin."""
    with serving(tmp_path) as served:
        assert "no login: loopback only" in served.banner
        assert http(served.url)[0] == 200
        assert http(served.url, headers={"Host": "evil.example:80"})[0] == 403
        ws = served.url.replace("http", "ws") + "ws"
        assert _ws_status(ws, {"Origin": "http://evil.example"}) == 403


@pytest.mark.parametrize(("args", "env", "said"), [
    (("--host", "0.0.0.0", "--allow-remote"), {}, "beyond loopback: no TPS19_SERVE__PASSWORD is set"),
    (("--live",), {}, "with --live (other users of this machine reach its loopback): no TPS19_SERVE__PASSWORD"),
    ((), {"TPS19_SERVE__PASSWORD": "short"}, "TPS19_SERVE__PASSWORD is shorter than 12 characters"),
])
def test_serve_refuses_to_start_unguarded(tmp_path, args, env, said):
    r = subprocess.run(tps19("serve", *args), cwd=tmp_path, env=clean_env(**env),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and lines[0].startswith("tps19: refusing to serve"), r.stderr


def test_a_non_loopback_address_is_refused_without_allow_remote(tmp_path):
    r = subprocess.run(tps19("serve", "--host", "0.0.0.0"), cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-remote" in lines[0] and lines[0].startswith("tps19: "), r.stderr


def test_a_taken_port_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(tps19("serve", "--host", "0.0.0.0", "--port", str(port), "--allow-remote"), cwd=tmp_path,
                           env=clean_env(TPS19_SERVE__PASSWORD=PASSWORD), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"tps19: cannot listen on 0.0.0.0:{port}: Address already in use"], r.stderr
