"""The consumer loop owns failure: a handler that raises, or an ack that fails, never ends it."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from nats.aio.msg import Msg
from nats.js import api as js_api

from zaphub_contracts import streams
from zaphub_contracts.deadletters import DeadLetter
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.streams import ConsumerSpec
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import (
    GIVEN_UP,
    HANDLER_ERRORS,
    MAX_DELIVERIES,
    each_message,
    run_pull_consumer,
)

STREAM = "TEST_CONSUMER"


@pytest_asyncio.fixture(loop_scope="session")
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, name="test-consumer", source="/test")
    await bus.js.add_stream(js_api.StreamConfig(name=STREAM, subjects=["test.>"]))
    await bus.ensure_stream(streams.DLQ)
    yield bus
    await bus.close()


def _spec() -> ConsumerSpec:
    return ConsumerSpec(
        stream=STREAM,
        durable=f"c{uuid.uuid4().hex[:8]}",
        filter_subject="test.>",
        ack_wait=30,
        max_ack_pending=100,
        description="test",
    )


async def _publish(bus: Bus, *bodies: bytes) -> None:
    for data in bodies:
        await bus.js.publish("test.x", data)


async def _until(check: asyncio.Event, timeout: float = 10.0) -> None:
    await asyncio.wait_for(check.wait(), timeout)


async def test_a_handler_that_raises_does_not_end_the_loop_and_its_batch_comes_back(bus: Bus) -> None:
    """The batch whose handler raised is NAK'd, delivered again and handled; the loop goes on."""
    spec = _spec()
    seen: list[bytes] = []
    raised = 0
    done = asyncio.Event()

    async def handle(msgs: list[Msg]) -> None:
        nonlocal raised
        if raised == 0:
            raised += 1
            raise RuntimeError("projector bug")
        for msg in msgs:
            seen.append(msg.data)
            await msg.ack()
        if b"later" in seen and b"first" in seen:
            done.set()

    before = HANDLER_ERRORS.labels(spec.durable)._value.get()
    stop = asyncio.Event()
    await _publish(bus, b"first")
    loop = asyncio.create_task(run_pull_consumer(bus, spec, handle, stop, wait=0.2))
    await asyncio.sleep(0.5)
    await _publish(bus, b"later")
    await _until(done)
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert raised == 1 and seen.count(b"first") == 1 and b"later" in seen
    assert HANDLER_ERRORS.labels(spec.durable)._value.get() == before + 1


async def test_an_ack_that_fails_is_contained_to_its_message(bus: Bus) -> None:
    """With per-message guarding, a failing ack NAKs only that message; the others are acked once."""
    spec = _spec()
    acked: list[bytes] = []
    failures = {b"b": 1}
    done = asyncio.Event()

    async def handle_one(msg: Msg) -> None:
        if failures.get(msg.data):
            failures[msg.data] -= 1
            raise ConnectionResetError("ack lost in a NATS hiccup")
        await msg.ack()
        acked.append(msg.data)
        if sorted(acked) == [b"a", b"b", b"c"]:
            done.set()

    stop = asyncio.Event()
    await _publish(bus, b"a", b"b", b"c")
    handle = each_message(bus, spec.durable, handle_one)
    loop = asyncio.create_task(run_pull_consumer(bus, spec, handle, stop))
    await _until(done)
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert sorted(acked) == [b"a", b"b", b"c"]


@pytest.mark.parametrize("raiser", [KeyError, ValueError])
async def test_the_loop_keeps_fetching_after_any_exception_type(bus: Bus, raiser: type[Exception]) -> None:
    """Whatever the handler raises, the loop task stays alive."""
    spec = _spec()
    calls = 0

    async def handle(msgs: list[Msg]) -> None:
        nonlocal calls
        calls += 1
        raise raiser("boom")

    stop = asyncio.Event()
    await _publish(bus, b"x")
    loop = asyncio.create_task(run_pull_consumer(bus, spec, handle, stop, wait=0.2))
    await asyncio.sleep(2.5)  # the NAK delay is 1 s: at least two deliveries
    assert not loop.done() and calls >= 2
    stop.set()
    await asyncio.wait_for(loop, 5)


async def _letters(bus: Bus) -> list[DeadLetter]:
    info = await bus.js.stream_info(streams.DLQ.name)
    return [
        DeadLetter.model_validate_json((await bus.js.get_msg(streams.DLQ.name, seq)).data or b"")
        for seq in range(1, info.state.last_seq + 1)
    ]


