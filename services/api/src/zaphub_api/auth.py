"""API keys: generation, hashing, lookup with a bounded cache, the throttle of failed attempts, and the
middleware that authenticates every request before its body is read."""

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from zaphub_api.domain_errors import BodyTooLarge, Forbidden, TooManyAuthFailures, Unauthorized

KEY_PREFIX = "zh_"
# What `new_key` makes: prefix, 8 hex digits, `_`, 43 url-safe base64 characters (256 bits).
KEY_FORMAT = re.compile(r"zh_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")
CACHE_SECONDS = 5.0  # a revoked key stops working within this time
CACHE_MAX = 100_000  # keys remembered (least recently used go first)
ADMIN_KEY_MIN_LENGTH = 32
# Placeholders from infra/ and the docs, and their usual spellings: refused as admin keys.
PLACEHOLDER_MARKS = ("change_me", "changeme", "change-me", "placeholder", "replace_me", "replace-me")
# Routes anyone may call: liveness, readiness, metrics and the API's documentation.
PUBLIC_PATHS = re.compile(r"/health|/ready|/metrics|/docs(/.*)?")
# The dashboard: its pages carry no key header but its own cookie session and CSRF token, checked by
# zaphub_api.ui (sign-in through this module's KeyRing and FailureThrottle); its bodies are capped too.
DASHBOARD_PATHS = re.compile(r"/ui(/.*)?")


@dataclass(frozen=True, slots=True)
class NewKey:
    secret: str  # shown to the caller once
    prefix: str  # stored and listed
    digest: bytes  # stored


def new_key() -> NewKey:
    # Keys carry 256 random bits, so one SHA-256 is the right hash: nothing to brute-force.
    prefix = KEY_PREFIX + secrets.token_hex(4)
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(secret=secret, prefix=prefix, digest=digest(secret))


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def check_admin_key(key: str) -> None:
    """Refuse an admin key anyone could guess: short, or a placeholder shipped in an example."""
    if len(key) < ADMIN_KEY_MIN_LENGTH:
        raise ValueError(
            f"ZAPHUB_ADMIN_KEY is {len(key)} characters; use at least {ADMIN_KEY_MIN_LENGTH} random ones"
            " (e.g. `zh_admin_$(openssl rand -hex 24)`), or leave it unset to have one generated"
        )
    lowered = key.lower()
    if any(mark in lowered for mark in PLACEHOLDER_MARKS):
        raise ValueError("ZAPHUB_ADMIN_KEY is a placeholder from an example; set a random key of your own")


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: UUID | None  # None for the admin

    @property
    def is_admin(self) -> bool:
        return self.tenant_id is None


ADMIN = Principal(tenant_id=None)


class FailureThrottle:
    """A token bucket per client address for failed authentications: `burst` failures at once, then
    `per_second`; an address with an empty bucket is refused before its key is even looked at. At most
    `max_clients` addresses are remembered (the least recently seen go first)."""

    def __init__(self, burst: int, per_second: float, max_clients: int = 10_000) -> None:
        self._burst = float(burst)
        self._rate = per_second
        self._max = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address → (tokens, at)

    def _tokens(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (self._burst, now))
        return min(self._burst, tokens + (now - at) * self._rate)

    def retry_after(self, client: str) -> int:
        """0 when the client may try; otherwise the seconds until its next attempt."""
        if client not in self._buckets:
            return 0
        tokens = self._tokens(client, time.monotonic())
        return 0 if tokens >= 1.0 else max(1, int((1.0 - tokens) / self._rate + 0.999))

    def failed(self, client: str) -> None:
        now = time.monotonic()
        self._buckets[client] = (max(0.0, self._tokens(client, now) - 1.0), now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)


