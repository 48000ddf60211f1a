"""The interface every transport implements, shaped after neonize/whatsmeow, and its named errors.

A `Transport` is process-wide; it opens one `Connection` per session (one WhatsApp client each).
What happens on the wire arrives through the `ConnectionEvents` callbacks the runner hands in;
they are plain (non-async) calls so a transport can fire them from timers or foreign threads'
loop callbacks, and the runner applies them to its state machine at once, in order.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from zaphub_contracts.content import MessageContent
from zaphub_contracts.host import InjectFault


class TransportError(Exception):
    """Anything a transport could not do; the base of the named errors below."""


class TransportUnavailable(TransportError):
    """The transport cannot run in this process (missing library, not implemented, misconfigured)."""


class NotConnected(TransportError):
    """The session has no live connection to WhatsApp right now (transient)."""


class LoggedOut(TransportError):
    """The linked device was logged out; only a new pairing brings the session back (permanent)."""


class RecipientNotOnWhatsApp(TransportError):
    """The recipient number has no WhatsApp account (permanent)."""


class TransientSendError(TransportError):
    """WhatsApp refused or lost the send for now; retrying later may succeed."""


class InvalidContent(TransportError):
    """The content cannot be sent as given (bad base64, wrong media type, too large, URL refused).

    Permanent: a retry sends the same content."""


class MediaToolsMissing(InvalidContent):
    """The send needs ffmpeg/ffprobe (voice notes, sticker conversion) and they are not on the PATH:
    permanent on this host until the tools are installed."""


class AlreadyPaired(TransportError):
    """Pairing by phone number was asked of a session that already has an identity."""


class FaultsUnsupported(TransportError):
    """Fault injection was asked of a transport that talks to the real WhatsApp."""


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
    is_group: bool = False


class ConnectionEvents(Protocol):
    """What a connection reports; neonize's qr/pair/connected/disconnected/logged_out/message/receipt."""

    def on_qr(self, qr: str, expires_at: datetime) -> None: ...

    def on_connected(self, identity: Identity) -> None: ...

    def on_disconnected(self, reason: str, will_reconnect: bool) -> None: ...

    def on_logged_out(self, reason: str) -> None: ...

    def on_auth_changed(self, auth_data: bytes | None) -> None: ...

    def on_message(self, message: InboundMessage) -> None: ...

    def on_receipt(self, receipt: Receipt) -> None: ...


class Connection(ABC):
    """One session's WhatsApp client."""

    __slots__ = ()

    @abstractmethod
    async def connect(self) -> None:
        """Start connecting: resume with the saved identity, or show QR codes; outcomes arrive as events."""

    @abstractmethod
    async def send(self, to: str, content: MessageContent, whatsapp_id: str, message_id: UUID) -> str:
        """Hand one message to WhatsApp under `whatsapp_id`; returns the id WhatsApp used.

        `message_id` is the ZapHub id, for logs only.
        """

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
