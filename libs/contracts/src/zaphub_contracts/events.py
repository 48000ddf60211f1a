"""Events on the `ZAPHUB_EVT` stream: CloudEvents 1.0 JSON envelopes, one class per event type.

The envelope's `type` is `io.zaphub.<short>.v1`; the short name (`message.sent`) is the last part of the
subject `zaphub.v1.evt.<tenant>.<session>.<short>`.
"""

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from zaphub_contracts.content import MessageContent
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.groups import Group, GroupSettings, ParticipantAction
from zaphub_contracts.ratelimit import WindowName

EVENT_NAMESPACE = UUID("6f1c8a52-0d7e-4a5b-9a8e-1d6c3f0b7a21")


class EventData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SessionQrData(EventData):
    qr: str = Field(description="Raw QR payload to render; scan it with WhatsApp > Linked devices")
    expires_at: datetime


class SessionPairCodeData(EventData):
    code: str
    phone: str


class SessionConnectedData(EventData):
    jid: str = Field(description="Phone-number JID of the linked account")
    lid: str | None = Field(default=None, description="Linked-identity JID, when WhatsApp gives one")
    push_name: str | None = None
    host_id: str


class SessionDisconnectedData(EventData):
    reason: str
    will_reconnect: bool = True


class SessionLoggedOutData(EventData):
    reason: str


class SessionFailedData(EventData):
    reason: FailureReason | str
    detail: str = ""


class MessageSentData(EventData):
    message_id: UUID
    whatsapp_id: str
    to: str
    sent_at: datetime


class MessageReceiptData(EventData):
    message_id: UUID | None = Field(
        default=None, description="ZapHub id, when the message was sent by ZapHub"
    )
    whatsapp_id: str
    chat: str
    at: datetime


class MessageFailedData(EventData):
    message_id: UUID
    reason: FailureReason
    detail: str = ""
    attempts: int = 0


class MessageRateLimitedData(EventData):
    message_id: UUID
    retry_after: float
    window: WindowName | None = None


class MessageReceivedData(EventData):
    message_id: UUID
    whatsapp_id: str
    chat: str
    sender: str = Field(description="Phone-number JID of the sender")
    sender_lid: str | None = None
    push_name: str | None = None
    is_group: bool = False
    participant: str | None = Field(default=None, description="In a group (`chat`): the sender's JID")
    participant_lid: str | None = None
    sent_at: datetime
    content: MessageContent


HISTORY_BATCH = 100  # messages per `history.imported` event, so one stays far below NATS's payload cap


class ImportedMessage(BaseModel):
    """One message of a chat's history as WhatsApp's history sync gave it, in either direction."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: UUID
    whatsapp_id: str
    direction: Literal["inbound", "outbound"]
    sender: str = Field(description="Phone-number JID of the sender (the account's own when outbound)")
    sender_lid: str | None = None
    push_name: str | None = None
    participant: str | None = Field(default=None, description="In a group: the sender's JID")
    participant_lid: str | None = None
    sent_at: datetime
    content: MessageContent


class HistoryImportedData(EventData):
    """Part of a chat's history after pairing (WhatsApp's history sync): stored as imported, never
    re-sent as `message.received` and not delivered to webhooks."""

    chat: str
    name: str | None = None
    is_group: bool = False
    sync_type: str = Field(
        default="recent", description="WhatsApp's kind of sync: initial, recent, full, ..."
    )
    messages: list[ImportedMessage] = Field(max_length=HISTORY_BATCH)


class StoredMediaRef(BaseModel):
    """Where a message's media can be fetched with the tenant's API key, and what it is."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str = Field(description="API path that streams the bytes: /api/v1/messages/<id>/media")
    mimetype: str
    size: int = Field(ge=0, description="Bytes")
    sha256: str = Field(description="Hex SHA-256 of the bytes")
    filename: str | None = None


class MessageMediaStoredData(EventData):
    message_id: UUID
    whatsapp_id: str | None = None
    direction: Literal["inbound", "outbound"] = "inbound"
    media: StoredMediaRef


class MessageEditedData(EventData):
    message_id: UUID | None = Field(default=None, description="ZapHub id of the edited message, when ours")
    whatsapp_id: str = Field(description="WhatsApp id of the message edited")
    chat: str
    sender: str | None = Field(default=None, description="Who edited it: the contact; null for this session")
    from_me: bool = Field(default=False, description="This session edited its own message")
    text: str | None = None
    caption: str | None = None
    edited_at: datetime


class MessageRevokedData(EventData):
    message_id: UUID | None = Field(default=None, description="ZapHub id of the revoked message, when ours")
    whatsapp_id: str = Field(description="WhatsApp id of the message deleted for everyone")
    chat: str
    sender: str | None = Field(default=None, description="Who deleted it: the contact; null for this session")
    from_me: bool = Field(default=False, description="This session revoked its own message")
    revoked_at: datetime


