"""Tenant routes: sending messages and reading their status."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.params import Parameter

from zaphub_api.auth import provide_tenant_id
from zaphub_api.errors import problem_responses
from zaphub_api.outbox import Outbox
from zaphub_api.schemas.messages import MessageAccepted, MessageCreate, MessageRead
from zaphub_api.store.messages import MessageStore
from zaphub_api.store.sessions import SessionStore
from zaphub_contracts.statuses import MessageStatus

IDEMPOTENCY_KEY = Annotated[
    str | None,
    Parameter(
        header="Idempotency-Key",
        required=False,
        max_length=200,
        description="Repeat a request safely: a repeat returns the first result and sends nothing",
    ),
]


class MessageController(Controller):
    path = "/api/v1"
    tags = ["messages"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @post(
        "/sessions/{session_id:uuid}/messages",
        status_code=202,
        summary="Queue a message for sending; its status moves queued → sent → delivered → read",
        responses=problem_responses(409, 413, 415),
    )
    async def send(
        self,
        tenant_id: UUID,
        session_id: Annotated[UUID, Parameter(description="The session's id")],
        data: MessageCreate,
        messages: MessageStore,
        outbox: Outbox,
        idempotency_key: IDEMPOTENCY_KEY = None,
    ) -> Response[MessageAccepted]:
        content = data.content().model_dump(mode="json")
        accepted = await messages.accept(tenant_id, session_id, data.to, content, idempotency_key)
        if not accepted.replayed:
            await outbox.publish_send(tenant_id, accepted)
        body = MessageAccepted(
            id=accepted.id,
            status=accepted.status,
            session_id=accepted.session_id,
            created_at=accepted.created_at,
        )
        headers = {"Idempotent-Replayed": "true"} if accepted.replayed else {}
        return Response(body, status_code=202, headers=headers)

    @get(
        "/sessions/{session_id:uuid}/messages",
        summary="Messages of a session, newest first",
        responses=problem_responses(),
    )
    async def list_messages(
        self,
        tenant_id: UUID,
        session_id: Annotated[UUID, Parameter(description="The session's id")],
        messages: MessageStore,
        sessions: SessionStore,
        limit: Annotated[int, Parameter(ge=1, le=500, description="Page size")] = 50,
        offset: Annotated[int, Parameter(ge=0, description="Items to skip")] = 0,
        direction: Annotated[
            Literal["outbound", "inbound"] | None, Parameter(description="Only sent or only received")
        ] = None,
        status: Annotated[MessageStatus | None, Parameter(description="Only messages in this status")] = None,
        since: Annotated[
            datetime | None, Parameter(description="Only messages created at or after this time (RFC 3339)")
        ] = None,
    ) -> list[MessageRead]:
        await sessions.get(tenant_id, session_id)
        return await messages.list_for_session(
            tenant_id, session_id, limit, offset, direction=direction, status=status, since=since
        )

    @get(
        "/messages/{message_id:uuid}",
        summary="A message with its status history",
        responses=problem_responses(),
    )
    async def get_message(
        self,
        tenant_id: UUID,
        message_id: Annotated[UUID, Parameter(description="The message's id")],
        messages: MessageStore,
    ) -> MessageRead:
        return await messages.get(tenant_id, message_id)