class KeyRing:
    """Resolves a presented key to a principal; tenant keys are looked up by hash and cached briefly."""

    def __init__(self, pool: asyncpg.Pool, admin_key: str, max_cached: int = CACHE_MAX) -> None:
        self._pool = pool
        self._admin_digest = digest(admin_key)
        self._max = max_cached
        self._cache: OrderedDict[bytes, tuple[float, UUID | None]] = OrderedDict()

    def forget(self) -> None:
        self._cache.clear()

    def known(self, presented: str) -> Principal | None:
        """The principal of the admin key or of a valid key still in the cache; None otherwise."""
        key_digest = digest(presented)
        if hmac.compare_digest(key_digest, self._admin_digest):
            return ADMIN
        cached = self._cache.get(key_digest)
        if cached is None or cached[0] < time.monotonic() or cached[1] is None:
            return None
        return Principal(tenant_id=cached[1])

    async def resolve(self, presented: str) -> Principal:
        key_digest = digest(presented)
        if hmac.compare_digest(key_digest, self._admin_digest):
            return ADMIN
        if KEY_FORMAT.fullmatch(presented) is None:
            # No key we issued looks like this: refused without a query (or a cache entry).
            raise Unauthorized("The API key is unknown or revoked")
        now = time.monotonic()
        cached = self._cache.get(key_digest)
        if cached is None or cached[0] < now:
            tenant_id = await self._pool.fetchval(
                "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", key_digest
            )
            cached = (now + CACHE_SECONDS, tenant_id)
            self._cache[key_digest] = cached
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key_digest)
        if cached[1] is None:
            raise Unauthorized("The API key is unknown or revoked")
        return Principal(tenant_id=cached[1])


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = connection.headers.get("x-api-key", "").strip()
    if api_key:
        return api_key
    raise Unauthorized("Send the API key as 'Authorization: Bearer <key>' or 'X-API-Key'")


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Request body caps: `json` for every route, `upload` for multipart uploads (`upload_suffix`)."""

    json: int
    upload: int
    upload_suffix: str = "/upload"

    def for_path(self, path: str) -> int:
        return self.upload if path.endswith(self.upload_suffix) else self.json


class AuthMiddleware(ASGIMiddleware):
    """Authenticates every non-public request from its headers alone, before the handler (and so the
    body parser) runs: an unauthenticated request is answered 401 without reading its body. The body
    of an authenticated one is then counted as it streams and refused (413) past its route's cap; so is
    a dashboard request's, which the dashboard authenticates itself (`DASHBOARD_PATHS`).

    The principal goes into `scope["auth"]` (`request.auth`), where `provide_principal` finds it."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, throttle: FailureThrottle, limits: BodyLimits) -> None:
        self._throttle = throttle
        self._limits = limits
        self.should_bypass_for_scope = _public

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
        if DASHBOARD_PATHS.fullmatch(scope["path"]) is None:
            scope["auth"] = await self._authenticate(connection, scope)
        cap = self._limits.for_path(scope["path"])
        length = connection.headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            raise BodyTooLarge(cap)
        await next_app(scope, _capped(receive, cap), send)

    async def _authenticate(self, connection: ASGIConnection[Any, Any, Any, Any], scope: Scope) -> Principal:
        client = client_address(scope)
        keyring: KeyRing = connection.app.state.keyring
        presented = presented_key(connection)
        wait = self._throttle.retry_after(client)
        if wait:
            # A throttled address still gets in with a key known without a query (the admin key, or
            # one resolved in the last seconds), so that a flood from a shared address cannot lock out
            # the clients behind it that hold a key.
            known = keyring.known(presented)
            if known is None:
                raise TooManyAuthFailures(wait)
            principal = known
        else:
            try:
                principal = await keyring.resolve(presented)
            except Unauthorized:
                self._throttle.failed(client)
                raise
        return principal


def _public(scope: Scope) -> bool:
    return PUBLIC_PATHS.fullmatch(scope["path"]) is not None


def _capped(receive: Receive, cap: int) -> Receive:
    seen = 0

    async def capped() -> ReceiveMessage:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise BodyTooLarge(cap)
        return message

    return capped


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = request.scope.get("auth")
    if not isinstance(principal, Principal):  # a public route asked for one: fail closed
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>' or 'X-API-Key'")
    return principal


async def provide_tenant_id(principal: NamedDependency[Principal]) -> UUID:
    """Routes that act on one tenant's data: the tenant of the key (admins use the tenants routes)."""
    if principal.tenant_id is None:
        raise Forbidden("Tenant routes need a tenant API key, not the admin key")
    return principal.tenant_id


async def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The guard of the admin controllers: each of their handlers, those added later too, refuses a
    tenant key (403) and a request without a valid key (401) before anything else runs."""
    principal = connection.scope.get("auth")
    if not isinstance(principal, Principal):
        raise Unauthorized("Send the API key as 'Authorization: Bearer <key>' or 'X-API-Key'")
    if not principal.is_admin:
        raise Forbidden("This route needs the admin key")
