"""The consumer loop owns failure: a handler that raises, or an ack that fails, never ends it."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from nats.aio.msg import Msg
from nats.js import api as js_api

from zaphub_contracts.streams import ConsumerSpec
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import HANDLER_ERRORS, each_message, run_pull_consumer

STREAM = "TEST_CONSUMER"


@pytest_asyncio.fixture(loop_scope="session")
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, name="test-consumer", source="/test")
    await bus.js.add_stream(js_api.StreamConfig(name=STREAM, subjects=["test.>"]))
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
    """The batch whose handler raised is NAK'd, delivered again and handled; later ones follow."""
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
    loop = asyncio.create_task(run_pull_consumer(bus, spec, each_message(spec.durable, handle_one), stop))
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
