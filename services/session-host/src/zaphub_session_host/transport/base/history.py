"""What a transport reports of a chat's past after pairing (WhatsApp's history sync, neonize
`HistorySync`): chats with their older messages in both directions, imported as history."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from zaphub_contracts.content import MessageContent


class HistorySync(StrEnum):
    """`ZAPHUB_HISTORY_SYNC`: what a newly paired session asks WhatsApp for, and imports."""

    RECENT = "recent"  # WhatsApp's default for a new companion: the recent months of each chat
    FULL = "full"  # `requireFullSync`: as much as the phone holds
    OFF = "off"  # nothing imported (WhatsApp still sends its initial sync; it is dropped)


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    whatsapp_id: str
    from_me: bool
    sender: str  # phone JID; in a group the participant; the account's own JID when from_me
    sent_at: datetime
    content: MessageContent
    sender_lid: str | None = None
    push_name: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryBatch:
    """Some of one chat's older messages, oldest first."""

    chat: str
    messages: tuple[HistoryMessage, ...]
    name: str | None = None
    is_group: bool = False
    sync_type: str = "recent"