class MessageReactionData(EventData):
    whatsapp_id: str = Field(description="WhatsApp id of the message reacted to")
    chat: str
    sender: str = Field(description="Who reacted")
    emoji: str = Field(description="Empty when an earlier reaction was removed")
    from_me: bool = Field(default=False, description="The message reacted to was sent by this session")
    at: datetime


class PollVoteData(EventData):
    poll_id: str = Field(description="WhatsApp id of the poll")
    message_id: UUID | None = Field(default=None, description="ZapHub id of the poll, when ours")
    chat: str
    voter: str
    options: list[str] = Field(description="The options the voter holds now; empty: vote withdrawn")
    at: datetime


class PresenceUpdatedData(EventData):
    jid: str = Field(description="Whose presence")
    available: bool
    last_seen: datetime | None = None


class ChatPresenceData(EventData):
    chat: str
    sender: str
    state: Literal["composing", "recording", "paused"]
    at: datetime


class GroupJoinedData(EventData):
    """The account is now in `group`: it created it, was added, or joined by link."""

    group: Group
    by: str | None = Field(default=None, description="JID of who added the account")


class GroupLeftData(EventData):
    group: str = Field(description="The group's JID")
    by: str | None = Field(
        default=None,
        description=(
            "JID of who made the account leave: an admin who removed it, or the account itself when"
            " it left; null when WhatsApp did not say"
        ),
    )


class GroupUpdatedData(EventData):
    """What changed; the fields left null did not."""

    group: str = Field(description="The group's JID")
    by: str | None = Field(default=None, description="JID of who changed it")
    subject: str | None = None
    description: str | None = None
    settings: GroupSettings | None = None
    picture_id: str | None = None
    picture_removed: bool = False


class GroupParticipantsData(EventData):
    group: str = Field(description="The group's JID")
    action: ParticipantAction
    participants: list[str] = Field(description="JIDs of the participants concerned")
    by: str | None = Field(
        default=None, description="JID of who did it (the participant itself when leaving)"
    )


class GroupJoinRequestData(EventData):
    group: str = Field(description="The group's JID")
    jid: str = Field(description="Who asks to join")
    lid: str | None = None


