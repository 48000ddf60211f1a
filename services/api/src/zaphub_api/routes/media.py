"""Media route: the bytes of a message's media, streamed from the media store to the tenant owning it.

The API reads the same store the session-hosts write (`ZAPHUB_MEDIA_STORE`: the shared local
directory of the embedded stack, or the S3 bucket), so no bytes travel over NATS.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import Parameter

from zaphub_api.auth import provide_tenant_id
from zaphub_api.domain_errors import MediaExpired, MediaNotReady, MessageHasNoMedia
from zaphub_api.errors import problem_responses
from zaphub_api.settings import ApiSettings
from zaphub_api.store.messages import MessageStore
from zaphub_runtime.media_store import MediaStore, media_key

MEDIA_TYPES = {"image", "video", "audio", "document", "sticker"}
RETRY_AFTER = 2


def _filename(message_id: UUID, mimetype: str, given: str | None) -> str:
    if given:
        return given.replace('"', "").replace("\\", "")
    ext = mimetype.split("/", 1)[-1].split(";", 1)[0].split("+", 1)[0] or "bin"
    return f"{message_id}.{ext}"


class MediaController(Controller):
    path = "/api/v1/messages"
    tags = ["messages"]
    dependencies = {"tenant_id": Provide(provide_tenant_id)}

    @get(
        "/{message_id:uuid}/media",
        summary="The message's media: its bytes, with Content-Type and a filename",
        description="409 with `Retry-After` while the owning host has not stored it yet; 410 once it "
        "was swept after `ZAPHUB_MEDIA_RETENTION_DAYS`; 404 for a message without media, or another "
        "tenant's, or one ZapHub sent by URL (only inline media it sent is kept).",
        responses=problem_responses(409, 410),
        media_type="application/octet-stream",
    )
    async def media(
        self,
        tenant_id: NamedDependency[UUID],
        message_id: Annotated[UUID, Parameter(description="The message's id")],
        messages: NamedDependency[MessageStore],
        media_store: NamedDependency[MediaStore],
        settings: NamedDependency[ApiSettings],
    ) -> Response[bytes]:
        row = await messages.media_of(tenant_id, message_id)
        if row["type"] not in MEDIA_TYPES:
            raise MessageHasNoMedia(message_id)
        if row["media_stored_at"] is None:
            if row["sent_by_url"]:  # its host fetched it from the URL to send it and kept nothing
                raise MessageHasNoMedia(message_id)
            raise MediaNotReady(message_id, RETRY_AFTER)
        retention = timedelta(days=settings.media_retention_days)
        if row["media_stored_at"] + retention < datetime.now(UTC):
            raise MediaExpired(message_id)
        found = await media_store.get(media_key(tenant_id, row["session_id"], message_id))
        if found is None:
            raise MediaExpired(message_id)
        meta, data = found
        name = _filename(message_id, meta.mimetype, meta.filename)
        return Response(
            data,
            media_type=meta.mimetype,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Content-Length": str(len(data)),
                "X-Content-SHA256": meta.sha256,
                "Cache-Control": "private, max-age=3600",
            },
        )
