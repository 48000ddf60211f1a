"""Per-session lanes: one session's commands are processed in turn, lowest `order` first, and sessions
side by side. A lane holds at most `per_lane` commands so one busy session cannot take every slot.
The processor is handed the lane's first `run` commands at once, so it can serve a run of them with one
round trip, and says which it is done with.

A command that arrives out of order (a redelivery, or a twin of the head fetched by another replica)
waits in its lane for the earlier one instead of going back to JetStream: each trip back would be
another delivery and another cursor read, and under a backlog those trips used to crowd out the sends.
A command that finds its lane full goes back for about as long as the commands ahead of it will take,
so a session's backlog is not fetched over and over while it drains.
"""

import asyncio
import bisect
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from nats.aio.msg import Msg

from zaphub_runtime.consumer import nak_quietly

log = logging.getLogger(__name__)
# Seconds a command that found its lane full waits in JetStream, at least and at most.
OVERFLOW_MIN_DELAY = 0.05
OVERFLOW_MAX_DELAY = 10.0
# Seconds (to twice that, spread) a command waits in JetStream when its tenant holds its share of slots.
TENANT_FULL_DELAY = 1.0
SERVICE_TIME_WEIGHT = 0.2  # of the newest command in a lane's moving average of service time


class Held(Protocol):
    @property
    def msg(self) -> Msg: ...

    @property
    def order(self) -> int: ...


T = TypeVar("T", bound=Held)
# Gets the lane's first commands, lowest order first. Returns those it is done with (acked or handed
# back) and, when it keeps the first of the rest waiting, seconds to look again: sooner if a command with
# a lower order reaches the lane. The commands it is not done with stay, in their place.
Process = Callable[[Sequence[T]], Awaitable[tuple[Sequence[T], float | None]]]


@dataclass(frozen=True)
class Arrival:
    """A command held in arrival order (its stream sequence)."""

    msg: Msg

    @property
    def order(self) -> int:
        return self.msg.metadata.sequence.stream


@dataclass(eq=False)
class _Lane(Generic[T]):
    items: list[T] = field(default_factory=list)  # sorted by order
    head_changed: asyncio.Event = field(default_factory=asyncio.Event)
    running: Sequence[T] = ()
    service_time: float = 0.01  # seconds a command takes here, moving average


class Lanes(Generic[T]):
    def __init__(
        self,
        process: Process[T],
        max_in_flight: int,
        per_lane: int = 32,
        run: int = 1,
        keepalive: float = 3.0,
        per_tenant: int | None = None,
        tenant_of: Callable[[T], Hashable] | None = None,
    ) -> None:
        self._process = process
        # At most `per_tenant` of the `max_in_flight` slots held by one tenant's commands: the rest
        # wait in JetStream, so one tenant's stuck commands cannot keep every other tenant's waiting.
        self._per_tenant = per_tenant
        self._tenant_of = tenant_of
        self._by_tenant: dict[Hashable, int] = {}
        self._run = run
        self._keepalive = keepalive
        self._ticker: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._per_lane = per_lane
        self._lanes: dict[Hashable, _Lane[T]] = {}
        self._held: set[int] = set()  # stream sequences in a lane, to drop a redelivered twin
        self._workers: set[asyncio.Task[None]] = set()

    async def submit(self, key: Hashable, item: T) -> None:
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._keep_alive())
        if _sequence(item) in self._held:
            return  # the copy already in the lane will ack it
        lane = self._lanes.get(key)
        if lane is not None and len(lane.items) >= self._per_lane:
            await self._overflow(lane, item)
            return
        tenant = self._tenant_of(item) if self._tenant_of is not None else None
        if tenant is not None and self._per_tenant is not None:
            if self._by_tenant.get(tenant, 0) >= self._per_tenant:
                await nak_quietly(item.msg, TENANT_FULL_DELAY * (1 + random.random()))
                return
            self._by_tenant[tenant] = self._by_tenant.get(tenant, 0) + 1  # taken before the wait
        await self._slots.acquire()
        # Looked up again: the lane may have finished while this waited for a slot.
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
            worker = asyncio.create_task(self._drain(key, lane))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        self._insert(lane, item)

    def _insert(self, lane: _Lane[T], item: T) -> None:
        self._held.add(_sequence(item))
        bisect.insort(lane.items, item, key=_order)
        if lane.items[0] is item:
            lane.head_changed.set()

    async def _overflow(self, lane: _Lane[T], item: T) -> None:
        # Keep the earliest commands: an earlier one is what the rest of the lane may be waiting for.
        last = lane.items[-1]
        if item.order >= last.order or any(last is running for running in lane.running):
            await nak_quietly(item.msg, _overflow_delay(lane, item))
            return
        lane.items.pop()
        self._held.discard(_sequence(last))
        self._insert(lane, item)  # takes over the evicted command's slot
        await nak_quietly(last.msg, _overflow_delay(lane, last))

    async def _drain(self, key: Hashable, lane: _Lane[T]) -> None:
        try:
            while lane.items:
                lane.running = batch = lane.items[: self._run]
                lane.head_changed.clear()
                started = time.monotonic()
                try:
                    done, look_again = await self._process(batch)
                except Exception:
                    log.exception("unexpected error; the commands will be redelivered")
                    for item in batch:  # a nak after an ack is ignored by the server
                        await nak_quietly(item.msg)
                    done, look_again = batch, None
                finally:
                    lane.running = ()
                if done:
                    took = (time.monotonic() - started) / len(done)
                    lane.service_time += SERVICE_TIME_WEIGHT * (took - lane.service_time)
                    for item in done:
                        lane.items.remove(item)
                        self._held.discard(_sequence(item))
                        self._slots.release()
                        self._release_tenant(item)
                if look_again is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lane.head_changed.wait(), look_again)
        finally:
            self._lanes.pop(key, None)

    def _release_tenant(self, item: T) -> None:
        if self._tenant_of is None or self._per_tenant is None:
            return
        tenant = self._tenant_of(item)
        left = self._by_tenant.get(tenant, 0) - 1
        if left > 0:
            self._by_tenant[tenant] = left
        else:
            self._by_tenant.pop(tenant, None)

    async def _keep_alive(self) -> None:
        # Held commands may wait longer than the consumer's ack_wait behind a slow send; telling
        # JetStream they are in progress keeps them from being redelivered to another replica,
        # while a crashed replica's commands come back after one short ack_wait.
        while True:
            await asyncio.sleep(self._keepalive)
            for lane in list(self._lanes.values()):
                for item in list(lane.items):
                    try:
                        await item.msg.in_progress()
                    except Exception:
                        log.debug("in_progress failed", exc_info=True)

    async def drain(self, timeout: float) -> None:
        """Wait for the commands already in lanes (on shutdown)."""
        if self._workers:
            await asyncio.wait(set(self._workers), timeout=timeout)
        if self._ticker is not None:
            self._ticker.cancel()


def _overflow_delay(lane: _Lane[T], item: T) -> float:
    """About when the lane will have drained the commands ahead of `item` (exact for sends, whose
    order is the session's seq; session commands are rare enough for the cap to cover them)."""
    ahead = max(item.order - lane.items[0].order, len(lane.items))
    return min(max(ahead * lane.service_time, OVERFLOW_MIN_DELAY), OVERFLOW_MAX_DELAY)


def _order(item: Held) -> int:
    return item.order


def _sequence(item: Held) -> int:
    return item.msg.metadata.sequence.stream
