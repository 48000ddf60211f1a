"""REST models of presence, typing in a chat and read marks."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from zaphub_contracts.host import ChatPresenceState, PresenceState


class PresenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"state": "available"}]})

    state: PresenceState


class ChatPresenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"state": "composing"}]})

    state: ChatPresenceState


class PresenceAccepted(BaseModel):
    session_id: UUID
    chat: str | None = Field(default=None, description="The chat, for typing in a chat")
    state: str


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


class ChatRead(BaseModel):
    chat: str
    marked: list[str] = Field(description="WhatsApp ids of the messages marked read")
