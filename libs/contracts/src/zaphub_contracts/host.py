"""Request/reply between the dispatcher (or API) and the session-host that owns a session."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from zaphub_contracts.failures import FailureReason


class HostOk(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["ok"] = "ok"
    host_id: str
    whatsapp_id: str | None = None
    sent_at: datetime | None = None
    duplicate: bool = Field(default=False, description="The message had been handed over before")
    code: str | None = Field(default=None, description="Pairing code, for pair_code")


class HostError(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["error"] = "error"
    reason: FailureReason
    detail: str = ""


HostReply = Annotated[HostOk | HostError, Field(discriminator="status")]


class PairCodeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    phone: str


class SessionControl(BaseModel):
    """Body of the host ops that take no payload (logout, restart, stop)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
