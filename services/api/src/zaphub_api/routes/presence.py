"""Tenant routes of presence: the account shown available or unavailable, and typing or recording
shown in a chat (marking a chat read is in routes/chats.py). Best effort through the session's host: not
stored, not rate limited."""

from typing import Annotated
from uuid import UUID

from litestar import Controller, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from zaphub_api.auth import provide_tenant_id
from zaphub_api.errors import problem_responses
from zaphub_api.schemas.presence import ChatPresenceCreate, PresenceAccepted, PresenceCreate
from zaphub_api.services.presence import PresenceService

SESSION_ID = Annotated[UUID, Parameter(description="The session's id")]
CHAT = Annotated[str, Parameter(description="E.164 number or JID of the chat", max_length=64)]


class PresenceController(Controller):
    path = "/api/v1/sessions/{session_id:uuid}"
    tags = ["presence"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @post(
        "/presence",
        status_code=202,
        summary="Show the account available or unavailable to its contacts (best effort)",
        responses=problem_responses(409, 503),
    )
    async def presence(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        data: JSONBody[PresenceCreate],
        presence_service: NamedDependency[PresenceService],
    ) -> PresenceAccepted:
        await presence_service.presence(tenant_id, session_id, data.state)
        return PresenceAccepted(session_id=session_id, state=data.state)

    @post(
        "/chats/{chat:str}/presence",
        status_code=202,
        summary="Show composing, recording or paused in a chat (best effort)",
        responses=problem_responses(409, 503),
    )
    async def chat_presence(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        chat: CHAT,
        data: JSONBody[ChatPresenceCreate],
        presence_service: NamedDependency[PresenceService],
    ) -> PresenceAccepted:
        jid = await presence_service.chat_presence(tenant_id, session_id, chat, data.state)
        return PresenceAccepted(session_id=session_id, chat=jid, state=data.state)
