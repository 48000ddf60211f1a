"""The presence capability: the account shown online or offline, typing shown in a chat, and read
marks on received messages. All best effort: nothing is stored."""

from abc import ABC, abstractmethod
from collections import OrderedDict

from zaphub_contracts.host import ChatPresenceState, PresenceState


class Presence(ABC):
    __slots__ = ()

    @abstractmethod
    async def set_presence(self, state: PresenceState) -> None:
        """Show the account available or unavailable to its contacts."""

    @abstractmethod
    async def set_chat_presence(self, chat: str, state: ChatPresenceState) -> None:
        """Show composing, recording or paused in `chat`."""

    @abstractmethod
    async def mark_read(self, chat: str, up_to: str | None) -> list[str]:
        """Mark the received messages of `chat` read, up to the WhatsApp id `up_to` (the latest when
        None); the ids marked."""


class Unread:
    """The received messages of each chat not yet marked read (WhatsApp id and sender), so a read
    mark without `up_to` knows what to mark. Bounded per chat; kept by each transport's presence."""

    MAX_PER_CHAT = 256

    __slots__ = ("_chats",)

    def __init__(self) -> None:
        self._chats: dict[str, OrderedDict[str, str]] = {}

    def received(self, chat: str, whatsapp_id: str, sender: str) -> None:
        ids = self._chats.setdefault(chat, OrderedDict())
        ids[whatsapp_id] = sender
        while len(ids) > self.MAX_PER_CHAT:
            ids.popitem(last=False)

    def take(self, chat: str, up_to: str | None) -> list[tuple[str, str]]:
        """(id, sender) of the chat's unread messages up to `up_to` (all when None), now read. An
        `up_to` not seen here is returned alone, sent by the chat: it may predate this process."""
        ids = self._chats.get(chat, OrderedDict())
        if up_to is not None and up_to not in ids:
            return [(up_to, chat)]
        taken: list[tuple[str, str]] = []
        while ids:
            whatsapp_id, sender = ids.popitem(last=False)
            taken.append((whatsapp_id, sender))
            if whatsapp_id == up_to:
                break
        return taken
