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
