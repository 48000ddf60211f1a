"""The messaging capability: handing a message to WhatsApp."""

from abc import ABC, abstractmethod
from uuid import UUID

from zaphub_contracts.content import MessageContent


class Messages(ABC):
    """One session's messaging; the runner sends a run of commands through it, one at a time."""

    __slots__ = ()

    @abstractmethod
    async def send(self, to: str, content: MessageContent, whatsapp_id: str, message_id: UUID) -> str:
        """Hand one message to WhatsApp under `whatsapp_id`; returns the id WhatsApp used.

        `message_id` is the ZapHub id, for logs only.
        """
