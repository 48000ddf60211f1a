"""REST models of chats and their history."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from zaphub_api.schemas.messages import MessageRead

NEXT = "Cursor for `?after=` to the next page; null at the end"


class LastMessage(BaseModel):
    id: UUID | None = None
    direction: Literal["outbound", "inbound"] | None = None
    type: str | None = None
    preview: str | None = Field(default=None, description="Text, caption or `[type]`, cut at 100 characters")
    at: datetime


class ChatRead(BaseModel):
    chat: str = Field(description="The chat's JID")
    name: str | None = Field(default=None, description="The contact's push name, when known")
    is_group: bool
    last_message: LastMessage
    unread_count: int = Field(description="Received since the chat was last read or answered")
    updated_at: datetime


class ChatPage(BaseModel):
    items: list[ChatRead]
    next: str | None = Field(
        default=None, description="Cursor for `?after=` to the next page; null at the end"
    )


class ChatMessagePage(BaseModel):
    items: list[MessageRead]
    next: str | None = Field(
        default=None, description="Cursor for `?after=` to the next page; null at the end"
    )


class MarkReadCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"up_to": "3EB0C431C26A1916B4F1"}]}
    )

    up_to: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="WhatsApp id of the last message to mark read; every received one when left out",
    )


class ChatReadMark(BaseModel):
    chat: str
    unread_count: int = 0
    marked: list[str] = Field(default_factory=list, description="WhatsApp ids of the messages marked read")
