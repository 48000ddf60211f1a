"""Machine-readable failure reasons, shared by host replies, `message.failed` events and dead letters."""

from enum import StrEnum


class FailureReason(StrEnum):
    # Transient: retried with backoff until attempts run out.
    NO_HOST = "no_host"
    SESSION_NOT_CONNECTED = "session_not_connected"
    TRANSPORT_ERROR = "transport_error"
    TIMEOUT = "timeout"
    # Permanent: fail at once.
    RECIPIENT_NOT_ON_WHATSAPP = "recipient_not_on_whatsapp"
    SESSION_LOGGED_OUT = "session_logged_out"
    SESSION_NOT_FOUND = "session_not_found"
    INVALID_PAYLOAD = "invalid_payload"
    UNSUPPORTED = "unsupported"
    GROUP_NOT_FOUND = "group_not_found"  # unknown group, or the account is not a member
    NOT_GROUP_ADMIN = "not_group_admin"  # the action needs the account to be a group admin
    MEDIA_URL_REFUSED = "media_url_refused"  # the egress policy refused the media URL at fetch time
    EDIT_WINDOW_EXPIRED = "edit_window_expired"  # the message is too old to edit
    # Terminal outcomes of the dispatcher itself.
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    MALFORMED_COMMAND = "malformed_command"
    UNKNOWN_COMMAND = "unknown_command"


TRANSIENT_REASONS: frozenset[FailureReason] = frozenset(
    {
        FailureReason.NO_HOST,
        FailureReason.SESSION_NOT_CONNECTED,
        FailureReason.TRANSPORT_ERROR,
        FailureReason.TIMEOUT,
    }
)


def is_transient(reason: FailureReason) -> bool:
    return reason in TRANSIENT_REASONS
