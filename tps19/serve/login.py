"""The browser desk's guard: a password login, session cookies, throttled failures, and the
origin/host checks that keep another web site from driving a desk open in the same browser.

Every request but the login page itself needs a session cookie once a password is set: the
page, its scripts, the download route and the websocket that drives the desk process.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import SecretStr

from ..throttle import FailureThrottle

log = logging.getLogger("tps19.serve")

COOKIE = "tps19_session"
SESSION_TTL_S = 12 * 3600.0
MIN_PASSWORD_LENGTH = 12
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title} login</title>
<style>
 body {{ background:#0c181f; color:#e6edf3; font-family: menlo, monospace; display:flex;
        align-items:center; justify-content:center; height:100vh; margin:0; }}
 form {{ background:#12232d; padding:2em 2.5em; border-radius:6px; min-width:22em; }}
 h1 {{ font-size:1.2em; margin:0 0 1em 0; }}
 input {{ font:inherit; width:100%; box-sizing:border-box; padding:.5em; margin:.3em 0 1em 0; }}
 button {{ font:inherit; padding:.5em 1.5em; }}
 .error {{ color:#ff7b72; margin-bottom:1em; }}
</style></head>
<body><form method="post" action="/login">
<h1>{title}</h1>
{error}
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" autofocus required>
<button type="submit">Log in</button>
</form></body></html>
"""


def password_problem(password: SecretStr | None) -> str | None:
    """Why ``password`` cannot guard a desk, or None."""
    if password is None:
        return "no TPS19_SERVE__PASSWORD is set"
    if len(password.get_secret_value()) < MIN_PASSWORD_LENGTH:
        return f"TPS19_SERVE__PASSWORD is shorter than {MIN_PASSWORD_LENGTH} characters"
    return None


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class Guard:
    """The aiohttp middleware and login routes of one `tps19 serve`.

    ``password`` None: no login (serve allows that on loopback only, paper only); then requests
    must still name a loopback host (a DNS-rebinding page cannot reach the desk through the
    browser) and a websocket must come from the desk's own page.
    """

    def __init__(self, password: SecretStr | None, *, title: str, public_url: str,
                 throttle: FailureThrottle | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._digest = _digest(password.get_secret_value()) if password is not None else None
        self.title = title
        self.public = urlsplit(public_url)
        self.secure_cookie = self.public.scheme == "https"
        self.throttle = throttle or FailureThrottle()
        self.clock = clock
        self._sessions: dict[str, float] = {}  # token -> expiry (monotonic)
        self.failed_logins = 0

    @property
    def required(self) -> bool:
        return self._digest is not None

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self.middleware)
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)

    # --- sessions -------------------------------------------------------------------
    def _new_session(self) -> str:
        now = self.clock()
        for token in [t for t, exp in self._sessions.items() if exp <= now]:
            del self._sessions[token]
        token = secrets.token_urlsafe(32)
        self._sessions[token] = now + SESSION_TTL_S
        return token

    def logged_in(self, request: web.Request) -> bool:
        token = request.cookies.get(COOKIE)
        if not token:
            return False
        expiry = self._sessions.get(token)
        return expiry is not None and expiry > self.clock()

    # --- checks every request passes --------------------------------------------------
    def _host_allowed(self, request: web.Request) -> bool:
        if self.required:
            return True  # the password guards it; a proxy may present any name
        host = (request.host or "").lower()
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        return name in LOOPBACK_HOSTS or name == (self.public.hostname or "").lower()

    def _origin_allowed(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser's cross-site request (browsers always send it on websockets)
        netloc = urlsplit(origin).netloc.lower()
        return netloc in {(request.host or "").lower(), self.public.netloc.lower()}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._host_allowed(request):
            log.warning("serve: refused a request for host %r from %s", request.host, request.remote)
            raise web.HTTPForbidden(text="this desk answers on its loopback address only\n")
        if request.path == "/ws" and not self._origin_allowed(request):
            log.warning("serve: refused a websocket from origin %r (%s)", request.headers.get("Origin"), request.remote)
            raise web.HTTPForbidden(text="websocket from another origin\n")
        if not self.required or request.path == "/login" or self.logged_in(request):
            return await handler(request)
        if request.method == "GET" and request.path == "/":
            raise web.HTTPSeeOther("/login")
        raise web.HTTPUnauthorized(text="log in first: /login\n")

    # --- routes -----------------------------------------------------------------------
    def _page(self, error: str = "", status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        body = PAGE.format(title=html.escape(self.title),
                           error=f'<div class="error">{html.escape(error)}</div>' if error else "")
        return web.Response(text=body, status=status, content_type="text/html", headers=headers,
                            charset="utf-8")

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        if not self.required or self.logged_in(request):
            raise web.HTTPSeeOther("/")
        return self._page()

    async def login(self, request: web.Request) -> web.StreamResponse:
        if not self.required:
            raise web.HTTPSeeOther("/")
        client = request.remote or "?"
        wait = self.throttle.retry_after(client)
        if wait > 0:
            seconds = max(1, round(wait))
            return self._page(f"Too many failed logins: try again in {seconds} s.", status=429,
                              headers={"Retry-After": str(seconds)})
        form = await request.post()
        given = form.get("password")
        assert self._digest is not None
        if not isinstance(given, str) or not hmac.compare_digest(_digest(given), self._digest):
            self.throttle.failed(client)
            self.failed_logins += 1
            log.warning("serve: failed login from %s (%d failed since start)", client, self.failed_logins)
            return self._page("Wrong password.", status=401)
        self.throttle.succeeded(client)
        log.info("serve: login from %s", client)
        response = web.HTTPSeeOther("/")
        response.set_cookie(COOKIE, self._new_session(), max_age=int(SESSION_TTL_S), path="/", httponly=True,
                            samesite="Strict", secure=self.secure_cookie)
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        token = request.cookies.get(COOKIE)
        if token:
            self._sessions.pop(token, None)
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        raise response
