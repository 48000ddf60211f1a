"""Publishing of accepted commands, and the sweeper that republishes what a failed publish left behind.

An accepted message is stored first and published second; if the publish fails (NATS down, process
killed), the row keeps `published_at IS NULL` and the sweeper publishes it again. JetStream's dedup
window (keyed by the message id) and the host's handed-over log make a double publish harmless.
"""

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter

from zaphub_api.store.messages import Accepted, MessageStore
from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import MessageContent
from zaphub_runtime.bus import Bus

log = logging.getLogger(__name__)
CONTENT: TypeAdapter[MessageContent] = TypeAdapter(MessageContent)
ENVELOPE_ALLOWANCE = 4096  # bytes of a send command besides its content, with room to spare
MARK_INTERVAL = 0.2  # seconds between marks of published messages


def send_command(
    tenant_id: UUID, message_id: UUID, session_id: UUID, seq: int, chat: str, content: dict[str, Any]
) -> SendMessage:
    return SendMessage(
        tenant_id=tenant_id,
        session_id=session_id,
        issued_at=datetime.now(UTC),
        message_id=message_id,
        seq=seq,
        to=chat,
        content=CONTENT.validate_python(content),
    )


class Outbox:
    def __init__(self, bus: Bus, messages: MessageStore, sweep_interval: float, grace: float) -> None:
        self._bus = bus
        self._messages = messages
        self._sweep_interval = sweep_interval
        self._grace = grace
        self._published: list[UUID] = []

    @property
    def max_content_bytes(self) -> int:
        """Largest message content a send command can carry: the server's max payload less the rest."""
        return int(self._bus.nc.max_payload) - ENVELOPE_ALLOWANCE

    async def publish_send(self, tenant_id: UUID, accepted: Accepted) -> bool:
        """Publish the send command; False leaves it to the sweeper (the message is safe in Postgres)."""
        command = send_command(
            tenant_id, accepted.id, accepted.session_id, accepted.seq, accepted.chat, accepted.content
        )
        try:
            await self._bus.publish_command(
                subjects.send_command(tenant_id, accepted.session_id), command, str(accepted.id)
            )
        except Exception:
            log.warning("publish failed; the outbox sweeper will retry", exc_info=True)
            return False
        self._published.append(accepted.id)
        return True

    async def publish_sends(self, accepted: list[tuple[UUID, Accepted]]) -> None:
        """Publish many at once; JetStream receives them in list order (each publish is written to the
        connection before the next one starts), and their acks are awaited together."""
        await asyncio.gather(*(self.publish_send(tenant_id, a) for tenant_id, a in accepted))

    async def flush(self) -> None:
        """Mark what was published since the last flush; a failure leaves it to be republished."""
        batch, self._published = self._published, []
        if batch:
            try:
                await self._messages.mark_published(batch)
            except Exception:
                log.warning("could not mark %d messages published; they will be republished", len(batch))

    async def mark_loop(self, stop: asyncio.Event) -> None:
        """Flush every tick until `stop`: one UPDATE per tick instead of one per accepted message."""
        while not await _pause(stop, MARK_INTERVAL):
            await self.flush()

    async def sweep_loop(self, stop: asyncio.Event) -> None:
        """Sweep every `sweep_interval` until `stop`."""
        while not await _pause(stop, self._sweep_interval):
            try:
                await self.sweep()
            except Exception:
                log.warning("outbox sweep failed", exc_info=True)

    async def sweep(self) -> int:
        """Republish accepted messages older than the grace period that were never marked published."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self._grace)
        rows = await self._messages.unpublished(cutoff, limit=500)
        republished: list[UUID] = []
        for row in rows:
            command = send_command(
                row["tenant_id"],
                row["id"],
                row["session_id"],
                row["seq"],
                row["chat"],
                json.loads(row["content"]),
            )
            await self._bus.publish_command(
                subjects.send_command(row["tenant_id"], row["session_id"]), command, str(row["id"])
            )
            republished.append(row["id"])
        if republished:
            await self._messages.mark_published(republished)
            log.info("outbox republished", extra={"fields": {"count": len(republished)}})
        return len(republished)


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, or less if `stop` is set; whether it is."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
