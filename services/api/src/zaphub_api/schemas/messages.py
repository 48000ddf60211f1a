"""REST models of messages: what a client sends, and a message with its status history."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zaphub_api.schemas.phones import normalise_recipient
from zaphub_contracts.content import MAX_TEXT_LENGTH, ContentBase, TextContent
from zaphub_contracts.statuses import MessageStatus


class MessageCreateBase(BaseModel):
    """What every message type shares; a type adds its fields and says how they become content."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(description="E.164 number or JID", examples=["+5511999998888"])

    @field_validator("to")
    @classmethod
    def _recipient(cls, value: str) -> str:
        return normalise_recipient(value)

    def content(self) -> ContentBase:
        raise NotImplementedError


class TextMessageCreate(MessageCreateBase):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    reply_to: str | None = Field(default=None, max_length=128, description="WhatsApp id of a quoted message")

    def content(self) -> TextContent:
        return TextContent(text=self.text, reply_to=self.reply_to)


# One member per type the session-host can send (contracts `MessageContent`); a new type is one model
# here plus one member in this union.
MessageCreate = Annotated[TextMessageCreate, Field(discriminator="type")]


class MessageAccepted(BaseModel):
    id: UUID
    status: MessageStatus
    session_id: UUID
    created_at: datetime


class StatusChange(BaseModel):
    status: MessageStatus
    at: datetime
    detail: dict[str, Any] = Field(default_factory=dict)


class MessageRead(BaseModel):
    id: UUID
    session_id: UUID
    direction: Literal["outbound", "inbound"]
    status: MessageStatus
    chat: str
    sender: str | None = None
    type: str
    content: dict[str, Any]
    whatsapp_id: str | None = None
    failure_reason: str | None = None
    failure_detail: str | None = None
    created_at: datetime
    updated_at: datetime
    history: list[StatusChange]
