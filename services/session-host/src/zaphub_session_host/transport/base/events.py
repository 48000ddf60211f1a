"""What a connection reports, shaped after neonize/whatsmeow's events: the `ConnectionEvents` callbacks
and the values they carry.

They are plain (non-async) calls so a transport can fire them from timers or foreign threads' loop
callbacks; the runner applies them to its state machine at once, in order.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from zaphub_contracts.content import MessageContent
from zaphub_contracts.events import (
    GroupJoinedData,
    GroupJoinRequestData,
    GroupLeftData,
    GroupParticipantsData,
    GroupUpdatedData,
)
from zaphub_session_host.transport.base.history import HistoryBatch

# A change in a group the account is in, as the `group.*` event it becomes.
GroupChange = (
    GroupJoinedData | GroupLeftData | GroupUpdatedData | GroupParticipantsData | GroupJoinRequestData
)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the linked device is on WhatsApp."""

    jid: str
    lid: str | None = None
    push_name: str | None = None


class ReceiptKind(StrEnum):
    DELIVERED = "delivered"
    READ = "read"


@dataclass(frozen=True, slots=True)
class Receipt:
    kind: ReceiptKind
    whatsapp_id: str
    chat: str
    at: datetime


@dataclass(frozen=True, slots=True)
class InboundMessage:
    whatsapp_id: str
    chat: str
    sender: str
    sent_at: datetime
    content: MessageContent
    sender_lid: str | None = None
    push_name: str | None = None
    is_group: bool = False  # then `chat` is the group and `sender` the participant who sent it
    media: bytes | None = None  # the media's bytes when the transport already holds them (the simulator)


@dataclass(frozen=True, slots=True)
class ChatPresenceSeen:
    """A contact typing (`composing`), recording audio, or stopping (`paused`) in a chat (`on_update`)."""

    chat: str
    sender: str
    state: str
    at: datetime


# What a contact does to a chat that is not a message (a contact's edits, revokes, reactions and poll
# votes arrive as messages whose content is the action, as neonize reports them).
ChatUpdate = ChatPresenceSeen


@dataclass(frozen=True, slots=True)
class PresenceSeen:
    """A contact shown available or unavailable."""

    jid: str
    available: bool
    last_seen: datetime | None = None


class ConnectionEvents(Protocol):
    """What a connection reports; neonize's qr/pair/connected/disconnected/logged_out/message/receipt."""

    def on_qr(self, qr: str, expires_at: datetime) -> None: ...

    def on_connected(self, identity: Identity) -> None: ...

    def on_disconnected(self, reason: str, will_reconnect: bool) -> None: ...

    def on_logged_out(self, reason: str) -> None: ...

    def on_auth_changed(self, auth_data: bytes | None) -> None: ...

    def on_message(self, message: InboundMessage) -> None: ...

    def on_receipt(self, receipt: Receipt) -> None: ...

    def on_update(self, update: ChatUpdate) -> None: ...

    def on_group(self, change: GroupChange) -> None: ...

    def on_history(self, batch: HistoryBatch) -> None: ...

    def on_presence(self, presence: PresenceSeen) -> None: ...
