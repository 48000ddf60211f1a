"""The named errors of every transport: what a transport could not do, mapped to failure reasons by
the host's handlers."""


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


class EditWindowExpired(InvalidContent):
    """An edit of a message older than WhatsApp's edit window (permanent)."""
