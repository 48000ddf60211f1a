"""Tenants and their API keys in PostgreSQL."""

import builtins
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

import asyncpg

from zaphub_api.auth import NewKey
from zaphub_api.domain_errors import ApiKeyNotFound, TenantNotFound
from zaphub_api.schemas.tenants import TenantCreate, TenantUpdate
from zaphub_contracts.ratelimit import RateLimits

_TENANT_COLUMNS = (
    "id, name, rate_per_minute, rate_per_hour, rate_per_day, max_sessions, max_queued, created_at"
)
_KEY_COLUMNS = "id, tenant_id, name, prefix, created_at, revoked_at"


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant with its effective limits: its own, or the defaults where it sets none."""

    id: UUID
    name: str
    rate_limits: RateLimits
    max_sessions: int
    max_queued: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as it is listed: by prefix (the secret is never stored)."""

    id: UUID
    tenant_id: UUID
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class TenantStore:
    def __init__(self, pool: asyncpg.Pool, default_limits: RateLimits, default_max_sessions: int) -> None:
        self._pool = pool
        self._default_limits = default_limits
        self._default_max_sessions = default_max_sessions

    def _read(self, row: asyncpg.Record) -> Tenant:
        base = self._default_limits
        limits = RateLimits(
            per_minute=row["rate_per_minute"] if row["rate_per_minute"] is not None else base.per_minute,
            per_hour=row["rate_per_hour"] if row["rate_per_hour"] is not None else base.per_hour,
            per_day=row["rate_per_day"] if row["rate_per_day"] is not None else base.per_day,
        )
        return Tenant(
            id=row["id"],
            name=row["name"],
            rate_limits=limits,
            max_sessions=row["max_sessions"]
            if row["max_sessions"] is not None
            else self._default_max_sessions,
            max_queued=row["max_queued"] if row["max_queued"] is not None else limits.per_day,
            created_at=row["created_at"],
        )

    async def create(self, data: TenantCreate, key: NewKey) -> Tenant:
        limits = data.rate_limits
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO tenants"
                " (id, name, rate_per_minute, rate_per_hour, rate_per_day, max_sessions, max_queued)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_TENANT_COLUMNS}",
                uuid4(),
                data.name,
                limits.per_minute if limits else None,
                limits.per_hour if limits else None,
                limits.per_day if limits else None,
                data.max_sessions,
                data.max_queued,
            )
            assert row is not None
            await conn.execute(
                "INSERT INTO api_keys (id, tenant_id, prefix, key_hash) VALUES ($1, $2, $3, $4)",
                uuid4(),
                row["id"],
                key.prefix,
                key.digest,
            )
        return self._read(row)

    async def get(self, tenant_id: UUID) -> Tenant:
        row = await self._pool.fetchrow(f"SELECT {_TENANT_COLUMNS} FROM tenants WHERE id = $1", tenant_id)
        if row is None:
            raise TenantNotFound(tenant_id)
        return self._read(row)

    async def list(self, limit: int, offset: int) -> list[Tenant]:
        rows = await self._pool.fetch(
            f"SELECT {_TENANT_COLUMNS} FROM tenants ORDER BY created_at, id LIMIT $1 OFFSET $2", limit, offset
        )
        return [self._read(r) for r in rows]

    async def update(self, tenant_id: UUID, data: TenantUpdate) -> Tenant:
        current = await self.get(tenant_id)
        limits = current.rate_limits.model_copy(
            update=data.rate_limits.model_dump(exclude_none=True) if data.rate_limits else {}
        )
        row = await self._pool.fetchrow(
            f"UPDATE tenants SET name = $2, rate_per_minute = $3, rate_per_hour = $4, rate_per_day = $5,"
            f" max_sessions = $6, max_queued = coalesce($7, max_queued), updated_at = now()"
            f" WHERE id = $1 RETURNING {_TENANT_COLUMNS}",
            tenant_id,
            data.name or current.name,
            limits.per_minute,
            limits.per_hour,
            limits.per_day,
            data.max_sessions if data.max_sessions is not None else current.max_sessions,
            data.max_queued,
        )
        if row is None:
            raise TenantNotFound(tenant_id)
        return self._read(row)

    async def add_key(self, tenant_id: UUID, name: str, key: NewKey) -> ApiKey:
        await self.get(tenant_id)
        row = await self._pool.fetchrow(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)"
            f" RETURNING {_KEY_COLUMNS}",
            uuid4(),
            tenant_id,
            name,
            key.prefix,
            key.digest,
        )
        assert row is not None
        return ApiKey(**dict(row))

    async def delete(self, tenant_id: UUID) -> None:
        """Delete the tenant; its keys, sessions and messages go with it (ON DELETE CASCADE)."""
        deleted = await self._pool.fetchval("DELETE FROM tenants WHERE id = $1 RETURNING id", tenant_id)
        if deleted is None:
            raise TenantNotFound(tenant_id)

    async def session_ids(self, tenant_id: UUID) -> "builtins.list[UUID]":
        rows = await self._pool.fetch("SELECT id FROM sessions WHERE tenant_id = $1", tenant_id)
        return [r["id"] for r in rows]

    async def list_keys(self, tenant_id: UUID) -> "builtins.list[ApiKey]":
        await self.get(tenant_id)
        rows = await self._pool.fetch(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id",
            tenant_id,
        )
        return [ApiKey(**dict(r)) for r in rows]

    async def revoke_key(self, tenant_id: UUID, key_id: UUID) -> None:
        """Revoke a key (idempotent); it stays listed with its `revoked_at`."""
        revoked = await self._pool.fetchval(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
            " WHERE id = $1 AND tenant_id = $2 RETURNING id",
            key_id,
            tenant_id,
        )
        if revoked is None:
            raise ApiKeyNotFound(tenant_id, key_id)
