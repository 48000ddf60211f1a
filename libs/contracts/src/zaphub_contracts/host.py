"""Request/reply between the dispatcher (or API) and the session-host that owns a session."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import MessageContent
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
    SIMULATE = "simulate"  # Simulate, simulator transport only
    GROUP = "group"  # GroupRequest -> GroupReply


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


class SimulateAction(StrEnum):
    """What a simulated contact does to a session (`simulate` host op)."""

    MESSAGE = "message"  # sends `content`
    REACTION = "reaction"  # reacts with `emoji` to `message_id` ("" removes the reaction)
    EDIT = "edit"  # edits its own message `message_id` to `text`
    REVOKE = "revoke"  # deletes its own message `message_id` for everyone
    POLL_VOTE = "poll_vote"  # votes `options` in the poll `message_id`
    TYPING = "typing"  # starts (`state` composing/recording) or stops (`paused`) typing
    RECEIPT = "receipt"  # marks `message_id`, which the session sent it, `delivered` or `read`
    HISTORY_SYNC = "history_sync"  # the phone syncs the chat with the contact: `history`, oldest first


class SimHistoryEntry(BaseModel):
    """One older message of the chat a `history_sync` brings: the contact's, or the account's own."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    from_me: bool = False
    content: MessageContent
    at: datetime | None = Field(default=None, description="When it was sent; spaced a minute apart if absent")


class Simulate(BaseModel):
    """Body of the `simulate` host op: a simulated contact `sender` acts on the session.

    `message_id` is a WhatsApp id (of a message the contact sent, or of one the session sent it).
    The reply is a `HostOk` whose `whatsapp_id` names the message the contact sent, if it sent one.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    action: SimulateAction
    sender: str = Field(description="The contact: E.164 number or JID")
    push_name: str | None = Field(default=None, max_length=256)
    content: MessageContent | None = None
    message_id: str | None = Field(default=None, max_length=128)
    emoji: str | None = Field(default=None, max_length=32)
    text: str | None = Field(default=None, max_length=65536)
    options: list[str] = Field(default_factory=list, max_length=32)
    state: Literal["composing", "recording", "paused"] = "composing"
    receipt: Literal["delivered", "read"] = "read"
    history: list[SimHistoryEntry] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _what_the_action_needs(self) -> Self:
        needs: dict[SimulateAction, tuple[str, ...]] = {
            SimulateAction.MESSAGE: ("content",),
            SimulateAction.REACTION: ("message_id", "emoji"),
            SimulateAction.EDIT: ("message_id", "text"),
            SimulateAction.REVOKE: ("message_id",),
            SimulateAction.POLL_VOTE: ("message_id", "options"),
            SimulateAction.RECEIPT: ("message_id",),
            SimulateAction.HISTORY_SYNC: ("history",),
        }
        missing = [f for f in needs.get(self.action, ()) if getattr(self, f) in (None, [])]
        if missing:
            raise ValueError(f"{self.action.value} needs {', '.join(missing)}")
        return self
