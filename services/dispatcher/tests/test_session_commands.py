"""Session commands on a real JetStream with a fake session-host: what the host replies decides the
command's fate (done, retried with backoff, or dead-lettered with the host's reason)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from nats.aio.msg import Msg

from zaphub_contracts import streams, subjects
from zaphub_contracts.commands import SessionAction, SessionCommand
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.host import HostError, HostOk, HostOp
from zaphub_devstack.inprocess import eventually
from zaphub_dispatcher.backoff import RetryPolicy
from zaphub_dispatcher.session_commands import SessionCommandPipeline
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode
from zaphub_runtime.consumer import each_message, run_pull_consumer

from .conftest import Observer


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, name="session-commands-test", source="/zaphub/dispatcher/test")
    await bus.ensure_streams()
    yield bus
    await bus.close()


async def run_commands(bus: Bus, tenant: UUID, stop: asyncio.Event) -> asyncio.Task[None]:
    """The session-command path on a consumer of this test's tenant only."""
    pipeline = SessionCommandPipeline(
        bus, await bus.kv(streams.SESSIONS_BUCKET), RetryPolicy(3, 0.05, 0.1), host_timeout=2.0
    )
    spec = streams.ConsumerSpec(
        stream=streams.CMD.name,
        durable=f"dispatcher-session-{uuid4().hex[:12]}",
        filter_subject=f"{subjects.ROOT}.cmd.session.*.{tenant}.*",
    )
    handle = each_message(bus, spec.durable, pipeline.process)
    return asyncio.create_task(run_pull_consumer(bus, spec, handle, stop, wait=0.1))


async def test_a_host_error_reply_is_retried_when_transient_and_dead_lettered_when_permanent(
    bus: Bus, observer: Observer
) -> None:
    """A delete the host fails for now is asked again until it succeeds; one it refuses for good is
    dead-lettered with the host's reason; neither is acked as done on the first error."""
    tenant, flaky, refused = uuid4(), uuid4(), uuid4()
    await observer.watch(tenant)
    replies = {
        flaky: [HostError(reason=FailureReason.TRANSPORT_ERROR, detail="store away"), HostOk(host_id="h")],
        refused: [HostError(reason=FailureReason.INVALID_PAYLOAD, detail="no")],
    }
    asked: list[UUID] = []

    async def host(msg: Msg) -> None:
        session = UUID(msg.subject.split(".")[3])
        asked.append(session)
        script = replies[session]
        await msg.respond(encode(script.pop(0) if len(script) > 1 else script[0]))

    for session in replies:
        await observer.nc.subscribe(subjects.host(session, HostOp.DELETE), cb=host)
    await observer.nc.flush()
    stop = asyncio.Event()
    task = await run_commands(bus, tenant, stop)
    try:
        seqs = {}
        for session in replies:
            command = SessionCommand(
                tenant_id=tenant, session_id=session, issued_at=datetime.now(UTC), action=SessionAction.DELETE
            )
            subject = subjects.session_command(SessionAction.DELETE, tenant, session)
            seqs[session] = (await observer.js.publish(subject, encode(command))).seq
        for session, seq in seqs.items():
            await eventually(lambda seq=seq: observer.wire.of(seq, "ack"), f"{session} acked")
        assert asked.count(flaky) == 2
        assert [v.kind for v in observer.wire.of(seqs[flaky])] == ["nak", "ack"]
        (letter,) = observer.dead_letters
        assert (letter.original_stream_seq, letter.reason) == (seqs[refused], FailureReason.INVALID_PAYLOAD)
        assert asked.count(refused) == 1
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 5)
