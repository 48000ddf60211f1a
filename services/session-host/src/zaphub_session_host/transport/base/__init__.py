"""The interfaces every transport implements, shaped after neonize/whatsmeow, and their named errors.

- connection.py: `Transport` (process-wide) opens one `Connection` per session: its lifecycle.
- events.py: what a connection reports (`ConnectionEvents`) and the values it carries.
- messages.py: `Messages`, the messaging capability of a connection.
- groups.py: `Groups`, creating and managing groups.
- contacts.py: `Contacts`, on-WhatsApp checks, profiles and the blocklist.
- presence.py: `Presence`, online/offline, typing in a chat and read marks.
- errors.py: the named errors of every transport.

Each capability is one module here and one module per transport (`transport/<name>/<capability>.py`).
"""

from zaphub_session_host.transport.base.connection import Connection, Transport
from zaphub_session_host.transport.base.contacts import Contacts
from zaphub_session_host.transport.base.errors import (
    AlreadyPaired,
    EditWindowExpired,
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
    ChatPresenceSeen,
    ChatUpdate,
    ConnectionEvents,
    GroupChange,
    Identity,
    InboundMessage,
    PresenceSeen,
    Receipt,
    ReceiptKind,
)
from zaphub_session_host.transport.base.groups import Groups
from zaphub_session_host.transport.base.history import HistoryBatch, HistoryMessage, HistorySync
from zaphub_session_host.transport.base.messages import Messages, check_edit_window
from zaphub_session_host.transport.base.presence import Presence, Unread

__all__ = [
    "AlreadyPaired",
    "ChatPresenceSeen",
    "ChatUpdate",
    "Connection",
    "ConnectionEvents",
    "Contacts",
    "EditWindowExpired",
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
    "PresenceSeen",
    "Receipt",
    "ReceiptKind",
    "RecipientNotOnWhatsApp",
    "SimulatorOnly",
    "TransientSendError",
    "Transport",
    "TransportError",
    "TransportUnavailable",
    "Unread",
    "Unsupported",
    "check_edit_window",
]
