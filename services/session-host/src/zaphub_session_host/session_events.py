"""What a session's connection reports, as contract events: one `SessionEvents` per runner builds the
CloudEvents (ids derived where a repeat must not double an event) and hands them to the publisher."""

from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4, uuid5

from opentelemetry import trace

from zaphub_contracts.content import EditContent, PollVoteContent, ReactionContent, RevokeContent
from zaphub_contracts.events import (
    EVENT_NAMESPACE,
    HISTORY_BATCH,
    ChatPresence,
    ChatPresenceData,
    EventBase,
    EventData,
    GroupJoined,
    GroupJoinedData,
    GroupJoinRequest,
    GroupJoinRequestData,
    GroupLeft,
    GroupLeftData,
    GroupParticipants,
    GroupParticipantsData,
    GroupUpdated,
    GroupUpdatedData,
    HistoryImported,
    HistoryImportedData,
    ImportedMessage,
    MessageDelivered,
    MessageEdited,
    MessageEditedData,
    MessageMediaStored,
    MessageMediaStoredData,
    MessageReaction,
    MessageReactionData,
    MessageRead,
    MessageReceiptData,
    MessageReceived,
    MessageReceivedData,
    MessageRevoked,
    MessageRevokedData,
    PollVote,
    PollVoteData,
    PresenceUpdated,
    PresenceUpdatedData,
    SessionConnected,
    SessionConnectedData,
    SessionDisconnected,
    SessionDisconnectedData,
    SessionFailed,
    SessionFailedData,
    SessionLoggedOut,
    SessionLoggedOutData,
    SessionPairCode,
    SessionPairCodeData,
    SessionQr,
    SessionQrData,
    StoredMediaRef,
)
from zaphub_runtime.media_store import StoredMedia
from zaphub_runtime.telemetry import inject_headers
from zaphub_session_host.event_publisher import EventPublisher
from zaphub_session_host.transport.base import (
    ChatUpdate,
    GroupChange,
    HistoryBatch,
    Identity,
    InboundMessage,
    PresenceSeen,
    Receipt,
    ReceiptKind,
)

GROUP_EVENTS: dict[type[EventData], type[EventBase]] = {
    GroupJoinedData: GroupJoined,
    GroupLeftData: GroupLeft,
    GroupUpdatedData: GroupUpdated,
    GroupParticipantsData: GroupParticipants,
    GroupJoinRequestData: GroupJoinRequest,
}

tracer = trace.get_tracer("zaphub_session_host.inbound")

RECENT_SENDS = 100_000  # WhatsApp id -> ZapHub id, so receipts carry the message id


class RecentSends:
    """The ZapHub message id of each recent send of this host, by the id WhatsApp gave it."""

    def __init__(self, size: int = RECENT_SENDS) -> None:
        self._ids: OrderedDict[str, UUID] = OrderedDict()
        self._size = size

    def remember(self, whatsapp_id: str, message_id: UUID) -> None:
        self._ids[whatsapp_id] = message_id
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def get(self, whatsapp_id: str) -> UUID | None:
        return self._ids.get(whatsapp_id)


