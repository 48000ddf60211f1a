"""Publishes contract events from one background task, in the order they were emitted.

Transport callbacks are synchronous; they hand events here and return. Publishing is retried (event
ids are deduplicated by JetStream, so a retry never doubles an event) until the event is stored.
"""

import asyncio
import logging
from collections import deque

from zaphub_contracts.events import EventBase
from zaphub_runtime.bus import Bus
from zaphub_session_host.background import BackgroundWriter

log = logging.getLogger(__name__)

BATCH = 256
RETRY_AFTER = 0.5


class EventPublisher(BackgroundWriter):
    """`emit` queues an event and returns; one task publishes the queue in order."""

    def __init__(self, bus: Bus) -> None:
        super().__init__("event-publisher")
        self.bus = bus
        self._queue: deque[EventBase] = deque()
        self.published = 0

    def emit(self, event: EventBase) -> None:
        self._queue.append(event)
        self._kick()

    def _left(self) -> int:
        return len(self._queue)

    async def _drain(self) -> None:
        while self._queue:
            batch = [self._queue[i] for i in range(min(BATCH, len(self._queue)))]
            # Started in order on one connection, so the server stores them in order.
            results = await asyncio.gather(
                *(self.bus.publish_event(e) for e in batch), return_exceptions=True
            )
            for _ in batch:
                self._queue.popleft()
            failed = [e for e, r in zip(batch, results, strict=True) if isinstance(r, BaseException)]
            self.published += len(batch) - len(failed)
            if failed:
                log.warning("event publish failed; retrying", extra={"fields": {"count": len(failed)}})
                self._queue.extendleft(reversed(failed))
                await asyncio.sleep(RETRY_AFTER)
