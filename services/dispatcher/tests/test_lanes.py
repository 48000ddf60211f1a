"""Per-session lanes, holding real JetStream messages: the order a lane's commands are handed over in,
the bounds on what is held, what goes back to JetStream (and for how long) when a lane is full, the
"look again" wait, keep-alives, and drain."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import nats
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from zaphub_dispatcher.lanes import OVERFLOW_MAX_DELAY, OVERFLOW_MIN_DELAY, Lanes

from .conftest import Wire, eventually

EARLY = 0.01  # seconds a timer may seem early by


@dataclass(eq=False)
class Item:
    """A held command: a message and its place in its lane's order."""

    msg: Msg
    order: int


@dataclass
class Processor:
    """A lane's processor: records the orders it is handed, waits where told to, and is done with
    everything it was handed unless told to keep the head waiting (`look_again`) or to fail."""

    calls: list[tuple[list[int], float]] = field(default_factory=list)  # orders, time.monotonic()
    holds: dict[int, asyncio.Event] = field(default_factory=dict)
    look_again: dict[int, float] = field(default_factory=dict)  # head order -> seconds, once
    fail: set[int] = field(default_factory=set)
    running: int = 0
    most_running: int = 0

    def hold(self, *orders: int) -> None:
        for order in orders:
            self.holds[order] = asyncio.Event()

    def release(self, *orders: int) -> None:
        for order in orders or tuple(self.holds):
            self.holds[order].set()

    @property
    def orders(self) -> list[list[int]]:
        return [orders for orders, _ in self.calls]

    async def __call__(self, batch: Sequence[Item]) -> tuple[Sequence[Item], float | None]:
        head = batch[0].order
        self.calls.append(([item.order for item in batch], time.monotonic()))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if head in self.holds:
                await self.holds[head].wait()
            if head in self.fail:
                raise RuntimeError("the processor broke")
            if (seconds := self.look_again.pop(head, None)) is not None:
                return [], seconds
            return batch, None
        finally:
            self.running -= 1


class Stream:
    """A stream of this test's own; `items` publishes and fetches messages to hold."""

    def __init__(self, js: JetStreamContext, wire: Wire) -> None:
        self.js = js
        self.wire = wire
        self.subject = f"lanes.{wire.stream}"
        self._sub: JetStreamContext.PullSubscription | None = None

    async def items(self, *orders: int) -> list[Item]:
        for _ in orders:
            await self.js.publish(self.subject, b"command")
        if self._sub is None:
            self._sub = await self.js.pull_subscribe(self.subject, durable="lanes", stream=self.wire.stream)
        msgs: list[Msg] = []
        while len(msgs) < len(orders):
            msgs += await self._sub.fetch(len(orders) - len(msgs), timeout=5)
        return [Item(msg, order) for msg, order in zip(msgs, orders, strict=True)]

    def naks(self, item: Item) -> list[float | None]:
        """The delays of the NAKs `item` got."""
        return [v.delay for v in self.wire.of(item.msg.metadata.sequence.stream, "nak")]


@pytest.fixture
async def stream(nats_url: str) -> AsyncIterator[Stream]:
    nc = await nats.connect(nats_url)
    name = f"LANES_{uuid4().hex[:12]}"
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[f"lanes.{name}"], retention="workqueue")
    wire = Wire(name)
    await wire.listen(nc)
    yield Stream(js, wire)
    await nc.close()


MakeLanes = Callable[..., tuple[Lanes[Item], Processor]]


@pytest.fixture
async def make_lanes() -> AsyncIterator[MakeLanes]:
    """Lanes over a fresh Processor; at the end every hold is released and the lanes drained."""
    made: list[tuple[Lanes[Item], Processor]] = []

    def make(max_in_flight: int = 8, **options: Any) -> tuple[Lanes[Item], Processor]:
        processor = Processor()
        lanes: Lanes[Item] = Lanes(processor, max_in_flight, **options)
        made.append((lanes, processor))
        return lanes, processor

    yield make
    for lanes, processor in made:
        processor.release()
        await lanes.drain(timeout=5)


async def test_a_lanes_commands_go_one_at_a_time_lowest_order_first(
    stream: Stream, make_lanes: MakeLanes
) -> None:
    """Commands that arrive while their lane is busy wait, and are handed over lowest order first,
    never two of one lane at once."""
    lanes, processor = make_lanes()
    three, two, one, five = await stream.items(3, 2, 1, 5)
    processor.hold(3)
    await lanes.submit("a", three)
    await eventually(lambda: processor.calls, "3 handed over")
    for item in (two, one, five):
        await lanes.submit("a", item)
    processor.release(3)

    await eventually(lambda: len(processor.calls) == 4, "all four handed over")
    assert processor.orders == [[3], [1], [2], [5]]
    assert processor.most_running == 1


