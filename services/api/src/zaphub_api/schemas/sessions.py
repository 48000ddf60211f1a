"""REST models of sessions and of the capacity stats."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zaphub_api.schemas.phones import normalise_phone
from zaphub_contracts.commands import SessionAction
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
    alerts: list[Literal["warning", "critical", "blocked"]] = Field(
        default_factory=list,
        description="Admin key only: the seed's thresholds the installation crossed (warning: usage over"
        " 80 %, critical: over 95 %, blocked: active at max)",
    )


class QrCode(BaseModel):
    qr: str | None = Field(description="The raw QR string; render it, or ask for image/png or image/svg+xml")
    expires_at: datetime | None
    status: SessionStatus


class PairCodeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(
        min_length=1, max_length=32, description="The number to pair, E.164", examples=["+5511999998888"]
    )

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normalise_phone(value)


class PairCode(BaseModel):
    session_id: UUID
    phone: str = Field(description="E.164 digits the code was made for")
    code: str = Field(description="Enter it on the phone: Linked devices → Link with phone number")


class SessionCommandAccepted(BaseModel):
    session_id: UUID
    action: SessionAction
    status: Literal["accepted"] = "accepted"
