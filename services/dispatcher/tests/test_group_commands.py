"""Group commands on a real JetStream with a fake session-host on the host subject: carried out by the
owning host in the session's order and answered on the requester's inbox, never after they expire,
asked again while no host holds the session, and dead-lettered when unreadable."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from nats.aio.msg import Msg
from pydantic import TypeAdapter

from zaphub_contracts import streams, subjects
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.groups import (
    CommandRateLimited,
    CreateGroup,
    Group,
    GroupCommand,
    GroupCommandReply,
    GroupReply,
    GroupRequest,
    LeaveGroup,
    ParticipantAction,
    UpdateGroup,
    UpdateParticipants,
    WriteAction,
)
from zaphub_contracts.host import HostError, HostOp
from zaphub_contracts.ratelimit import AcquireReply
from zaphub_devstack.inprocess import eventually
from zaphub_dispatcher.backoff import RetryPolicy
from zaphub_dispatcher.group_commands import GroupCommandPipeline
from zaphub_dispatcher.lanes import Arrival, Lanes
from zaphub_runtime.bus import MSG_ID, Bus
from zaphub_runtime.codec import encode
from zaphub_runtime.consumer import each_message, run_pull_consumer

from .conftest import Observer

GROUP = "120363025246125486@g.us"
REPLY: TypeAdapter[GroupReply | HostError | CommandRateLimited] = TypeAdapter(GroupCommandReply)


@dataclass
class Limiter:
    """The ratelimiter as the pipeline sees it: grants every token unless told to deny."""

    deny: AcquireReply | None = None
    acquired: list[UUID] = field(default_factory=list)
    released: list[UUID] = field(default_factory=list)

    async def acquire_tokens(self, tenant_id: UUID, token_ids: list[UUID]) -> AcquireReply:
        self.acquired.extend(token_ids)
        return self.deny or AcquireReply(granted=len(token_ids))

    async def release_tokens(self, tenant_id: UUID, token_ids: list[UUID]) -> None:
        self.released.extend(token_ids)


@dataclass
class Host:
    """A session-host holding one session: answers each `group` request after `delay` seconds."""

    delay: float = 0.0
    requests: list[tuple[GroupRequest, float]] = field(default_factory=list)  # with when it came
    replied: list[float] = field(default_factory=list)
    answering: set[asyncio.Task[None]] = field(default_factory=set)

    async def on_request(self, msg: Msg) -> None:
        request = GroupRequest.model_validate_json(msg.data)
        self.requests.append((request, time.monotonic()))

        async def answer() -> None:
            await asyncio.sleep(self.delay)
            self.replied.append(time.monotonic())
            subject = getattr(request.action, "subject", None) or "Order 1042"
            await msg.respond(encode(GroupReply(host_id="h1", group=Group(jid=GROUP, subject=subject))))

        # Answered apart from the subscription's callback, so a second request could overlap the first.
        task = asyncio.create_task(answer())
        self.answering.add(task)
        task.add_done_callback(self.answering.discard)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, name="group-commands-test", source="/zaphub/dispatcher/test")
    await bus.ensure_streams()
    yield bus
    await bus.close()


@dataclass
class Requester:
    """Publishes group commands as the API does and collects what comes back on their inboxes."""

    bus: Bus
    observer: Observer
    tenant: UUID
    session: UUID
    replies: dict[UUID, GroupReply | HostError | CommandRateLimited] = field(default_factory=dict)
    stream_seqs: dict[UUID, int] = field(default_factory=dict)

    async def publish(self, action: WriteAction, expires_in: float = 10.0) -> GroupCommand:
        now = datetime.now(UTC)
        inbox = self.observer.nc.new_inbox()
        command = GroupCommand(
            tenant_id=self.tenant,
            session_id=self.session,
            issued_at=now,
            command_id=uuid4(),
            action=action,
            reply_to=inbox,
            expires_at=now + timedelta(seconds=expires_in),
        )

        async def on_reply(msg: Msg) -> None:
            self.replies[command.command_id] = REPLY.validate_json(msg.data)

        await self.observer.nc.subscribe(inbox, cb=on_reply)
        await self.observer.nc.flush()
        subject = subjects.group_command(self.tenant, self.session)
        ack = await self.bus.publish(subject, command, str(command.command_id))
        self.stream_seqs[command.command_id] = ack.seq
        return command

    async def acked(self, command: GroupCommand, within: float = 10.0) -> None:
        seq = self.stream_seqs[command.command_id]
        await eventually(lambda: self.observer.wire.of(seq, "ack"), f"{command.action.kind} acked", within)

    def verdicts(self, command: GroupCommand) -> Sequence[str]:
        return [v.kind for v in self.observer.wire.of(self.stream_seqs[command.command_id])]


@pytest.fixture
async def requester(bus: Bus, observer: Observer) -> AsyncIterator[tuple[Requester, Limiter]]:
    """The group-command path, wired as `app.py` wires it, on a consumer of this test's tenant only."""
    tenant, session = uuid4(), uuid4()
    await observer.watch(tenant)
    limiter = Limiter()
    pipeline = GroupCommandPipeline(bus, limiter, RetryPolicy(8, 0.05, 0.2), host_timeout=2.0)  # type: ignore[arg-type]

    async def one_at_a_time(lane: Sequence[Arrival]) -> tuple[list[Arrival], None]:
        await pipeline.process(lane[0].msg)
        return [lane[0]], None

    lanes: Lanes[Arrival] = Lanes(one_at_a_time, max_in_flight=64)
    spec = streams.ConsumerSpec(
        stream=streams.CMD.name,
        durable=f"dispatcher-group-{uuid4().hex[:12]}",
        filter_subject=f"{subjects.ROOT}.cmd.group.{tenant}.*",
        ack_wait=streams.GROUP_CONSUMER.ack_wait,
    )

    async def take(msg: Msg) -> None:
        await lanes.submit(session, Arrival(msg))

    stop = asyncio.Event()
    task = asyncio.create_task(
        run_pull_consumer(bus, spec, each_message(bus, spec.durable, take), stop, wait=0.1)
    )
    yield Requester(bus, observer, tenant, session), limiter
    stop.set()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, 5)
    await lanes.drain(timeout=5)


