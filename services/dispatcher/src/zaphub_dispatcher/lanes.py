"""Per-session lanes: one session's commands run one at a time, in arrival order; sessions run side
by side. A lane holds at most `per_lane` commands so one busy session cannot take every slot."""

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

from nats.aio.msg import Msg

log = logging.getLogger(__name__)
Process = Callable[[Msg], Awaitable[None]]


class Lanes:
    def __init__(
        self, process: Process, max_in_flight: int, per_lane: int = 32, keepalive: float = 3.0
    ) -> None:
        self._process = process
        self._keepalive = keepalive
        self._ticker: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._per_lane = per_lane
        self._lanes: dict[Hashable, deque[Msg]] = {}
        self._held: set[int] = set()  # stream sequences in a lane, to drop a redelivered twin
        self._workers: set[asyncio.Task[None]] = set()

    async def submit(self, lane: Hashable, msg: Msg) -> None:
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._keep_alive())
        seq = msg.metadata.sequence.stream
        if seq in self._held:
            return  # the copy already in the lane will ack it
        current = self._lanes.get(lane)
        if current is not None and len(current) >= self._per_lane:
            await msg.nak(delay=0.5)
            return
        await self._slots.acquire()
        self._held.add(seq)
        # Looked up again: the lane may have finished while this waited for a slot.
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = deque()
            worker = asyncio.create_task(self._drain(lane, queue))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.append(msg)

    async def _drain(self, lane: Hashable, queue: deque[Msg]) -> None:
        try:
            while queue:
                msg = queue[0]
                try:
                    await self._process(msg)
                except Exception:
                    log.exception("unexpected error; the command will be redelivered")
                    await _nak_quietly(msg)
                finally:
                    queue.popleft()
                    self._held.discard(msg.metadata.sequence.stream)
                    self._slots.release()
        finally:
            self._lanes.pop(lane, None)

    async def _keep_alive(self) -> None:
        # Held commands may wait longer than the consumer's ack_wait behind a slow send; telling
        # JetStream they are in progress keeps them from being redelivered to another replica,
        # while a crashed replica's commands come back after one short ack_wait.
        while True:
            await asyncio.sleep(self._keepalive)
            for queue in list(self._lanes.values()):
                for msg in list(queue):
                    try:
                        await msg.in_progress()
                    except Exception:
                        log.debug("in_progress failed", exc_info=True)

    async def drain(self, timeout: float) -> None:
        """Wait for the commands already in lanes (on shutdown)."""
        if self._workers:
            await asyncio.wait(set(self._workers), timeout=timeout)
        if self._ticker is not None:
            self._ticker.cancel()


async def _nak_quietly(msg: Msg) -> None:
    try:
        await msg.nak(delay=1.0)
    except Exception:
        log.warning("could not nak; the command is redelivered after ack_wait")
