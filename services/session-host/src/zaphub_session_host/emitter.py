"""Publishes contract events from one background task, in the order they were emitted.

Transport callbacks are synchronous; they hand events here and return. Publishing is retried (event
ids are deduplicated by JetStream, so a retry never doubles an event) until the event is stored.
"""

import asyncio
import logging
from collections import deque

from zaphub_contracts.events import EventBase
from zaphub_runtime.bus import Bus

log = logging.getLogger(__name__)

BATCH = 256
RETRY_AFTER = 0.5


class Emitter:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._queue: deque[EventBase] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-emitter")

    def emit(self, event: EventBase) -> None:
        self._queue.append(event)
        self._idle.clear()
        self._wake.set()

    async def flush(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
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
            self._idle.set()

    async def close(self, timeout: float) -> None:
        try:
            await self.flush(timeout)
        except TimeoutError:
            log.error("events left unpublished at shutdown", extra={"fields": {"count": len(self._queue)}})
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
