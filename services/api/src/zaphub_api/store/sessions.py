"""Sessions in PostgreSQL: what tenants asked for, and the status the projector observed."""

from datetime import datetime
from uuid import UUID, uuid4

import asyncpg

from zaphub_api.domain_errors import SessionNotFound, SessionQuotaExceeded, TenantNotFound
from zaphub_contracts.statuses import SessionStatus

SESSION_COLUMNS = (
    "id, tenant_id, name, status, status_reason, jid, lid, push_name, host_id, qr, qr_expires_at,"
    " created_at, updated_at"
)


class SessionStore:
    def __init__(self, pool: asyncpg.Pool, default_max_sessions: int = 100) -> None:
        self._pool = pool
        self._default_max_sessions = default_max_sessions

    async def create(self, tenant_id: UUID, name: str) -> asyncpg.Record:
        """Store a new session within the tenant's `max_sessions`. The tenant's row stays locked from
        the count to the commit, so concurrent creates of one tenant are counted one after another (a
        NO KEY lock: the foreign-key checks of the tenant's sends do not wait for it)."""
        async with self._pool.acquire() as conn, conn.transaction():
            max_sessions = await conn.fetchval(
                "SELECT coalesce(max_sessions, $2) FROM tenants WHERE id = $1 FOR NO KEY UPDATE",
                tenant_id,
                self._default_max_sessions,
            )
            if max_sessions is None:
                raise TenantNotFound(tenant_id)
            held = await conn.fetchval("SELECT count(*) FROM sessions WHERE tenant_id = $1", tenant_id)
            if held >= max_sessions:
                raise SessionQuotaExceeded(max_sessions)
            row = await conn.fetchrow(
                f"INSERT INTO sessions (id, tenant_id, name, status) VALUES ($1, $2, $3, $4)"
                f" RETURNING {SESSION_COLUMNS}",
                uuid4(),
                tenant_id,
                name,
                SessionStatus.QUEUED.value,
            )
        assert row is not None
        return row

    async def get(self, tenant_id: UUID, session_id: UUID) -> asyncpg.Record:
        """The tenant's session; another tenant's id is indistinguishable from a missing one."""
        row = await self._pool.fetchrow(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 AND tenant_id = $2", session_id, tenant_id
        )
        if row is None:
            raise SessionNotFound(session_id)
        return row

    async def list(
        self, tenant_id: UUID, status: SessionStatus | None, limit: int, offset: int
    ) -> list[asyncpg.Record]:
        return list(
            await self._pool.fetch(
                f"SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = $1"
                " AND ($2::text IS NULL OR status = $2) ORDER BY created_at, id LIMIT $3 OFFSET $4",
                tenant_id,
                status.value if status else None,
                limit,
                offset,
            )
        )

    async def count_by_status(self, tenant_id: UUID | None) -> dict[str, int]:
        rows = await self._pool.fetch(
            "SELECT status, count(*) AS n FROM sessions WHERE ($1::uuid IS NULL OR tenant_id = $1)"
            " GROUP BY status",
            tenant_id,
        )
        return {r["status"]: r["n"] for r in rows}

    async def delete(self, tenant_id: UUID, session_id: UUID) -> None:
        deleted = await self._pool.fetchval(
            "DELETE FROM sessions WHERE id = $1 AND tenant_id = $2 RETURNING id", session_id, tenant_id
        )
        if deleted is None:
            raise SessionNotFound(session_id)

    async def qr(self, tenant_id: UUID, session_id: UUID) -> tuple[str | None, datetime | None, str]:
        row = await self.get(tenant_id, session_id)
        return row["qr"], row["qr_expires_at"], row["status"]
