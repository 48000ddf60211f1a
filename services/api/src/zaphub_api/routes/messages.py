"""Tenant routes: sending messages and reading their status."""

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import State, UploadFile
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Discriminator, OpenAPIMediaType, Operation, Reference, RequestBody, Schema
from litestar.params import HeaderParameter, JSONBody, MultipartBody, Parameter
from pydantic import TypeAdapter, ValidationError

from zaphub_api.auth import provide_tenant_id
from zaphub_api.domain_errors import InvalidField
from zaphub_api.errors import problem_responses
from zaphub_api.media import check_mime, check_size, decoded_size
from zaphub_api.routes.pagination import Limit, Offset
from zaphub_api.schemas.messages import (
    MESSAGE_MODELS,
    MediaMessageCreate,
    MessageAccepted,
    MessageCreate,
    MessageCreateBody,
    MessageEdit,
    MessageRead,
    StatusChange,
)
from zaphub_api.services.message_actions import MessageActions
from zaphub_api.services.messages import Sender, field_of
from zaphub_api.store.messages import Accepted, MessageStore
from zaphub_api.store.sessions import SessionStore
from zaphub_contracts.statuses import MessageStatus

IDEMPOTENCY_KEY = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        max_length=200,
        description="Repeat a request safely: a repeat returns the first result and sends nothing",
    ),
]


SESSION_ID = Annotated[UUID, Parameter(description="The session's id")]
CREATE: TypeAdapter[MessageCreate] = TypeAdapter(MessageCreate)
UPLOAD_LIMIT = 64 * 1024 * 1024  # Litestar's cap of the upload route; the auth middleware's, from
# `media_max_bytes` plus a margin, is the real one, counted as the body streams in


@dataclass
class SendOperation(Operation):
    """Documents the send body as what it is, a union on `type` (Litestar shows the wrapper's `root`)."""

    def __post_init__(self) -> None:
        refs = {tag: f"#/components/schemas/{model.__name__}" for tag, model in MESSAGE_MODELS.items()}
        union = Schema(
            one_of=[Reference(ref) for ref in refs.values()],
            discriminator=Discriminator(property_name="type", mapping=refs),
        )
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=union)}, required=True
        )


@dataclass
class MediaUpload:
    """A media message with its file as a multipart upload."""

    to: str
    type: Literal["image", "video", "audio", "document", "sticker"]
    file: UploadFile
    caption: str | None = None
    filename: str | None = None
    voice: bool = False
    reply_to: str | None = None


def _accepted(accepted: Accepted) -> Response[MessageAccepted]:
    """202 with the queued message; an Idempotency-Key repeat says so in a header."""
    body = MessageAccepted(
        id=accepted.id,
        status=accepted.status,
        session_id=accepted.session_id,
        created_at=accepted.created_at,
    )
    headers = {"Idempotent-Replayed": "true"} if accepted.replayed else {}
    return Response(body, status_code=202, headers=headers)


def provide_sender(tenant_id: NamedDependency[UUID], state: State) -> Sender:
    c = state.collaborators
    return Sender(
        tenant_id,
        c.accepts,
        c.sessions,
        c.outbox.max_content_bytes,
        c.settings.media_max_bytes,
        c.settings.egress_allow,
    )


