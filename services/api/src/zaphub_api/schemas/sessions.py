"""REST models of sessions and of the capacity stats."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from zaphub_contracts.statuses import SessionStatus


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w .@+-]+$")


class SessionRead(BaseModel):
    id: UUID
    name: str
    status: SessionStatus
    status_reason: str | None = None
    jid: str | None = Field(default=None, description="Phone-number JID once paired")
    lid: str | None = None
    push_name: str | None = None
    host: str | None = Field(default=None, description="The session-host that holds the session now")
    created_at: datetime
    updated_at: datetime


class Capacity(BaseModel):
    active: int
    max: int
    available: int
    usage_percent: float


class SessionStats(BaseModel):
    """The seed's shape: capacity, sessions by status and the configured limits."""

    capacity: Capacity
    sessions_by_status: dict[str, int]
    limits: dict[str, int]