async def _a_letter(bus: Bus, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.2)):
        if await _letters(bus):
            return
        await asyncio.sleep(0.2)


async def test_a_message_its_handler_always_raises_on_is_dead_lettered_and_its_batch_mates_go_through(
    bus: Bus,
) -> None:
    """Only the poison message is held back (the batch is retried one at a time), and after
    `MAX_DELIVERIES` it is dead-lettered with attempts_exhausted and acked; the loop goes on."""
    spec = _spec()
    handled: list[bytes] = []
    tries = 0
    done = asyncio.Event()

    async def handle(msgs: list[Msg]) -> None:
        nonlocal tries
        for msg in msgs:
            if msg.data == b"poison":
                tries += 1
                raise KeyError("a projector bug meeting this event")
            handled.append(msg.data)
            await msg.ack()
            if msg.data == b"after":
                done.set()

    before = GIVEN_UP.labels(spec.durable)._value.get()
    stop = asyncio.Event()
    await _publish(bus, b"good-1", b"poison", b"good-2")
    loop = asyncio.create_task(run_pull_consumer(bus, spec, handle, stop, wait=0.2))
    await _a_letter(bus)
    await _publish(bus, b"after")
    await _until(done)
    stop.set()
    await asyncio.wait_for(loop, 5)

    assert sorted(handled) == [b"after", b"good-1", b"good-2"]
    [letter] = await _letters(bus)
    assert letter.reason is FailureReason.ATTEMPTS_EXHAUSTED
    assert letter.payload == "poison" and letter.attempts == MAX_DELIVERIES
    assert tries == MAX_DELIVERIES + 1  # its first delivery was tried in its batch, then alone
    assert letter.component == spec.durable and "KeyError" in letter.detail
    assert GIVEN_UP.labels(spec.durable)._value.get() == before + 1
    pending = await bus.js.consumer_info(STREAM, spec.durable)
    assert pending.num_ack_pending == 0 and pending.num_pending == 0


async def test_an_ack_that_raises_is_counted_and_its_message_delivered_again(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nats-py's ack raising (a NATS hiccup) is not the message's fault: the loop survives, counts it,
    NAKs, and the redelivered message is handled and acked; nothing is dead-lettered."""
    spec = _spec()
    real_ack = Msg.ack
    failed_acks = 0
    deliveries: list[int] = []
    done = asyncio.Event()

    async def flaky_ack(msg: Msg) -> None:
        nonlocal failed_acks
        if msg.data == b"flaky" and failed_acks == 0:
            failed_acks += 1
            raise ConnectionResetError("ack lost in a NATS hiccup")
        await real_ack(msg)

    monkeypatch.setattr(Msg, "ack", flaky_ack)

    async def handle(msgs: list[Msg]) -> None:
        for msg in msgs:
            deliveries.append(msg.metadata.num_delivered)
            await msg.ack()
            if msg.metadata.num_delivered > 1:
                done.set()

    before = HANDLER_ERRORS.labels(spec.durable)._value.get()
    stop = asyncio.Event()
    await _publish(bus, b"flaky")
    loop = asyncio.create_task(run_pull_consumer(bus, spec, handle, stop, wait=0.2))
    await _until(done)
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert failed_acks == 1 and deliveries == [1, 2]
    assert HANDLER_ERRORS.labels(spec.durable)._value.get() == before + 1
    assert (await bus.js.consumer_info(STREAM, spec.durable)).num_ack_pending == 0
    assert await _letters(bus) == []


async def test_a_dead_letter_that_fails_leaves_the_message_to_come_again(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When dead-lettering a poison message fails, it is NAK'd rather than lost, and dead-lettered at
    its next delivery."""
    spec = _spec()
    real_dead_letter = Bus.dead_letter
    refused = 0

    async def flaky_dead_letter(self: Bus, *args: object, **kwargs: object) -> None:
        nonlocal refused
        if refused == 0:
            refused += 1
            raise TimeoutError("JetStream did not answer")
        await real_dead_letter(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Bus, "dead_letter", flaky_dead_letter)

    async def handle(msgs: list[Msg]) -> None:
        raise RuntimeError("always")

    stop = asyncio.Event()
    await _publish(bus, b"poison")
    loop = asyncio.create_task(run_pull_consumer(bus, spec, handle, stop, wait=0.2))
    await _a_letter(bus)
    stop.set()
    await asyncio.wait_for(loop, 5)
    [letter] = await _letters(bus)
    assert refused == 1 and letter.attempts == MAX_DELIVERIES + 1
