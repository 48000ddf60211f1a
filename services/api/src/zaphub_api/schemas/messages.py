"""REST models of messages: what a client sends, and a message with its status history."""

import re
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zaphub_contracts.content import MAX_TEXT_LENGTH
from zaphub_contracts.statuses import MessageStatus

_PHONE = re.compile(r"^\+?[1-9]\d{6,14}$")
_JID = re.compile(r"^[0-9]{5,20}(@s\.whatsapp\.net|@g\.us|@lid)$|^[0-9]{5,20}-[0-9]{5,12}@g\.us$")


def normalise_recipient(value: str) -> str:
    """E.164 number (with or without +, spaces, dashes or parentheses) or a WhatsApp JID, as a JID."""
    compact = re.sub(r"[\s().-]", "", value)
    if _JID.match(value):
        return value
    if _PHONE.match(compact):
        return compact.lstrip("+") + "@s.whatsapp.net"
    raise ValueError("must be an E.164 phone number such as +5511999998888, or a WhatsApp JID")


class TextMessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    to: str = Field(description="E.164 number or JID", examples=["+5511999998888"])
    text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)

    @field_validator("to")
    @classmethod
    def _recipient(cls, value: str) -> str:
        return normalise_recipient(value)


# A discriminated union on `type` as more message types arrive; text is the first.
MessageCreate = TextMessageCreate


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
