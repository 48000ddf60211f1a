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


class MediaUrlRefused(InvalidContent):
    """The egress policy refused the media URL (a non-public address, by name, redirect or DNS
    change): permanent, and the tenant is told only that it was refused."""


class MediaToolsMissing(InvalidContent):
    """The send needs ffmpeg/ffprobe (voice notes, sticker conversion) and they are not on the PATH:
    permanent on this host until the tools are installed."""


class AlreadyPaired(TransportError):
    """Pairing by phone number was asked of a session that already has an identity."""


class FaultsUnsupported(TransportError):
    """Fault injection was asked of a transport that talks to the real WhatsApp."""


class SimulatorOnly(TransportError):
    """A simulator feature (a simulated contact acting on the session) asked of a real transport."""


class GroupNotFound(TransportError):
    """The group is unknown, or the account is not (or no longer) in it; also a void invite code."""


class NotGroupAdmin(TransportError):
    """WhatsApp allows this change to group admins only (or to the group's creator)."""

    def __init__(self, permission: str, detail: str) -> None:
        super().__init__(detail)
        self.permission = permission


class Unsupported(TransportError):
    """The transport cannot do this at all (the library offers no call for it); permanent."""


class EditWindowExpired(InvalidContent):
    """An edit of a message older than WhatsApp's edit window (permanent)."""
