"""Edits and revokes of sent messages. Each is a new command of the session's ordered send stream (its
own ZapHub id and seq; content `EditContent` or `RevokeContent` naming the target's WhatsApp id), so
the lane, order gate and rate limits apply as to any send. Only a message already handed over can be
edited or revoked: its WhatsApp id is known then, and nothing can overtake it. The projector applies
the resulting `message.edited`/`message.revoked` to the target."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from zaphub_api.accepts import AcceptQueue
from zaphub_api.domain_errors import Conflict, InvalidField
from zaphub_api.schemas.messages import MessageEdit
from zaphub_api.store.messages import Accepted, MessageStore, NewMessage
from zaphub_contracts.content import EditContent, RevokeContent
from zaphub_contracts.statuses import MessageStatus

CAPTIONED = ("image", "video", "document")
ACTIONS = ("edit", "revoke")


@dataclass(frozen=True, slots=True)
class Target:
    session_id: UUID
    chat: str
    type: str
    whatsapp_id: str
    sent_at: datetime | None


class MessageActions:
    def __init__(self, messages: MessageStore, accepts: AcceptQueue) -> None:
        self._messages = messages
        self._accepts = accepts

    async def _target(self, tenant_id: UUID, message_id: UUID, verb: str) -> Target:
        row, history = await self._messages.get(tenant_id, message_id)
        if row["direction"] != "outbound" or row["type"] in ACTIONS:
            raise Conflict(f"Only messages sent through ZapHub can be {verb}")
        if row["status"] == MessageStatus.FAILED:
            raise Conflict(f"Message {message_id} failed and was never sent, so it cannot be {verb}")
        if row["revoked_at"] is not None:
            raise Conflict(f"Message {message_id} was deleted for everyone")
        if row["whatsapp_id"] is None:
            # Its WhatsApp id is WhatsApp's to choose (neonize): known once it was handed over.
            raise Conflict(f"Message {message_id} is not sent yet; retry once its status is sent")
        sent = next((h["at"] for h in history if h["status"] == MessageStatus.SENT), None)
        return Target(row["session_id"], row["chat"], row["type"], row["whatsapp_id"], sent)

    async def edit(self, tenant_id: UUID, message_id: UUID, edit: MessageEdit) -> Accepted:
        target = await self._target(tenant_id, message_id, "edited")
        if (edit.text is None) == (edit.caption is None):
            raise InvalidField("text", "give exactly one of text or caption")
        if edit.text is not None and target.type != "text":
            raise InvalidField("text", f"only text messages have a text; this is a {target.type} message")
        if edit.caption is not None and target.type not in CAPTIONED:
            raise InvalidField("caption", f"a {target.type} message has no caption")
        content = EditContent(
            message_id=target.whatsapp_id, text=edit.text, caption=edit.caption, sent_at=target.sent_at
        )
        return await self._accept(tenant_id, target, content)

    async def revoke(self, tenant_id: UUID, message_id: UUID) -> Accepted:
        target = await self._target(tenant_id, message_id, "deleted")
        return await self._accept(tenant_id, target, RevokeContent(message_id=target.whatsapp_id))

    async def _accept(
        self, tenant_id: UUID, target: Target, content: EditContent | RevokeContent
    ) -> Accepted:
        body = content.model_dump(mode="json", exclude_none=True)
        return await self._accepts.accept(NewMessage(tenant_id, target.session_id, target.chat, body))
