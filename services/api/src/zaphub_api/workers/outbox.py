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

import nats.errors
from pydantic import TypeAdapter

from zaphub_api.commands import is_stream_full
from zaphub_api.domain_errors import CommandStreamFull
from zaphub_api.store.messages import Accepted, MessageStore
from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import MessageContent
from zaphub_runtime.bus import Bus

log = logging.getLogger(__name__)
CONTENT: TypeAdapter[MessageContent] = TypeAdapter(MessageContent)
ENVELOPE_ALLOWANCE = 4096  # bytes of a send command besides its content, with room to spare
MARK_INTERVAL = 0.2  # seconds between marks of published messages
POISON_DETAIL = "the stored message cannot be turned into a send command"


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
        self.poisoned = 0  # rows failed because their command could not be built

    @property
    def max_content_bytes(self) -> int:
        """Largest message content a send command can carry: the server's max payload less the rest."""
        return int(self._bus.nc.max_payload) - ENVELOPE_ALLOWANCE

    async def publish_send(self, tenant_id: UUID, accepted: Accepted) -> CommandStreamFull | None:
        """Publish the send command. A failure leaves it to the sweeper (the message is safe in
        Postgres, and its seq keeps the session's order); a full command stream is returned, for the
        caller to answer 503 instead of 202."""
        command = send_command(
            tenant_id, accepted.id, accepted.session_id, accepted.seq, accepted.chat, accepted.content
        )
        try:
            await self._bus.publish_command(
                subjects.send_command(tenant_id, accepted.session_id), command, str(accepted.id)
            )
        except Exception as exc:
            if is_stream_full(exc):
                log.warning("command stream full; message %s waits in the outbox", accepted.id)
                return CommandStreamFull(
                    f"The command stream is full. Message {accepted.id} is stored and will be sent once"
                    " there is room; do not send it again (repeat the request with the same"
                    " Idempotency-Key to see it)"
                )
            # Expected while NATS elects a leader: one line each, a traceback only for the unexpected.
            expected = isinstance(exc, (nats.errors.Error, TimeoutError))
            log.warning(
                "publish of %s failed (%s); the outbox sweeper will retry",
                accepted.id,
                exc.__class__.__name__,
                exc_info=not expected,
            )
            return None
        self._published.append(accepted.id)
        return None

    async def publish_sends(self, accepted: list[tuple[UUID, Accepted]]) -> list[CommandStreamFull | None]:
        """Publish many at once; JetStream receives them in list order (each publish is written to the
        connection before the next one starts), and their acks are awaited together."""
        return list(await asyncio.gather(*(self.publish_send(tenant_id, a) for tenant_id, a in accepted)))

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
        """Republish accepted messages older than the grace period that were never marked published.

        A row whose command cannot be built (a poison pill) is failed with a reason and counted, and
        the sweep goes on; a publish that fails stops the sweep (the bus is down or full: the next
        sweep retries, in order)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self._grace)
        rows = await self._messages.unpublished(cutoff, limit=500)
        republished: list[UUID] = []
        poisoned: list[UUID] = []
        try:
            for row in rows:
                try:
                    command = send_command(
                        row["tenant_id"],
                        row["id"],
                        row["session_id"],
                        row["seq"],
                        row["chat"],
                        json.loads(row["content"]),
                    )
                except Exception as exc:
                    log.error("outbox row %s cannot be published: %s", row["id"], type(exc).__name__)
                    poisoned.append(row["id"])
                    continue
                await self._bus.publish_command(
                    subjects.send_command(row["tenant_id"], row["session_id"]), command, str(row["id"])
                )
                republished.append(row["id"])
        finally:
            if poisoned:
                await self._messages.fail_unpublishable(poisoned, POISON_DETAIL)
                self.poisoned += len(poisoned)
            if republished:
                await self._messages.mark_published(republished)
                log.info("outbox republished", extra={"fields": {"count": len(republished)}})
        return len(republished)


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, or less if `stop` is set; whether it is."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
