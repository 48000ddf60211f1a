"""API keys: generation, hashing, lookup with a short cache, and the principal of a request."""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler

from zaphub_api.domain_errors import Forbidden, Unauthorized

KEY_PREFIX = "zh_"
CACHE_SECONDS = 5.0  # a revoked key stops working within this time


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


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: UUID | None  # None for the admin

    @property
    def is_admin(self) -> bool:
        return self.tenant_id is None


ADMIN = Principal(tenant_id=None)


class KeyRing:
    """Resolves a presented key to a principal; tenant keys are looked up by hash and cached briefly."""

    def __init__(self, pool: asyncpg.Pool, admin_key: str) -> None:
        self._pool = pool
        self._admin_digest = digest(admin_key)
        self._cache: dict[bytes, tuple[float, UUID | None]] = {}

    def forget(self) -> None:
        self._cache.clear()

    async def resolve(self, presented: str) -> Principal:
        key_digest = digest(presented)
        if hmac.compare_digest(key_digest, self._admin_digest):
            return ADMIN
        now = time.monotonic()
        cached = self._cache.get(key_digest)
        if cached is None or cached[0] < now:
            tenant_id = await self._pool.fetchval(
                "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", key_digest
            )
            cached = (now + CACHE_SECONDS, tenant_id)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key_digest] = cached
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


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    keyring: KeyRing = request.app.state.keyring
    return await keyring.resolve(presented_key(request))


async def provide_tenant_id(principal: NamedDependency[Principal]) -> UUID:
    """Routes that act on one tenant's data: the tenant of the key (admins use the tenants routes)."""
    if principal.tenant_id is None:
        raise Forbidden("Tenant routes need a tenant API key, not the admin key")
    return principal.tenant_id


async def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The guard of the admin controllers: each of their handlers, those added later too, refuses a
    tenant key (403) and a request without a valid key (401) before anything else runs."""
    keyring: KeyRing = connection.app.state.keyring
    if not (await keyring.resolve(presented_key(connection))).is_admin:
        raise Forbidden("This route needs the admin key")
