"""Named errors of the neonize transport and the one mapping from whatsmeow's error text to them.

whatsmeow reports failures as plain strings through neonize (`SendMessageError("...")`), so the
mapping reads the text; what it does not recognise is treated as transient.
"""

from zaphub_session_host.transport.base import (
    LoggedOut,
    NotConnected,
    RecipientNotOnWhatsApp,
    TransientSendError,
    TransportError,
)

_NOT_CONNECTED = ("websocket not connected", "not connected", "client is nil", "websocket disconnected")
_LOGGED_OUT = ("not logged in", "doesn't contain a device jid", "logged out", "device removed")
_NOT_ON_WHATSAPP = ("not on whatsapp", "no devices found", "item-not-found")


def map_send_error(text: str) -> TransportError:
    """The named error for a whatsmeow send failure message."""
    low = text.lower()
    if any(s in low for s in _LOGGED_OUT):
        return LoggedOut(text)
    if any(s in low for s in _NOT_CONNECTED):
        return NotConnected(text)
    if any(s in low for s in _NOT_ON_WHATSAPP):
        return RecipientNotOnWhatsApp(text)
    return TransientSendError(text)