class SessionEvents:
    """The contract events of one session, from this host."""

    __slots__ = ("_publisher", "_recent", "_source", "session_id", "tenant_id")

    def __init__(
        self,
        publisher: EventPublisher,
        source: str,
        recent: RecentSends,
        tenant_id: UUID,
        session_id: UUID,
    ) -> None:
        self._publisher = publisher
        self._source = source
        self._recent = recent
        self.tenant_id = tenant_id
        self.session_id = session_id

    def qr(self, qr: str, expires_at: datetime) -> None:
        self._emit(
            SessionQr,
            SessionQrData(qr=qr, expires_at=expires_at),
            event_id=EventBase.derive_id(self.session_id, "qr", qr),
        )

    def pair_code(self, code: str, phone: str) -> None:
        self._emit(
            SessionPairCode,
            SessionPairCodeData(code=code, phone=phone),
            event_id=EventBase.derive_id(self.session_id, "pair_code", code),
        )

    def connected(self, identity: Identity, host_id: str) -> None:
        self._emit(
            SessionConnected,
            SessionConnectedData(
                jid=identity.jid, lid=identity.lid, push_name=identity.push_name, host_id=host_id
            ),
        )

    def disconnected(self, reason: str, will_reconnect: bool) -> None:
        self._emit(SessionDisconnected, SessionDisconnectedData(reason=reason, will_reconnect=will_reconnect))

    def logged_out(self, reason: str) -> None:
        self._emit(SessionLoggedOut, SessionLoggedOutData(reason=reason))

    def failed(self, reason: str, detail: str) -> None:
        self._emit(SessionFailed, SessionFailedData(reason=reason, detail=detail))

    def message(self, message: InboundMessage) -> UUID | None:
        """`message.received` and the ZapHub id of the message (derived: a repeat keeps it); a contact's
        edit, revoke or reaction is its own event instead, and None."""
        content = message.content
        if isinstance(content, EditContent | RevokeContent):
            self.acted(
                message.chat,
                content,
                message.sent_at,
                from_me=False,
                event_key=message.whatsapp_id,
                sender=message.sender,
            )
            return None
        if isinstance(content, PollVoteContent):
            self._emit(
                PollVote,
                PollVoteData(
                    poll_id=content.poll_id,
                    message_id=self._recent.get(content.poll_id),
                    chat=message.chat,
                    voter=message.sender,
                    options=content.options,
                    at=message.sent_at,
                ),
                event_id=EventBase.derive_id(self.session_id, message.whatsapp_id, "poll_vote"),
            )
            return None
        if isinstance(content, ReactionContent):
            self._emit(
                MessageReaction,
                MessageReactionData(
                    whatsapp_id=content.message_id,
                    chat=message.chat,
                    sender=message.sender,
                    emoji=content.emoji,
                    from_me=content.from_me,
                    at=message.sent_at,
                ),
                event_id=EventBase.derive_id(self.session_id, message.whatsapp_id, "reaction"),
            )
            return None
        message_id = received_id(self.session_id, message.whatsapp_id)
        # The inbound trace starts here; the projector and the webhook delivery continue it.
        span = tracer.start_span(
            "receive message",
            kind=trace.SpanKind.PRODUCER,
            attributes={"zaphub.session_id": str(self.session_id), "zaphub.message_id": str(message_id)},
        )
        traceparent = inject_headers(span=span).get("traceparent")
        span.end()
        self._emit(
            MessageReceived,
            MessageReceivedData(
                message_id=message_id,
                whatsapp_id=message.whatsapp_id,
                chat=message.chat,
                sender=message.sender,
                sender_lid=message.sender_lid,
                push_name=message.push_name,
                is_group=message.is_group,
                participant=message.sender if message.is_group else None,
                participant_lid=message.sender_lid if message.is_group else None,
                sent_at=message.sent_at,
                content=message.content,
            ),
            event_id=EventBase.derive_id(self.session_id, message.whatsapp_id, "received"),
            subject=f"messages/{message_id}",
            traceparent=traceparent,
        )
        return message_id

    def history(self, batch: HistoryBatch, own_jid: str | None) -> None:
        """`history.imported`, `HISTORY_BATCH` messages an event; a message keeps the id a live
        `message.received` of it would have, so whichever comes second is not stored twice."""
        for start in range(0, len(batch.messages), HISTORY_BATCH):
            part = batch.messages[start : start + HISTORY_BATCH]
            imported = [
                ImportedMessage(
                    message_id=received_id(self.session_id, m.whatsapp_id)
                    if not m.from_me
                    else uuid5(EVENT_NAMESPACE, f"history/{self.session_id}/{m.whatsapp_id}"),
                    whatsapp_id=m.whatsapp_id,
                    direction="outbound" if m.from_me else "inbound",
                    sender=(own_jid or m.sender) if m.from_me else m.sender,
                    sender_lid=m.sender_lid,
                    push_name=m.push_name,
                    participant=m.sender if batch.is_group and not m.from_me else None,
                    participant_lid=m.sender_lid if batch.is_group and not m.from_me else None,
                    sent_at=m.sent_at,
                    content=m.content,
                )
                for m in part
            ]
            data = HistoryImportedData(
                chat=batch.chat,
                name=batch.name,
                is_group=batch.is_group,
                sync_type=batch.sync_type,
                messages=imported,
            )
            event_id = EventBase.derive_id(self.session_id, "history", batch.chat, part[0].whatsapp_id)
            self._emit(HistoryImported, data, event_id=event_id, subject=f"chats/{batch.chat}")

    def media_stored(self, message_id: UUID, whatsapp_id: str, media: StoredMedia) -> None:
        self._media_stored(message_id, whatsapp_id, media, "inbound")

    def sent_media_stored(self, message_id: UUID, whatsapp_id: str, media: StoredMedia) -> None:
        self._media_stored(message_id, whatsapp_id, media, "outbound")

    def _media_stored(
        self,
        message_id: UUID,
        whatsapp_id: str,
        media: StoredMedia,
        direction: Literal["inbound", "outbound"],
    ) -> None:
        ref = StoredMediaRef(
            url=f"/api/v1/messages/{message_id}/media",
            mimetype=media.mimetype,
            size=media.size,
            sha256=media.sha256,
            filename=media.filename,
        )
        self._emit(
            MessageMediaStored,
            MessageMediaStoredData(
                message_id=message_id, whatsapp_id=whatsapp_id, direction=direction, media=ref
            ),
            event_id=EventBase.derive_id(self.session_id, whatsapp_id, "media_stored"),
            subject=f"messages/{message_id}",
        )

    def acted(
        self,
        chat: str,
        content: EditContent | RevokeContent,
        at: datetime,
        *,
        from_me: bool,
        event_key: str,
        sender: str | None = None,
    ) -> None:
        """An edit or revoke of the message `content.message_id`: this session's own once handed over
        (`from_me`), or a contact's as received. `event_key` (the action's WhatsApp id) dedups it."""
        message_id = self._recent.get(content.message_id) if from_me else None
        subject = f"messages/{message_id}" if message_id else None
        if isinstance(content, EditContent):
            self._emit(
                MessageEdited,
                MessageEditedData(
                    message_id=message_id,
                    whatsapp_id=content.message_id,
                    chat=chat,
                    sender=sender,
                    from_me=from_me,
                    text=content.text,
                    caption=content.caption,
                    edited_at=at,
                ),
                event_id=EventBase.derive_id(self.session_id, event_key, "edited"),
                subject=subject,
            )
            return
        self._emit(
            MessageRevoked,
            MessageRevokedData(
                message_id=message_id,
                whatsapp_id=content.message_id,
                chat=chat,
                sender=sender,
                from_me=from_me,
                revoked_at=at,
            ),
            event_id=EventBase.derive_id(self.session_id, event_key, "revoked"),
            subject=subject,
        )

    def presence(self, presence: PresenceSeen) -> None:
        data = PresenceUpdatedData(
            jid=presence.jid, available=presence.available, last_seen=presence.last_seen
        )
        self._emit(PresenceUpdated, data)

    def receipt(self, receipt: Receipt) -> None:
        message_id = self._recent.get(receipt.whatsapp_id)
        cls: type[EventBase] = MessageDelivered if receipt.kind is ReceiptKind.DELIVERED else MessageRead
        self._emit(
            cls,
            MessageReceiptData(
                message_id=message_id, whatsapp_id=receipt.whatsapp_id, chat=receipt.chat, at=receipt.at
            ),
            event_id=EventBase.derive_id(self.session_id, receipt.whatsapp_id, receipt.kind.value),
            subject=f"messages/{message_id}" if message_id else None,
        )

    def update(self, update: ChatUpdate) -> None:
        """What a contact did to a chat that is not a message: typing."""
        state = update.state if update.state in ("composing", "recording") else "paused"
        data = ChatPresenceData(chat=update.chat, sender=update.sender, state=state, at=update.at)
        self._emit(ChatPresence, data)

    def group(self, change: GroupChange) -> None:
        jid = change.group.jid if isinstance(change, GroupJoinedData) else change.group
        self._emit(GROUP_EVENTS[type(change)], change, subject=f"groups/{jid}")

    def _emit(
        self,
        cls: type[EventBase],
        data: EventData,
        event_id: UUID | None = None,
        subject: str | None = None,
        traceparent: str | None = None,
    ) -> None:
        fields: dict[str, Any] = {
            "id": event_id or uuid4(),
            "source": self._source,
            "time": datetime.now(UTC),
            "tenantid": self.tenant_id,
            "sessionid": self.session_id,
            "subject": subject or f"sessions/{self.session_id}",
            "data": data,
            "traceparent": traceparent,
        }
        self._publisher.emit(cls(**fields))


def received_id(session_id: UUID, whatsapp_id: str) -> UUID:
    """The ZapHub id of a received message (derived: a repeat, or its copy in a history sync, keeps it)."""
    return uuid5(EVENT_NAMESPACE, f"received/{session_id}/{whatsapp_id}")
