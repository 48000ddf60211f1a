"""Simulator routes: a simulated contact acting on a session, for client developers without a phone."""

from typing import Annotated
from uuid import UUID

from litestar import Controller, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter
from pydantic import ValidationError

from zaphub_api.auth import provide_tenant_id
from zaphub_api.domain_errors import InvalidField
from zaphub_api.errors import problem_responses
from zaphub_api.schemas.simulator import SimulateAccepted, SimulateCreate
from zaphub_api.services.sessions import SessionService
from zaphub_api.store.sessions import SessionStore
from zaphub_contracts.host import Simulate

SESSION_ID = Annotated[UUID, Parameter(description="The session's id")]


class SimulatorController(Controller):
    path = "/api/v1/sessions"
    tags = ["Simulator"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @post(
        "/{session_id:uuid}/simulate",
        status_code=202,
        summary="A simulated contact acts on the session: sends a message, reacts, marks read, types",
        description="Simulator transport only: elsewhere 404 with type `.../problems/simulator-only`. "
        "The events that follow (`message.received`, `message.delivered`/`read`, `message.edited`, "
        "`message.revoked`, `poll.vote`, `chat.presence`) are those a real contact would cause. "
        "503 when no session-host holds the session, 409 when it cannot be acted on now.",
        responses=problem_responses(409, 503),
    )
    async def simulate(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        data: JSONBody[SimulateCreate],
        session_service: NamedDependency[SessionService],
        sessions: NamedDependency[SessionStore],
    ) -> SimulateAccepted:
        await sessions.get(tenant_id, session_id)  # another tenant's session: 404 before any check
        try:
            fields = data.model_dump(by_alias=False) | {
                "content": data.contract_content(),
                "history": data.contract_history(),
            }
            request = Simulate(tenant_id=tenant_id, session_id=session_id, **fields)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = "content" if error["loc"] and error["loc"][0] == "content" else "action"
            raise InvalidField(where, error["msg"]) from exc
        whatsapp_id = await session_service.simulate(request)
        return SimulateAccepted(session_id=str(session_id), action=data.action, whatsapp_id=whatsapp_id)