async def serve(observer: Observer, session: UUID, host: Host) -> None:
    await observer.nc.subscribe(subjects.host(session, HostOp.GROUP), cb=host.on_request)
    await observer.nc.flush()


async def test_a_group_command_is_carried_out_by_the_owning_host_and_answered_on_its_inbox(
    requester: tuple[Requester, Limiter], observer: Observer
) -> None:
    """A create takes one token named by the command, reaches the host as the typed action, and the
    host's group comes back on the command's inbox before it is acked."""
    api, limiter = requester
    host = Host()
    await serve(observer, api.session, host)
    action = CreateGroup(subject="Order 1042", participants=["5511988887777@s.whatsapp.net"])
    command = await api.publish(action)
    await api.acked(command)
    reply = api.replies[command.command_id]
    assert isinstance(reply, GroupReply) and reply.group is not None and reply.group.jid == GROUP
    assert [r.action for r, _ in host.requests] == [action]
    assert limiter.acquired == [command.command_id] and limiter.released == []
    assert api.verdicts(command) == ["ack"]


async def test_a_session_s_commands_run_one_at_a_time_in_stream_order(
    requester: tuple[Requester, Limiter], observer: Observer
) -> None:
    """The second command of a session reaches the host only once the first was answered; leaving
    and renaming take no token."""
    api, limiter = requester
    host = Host(delay=0.3)
    await serve(observer, api.session, host)
    first = await api.publish(UpdateGroup(group=GROUP, subject="First"))
    second = await api.publish(LeaveGroup(group=GROUP))
    await api.acked(second)
    await api.acked(first)
    assert [r.action.kind for r, _ in host.requests] == ["update", "leave"]
    assert host.requests[1][1] >= host.replied[0]
    assert set(api.replies) == {first.command_id, second.command_id}
    assert limiter.acquired == []


async def test_an_expired_command_is_never_carried_out(
    requester: tuple[Requester, Limiter], observer: Observer
) -> None:
    """A command found past its expires_at (its requester has answered 503) is acked unanswered,
    without a token and without reaching the host."""
    api, limiter = requester
    host = Host()
    await serve(observer, api.session, host)
    command = await api.publish(CreateGroup(subject="Late", participants=[]), expires_in=-1.0)
    await api.acked(command)
    await asyncio.sleep(0.2)
    assert host.requests == [] and limiter.acquired == []
    assert command.command_id not in api.replies


