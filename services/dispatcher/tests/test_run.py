"""The dispatcher's `run` on a real NATS server: a start that fails half-way closes what it opened, a
failing stop step skips none of the others, and one failing message of a batch is redelivered alone."""

import asyncio
import logging
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
from nats.aio.msg import Msg

from zaphub_contracts import streams, subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import TextContent
from zaphub_dispatcher.app import run
from zaphub_dispatcher.lanes import Lanes
from zaphub_dispatcher.sends import PendingSend, SendPipeline
from zaphub_dispatcher.settings import DispatcherSettings
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def _tasks_left(before: set[asyncio.Task[object]]) -> list[str]:
    """Names of the tasks started since `before` that are still running a moment later."""
    left: list[asyncio.Task[object]] = []
    for _ in range(50):
        left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
        if not left:
            break
        await asyncio.sleep(0.02)
    return sorted(t.get_name() for t in left)


async def _eventually(check: Callable[[], bool], what: str, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def buses(monkeypatch: pytest.MonkeyPatch) -> list[Bus]:
    """Every bus the dispatcher connects, to look at afterwards."""
    opened: list[Bus] = []
    connect = Bus.connect

    async def recording(*args: object, **kwargs: object) -> Bus:
        bus = await connect(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(bus)
        return bus

    monkeypatch.setattr(Bus, "connect", staticmethod(recording))
    return opened


@pytest.mark.parametrize("bucket", [streams.WEBHOOKS_BUCKET, streams.DISPATCH_BUCKET], ids=lambda b: b.name)
async def test_a_start_that_fails_half_way_closes_what_it_opened(
    nats_url: str, buses: list[Bus], monkeypatch: pytest.MonkeyPatch, bucket: streams.BucketSpec
) -> None:
    """A bucket that cannot be opened fails the start, and the bus, the metrics listener and every task
    started before it (the webhooks watch, when it was running) are closed."""
    kv = Bus.kv

    async def failing_kv(self: Bus, spec: streams.BucketSpec) -> object:
        if spec.name == bucket.name:
            raise ConnectionError(f"{spec.name} unavailable")
        return await kv(self, spec)

    monkeypatch.setattr(Bus, "kv", failing_kv)
    port = _free_port()
    before = asyncio.all_tasks()
    with pytest.raises(ConnectionError, match=bucket.name):
        await run(DispatcherSettings(nats_url=nats_url, metrics_port=port), asyncio.Event())
    assert [bus.nc.is_closed for bus in buses] == [True]
    assert not await _listening(port)
    assert await _tasks_left(before) == []


async def test_a_failing_drain_step_does_not_skip_the_others(
    nats_url: str, buses: list[Bus], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Lanes that fail to drain are logged; the directory, the metrics listener and the bus are still
    closed, and the dispatcher stops normally."""

    async def failing_drain(self: Lanes[PendingSend], timeout: float) -> None:
        raise RuntimeError("drain failed")

    monkeypatch.setattr(Lanes, "drain", failing_drain)
    caplog.set_level(logging.INFO, logger="zaphub_dispatcher.app")
    port = _free_port()
    before = asyncio.all_tasks()
    stop = asyncio.Event()
    dispatcher = asyncio.create_task(run(DispatcherSettings(nats_url=nats_url, metrics_port=port), stop))
    await _eventually(lambda: "dispatcher running" in caplog.messages or dispatcher.done(), "the start")
    stop.set()
    await asyncio.wait_for(dispatcher, 30)  # returns: the failing steps do not fail the stop
    assert [bus.nc.is_closed for bus in buses] == [True]
    assert not await _listening(port)
    assert await _tasks_left(before) == []


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
        await _eventually(lambda: len(processed) >= 3 or dispatcher.done(), "three commands processed")
        await asyncio.sleep(1.5)  # time for a wrongly NAK'd command to come back
    finally:
        stop.set()
        await asyncio.wait_for(dispatcher, 30)
        await bus.close()
    assert sorted(processed) == [(1, 1), (2, 2), (3, 1)]