async def test_lanes_are_served_side_by_side(stream: Stream, make_lanes: MakeLanes) -> None:
    """A lane whose command takes long does not hold back another lane."""
    lanes, processor = make_lanes()
    slow, quick = await stream.items(1, 2)
    processor.hold(1)
    await lanes.submit("a", slow)
    await lanes.submit("b", quick)

    await eventually(lambda: [2] in processor.orders and processor.running == 1, "lane b served, a busy")


async def test_at_most_max_in_flight_commands_are_held(stream: Stream, make_lanes: MakeLanes) -> None:
    """With every slot taken, submitting waits until a held command is done."""
    lanes, processor = make_lanes(max_in_flight=2)
    first, second, third = await stream.items(1, 2, 3)
    processor.hold(1, 2)
    await lanes.submit("a", first)
    await lanes.submit("b", second)
    waiting = asyncio.create_task(lanes.submit("c", third))
    await eventually(lambda: len(processor.calls) == 2, "two handed over")
    await asyncio.sleep(0.05)  # a chance to go wrong: it may not take a slot held by 1 or 2
    assert not waiting.done()

    processor.release(1)
    await asyncio.wait_for(waiting, 5)
    await eventually(lambda: [3] in processor.orders, "the third handed over")


async def test_one_tenant_holds_at_most_its_share_of_the_slots(stream: Stream, make_lanes: MakeLanes) -> None:
    """A tenant whose commands are stuck (no host for its sessions) holds `per_tenant` slots; its next
    command goes back to JetStream for a second or two instead of waiting for a slot, and another
    tenant's command is handed over at once."""
    tenants = {1: "noisy", 2: "noisy", 3: "noisy", 4: "quiet"}
    lanes, processor = make_lanes(max_in_flight=3, per_tenant=2, tenant_of=lambda item: tenants[item.order])
    first, second, third, quiet = await stream.items(1, 2, 3, 4)
    processor.hold(1, 2)
    await lanes.submit("noisy-a", first)
    await lanes.submit("noisy-b", second)
    await asyncio.wait_for(lanes.submit("noisy-c", third), 1)  # sent back, not waiting for a slot
    await eventually(lambda: stream.naks(third), "the third sent back")
    assert all(d is not None and 1.0 - EARLY <= d <= 2.0 for d in stream.naks(third))
    await asyncio.wait_for(lanes.submit("quiet-a", quiet), 1)
    await eventually(lambda: [4] in processor.orders, "the other tenant's command handed over")
    assert [3] not in processor.orders

    processor.release(1)  # a slot of the noisy tenant's own frees: its next command is taken again
    await eventually(lambda: len(processor.calls) == 3, "the noisy tenant's first done")
    (fourth,) = await stream.items(3)
    tenants[3] = "noisy"
    await asyncio.wait_for(lanes.submit("noisy-c", fourth), 1)
    await eventually(lambda: processor.orders.count([3]) == 1, "taken once the tenant is under its share")


async def test_a_full_lane_sends_a_later_command_back_and_an_earlier_one_takes_the_last_place(
    stream: Stream, make_lanes: MakeLanes
) -> None:
    """A lane holding its limit NAKs a newcomer that would be last; a newcomer earlier than its last
    command takes that one's place, and the last goes back instead; both for a bounded while."""
    lanes, processor = make_lanes(per_lane=2)
    ten, twelve, fourteen, eleven = await stream.items(10, 12, 14, 11)
    processor.hold(10)
    await lanes.submit("a", ten)
    await eventually(lambda: processor.calls, "10 handed over")
    await lanes.submit("a", twelve)
    await lanes.submit("a", fourteen)
    await lanes.submit("a", eleven)
    processor.release(10)

    await eventually(lambda: len(processor.calls) == 2, "the lane drained")
    await eventually(lambda: stream.naks(twelve) and stream.naks(fourteen), "both sent back")
    assert processor.orders == [[10], [11]]
    for item in (twelve, fourteen):
        (delay,) = stream.naks(item)
        assert delay is not None and OVERFLOW_MIN_DELAY <= delay <= OVERFLOW_MAX_DELAY
    assert stream.naks(ten) == [] and stream.naks(eleven) == []


async def test_a_full_lane_whose_last_command_is_running_sends_the_newcomer_back(
    stream: Stream, make_lanes: MakeLanes
) -> None:
    """A command being processed is never evicted: an earlier newcomer goes back instead."""
    lanes, processor = make_lanes(per_lane=2, run=2)
    ten, twelve, eleven = await stream.items(10, 12, 11)
    processor.hold(10)
    await lanes.submit("a", ten)
    await lanes.submit("a", twelve)
    await eventually(lambda: processor.calls, "the run handed over")
    assert processor.orders == [[10, 12]]
    await lanes.submit("a", eleven)
    processor.release(10)

    await eventually(lambda: stream.naks(eleven), "11 sent back")
    assert processor.orders == [[10, 12]]
    assert stream.naks(twelve) == []


