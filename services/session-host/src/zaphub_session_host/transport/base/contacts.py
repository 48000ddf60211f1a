"""The contacts capability: who is on WhatsApp, the contacts and profiles the account knows, and its
blocklist."""

from abc import ABC, abstractmethod

from zaphub_contracts.host import Contact, ContactCheck


class Contacts(ABC):
    """One session's contacts; every call needs the session online (`NotConnected` otherwise)."""

    __slots__ = ()

    @abstractmethod
    async def check(self, numbers: list[str]) -> list[ContactCheck]:
        """Which of `numbers` (E.164 digits) have an account: one result per number, in order."""

    @abstractmethod
    async def known(self) -> list[Contact]:
        """The contacts the linked account knows."""

    @abstractmethod
    async def info(self, jid: str) -> Contact:
        """One contact's profile: name, about, business flag, picture URL, phone JID and LID."""

    @abstractmethod
    async def blocklist(self) -> list[str]:
        """The blocked JIDs."""

    @abstractmethod
    async def set_blocked(self, jid: str, blocked: bool) -> list[str]:
        """Block or unblock `jid`; the blocked JIDs after the change."""
