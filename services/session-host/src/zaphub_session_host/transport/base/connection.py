"""The lifecycle every transport implements: a process-wide `Transport` that opens one `Connection` per
session (one WhatsApp client each), which connects, pairs, logs out and closes.

What a connection can do beyond its lifecycle is one capability attribute per module of base/
(`messages`: base/messages.py, `contacts`, `presence`, `groups`), each implemented by the transport in
a module of its own.
"""

from abc import ABC, abstractmethod
from uuid import UUID

from zaphub_contracts.host import InjectFault, Simulate
from zaphub_runtime.bus import Bus
from zaphub_session_host.transport.base.contacts import Contacts
from zaphub_session_host.transport.base.errors import FaultsUnsupported, SimulatorOnly
from zaphub_session_host.transport.base.events import ConnectionEvents, InboundMessage
from zaphub_session_host.transport.base.groups import Groups
from zaphub_session_host.transport.base.messages import Messages
from zaphub_session_host.transport.base.presence import Presence


class Connection(ABC):
    """One session's WhatsApp client."""

    __slots__ = ()

    # Set by each implementation; one attribute per capability.
    messages: Messages
    contacts: Contacts
    presence: Presence
    groups: Groups

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

    async def download(self, message: InboundMessage) -> bytes | None:
        """The decrypted bytes of a received media message; None when this transport cannot fetch them."""
        return message.media

    async def inject_fault(self, fault: InjectFault) -> None:
        raise FaultsUnsupported("fault injection exists only in the simulator transport")

    async def simulate(self, request: Simulate) -> str | None:
        """A simulated contact acts on the session; the WhatsApp id of what it sent, if anything."""
        raise SimulatorOnly("simulated contacts exist only in the simulator transport")


class Transport(ABC):
    name: str

    async def start(self) -> None:  # noqa: B027 - a transport without process-wide setup needs none
        """Check the transport can run here; raise `TransportUnavailable` with the fix otherwise."""

    async def attach(self, bus: Bus) -> None:  # noqa: B027 - only the simulator's network uses NATS
        """The host's NATS connection, once it is open (before any session is opened)."""

    async def detach(self) -> None:  # noqa: B027 - like attach()
        """Stop using the NATS connection, before it closes (after every connection was closed)."""

    @abstractmethod
    def open(
        self, tenant_id: UUID, session_id: UUID, auth_data: bytes | None, events: ConnectionEvents
    ) -> Connection:
        """A new, not yet connected client for one session."""

    async def close(self) -> None:  # noqa: B027 - optional, like start()
        """Release process-wide resources after every connection was closed."""
