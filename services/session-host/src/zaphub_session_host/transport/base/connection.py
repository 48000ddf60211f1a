"""The lifecycle every transport implements: a process-wide `Transport` that opens one `Connection` per
session (one WhatsApp client each), which connects, pairs, logs out and closes.

What a connection can do beyond its lifecycle is one capability attribute per module of base/
(`messages`: base/messages.py), each implemented by the transport in a module of its own.
"""

from abc import ABC, abstractmethod
from uuid import UUID

from zaphub_contracts.host import InjectFault
from zaphub_session_host.transport.base.contacts import Contacts
from zaphub_session_host.transport.base.errors import FaultsUnsupported
from zaphub_session_host.transport.base.events import ConnectionEvents
from zaphub_session_host.transport.base.messages import Messages
from zaphub_session_host.transport.base.presence import Presence


class Connection(ABC):
    """One session's WhatsApp client."""

    __slots__ = ()

    # Set by each implementation; one attribute per capability.
    messages: Messages
    contacts: Contacts
    presence: Presence

    @abstractmethod
    async def connect(self) -> None:
        """Start connecting: resume with the saved identity, or show QR codes; outcomes arrive as events."""

    @abstractmethod
    async def pair_phone(self, phone: str) -> str:
        """Ask for a pairing code for `phone` (E.164 digits) instead of a QR scan."""

    @abstractmethod
    async def logout(self) -> None:
        """Unlink the device from the account; `on_logged_out` and `on_auth_changed(None)` follow."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect without logging out; no event follows."""

    @abstractmethod
    def auth_data(self) -> bytes | None:
        """The identity to persist, or None before pairing."""

    async def inject_fault(self, fault: InjectFault) -> None:
        raise FaultsUnsupported("fault injection exists only in the simulator transport")


class Transport(ABC):
    name: str

    async def start(self) -> None:  # noqa: B027 - a transport without process-wide setup needs none
        """Check the transport can run here; raise `TransportUnavailable` with the fix otherwise."""

    @abstractmethod
    def open(
        self, tenant_id: UUID, session_id: UUID, auth_data: bytes | None, events: ConnectionEvents
    ) -> Connection:
        """A new, not yet connected client for one session."""

    async def close(self) -> None:  # noqa: B027 - optional, like start()
        """Release process-wide resources after every connection was closed."""
