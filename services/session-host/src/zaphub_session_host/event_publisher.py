"""Publishes contract events from one background task, in the order they were emitted.

Transport callbacks are synchronous; they hand events here and return. When a publish fails (NATS
away or not answering in time), that event and every later one go to the durable spool (spool.py)
before anything else is tried, and the spool is replayed in order once NATS answers; event ids are
deduplicated by JetStream, so a replay never doubles an event. While the spool is full the host is
told to stop taking from WhatsApp (`on_full`), and to start again once it has drained (`on_drained`).
"""

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from zaphub_contracts.events import EventBase
from zaphub_runtime.bus import Bus
from zaphub_session_host.background import BackgroundWriter
from zaphub_session_host.spool import Spool

log = logging.getLogger(__name__)

BATCH = 256
RETRY_AFTER = 0.5
PUBLISH_TIMEOUT = 5.0
Hook = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


class EventPublisher(BackgroundWriter):
    """`emit` queues an event and returns; one task publishes the queue in order, through the spool
    whenever NATS does not take them."""

    def __init__(self, bus: Bus, spool: Spool, on_full: Hook = _nothing, on_drained: Hook = _nothing) -> None:
        super().__init__("event-publisher")
        self.bus = bus
        self.spool = spool
        self._on_full = on_full
        self._on_drained = on_drained
        self._paused = False
        self._queue: deque[EventBase] = deque()
        self.published = 0

    def start(self) -> None:
        super().start()
        if len(self.spool):
            self._kick()  # an earlier run's events go first

    async def close(self, timeout: float) -> None:
        await super().close(timeout)
        if self._queue:  # NATS is away at shutdown: what is still in memory goes to disk
            await self.spool.append(list(self._queue))
            self._queue.clear()

    def emit(self, event: EventBase) -> None:
        self._queue.append(event)
        self._kick()

    def _left(self) -> int:
        return len(self._queue) + len(self.spool)

    async def _drain(self) -> None:
        while self._queue or len(self.spool):
            if len(self.spool):
                await self._spool_queue()
                if not await self._replay():
                    await asyncio.sleep(RETRY_AFTER)
                continue
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            done = await self._publish(batch)
            if done < len(batch):
                log.warning("event publish failed; spooling", extra={"fields": {"count": len(batch) - done}})
                # From the first failure on, in order: the later ones may have been stored, and the
                # replay's repeats are dropped by their ids.
                await self.spool.append(batch[done:])
                await self._spool_queue()
                await asyncio.sleep(RETRY_AFTER)

    async def _publish(self, batch: list[EventBase]) -> int:
        """Publish `batch` in order (started on one connection, stored in order); how many of its
        first events are known stored."""
        results = await asyncio.gather(
            *(self.bus.publish_event(e, timeout=PUBLISH_TIMEOUT) for e in batch), return_exceptions=True
        )
        done = next((i for i, r in enumerate(results) if isinstance(r, BaseException)), len(batch))
        self.published += done
        return done

    async def _spool_queue(self) -> None:
        """While the spool holds events, new ones go behind them on disk."""
        events = list(self._queue)
        self._queue.clear()
        await self.spool.append(events)
        if self.spool.full and not self._paused:
            self._paused = True
            log.error(
                "event spool full: taking nothing more from WhatsApp until NATS is back",
                extra={"fields": {"bytes": self.spool.size, "events": len(self.spool)}},
            )
            await self._on_full()

    async def _replay(self) -> bool:
        """Publish the spool's oldest events; False when NATS did not take them."""
        batch = self.spool.peek(BATCH)
        done = await self._publish(batch)
        await self.spool.commit(done)
        if not len(self.spool) and self._paused:
            self._paused = False
            log.info("event spool drained: taking from WhatsApp again")
            await self._on_drained()
        return done == len(batch)
