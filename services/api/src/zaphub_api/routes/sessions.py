"""Tenant routes: sessions, their QR codes and the capacity stats."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Controller, delete, get, post
from litestar.di import Provide
from litestar.params import Parameter
from pydantic import BaseModel

from zaphub_api.auth import provide_tenant_id
from zaphub_api.errors import NotFound
from zaphub_api.placement import Placement
from zaphub_api.schemas.sessions import Capacity, SessionCreate, SessionRead, SessionStats
from zaphub_api.session_commands import SessionCommands
from zaphub_api.settings import ApiSettings
from zaphub_api.store.sessions import SessionStore
from zaphub_api.store.tenants import TenantStore
from zaphub_contracts.commands import SessionAction
from zaphub_contracts.statuses import SessionStatus

STATS_STATUSES = ("connected", "qr_pending", "disconnected", "failed", "connecting", "logged_out", "queued")


def to_read(row: asyncpg.Record, host: str | None) -> SessionRead:
    return SessionRead(
        id=row["id"],
        name=row["name"],
        status=SessionStatus(row["status"]),
        status_reason=row["status_reason"],
        jid=row["jid"],
        lid=row["lid"],
        push_name=row["push_name"],
        host=host,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class QrCode(BaseModel):
    qr: str | None
    expires_at: datetime | None
    status: SessionStatus


class SessionController(Controller):
    path = "/api/v1/sessions"
    tags = ["sessions"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @post("/", summary="Create a session; it starts on a session-host and shows a QR code")
    async def create(
        self, tenant_id: UUID, data: SessionCreate, sessions: SessionStore, commands: SessionCommands
    ) -> SessionRead:
        row = await sessions.create(tenant_id, data.name)
        try:
            await commands.publish(SessionAction.START, tenant_id, row["id"], name=data.name)
        except Exception:
            await sessions.delete(tenant_id, row["id"])  # nothing half-written
            raise
        return to_read(row, None)

    @get("/", summary="List the tenant's sessions")
    async def list_sessions(
        self,
        tenant_id: UUID,
        sessions: SessionStore,
        status: SessionStatus | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> list[SessionRead]:
        rows = await sessions.list(tenant_id, status, limit, offset)
        return [to_read(r, r["host_id"]) for r in rows]

    @get("/stats", summary="Capacity, sessions by status and limits (the seed's shape)")
    async def stats(
        self, tenant_id: UUID, sessions: SessionStore, tenants: TenantStore, settings: ApiSettings
    ) -> SessionStats:
        tenant = await tenants.get(tenant_id)
        by_status = {s: 0 for s in STATS_STATUSES} | await sessions.count_by_status(tenant_id)
        active = by_status.get("connected", 0)
        limits = tenant.rate_limits
        return SessionStats(
            capacity=_capacity(active, tenant.max_sessions),
            sessions_by_status=by_status,
            limits={
                "max_sessions": tenant.max_sessions,
                "rate_per_minute": limits.per_minute,
                "rate_per_hour": limits.per_hour,
                "rate_per_day": limits.per_day,
                "db_pool_max": settings.db_pool_max,
            },
        )

    @get("/{session_id:uuid}", summary="Get a session, its status and the host that holds it")
    async def get_session(
        self, tenant_id: UUID, session_id: UUID, sessions: SessionStore, placement: Placement
    ) -> SessionRead:
        row = await sessions.get(tenant_id, session_id)
        return to_read(row, await placement.host_of(session_id))

    @get("/{session_id:uuid}/qr", summary="The current QR code to scan, as JSON")
    async def qr(self, tenant_id: UUID, session_id: UUID, sessions: SessionStore) -> QrCode:
        qr, expires_at, status = await sessions.qr(tenant_id, session_id)
        if qr is None:
            raise NotFound(f"Session {session_id} shows no QR code now (status {status})")
        return QrCode(qr=qr, expires_at=expires_at, status=SessionStatus(status))

    @delete("/{session_id:uuid}", summary="Delete a session: it stops and its auth_data is deleted")
    async def delete_session(
        self, tenant_id: UUID, session_id: UUID, sessions: SessionStore, commands: SessionCommands
    ) -> None:
        await sessions.get(tenant_id, session_id)
        await commands.publish(SessionAction.DELETE, tenant_id, session_id)
        await sessions.delete(tenant_id, session_id)


def _capacity(active: int, maximum: int) -> Capacity:
    usage = round(100.0 * active / maximum, 2) if maximum else 0.0
    return Capacity(active=active, max=maximum, available=max(maximum - active, 0), usage_percent=usage)
