"""Tenant routes: sessions, their QR codes, pairing by phone number, control commands and the stats."""

import asyncio
import io
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import segno
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, Schema
from litestar.params import JSONBody, Parameter

from zaphub_api.auth import Principal, provide_tenant_id
from zaphub_api.errors import problem_responses
from zaphub_api.placement import Placement
from zaphub_api.routes.pagination import Limit, Offset
from zaphub_api.schemas.sessions import (
    PairCode,
    PairCodeCreate,
    QrCode,
    SessionCommandAccepted,
    SessionCreate,
    SessionRead,
    SessionStats,
)
from zaphub_api.services.sessions import SessionService
from zaphub_api.services.stats import StatsService
from zaphub_api.store.sessions import SessionStore
from zaphub_contracts.commands import SessionAction
from zaphub_contracts.statuses import SessionStatus

SESSION_ID = Annotated[UUID, Parameter(description="The session's id")]
QR_TYPES = ["application/json", "image/png", "image/svg+xml"]


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


@dataclass
class QrOperation(Operation):
    """The QR route's 200 also comes as an image, chosen by `Accept`."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        content = getattr(ok, "content", None)
        if content is not None:
            for media_type in QR_TYPES[1:]:
                content[media_type] = OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
                )


def render_qr(qr: str, media_type: str) -> bytes:
    code = segno.make(qr, error="l")
    out = io.BytesIO()
    code.save(out, kind="png" if media_type == "image/png" else "svg", scale=8, border=4)
    return out.getvalue()


class SessionController(Controller):
    path = "/api/v1/sessions"
    tags = ["sessions"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @post(
        "/",
        summary="Create a session; it starts on a session-host and shows a QR code",
        responses=problem_responses(503),
    )
    async def create(
        self,
        tenant_id: NamedDependency[UUID],
        data: JSONBody[SessionCreate],
        session_service: NamedDependency[SessionService],
    ) -> SessionRead:
        return to_read(await session_service.create(tenant_id, data.name), None)

    @get("/", summary="List the tenant's sessions", responses=problem_responses())
    async def list_sessions(
        self,
        tenant_id: NamedDependency[UUID],
        sessions: NamedDependency[SessionStore],
        status: Annotated[SessionStatus | None, Parameter(description="Only sessions in this status")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[SessionRead]:
        rows = await sessions.list(tenant_id, status, limit, offset)
        return [to_read(r, r["host_id"]) for r in rows]

    @get(
        "/stats",
        summary="Capacity, sessions by status and limits (the seed's shape); the installation's with the "
        "admin key",
        responses=problem_responses(),
    )
    async def stats(
        self,
        principal: NamedDependency[Principal],
        stats_service: NamedDependency[StatsService],
    ) -> SessionStats:
        if principal.tenant_id is None:
            return await stats_service.installation()
        return await stats_service.tenant(principal.tenant_id)

    @get(
        "/{session_id:uuid}",
        summary="Get a session, its status and the host that holds it",
        responses=problem_responses(),
    )
    async def get_session(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        sessions: NamedDependency[SessionStore],
        placement: NamedDependency[Placement],
    ) -> SessionRead:
        row = await sessions.get(tenant_id, session_id)
        return to_read(row, await placement.host_of(session_id))

    @get(
        "/{session_id:uuid}/qr",
        summary="The current QR code to scan",
        description="JSON with the raw QR string by default; `Accept: image/png` or `image/svg+xml` "
        "returns the rendered image. 404 while the session shows no QR code.",
        responses=problem_responses(),
        operation_class=QrOperation,
    )
    async def qr(
        self,
        request: Request[Any, Any, Any],
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        session_service: NamedDependency[SessionService],
    ) -> Response[QrCode]:
        qr, expires_at, status = await session_service.qr(tenant_id, session_id)
        media_type = request.accept.best_match(QR_TYPES, default="application/json")
        if media_type == "application/json":
            return Response(QrCode(qr=qr, expires_at=expires_at, status=status))
        image = await asyncio.to_thread(render_qr, qr, media_type)
        return Response(image, media_type=media_type, headers={"Cache-Control": "no-store"})  # type: ignore[arg-type]

    @post(
        "/{session_id:uuid}/pair-code",
        status_code=200,
        summary="Pair by phone number instead of QR: returns the code to enter on the phone",
        description="409 when the session is already paired or cannot pair; 503 when no session-host "
        "holds the session yet (retry shortly).",
        responses=problem_responses(409, 503),
    )
    async def pair_code(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        data: JSONBody[PairCodeCreate],
        session_service: NamedDependency[SessionService],
    ) -> PairCode:
        code = await session_service.pair_code(tenant_id, session_id, data.phone)
        return PairCode(session_id=session_id, phone=data.phone, code=code)

    @post(
        "/{session_id:uuid}/restart",
        status_code=202,
        summary="Restart the session's connection (keeps its pairing)",
        responses=problem_responses(503),
    )
    async def restart(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        session_service: NamedDependency[SessionService],
    ) -> SessionCommandAccepted:
        return await _command(session_service, SessionAction.RESTART, tenant_id, session_id)

    @post(
        "/{session_id:uuid}/logout",
        status_code=202,
        summary="Log the session out of WhatsApp (unpairs the device); it then shows a new QR code",
        responses=problem_responses(503),
    )
    async def logout(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        session_service: NamedDependency[SessionService],
    ) -> SessionCommandAccepted:
        return await _command(session_service, SessionAction.LOGOUT, tenant_id, session_id)

    @delete(
        "/{session_id:uuid}",
        summary="Delete a session: it stops and its auth_data is deleted",
        responses=problem_responses(503),
    )
    async def delete_session(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        session_service: NamedDependency[SessionService],
    ) -> None:
        await session_service.delete(tenant_id, session_id)


async def _command(
    service: SessionService, action: SessionAction, tenant_id: UUID, session_id: UUID
) -> SessionCommandAccepted:
    await service.command(action, tenant_id, session_id)
    return SessionCommandAccepted(session_id=session_id, action=action)
