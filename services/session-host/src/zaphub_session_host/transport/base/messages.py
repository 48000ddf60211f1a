"""The messaging capability: handing a message to WhatsApp."""

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from uuid import UUID

from zaphub_contracts.content import EDIT_WINDOW_SECONDS, EditContent, MessageContent
from zaphub_session_host.transport.base.errors import EditWindowExpired

EDIT_WINDOW = timedelta(seconds=EDIT_WINDOW_SECONDS)


def check_edit_window(content: EditContent, now: datetime | None = None) -> None:
    """Refuse an edit of a message handed over longer ago than WhatsApp's edit window."""
    if content.sent_at is not None and (now or datetime.now(UTC)) - content.sent_at > EDIT_WINDOW:
        raise EditWindowExpired(
            f"message {content.message_id} was sent at {content.sent_at.isoformat()}: WhatsApp allows "
            f"edits for {EDIT_WINDOW_SECONDS // 60} minutes"
        )


class Messages(ABC):
    """One session's messaging; the runner sends a run of commands through it, one at a time."""

    __slots__ = ()

    @abstractmethod
    async def send(self, to: str, content: MessageContent, whatsapp_id: str, message_id: UUID) -> str:
        """Hand one message to WhatsApp under `whatsapp_id`; returns the id WhatsApp used. An
        `EditContent` or `RevokeContent` acts on the earlier message it names (`check_edit_window`).

        `message_id` is the ZapHub id, for logs only.
        """
