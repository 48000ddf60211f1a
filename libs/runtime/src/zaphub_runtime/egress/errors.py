"""The ways an outbound request can end badly, each with a reason that is safe to show the tenant.

A reason is one of the constants below and never an exception's text or a remote body: a tenant who
could read those could use ZapHub as a port scanner or read what an internal address answers.
"""

__all__ = [
    "BAD_REDIRECT",
    "CONNECTION_FAILED",
    "CREDENTIALS_IN_URL",
    "ENCODED_RESPONSE",
    "INVALID_URL",
    "NOT_ALLOWED",
    "PORT_NOT_ALLOWED",
    "SCHEME_NOT_ALLOWED",
    "TIMED_OUT",
    "TOO_LARGE",
    "TOO_MANY_REDIRECTS",
    "UNEXPECTED_TYPE",
    "UNRESOLVED",
    "EgressError",
    "EgressFailed",
    "EgressRefused",
    "EgressTimeout",
    "EgressTooLarge",
]

INVALID_URL = "the URL is not valid"
SCHEME_NOT_ALLOWED = "only http and https URLs are allowed"
CREDENTIALS_IN_URL = "the URL must not contain credentials"
PORT_NOT_ALLOWED = "the port is not allowed"
NOT_ALLOWED = "the address is not allowed"
UNRESOLVED = "the host could not be resolved"
TIMED_OUT = "the request took too long"
TOO_LARGE = "the response is too large"
CONNECTION_FAILED = "the connection failed"
TOO_MANY_REDIRECTS = "too many redirects"
BAD_REDIRECT = "the redirect is not valid"
ENCODED_RESPONSE = "the response is compressed although identity was asked for"
UNEXPECTED_TYPE = "the response is not of an accepted type"


class EgressError(Exception):
    """Base of the egress errors; `reason` (also `str(error)`) is generic and tenant-safe."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EgressRefused(EgressError):
    """The policy refused the URL or one of the addresses its host resolves to; nothing was sent."""


class EgressTimeout(EgressError):
    """The whole request, body included, did not finish within its deadline."""

    def __init__(self, reason: str = TIMED_OUT) -> None:
        super().__init__(reason)


class EgressTooLarge(EgressError):
    """The response body is longer than the byte cap (declared or streamed)."""

    def __init__(self, reason: str = TOO_LARGE) -> None:
        super().__init__(reason)


class EgressFailed(EgressError):
    """The connection could not be made or broke, TLS failed, or the answer could not be used."""

    def __init__(self, reason: str = CONNECTION_FAILED) -> None:
        super().__init__(reason)
