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
    CONTACTS_CHECK = "contacts_check"  # ContactsCheckRequest -> ContactsCheckReply
    CONTACTS_LIST = "contacts_list"  # SessionControl -> ContactsReply
    CONTACT_INFO = "contact_info"  # ContactRequest -> ContactReply
    BLOCKLIST = "blocklist"  # SessionControl -> BlocklistReply
    BLOCKLIST_UPDATE = "blocklist_update"  # BlocklistUpdate -> BlocklistReply
    PRESENCE = "presence"  # PresenceRequest -> HostOk
    CHAT_PRESENCE = "chat_presence"  # ChatPresenceRequest -> HostOk
    MARK_READ = "mark_read"  # MarkReadRequest -> MarkReadReply


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


# Host requests that read, or are ephemeral (contacts, blocklist, presence, read marks): one body and
# one reply model per op. They are answered by the session's lease owner like the ops above.

MAX_CHECK = 50  # numbers per contacts_check


class ContactsCheckRequest(BaseModel):
    """Body of `contacts_check`: which of these numbers (E.164 digits) have a WhatsApp account."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    numbers: list[str] = Field(min_length=1, max_length=MAX_CHECK)


class ContactCheck(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    number: str = Field(description="The number as asked, E.164 digits")
    on_whatsapp: bool
    jid: str | None = Field(default=None, description="Phone JID, when on WhatsApp")
    lid: str | None = Field(default=None, description="LID, when WhatsApp tells it")


class ContactsCheckReply(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["ok"] = "ok"
    host_id: str
    results: list[ContactCheck]


class ContactRequest(BaseModel):
    """Body of `contact_info`: one contact's profile."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    jid: str


class Contact(BaseModel):
    """A contact as the linked account sees it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    jid: str = Field(description="Phone JID")
    lid: str | None = None
    name: str | None = Field(default=None, description="The name in the address book, or the push name")
    push_name: str | None = None
    about: str | None = Field(default=None, description="The status text (only in `contact_info`)")
    business: bool = False
    business_name: str | None = None
    picture_url: str | None = Field(default=None, description="Profile picture URL (only in `contact_info`)")


class ContactReply(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["ok"] = "ok"
    host_id: str
    contact: Contact


class ContactsReply(BaseModel):
    """For `contacts_list`: the contacts the linked account knows."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["ok"] = "ok"
    host_id: str
    contacts: list[Contact]


class BlocklistChange(StrEnum):
    BLOCK = "block"
    UNBLOCK = "unblock"


class BlocklistUpdate(BaseModel):
    """Body of `blocklist_update`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    jid: str
    change: BlocklistChange


class BlocklistReply(BaseModel):
    """For `blocklist` and `blocklist_update`: the blocked JIDs, after the change."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["ok"] = "ok"
    host_id: str
    jids: list[str]


class PresenceState(StrEnum):
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"


class ChatPresenceState(StrEnum):
    COMPOSING = "composing"
    RECORDING = "recording"
    PAUSED = "paused"


class PresenceRequest(BaseModel):
    """Body of `presence`: the account shown online or offline to its contacts."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    state: PresenceState


class ChatPresenceRequest(BaseModel):
    """Body of `chat_presence`: typing or recording shown in one chat."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    chat: str
    state: ChatPresenceState


class MarkReadRequest(BaseModel):
    """Body of `mark_read`: the chat's received messages up to `up_to` (the latest when None) read."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    chat: str
    up_to: str | None = Field(default=None, max_length=128)


class MarkReadReply(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["ok"] = "ok"
    host_id: str
    marked: list[str] = Field(default_factory=list, description="WhatsApp ids of the messages marked read")