class MessageController(Controller):
    path = "/api/v1"
    tags = ["messages"]
    dependencies = {
        "tenant_id": Provide(provide_tenant_id),
        "sender": Provide(provide_sender, sync_to_thread=False),
    }

    @post(
        "/sessions/{session_id:uuid}/messages",
        status_code=202,
        summary="Queue a message for sending; its status moves queued → sent → delivered → read",
        description="Text, image, video, audio (or voice note), document, sticker, location, contact or "
        "reaction, chosen by `type`. Media by `url` or inline `data_base64`; 413 over the size cap, 415 for "
        "a MIME type the message type does not allow.",
        responses=problem_responses(409, 413, 415, 503),
        operation_class=SendOperation,
    )
    async def send(
        self,
        sender: NamedDependency[Sender],
        session_id: SESSION_ID,
        data: JSONBody[MessageCreateBody],
        idempotency_key: IDEMPOTENCY_KEY = None,
    ) -> Response[MessageAccepted]:
        message = data.root
        if isinstance(message, MediaMessageCreate):
            check_mime(message.type, message.mimetype)
            if message.data_base64 is not None:
                check_size(decoded_size(message.data_base64), sender.media_max_bytes, "data_base64")
            if message.url is not None:
                await sender.check_media_url(message.url)
        return _accepted(await sender.accept(session_id, message, idempotency_key))

    @post(
        "/sessions/{session_id:uuid}/messages/upload",
        status_code=202,
        summary="Queue a media message whose file comes as a multipart upload (field `file`)",
        responses=problem_responses(409, 413, 415, 503),
        request_max_body_size=UPLOAD_LIMIT,
    )
    async def upload(
        self,
        sender: NamedDependency[Sender],
        session_id: SESSION_ID,
        data: MultipartBody[MediaUpload],
        idempotency_key: IDEMPOTENCY_KEY = None,
    ) -> Response[MessageAccepted]:
        # Another tenant's session is 404 whatever the form says.
        await sender.sessions.get(sender.tenant_id, session_id)
        mimetype = data.file.content_type or "application/octet-stream"
        check_mime(data.type, mimetype, field="file")
        raw = await data.file.read(sender.media_max_bytes + 1)
        check_size(len(raw), sender.media_max_bytes, "file")
        fields: dict[str, Any] = {
            "to": data.to,
            "type": data.type,
            "data_base64": base64.b64encode(raw).decode(),
            "mimetype": mimetype,
            "reply_to": data.reply_to,
        }
        if data.type in ("image", "video", "document") and data.caption:
            fields["caption"] = data.caption
        if data.type == "document":
            fields["filename"] = data.filename or data.file.filename
        if data.type == "audio":
            fields["voice"] = data.voice
        try:
            message = CREATE.validate_python(fields)
        except ValidationError as exc:
            raise InvalidField(*field_of(exc)) from exc
        return _accepted(await sender.accept(session_id, message, idempotency_key))

    @get(
        "/sessions/{session_id:uuid}/messages",
        summary="Messages of a session, newest first",
        responses=problem_responses(),
    )
    async def list_messages(
        self,
        tenant_id: NamedDependency[UUID],
        session_id: SESSION_ID,
        messages: NamedDependency[MessageStore],
        sessions: NamedDependency[SessionStore],
        limit: Limit = 50,
        offset: Offset = 0,
        direction: Annotated[
            Literal["outbound", "inbound"] | None, Parameter(description="Only sent or only received")
        ] = None,
        status: Annotated[MessageStatus | None, Parameter(description="Only messages in this status")] = None,
        since: Annotated[
            datetime | None, Parameter(description="Only messages created at or after this time (RFC 3339)")
        ] = None,
    ) -> list[MessageRead]:
        await sessions.get(tenant_id, session_id)
        rows = await messages.list_for_session(
            tenant_id, session_id, limit, offset, direction=direction, status=status, since=since
        )
        return [to_read(row, []) for row in rows]

    @get(
        "/messages/{message_id:uuid}",
        summary="A message with its status history",
        responses=problem_responses(),
    )
    async def get_message(
        self,
        tenant_id: NamedDependency[UUID],
        message_id: Annotated[UUID, Parameter(description="The message's id")],
        messages: NamedDependency[MessageStore],
    ) -> MessageRead:
        return to_read(*await messages.get(tenant_id, message_id))

    @patch(
        "/messages/{message_id:uuid}",
        status_code=202,
        summary="Edit a sent message's text or caption, in the session's order",
        description="Queued like a send (own id, rate limited, never overtaking the message it edits); "
        "the answer is that edit's id. Outside WhatsApp's edit window (15 minutes) the edit fails with "
        "reason `edit_window_expired`. `GET /messages/{id}` of the edited message then shows the new "
        "content, `edited_at` and an `edited` entry in its history.",
        responses=problem_responses(409, 503),
    )
    async def edit_message(
        self,
        tenant_id: NamedDependency[UUID],
        message_id: Annotated[UUID, Parameter(description="The message to edit")],
        data: JSONBody[MessageEdit],
        message_actions: NamedDependency[MessageActions],
    ) -> Response[MessageAccepted]:
        return _accepted(await message_actions.edit(tenant_id, message_id, data))

    @delete(
        "/messages/{message_id:uuid}",
        status_code=202,
        summary="Delete a sent message for everyone (revoke), in the session's order",
        description="Queued like a send; the answer is the revoke's id. The message's history then "
        "records `revoked` and `revoked_at` is set.",
        responses=problem_responses(409, 503),
    )
    async def revoke_message(
        self,
        tenant_id: NamedDependency[UUID],
        message_id: Annotated[UUID, Parameter(description="The message to delete for everyone")],
        message_actions: NamedDependency[MessageActions],
    ) -> Response[MessageAccepted]:
        return _accepted(await message_actions.revoke(tenant_id, message_id))


def tallies(content: dict[str, Any]) -> dict[str, int]:
    """A poll's votes per option, from each voter's current selection (`votes`, kept by the projector)."""
    counts = dict.fromkeys(content.get("options", []), 0)
    for selected in content.get("votes", {}).values():
        for option in selected:
            if option in counts:
                counts[option] += 1
    return counts


def to_read(row: asyncpg.Record, history: list[asyncpg.Record]) -> MessageRead:
    content = json.loads(row["content"])
    return MessageRead(
        id=row["id"],
        session_id=row["session_id"],
        direction=row["direction"],
        status=MessageStatus(row["status"]),
        chat=row["chat"],
        sender=row["sender"],
        sender_lid=row["sender_lid"],
        push_name=row["push_name"],
        participant=row["participant"],
        participant_lid=row["participant_lid"],
        imported=row["imported"],
        type=row["type"],
        content=content,
        tallies=tallies(content) if row["type"] == "poll" else None,
        whatsapp_id=row["whatsapp_id"],
        failure_reason=row["failure_reason"],
        failure_detail=row["failure_detail"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        edited_at=row["edited_at"],
        revoked_at=row["revoked_at"],
        history=[
            StatusChange(status=MessageStatus(h["status"]), at=h["at"], detail=json.loads(h["detail"]))
            for h in history
        ],
    )
