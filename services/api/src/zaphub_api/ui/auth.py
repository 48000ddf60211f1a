"""Dashboard sign-in: the server-side session store, its cookie, CSRF tokens and the `signed` dependency.

The browser holds only a random session id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
behind https); the API key stays in this process's memory, in `UiSessions`, until the session is
signed out, idles out or the API rejects the key. One store per API process: with more than one
worker a dashboard user signs in again whenever a request lands on another worker (docs/dashboard.md).
"""

import asyncio
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.handlers.base import BaseRouteHandler

from zaphub_api.auth import FailureThrottle, KeyRing, Principal, client_address
from zaphub_api.domain_errors import Unauthorized
from zaphub_api.ui.api import Api

COOKIE = "zaphub_ui"
SIGN_IN_COOKIE = "zaphub_ui_sign_in"  # double-submit token of the sign-in form (no session yet)
COOKIE_PATH = "/ui"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "_csrf"
IDLE_SECONDS = 30 * 60.0
RECHECK_SECONDS = 3.0  # the event stream asks the API whether the key still works this often
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotSignedIn(Exception):
    """No live dashboard session for this request (none, expired, signed out, or its key rejected)."""


class CsrfRefused(Exception):
    """An unsafe request without the session's CSRF token."""


@dataclass
class UiSession:
    id: str
    key: str
    is_admin: bool
    csrf: str
    last_seen: float
    checked_at: float

    @property
    def label(self) -> str:
        """What the header shows of the key: its public prefix (`zh_1a2b3c4d`), never the secret."""
        return "admin key" if self.is_admin else "_".join(self.key.split("_")[:2])[:16]


class UiSessions:
    """Signed-in dashboard sessions by random id, each ending `idle` seconds after its last use."""

    def __init__(self, idle: float = IDLE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle = idle
        self._clock = clock
        self._by_id: dict[str, UiSession] = {}

    def create(self, key: str, is_admin: bool) -> UiSession:
        self._sweep()
        now = self._clock()
        session = UiSession(
            id=secrets.token_urlsafe(32),
            key=key,
            is_admin=is_admin,
            csrf=secrets.token_urlsafe(32),
            last_seen=now,
            checked_at=now,
        )
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> UiSession | None:
        session = self._by_id.get(session_id or "")
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen > self._idle:
            del self._by_id[session.id]
            return None
        session.last_seen = now
        return session

    def end(self, session_id: str | None) -> None:
        self._by_id.pop(session_id or "", None)

    def end_key(self, key: str) -> None:
        """Every session signed in with `key` (the API rejected it)."""
        for session in [s for s in self._by_id.values() if s.key == key]:
            del self._by_id[session.id]

    def due_for_check(self, session: UiSession) -> bool:
        now = self._clock()
        if now - session.checked_at < RECHECK_SECONDS:
            return False
        session.checked_at = now
        return True

    def _sweep(self) -> None:
        now = self._clock()
        for session in [s for s in self._by_id.values() if now - s.last_seen > self._idle]:
            del self._by_id[session.id]


@dataclass
class Dashboard:
    """What the dashboard keeps for the life of the API process (on `app.state.dashboard`)."""

    sessions: UiSessions
    http: httpx.AsyncClient
    throttle: FailureThrottle  # the API's, shared: wrong keys count alike at the form and in headers
    closing: set[asyncio.Task[None]] = field(default_factory=set)  # event relays closing their stream


@dataclass
class Signed:
    """The signed-in principal of a request: its session and the API as its key sees it."""

    session: UiSession
    api: Api

    @property
    def is_admin(self) -> bool:
        return self.session.is_admin


def dashboard_of(request: Request[Any, Any, Any]) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def keyring_of(request: Request[Any, Any, Any]) -> KeyRing:
    keyring: KeyRing = request.app.state.keyring
    return keyring


async def key_works(keyring: KeyRing, key: str) -> bool:
    """Whether the API still accepts `key` (the KeyRing's answer, at most CACHE_SECONDS old)."""
    try:
        await keyring.resolve(key)
    except Unauthorized:
        return False
    return True


async def sign_in_principal(request: Request[Any, Any, Any], key: str) -> Principal | int | None:
    """The principal of a key typed into the sign-in form, as the API's middleware resolves a header:
    None for a wrong key (counted against the browser's address), or the seconds to wait when that
    address failed too often (a key known without a query still gets in)."""
    dashboard = dashboard_of(request)
    keyring = keyring_of(request)
    client = client_address(request.scope)
    wait = dashboard.throttle.retry_after(client)
    if wait:
        return keyring.known(key) or wait
    try:
        return await keyring.resolve(key)
    except Unauthorized:
        dashboard.throttle.failed(client)
        return None


def is_https(request: Request[Any, Any, Any]) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def cookie(request: Request[Any, Any, Any], name: str, value: str, max_age: int | None = None) -> Cookie:
    return Cookie(
        key=name,
        value=value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        max_age=max_age,
    )


def expired(request: Request[Any, Any, Any], name: str) -> Cookie:
    return cookie(request, name, "", max_age=0)


def tokens_match(expected: str, presented: str | None) -> bool:
    return bool(expected) and bool(presented) and hmac.compare_digest(expected, presented or "")


PUBLIC = "dashboard_public"  # the `opt` key of the few /ui routes open without a session


def signed_in_only(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The guard of the whole /ui router: the API's middleware lets /ui through without a key, so every
    route there, those added later too, needs a live dashboard session unless it is marked `PUBLIC`
    (sign-in, static files); `provide_signed` then checks the CSRF token of unsafe methods."""
    if handler.opt.get(PUBLIC):
        return
    dashboard: Dashboard = connection.app.state.dashboard
    if dashboard.sessions.get(connection.cookies.get(COOKIE)) is None:
        raise NotSignedIn()


async def provide_signed(request: Request[Any, Any, Any]) -> Signed:
    """The request's dashboard session; an unsafe method must also carry its CSRF token."""
    dashboard = dashboard_of(request)
    session = dashboard.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise NotSignedIn()
    if request.method in UNSAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER)
        if presented is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
        if not tokens_match(session.csrf, presented):
            raise CsrfRefused()
    return Signed(session=session, api=Api(dashboard.http, session.key))
