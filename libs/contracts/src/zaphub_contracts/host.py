"""Request/reply between the dispatcher (or API) and the session-host that owns a session."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zaphub_contracts.commands import SendMessage
from zaphub_contracts.failures import FailureReason

MAX_RUN = 64  # send commands per `send` request


class HostOp(StrEnum):
    """The last token of `subjects.host(session_id, op)`; only the session's lease owner answers."""

    SEND = "send"  # SendRun
    LOGOUT = "logout"  # SessionControl
    RESTART = "restart"  # SessionControl
    STOP = "stop"  # SessionControl
    DELETE = "delete"  # SessionControl: stop, and delete the session's auth_data
    PAIR_CODE = "pair_code"  # PairCodeRequest
    FAULT = "fault"  # InjectFault, simulator transport only


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


class SendRun(BaseModel):
    """Body of the `send` host op: consecutive send commands of one session, handed to WhatsApp in turn.

    The host stops at the first command it cannot hand over, and starts none later than `seconds`
    after the first: a message goes out soon after its rate-limit token was granted. `traceparents`,
    when given, holds each command's W3C trace context (the request's headers carry the first one's),
    so every send stays one trace.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    commands: list[SendMessage] = Field(min_length=1, max_length=MAX_RUN)
    seconds: float = Field(default=1.0, gt=0, description="Start no hand-over later than this after the 1st")
    traceparents: list[str] = Field(default_factory=list, max_length=MAX_RUN)

    @model_validator(mode="after")
    def _one_traceparent_each(self) -> Self:
        if self.traceparents and len(self.traceparents) != len(self.commands):
            raise ValueError("traceparents: one per command, or none")
        return self


class SendRunReply(BaseModel):
    """One result per command from the first, in order, up to and including the first error. The
    commands without a result were not attempted: after an error, or once the run's time was up."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    results: list[HostReply] = Field(min_length=1, max_length=MAX_RUN)


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


class FaultKind(StrEnum):
    DROP = "drop"  # drop the connection; it reconnects with backoff
    BAN = "ban"  # temporary ban for `seconds`, then reconnect
    SLOW = "slow"  # every send waits `seconds` (0 turns it off)
    FAIL_SENDS = "fail_sends"  # the next `count` sends fail with a transient transport error
    CLEAR = "clear"  # remove every fault of the session
    INBOUND = "inbound"  # `count` messages from a contact arrive, 0.05 s apart, starting after `seconds`


class InjectFault(BaseModel):
    """Body of the `fault` host op: simulator fault injection for tests, demos and load tests."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    kind: FaultKind
    seconds: float = Field(default=0.0, ge=0.0)
    count: int = Field(default=0, ge=0)
