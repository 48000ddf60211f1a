"""Checks on media a client sends: the MIME allow-list of each type and the size cap."""

import base64
import binascii

from zaphub_api.domain_errors import InvalidField, PayloadTooLarge, UnsupportedMediaType

# What WhatsApp accepts per type; documents take any type that is not executable.
ALLOWED_MIME: dict[str, frozenset[str]] = {
    "image": frozenset({"image/jpeg", "image/png", "image/webp"}),
    # No image/gif: WhatsApp plays GIFs as mp4 with gif_playback; send the mp4 with `"gif": true`.
    "video": frozenset({"video/mp4", "video/3gpp"}),
    "audio": frozenset({"audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr", "audio/opus"}),
    "sticker": frozenset({"image/webp"}),
    "document": frozenset(
        {
            "application/pdf",
            "application/zip",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/octet-stream",
            "text/plain",
            "text/csv",
            "image/jpeg",
            "image/png",
            "audio/mpeg",
            "video/mp4",
        }
    ),
}


def check_mime(message_type: str, mimetype: str | None, field: str = "mimetype") -> None:
    allowed = ALLOWED_MIME.get(message_type)
    if allowed is None or mimetype is None:
        return
    if mimetype.split(";")[0].strip().lower() not in allowed:
        raise UnsupportedMediaType(
            field, f"{mimetype} is not allowed for {message_type}: {', '.join(sorted(allowed))}"
        )


def check_size(size: int, cap: int, field: str) -> None:
    if size > cap:
        raise PayloadTooLarge(field, f"{size} bytes is over the limit of {cap} bytes")


def decoded_size(data_base64: str) -> int:
    try:
        return len(base64.b64decode(data_base64, validate=True))
    except (binascii.Error, ValueError):
        raise InvalidField("data_base64", "is not valid base64") from None
