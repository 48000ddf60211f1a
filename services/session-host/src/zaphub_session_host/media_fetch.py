"""Fetching a send's media by URL, shared by every transport (WhatsApp's client downloads the media
it uploads, and so does the simulator): through the egress policy (zaphub_runtime.egress), only
public addresses (or the operator's `ZAPHUB_EGRESS_ALLOW`), each redirect checked again, a total
deadline and a byte cap (`ZAPHUB_MEDIA_MAX_BYTES`). What a failure says is generic: never a remote
body, a status code or an exception text, so a tenant cannot use sends to scan or read internal
services."""

from dataclasses import dataclass

from zaphub_runtime.egress import (
    EgressClient,
    EgressFailed,
    EgressRefused,
    EgressTimeout,
    EgressTooLarge,
)
from zaphub_session_host.transport.base import InvalidContent, MediaUrlRefused, TransientSendError

MAX_MEDIA_BYTES = 16 * 1024 * 1024  # ZAPHUB_MEDIA_MAX_BYTES's default
FETCH_TIMEOUT = 60.0  # the whole download, redirects and body included
FETCH_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class MediaBytes:
    data: bytes
    mimetype: str


async def fetch(url: str, http: EgressClient, max_bytes: int = MAX_MEDIA_BYTES) -> MediaBytes:
    """Download `url` through the egress policy. Refused: MediaUrlRefused; oversize or an answer that
    is not 2xx: InvalidContent; timeouts, connection trouble, 429 and 5xx: transient. Every message is
    generic (the tenant must not learn what an address answered, or whether a port is open)."""
    try:
        got = await http.fetch(
            url, max_bytes=max_bytes, deadline=FETCH_TIMEOUT, follow_redirects=FETCH_REDIRECTS
        )
    except EgressRefused as exc:
        raise MediaUrlRefused(f"media URL refused: {exc.reason}") from None
    except EgressTooLarge:
        raise InvalidContent(f"media is more than the {max_bytes} bytes allowed") from None
    except (EgressTimeout, EgressFailed) as exc:
        raise TransientSendError(f"media download failed: {exc.reason}") from None
    if got.status >= 500 or got.status == 429:
        raise TransientSendError("media download failed: the media server is not answering")
    if not 200 <= got.status < 300:
        raise InvalidContent("media URL did not answer with the media")
    return MediaBytes(got.body, got.content_type)