class EventBase(BaseModel):
    """The CloudEvents 1.0 envelope shared by every event."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    short: ClassVar[str]

    specversion: Literal["1.0"] = "1.0"
    id: UUID
    source: str = Field(description="URI-reference of the emitting process, e.g. /zaphub/session-host/h1")
    type: str
    time: datetime
    subject: str | None = Field(default=None, description="What the event is about, e.g. messages/<id>")
    datacontenttype: Literal["application/json"] = "application/json"
    tenantid: UUID
    sessionid: UUID
    traceparent: str | None = Field(
        default=None,
        max_length=128,
        description="W3C trace context of the span that produced the event (CloudEvents distributed tracing"
        " extension): an inbound message's trace from the host on",
    )
    data: Any
    # False: the event is projected and streamed, but never POSTed to webhooks.
    webhooks: ClassVar[bool] = True

    @staticmethod
    def derive_id(*parts: object) -> UUID:
        """A stable event id, so that a repeated emission of the same fact is deduplicated by JetStream."""
        return uuid5(EVENT_NAMESPACE, "/".join(str(p) for p in parts))


def _type(short: str) -> str:
    return f"io.zaphub.{short}.v1"


class SessionQr(EventBase):
    short = "session.qr"
    type: Literal["io.zaphub.session.qr.v1"] = "io.zaphub.session.qr.v1"
    data: SessionQrData


class SessionPairCode(EventBase):
    short = "session.pair_code"
    type: Literal["io.zaphub.session.pair_code.v1"] = "io.zaphub.session.pair_code.v1"
    data: SessionPairCodeData


class SessionConnected(EventBase):
    short = "session.connected"
    type: Literal["io.zaphub.session.connected.v1"] = "io.zaphub.session.connected.v1"
    data: SessionConnectedData


class SessionDisconnected(EventBase):
    short = "session.disconnected"
    type: Literal["io.zaphub.session.disconnected.v1"] = "io.zaphub.session.disconnected.v1"
    data: SessionDisconnectedData


class SessionLoggedOut(EventBase):
    short = "session.logged_out"
    type: Literal["io.zaphub.session.logged_out.v1"] = "io.zaphub.session.logged_out.v1"
    data: SessionLoggedOutData


class SessionFailed(EventBase):
    short = "session.failed"
    type: Literal["io.zaphub.session.failed.v1"] = "io.zaphub.session.failed.v1"
    data: SessionFailedData


class MessageSent(EventBase):
    short = "message.sent"
    type: Literal["io.zaphub.message.sent.v1"] = "io.zaphub.message.sent.v1"
    data: MessageSentData


class MessageDelivered(EventBase):
    short = "message.delivered"
    type: Literal["io.zaphub.message.delivered.v1"] = "io.zaphub.message.delivered.v1"
    data: MessageReceiptData


class MessageRead(EventBase):
    short = "message.read"
    type: Literal["io.zaphub.message.read.v1"] = "io.zaphub.message.read.v1"
    data: MessageReceiptData


class MessageFailed(EventBase):
    short = "message.failed"
    type: Literal["io.zaphub.message.failed.v1"] = "io.zaphub.message.failed.v1"
    data: MessageFailedData


class MessageRateLimited(EventBase):
    short = "message.rate_limited"
    type: Literal["io.zaphub.message.rate_limited.v1"] = "io.zaphub.message.rate_limited.v1"
    data: MessageRateLimitedData


class MessageReceived(EventBase):
    short = "message.received"
    type: Literal["io.zaphub.message.received.v1"] = "io.zaphub.message.received.v1"
    data: MessageReceivedData


class HistoryImported(EventBase):
    short = "history.imported"
    type: Literal["io.zaphub.history.imported.v1"] = "io.zaphub.history.imported.v1"
    data: HistoryImportedData
    webhooks: ClassVar[bool] = False


class MessageMediaStored(EventBase):
    short = "message.media_stored"
    type: Literal["io.zaphub.message.media_stored.v1"] = "io.zaphub.message.media_stored.v1"
    data: MessageMediaStoredData


class MessageEdited(EventBase):
    short = "message.edited"
    type: Literal["io.zaphub.message.edited.v1"] = "io.zaphub.message.edited.v1"
    data: MessageEditedData


class MessageRevoked(EventBase):
    short = "message.revoked"
    type: Literal["io.zaphub.message.revoked.v1"] = "io.zaphub.message.revoked.v1"
    data: MessageRevokedData


class MessageReaction(EventBase):
    short = "message.reaction"
    type: Literal["io.zaphub.message.reaction.v1"] = "io.zaphub.message.reaction.v1"
    data: MessageReactionData


class PollVote(EventBase):
    short = "poll.vote"
    type: Literal["io.zaphub.poll.vote.v1"] = "io.zaphub.poll.vote.v1"
    data: PollVoteData


class PresenceUpdated(EventBase):
    short = "presence.updated"
    type: Literal["io.zaphub.presence.updated.v1"] = "io.zaphub.presence.updated.v1"
    data: PresenceUpdatedData


class ChatPresence(EventBase):
    short = "chat.presence"
    type: Literal["io.zaphub.chat.presence.v1"] = "io.zaphub.chat.presence.v1"
    data: ChatPresenceData


class GroupJoined(EventBase):
    short = "group.joined"
    type: Literal["io.zaphub.group.joined.v1"] = "io.zaphub.group.joined.v1"
    data: GroupJoinedData


class GroupLeft(EventBase):
    short = "group.left"
    type: Literal["io.zaphub.group.left.v1"] = "io.zaphub.group.left.v1"
    data: GroupLeftData


class GroupUpdated(EventBase):
    short = "group.updated"
    type: Literal["io.zaphub.group.updated.v1"] = "io.zaphub.group.updated.v1"
    data: GroupUpdatedData


class GroupParticipants(EventBase):
    short = "group.participants"
    type: Literal["io.zaphub.group.participants.v1"] = "io.zaphub.group.participants.v1"
    data: GroupParticipantsData


class GroupJoinRequest(EventBase):
    short = "group.join_request"
    type: Literal["io.zaphub.group.join_request.v1"] = "io.zaphub.group.join_request.v1"
    data: GroupJoinRequestData


EVENT_CLASSES: tuple[type[EventBase], ...] = (
    SessionQr,
    SessionPairCode,
    SessionConnected,
    SessionDisconnected,
    SessionLoggedOut,
    SessionFailed,
    MessageSent,
    MessageDelivered,
    MessageRead,
    MessageFailed,
    MessageRateLimited,
    MessageReceived,
    MessageMediaStored,
    MessageEdited,
    MessageRevoked,
    MessageReaction,
    PollVote,
    PresenceUpdated,
    ChatPresence,
    GroupJoined,
    GroupLeft,
    GroupUpdated,
    GroupParticipants,
    GroupJoinRequest,
    HistoryImported,
)
EVENT_BY_SHORT: dict[str, type[EventBase]] = {cls.short: cls for cls in EVENT_CLASSES}
assert all(_type(c.short) == c.model_fields["type"].default for c in EVENT_CLASSES)

AnyEvent = Annotated[
    SessionQr
    | SessionPairCode
    | SessionConnected
    | SessionDisconnected
    | SessionLoggedOut
    | SessionFailed
    | MessageSent
    | MessageDelivered
    | MessageRead
    | MessageFailed
    | MessageRateLimited
    | MessageReceived
    | MessageMediaStored
    | MessageEdited
    | MessageRevoked
    | MessageReaction
    | PollVote
    | PresenceUpdated
    | ChatPresence
    | GroupJoined
    | GroupLeft
    | GroupUpdated
    | GroupParticipants
    | GroupJoinRequest
    | HistoryImported,
    Field(discriminator="type"),
]
ANY_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse_event(raw: bytes | str) -> EventBase:
    """Validate any v1 event; raises pydantic.ValidationError on anything else."""
    return ANY_EVENT.validate_json(raw)
