"""Chat routes: a session's chats, newest activity first, and each chat's history, both by keyset."""

from typing import Annotated
from uuid import UUID

import asyncpg
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import Body, Parameter

from zaphub_api.auth import provide_tenant_id
from zaphub_api.domain_errors import InvalidField
from zaphub_api.errors import problem_responses
from zaphub_api.routes.messages import to_read as message_read
from zaphub_api.schemas.chats import (
    ChatMessagePage,
    ChatPage,
    ChatRead,
    ChatReadMark,
    LastMessage,
    MarkReadCreate,
)
from zaphub_api.schemas.phones import normalise_recipient
from zaphub_api.services.presence import PresenceService
from zaphub_api.store.chats import ChatStore, Cursor
from zaphub_api.store.sessions import SessionStore

SESSION_ID = Annotated[UUID, Parameter(description="The session's id")]
CHAT = Annotated[str, Parameter(description="E.164 number (+5511…) or JID of the chat")]
AFTER = Annotated[str | None, Parameter(description="The `next` cursor of the previous page")]
LIMIT = Annotated[int, Parameter(ge=1, le=200, description="Page size")]


def chat_jid(value: str) -> str:
    try:
        return normalise_recipient(value)
    except ValueError as exc:
        raise InvalidField("chat", str(exc)) from None


def to_chat(row: asyncpg.Record) -> ChatRead:
    return ChatRead(
        chat=row["chat"],
        name=row["name"],
        is_group=row["is_group"],
        last_message=LastMessage(
            id=row["last_message_id"],
            direction=row["last_direction"],
            type=row["last_type"],
            preview=row["last_preview"],
            at=row["last_at"],
        ),
        unread_count=row["unread_count"],
        updated_at=row["updated_at"],
    )


class ChatController(Controller):
    path = "/api/v1/sessions/{session_id:uuid}/chats"
    tags = ["chats"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @get("/", summary="The session's chats, newest activity first", responses=problem_responses())
    async def list_chats(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        sessions: NamedDependency[SessionStore],
        chats: NamedDependency[ChatStore],
        after: AFTER = None,
        limit: LIMIT = 50,
    ) -> ChatPage:
        await sessions.get(tenant_id, session_id)
        rows = await chats.recent(tenant_id, session_id, limit, Cursor.decode(after))
        last = rows[-1] if len(rows) == limit else None
        return ChatPage(
            items=[to_chat(r) for r in rows],
            next=Cursor(last["last_at"], last["chat"]).encode() if last else None,
        )

    @get(
        "/{chat:str}/messages",
        summary="A chat's messages, both directions, newest first",
        responses=problem_responses(),
    )
    async def chat_messages(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        chat: CHAT,
        sessions: NamedDependency[SessionStore],
        chats: NamedDependency[ChatStore],
        after: AFTER = None,
        limit: LIMIT = 50,
    ) -> ChatMessagePage:
        await sessions.get(tenant_id, session_id)
        rows = await chats.history(tenant_id, session_id, chat_jid(chat), limit, Cursor.decode(after))
        last = rows[-1] if len(rows) == limit else None
        return ChatMessagePage(
            items=[message_read(r, []) for r in rows],
            next=Cursor(last["created_at"], str(last["id"])).encode() if last else None,
        )

    @post(
        "/{chat:str}/read",
        status_code=200,
        summary="Mark the chat read: read receipts up to `up_to` (or all) sent, its unread count back to 0",
        description=(
            "Sends WhatsApp read receipts through the session's host, then resets the chat's unread count;"
            " answers the WhatsApp ids marked. The session must be connected (409 otherwise)."
        ),
        responses=problem_responses(409, 503),
    )
    async def mark_read(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        chat: CHAT,
        presence_service: NamedDependency[PresenceService],
        data: Annotated[MarkReadCreate | None, Body()] = None,
    ) -> ChatReadMark:
        up_to = data.up_to if data is not None else None
        jid, marked = await presence_service.mark_read(tenant_id, session_id, chat, up_to)
        return ChatReadMark(chat=jid, marked=marked)
