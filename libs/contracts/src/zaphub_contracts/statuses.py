"""Lifecycle states shared by the REST API, the bus and the database."""

from enum import StrEnum


class SessionStatus(StrEnum):
    """Where a WhatsApp session stands; the state machine is documented in docs/sessions.md."""

    QUEUED = "queued"  # accepted, waiting for a host with room
    QR_PENDING = "qr_pending"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    LOGGED_OUT = "logged_out"
    FAILED = "failed"


class MessageStatus(StrEnum):
    QUEUED = "queued"
    RATE_LIMITED = "rate_limited"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    RECEIVED = "received"
    # In a message's history only: the message keeps its delivery status when it is edited or revoked.
    EDITED = "edited"
    REVOKED = "revoked"


# A receipt may arrive before the projector has seen `sent`; status only moves forward along this rank.
MESSAGE_STATUS_RANK: dict[MessageStatus, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.RATE_LIMITED: 1,
    MessageStatus.FAILED: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.READ: 5,
    MessageStatus.RECEIVED: 6,
}
