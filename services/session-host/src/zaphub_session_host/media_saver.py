"""Received media into the media store: the owning host keeps the bytes of each received media
message under `<tenant>/<session>/<message>` (`ZAPHUB_MEDIA_DOWNLOAD=eager`), up to
`ZAPHUB_MEDIA_MAX_BYTES`, then publishes `message.media_stored`; and a sweeper drops what is older than
`ZAPHUB_MEDIA_RETENTION_DAYS`.

The bytes come with the inbound message when the transport has them already (the simulator: what
the sending session sent, or bytes of its own); otherwise from the connection's `download` (neonize:
`download_any`). Media a session sends inline (`data_base64`) is kept the same way once it went out,
so the media route serves what ZapHub sent too; media sent by URL is not fetched a second time.
"""

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from zaphub_contracts.content import DocumentContent, MediaContent
from zaphub_runtime.media_store import MediaStore, StoredMedia, media_key
from zaphub_session_host.transport.base import InboundMessage

log = logging.getLogger(__name__)
SWEEP_EVERY = 3600.0

Stored = Callable[[UUID, str, StoredMedia], None]  # message id, WhatsApp id, what was stored
Download = Callable[[InboundMessage], Awaitable[bytes | None]]


class MediaSaver:
    def __init__(self, store: MediaStore, max_bytes: int, retention_days: float) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.retention = timedelta(days=retention_days)
        self._tasks: set[asyncio.Task[None]] = set()

    def save(
        self,
        tenant_id: UUID,
        session_id: UUID,
        message_id: UUID,
        message: InboundMessage,
        download: Download,
        stored: Stored,
    ) -> None:
        content = message.content
        if not isinstance(content, MediaContent):
            return
        if content.size is not None and content.size > self.max_bytes:
            log.info(
                "received media over ZAPHUB_MEDIA_MAX_BYTES not stored",
                extra={"fields": {"size": content.size}},
            )
            return

        async def run() -> None:
            try:
                data = message.media if message.media is not None else await download(message)
                if data is None or len(data) > self.max_bytes:
                    return
                filename = content.filename if isinstance(content, DocumentContent) else None
                key = media_key(tenant_id, session_id, message_id)
                meta = await self.store.put(key, data, content.mimetype, filename)
            except Exception:
                log.exception(
                    "received media could not be stored", extra={"fields": {"message_id": str(message_id)}}
                )
                return
            stored(message_id, message.whatsapp_id, meta)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def save_sent(
        self,
        tenant_id: UUID,
        session_id: UUID,
        message_id: UUID,
        whatsapp_id: str,
        content: MediaContent,
        stored: Stored,
    ) -> None:
        if content.data_base64 is None:
            return
        try:
            data = base64.b64decode(content.data_base64, validate=True)
        except (binascii.Error, ValueError):
            return
        if len(data) > self.max_bytes:
            return
        filename = content.filename if isinstance(content, DocumentContent) else None

        async def run() -> None:
            try:
                key = media_key(tenant_id, session_id, message_id)
                meta = await self.store.put(key, data, content.mimetype, filename)
            except Exception:
                log.exception(
                    "sent media could not be stored", extra={"fields": {"message_id": str(message_id)}}
                )
                return
            stored(message_id, whatsapp_id, meta)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sweep_until(self, stop: asyncio.Event) -> None:
        """Sweep now and every hour, until `stop` is set."""
        while not stop.is_set():
            with contextlib.suppress(Exception):
                gone = await self.store.sweep(datetime.now(UTC) - self.retention)
                if gone:
                    log.info("media swept", extra={"fields": {"objects": gone}})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SWEEP_EVERY)

    async def close(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
