"""The interfaces every transport implements, shaped after neonize/whatsmeow, and their named errors.

- connection.py: `Transport` (process-wide) opens one `Connection` per session: its lifecycle.
- events.py: what a connection reports (`ConnectionEvents`) and the values it carries.
- messages.py: `Messages`, the messaging capability of a connection.
- groups.py: `Groups`, creating and managing groups.
- errors.py: the named errors of every transport.

Each capability is one module here and one module per transport (`transport/<name>/<capability>.py`).
"""

from zaphub_session_host.transport.base.connection import Connection, Transport
from zaphub_session_host.transport.base.errors import (
    AlreadyPaired,
    FaultsUnsupported,
    GroupNotFound,
    InvalidContent,
    LoggedOut,
    MediaToolsMissing,
    MediaUrlRefused,
    NotConnected,
    NotGroupAdmin,
    RecipientNotOnWhatsApp,
    SimulatorOnly,
    TransientSendError,
    TransportError,
    TransportUnavailable,
    Unsupported,
)
from zaphub_session_host.transport.base.events import (
    ChatUpdate,
    ConnectionEvents,
    Edited,
    GroupChange,
    Identity,
    InboundMessage,
    Presence,
    Receipt,
    ReceiptKind,
    Revoked,
    Voted,
)
from zaphub_session_host.transport.base.groups import Groups
from zaphub_session_host.transport.base.history import HistoryBatch, HistoryMessage, HistorySync
from zaphub_session_host.transport.base.messages import Messages

__all__ = [
    "AlreadyPaired",
    "ChatUpdate",
    "Connection",
    "ConnectionEvents",
    "Edited",
    "FaultsUnsupported",
    "GroupChange",
    "GroupNotFound",
    "Groups",
    "HistoryBatch",
    "HistoryMessage",
    "HistorySync",
    "Identity",
    "InboundMessage",
    "InvalidContent",
    "LoggedOut",
    "MediaToolsMissing",
    "MediaUrlRefused",
    "Messages",
    "NotConnected",
    "NotGroupAdmin",
    "Presence",
    "Receipt",
    "ReceiptKind",
    "RecipientNotOnWhatsApp",
    "Revoked",
    "SimulatorOnly",
    "TransientSendError",
    "Transport",
    "TransportError",
    "TransportUnavailable",
    "Unsupported",
    "Voted",
]