async def test_a_waiting_head_looks_again_as_soon_as_an_earlier_command_arrives(
    stream: Stream, make_lanes: MakeLanes
) -> None:
    """A head kept waiting for 5 s is looked at again right after an earlier command reaches its lane,
    which goes first."""
    lanes, processor = make_lanes()
    twenty, nineteen = await stream.items(20, 19)
    processor.look_again[20] = 5.0
    await lanes.submit("a", twenty)
    await eventually(lambda: processor.calls, "20 handed over")
    arrived = time.monotonic()
    await lanes.submit("a", nineteen)

    await eventually(lambda: len(processor.calls) == 3, "20 looked at again")
    assert processor.orders == [[20], [19], [20]]
    assert processor.calls[-1][1] - arrived < 2.5
    assert stream.naks(twenty) == []


async def test_a_waiting_head_looks_again_after_the_time_it_asked_for(
    stream: Stream, make_lanes: MakeLanes
) -> None:
    """With nothing arriving, a head kept waiting is handed over again once its wait is up."""
    lanes, processor = make_lanes()
    (head,) = await stream.items(7)
    processor.look_again[7] = 0.2
    await lanes.submit("a", head)

    await eventually(lambda: len(processor.calls) == 2, "7 looked at again")
    (_, first), (_, again) = processor.calls
    assert again - first >= 0.2 - EARLY


async def test_a_twin_of_a_held_command_is_dropped(stream: Stream, make_lanes: MakeLanes) -> None:
    """A redelivered copy of a command already in its lane (same stream sequence) is not held twice."""
    lanes, processor = make_lanes()
    first, second = await stream.items(1, 2)
    processor.hold(1)
    await lanes.submit("a", first)
    await lanes.submit("a", second)
    await lanes.submit("a", Item(second.msg, second.order))
    processor.release(1)

    await eventually(lambda: len(processor.calls) == 2, "both handed over")
    await lanes.drain(timeout=5)
    assert processor.orders == [[1], [2]]


async def test_an_unexpected_error_sends_the_batch_back_and_the_lane_goes_on(
    stream: Stream, make_lanes: MakeLanes
) -> None:
    """A processor that raises: its commands are NAKed for redelivery, and the lane goes on."""
    lanes, processor = make_lanes()
    broken, next_one = await stream.items(1, 2)
    processor.fail.add(1)
    await lanes.submit("a", broken)
    await lanes.submit("a", next_one)

    await eventually(lambda: len(processor.calls) == 2, "the lane went on")
    await eventually(lambda: stream.naks(broken), "1 sent back")
    assert stream.naks(broken) == [1.0] and stream.naks(next_one) == []


async def test_held_commands_are_kept_in_progress_while_they_wait(
    stream: Stream, make_lanes: MakeLanes
) -> None:
    """Every command in a lane, running or waiting, is marked in progress so JetStream does not
    redeliver it to another replica after ack_wait."""
    lanes, processor = make_lanes(keepalive=0.05)
    running, waiting = await stream.items(1, 2)
    processor.hold(1)
    await lanes.submit("a", running)
    await lanes.submit("a", waiting)

    for item in (running, waiting):
        seq = item.msg.metadata.sequence.stream
        await eventually(lambda seq=seq: stream.wire.of(seq, "progress"), f"{item.order} in progress")


async def test_drain_waits_for_the_commands_in_lanes(stream: Stream, make_lanes: MakeLanes) -> None:
    """Drain returns once every held command is done."""
    lanes, processor = make_lanes()
    one, two, three = await stream.items(1, 2, 3)
    processor.hold(1)
    for lane, item in (("a", one), ("a", two), ("b", three)):
        await lanes.submit(lane, item)
    drained = asyncio.create_task(lanes.drain(timeout=5))
    await asyncio.sleep(0.05)  # a chance to go wrong: it may not return while 1 and 2 are held
    assert not drained.done()

    processor.release(1)
    await asyncio.wait_for(drained, 5)
    assert sorted(processor.orders) == [[1], [2], [3]]


async def test_drain_gives_up_after_its_timeout(stream: Stream, make_lanes: MakeLanes) -> None:
    """A command that never finishes holds drain up for its timeout, no longer."""
    lanes, processor = make_lanes()
    (stuck,) = await stream.items(1)
    processor.hold(1)
    await lanes.submit("a", stuck)
    started = time.monotonic()
    await lanes.drain(timeout=0.2)
    assert 0.2 - EARLY <= time.monotonic() - started < 2.0
