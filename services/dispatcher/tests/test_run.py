"""The dispatcher's `run` on a real NATS server: a start that fails half-way closes what it opened, a
failing stop step skips none of the others, and one failing message of a batch is redelivered alone."""

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from nats.aio.msg import Msg

from zaphub_contracts import streams, subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import TextContent
from zaphub_devstack.inprocess import eventually, listening, tasks_left
from zaphub_devstack.ports import free_port
from zaphub_dispatcher.app import run
from zaphub_dispatcher.lanes import Lanes
from zaphub_dispatcher.sends import PendingSend, SendPipeline
from zaphub_dispatcher.settings import DispatcherSettings
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode


@pytest.mark.parametrize("bucket", [streams.WEBHOOKS_BUCKET, streams.DISPATCH_BUCKET], ids=lambda b: b.name)
async def test_a_start_that_fails_half_way_closes_what_it_opened(
    nats_url: str, monkeypatch: pytest.MonkeyPatch, bucket: streams.BucketSpec
) -> None:
    """A bucket that cannot be opened fails the start; the metrics listener is closed and no task is left
    running: neither the NATS connection's nor the webhooks watch (when it was started before)."""
    kv = Bus.kv

    async def failing_kv(self: Bus, spec: streams.BucketSpec) -> object:
        if spec.name == bucket.name:
            raise ConnectionError(f"{spec.name} unavailable")
        return await kv(self, spec)

    monkeypatch.setattr(Bus, "kv", failing_kv)
    port = free_port()
    before = asyncio.all_tasks()
    with pytest.raises(ConnectionError, match=bucket.name):
        await run(DispatcherSettings(nats_url=nats_url, metrics_port=port), asyncio.Event())
    assert not await listening(port)
    assert await tasks_left(before) == []


async def test_a_failing_drain_step_does_not_skip_the_others(
    nats_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Lanes that fail to drain are logged, and the dispatcher still stops normally: the metrics listener
    is closed and no task is left running (the webhooks watch and the NATS connection are closed)."""

    async def failing_drain(self: Lanes[PendingSend], timeout: float) -> None:
        raise RuntimeError("drain failed")

    monkeypatch.setattr(Lanes, "drain", failing_drain)
    caplog.set_level(logging.INFO, logger="zaphub_dispatcher.app")
    port = free_port()
    before = asyncio.all_tasks()
    stop = asyncio.Event()
    dispatcher = asyncio.create_task(run(DispatcherSettings(nats_url=nats_url, metrics_port=port), stop))
    await eventually(lambda: "dispatcher running" in caplog.messages or dispatcher.done(), "the start")
    stop.set()
    await asyncio.wait_for(dispatcher, 30)  # returns: the failing steps do not fail the stop
    assert not await listening(port)
    assert await tasks_left(before) == []


async def test_a_message_that_fails_on_its_way_to_a_lane_is_redelivered_alone(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When one command of a fetched batch cannot be handed to its lane, only it comes back: the commands
    before it (already in a lane) and after it are each processed once, on their first delivery."""
    tenant, session = uuid.uuid4(), uuid.uuid4()
    processed: list[tuple[int, int]] = []  # (seq, delivery)
    prepare = SendPipeline.prepare

    async def prepare_failing_once(self: SendPipeline, msg: Msg) -> PendingSend | None:
        if SendMessage.model_validate_json(msg.data).seq == 2 and msg.metadata.num_delivered == 1:
            raise RuntimeError("could not read the order cursor")
        return await prepare(self, msg)

    async def process(self: SendPipeline, lane: Sequence[PendingSend]) -> tuple[list[PendingSend], None]:
        head = lane[0]
        processed.append((head.command.seq, head.msg.metadata.num_delivered or 0))
        await asyncio.sleep(0.2)  # a NAK of this command by the batch would arrive before the ack
        await head.msg.ack()
        return [head], None

    monkeypatch.setattr(SendPipeline, "prepare", prepare_failing_once)
    monkeypatch.setattr(SendPipeline, "process", process)
    bus = await Bus.connect(nats_url, name="test-publisher", source="/test")
    await bus.ensure_streams()
    for seq in (1, 2, 3):
        command = SendMessage(
            tenant_id=tenant,
            session_id=session,
            issued_at=datetime.now(UTC),
            message_id=uuid.uuid4(),
            seq=seq,
            to="5511999990000@s.whatsapp.net",
            content=TextContent(text=f"message {seq}"),
        )
        await bus.js.publish(subjects.send_command(tenant, session), encode(command))
    stop = asyncio.Event()
    dispatcher = asyncio.create_task(run(DispatcherSettings(nats_url=nats_url), stop))
    try:
        await eventually(lambda: len(processed) >= 3 or dispatcher.done(), "three commands processed", 15)
        await asyncio.sleep(1.5)  # time for a wrongly NAK'd command to come back
    finally:
        stop.set()
        await asyncio.wait_for(dispatcher, 30)
        await bus.close()
    assert sorted(processed) == [(1, 1), (2, 2), (3, 1)]