async def test_no_host_is_asked_again_until_a_host_appears(
    requester: tuple[Requester, Limiter], observer: Observer
) -> None:
    """While no session-host holds the session the command waits in its lane, asked again with
    backoff; once a host appears it is carried out and answered, delivered once."""
    api, _ = requester
    command = await api.publish(UpdateGroup(group=GROUP, subject="Later"))
    await asyncio.sleep(1.0)
    assert command.command_id not in api.replies
    host = Host()
    await serve(observer, api.session, host)
    await api.acked(command)
    reply = api.replies[command.command_id]
    assert isinstance(reply, GroupReply) and reply.group is not None and reply.group.subject == "Later"
    assert api.verdicts(command) == ["ack"]


async def test_no_host_until_expiry_gives_the_token_back_and_answers_nothing(
    requester: tuple[Requester, Limiter],
) -> None:
    """A create no host takes before it expires is dropped: its token is released, nothing runs late."""
    api, limiter = requester
    command = await api.publish(CreateGroup(subject="Nobody", participants=[]), expires_in=0.8)
    await api.acked(command)
    assert limiter.acquired == [command.command_id] == limiter.released
    assert command.command_id not in api.replies


async def test_a_denied_token_answers_rate_limited_and_skips_the_host(
    requester: tuple[Requester, Limiter], observer: Observer
) -> None:
    """An add the tenant's limit has no room for is answered with the exact retry_after, not run."""
    api, limiter = requester
    limiter.deny = AcquireReply(granted=0, retry_after=12.5, window="minute")
    host = Host()
    await serve(observer, api.session, host)
    action = UpdateParticipants(
        group=GROUP, action=ParticipantAction.ADD, participants=["5511988887777@s.whatsapp.net"]
    )
    command = await api.publish(action)
    await api.acked(command)
    assert api.replies[command.command_id] == CommandRateLimited(retry_after=12.5, window="minute")
    assert host.requests == []


async def test_a_host_refusal_is_answered_and_its_token_given_back(
    requester: tuple[Requester, Limiter], observer: Observer
) -> None:
    """The host's refusal reaches the requester as it is; a refused create counts nothing."""
    api, limiter = requester

    async def refuse(msg: Msg) -> None:
        refusal = HostError(reason=FailureReason.NOT_GROUP_ADMIN, detail="add_participants: admins only")
        await msg.respond(encode(refusal))

    await observer.nc.subscribe(subjects.host(api.session, HostOp.GROUP), cb=refuse)
    command = await api.publish(CreateGroup(subject="Refused", participants=[]))
    await api.acked(command)
    reply = api.replies[command.command_id]
    assert isinstance(reply, HostError) and reply.reason is FailureReason.NOT_GROUP_ADMIN
    assert limiter.released == [command.command_id]


async def test_a_malformed_command_is_dead_lettered(
    requester: tuple[Requester, Limiter], observer: Observer
) -> None:
    """An unreadable body, and a command whose reply_to is not an inbox, go to the DLQ as
    malformed_command and are acked; the host is never asked."""
    api, _ = requester
    host = Host()
    await serve(observer, api.session, host)
    subject = subjects.group_command(api.tenant, api.session)
    garbage = (await observer.js.publish(subject, b"{not json")).seq
    now = datetime.now(UTC)
    hijack = GroupCommand(
        tenant_id=api.tenant,
        session_id=api.session,
        issued_at=now,
        command_id=uuid4(),
        action=LeaveGroup(group=GROUP),
        reply_to="_INBOX.x",
        expires_at=now + timedelta(seconds=10),
    ).model_dump(mode="json")
    hijack["reply_to"] = subjects.host(api.session, HostOp.DELETE)
    aimed = (
        await observer.js.publish(subject, json.dumps(hijack).encode(), headers={MSG_ID: str(uuid4())})
    ).seq
    for seq in (garbage, aimed):
        await eventually(lambda seq=seq: observer.wire.of(seq, "ack"), f"seq {seq} acked")
    letters = {d.original_stream_seq: d.reason for d in observer.dead_letters}
    assert letters == {
        garbage: FailureReason.MALFORMED_COMMAND,
        aimed: FailureReason.MALFORMED_COMMAND,
    }
    assert host.requests == []
