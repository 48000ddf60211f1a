"""Fixtures of the dispatcher's unit tests: a real NATS with JetStream per test (`nats_url`, from the
devstack plugin), what an observer sees on it (acks on the wire, events, dead letters), and fake
peers standing in for the ratelimiter and the session-hosts.

The dispatcher's wiring (`RetryPolicy`, `SendPipeline`, `MessageEvents`, the clients and `HostAnswer`) is
imported here only, so renaming one of them is an edit of this file.
"""

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from zaphub_contracts import streams, subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import MessageContent, TextContent
from zaphub_contracts.deadletters import DeadLetter
from zaphub_contracts.events import EventBase, parse_event
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.host import HostError, HostOk, HostReply
from zaphub_contracts.ratelimit import AcquireReply, WindowName
from zaphub_contracts.sessions import whatsapp_message_id
from zaphub_devstack.inprocess import eventually
from zaphub_dispatcher.attempts import Attempts
from zaphub_dispatcher.backoff import RetryPolicy
from zaphub_dispatcher.clients import HostAnswer, HostRunClient, RateLimiterClient, RateLimiterUnavailable
from zaphub_dispatcher.lanes import Lanes
from zaphub_dispatcher.message_events import MessageEvents
from zaphub_dispatcher.order import OrderGate
from zaphub_dispatcher.sends import PendingSend, SendPipeline
from zaphub_runtime.bus import MSG_ID, Bus
from zaphub_runtime.codec import encode
from zaphub_runtime.consumer import run_pull_consumer

TEXT = TextContent(text="olá")
TO = "5511988887777@s.whatsapp.net"


@dataclass(frozen=True)
class Verdict:
    """What a consumer told JetStream about one delivery, as it crossed the wire."""

    stream_seq: int
    delivery: int  # the delivery it answers, from 1
    kind: str  # "ack", "nak", "progress" or "term"
    delay: float | None  # the NAK's redelivery delay in seconds; None for an immediate one
    at: float  # time.monotonic() when the observer saw it


def _verdict(subject: str, data: bytes) -> tuple[str, Verdict]:
    """The stream an ack subject names, and the verdict its body gives."""
    meta = Msg(_client=None, reply=subject).metadata  # type: ignore[arg-type]
    delay = None
    if data.startswith(Msg.Ack.Nak):
        kind = "nak"
        if args := data[len(Msg.Ack.Nak) :].strip():
            delay = json.loads(args)["delay"] / 1e9
    elif data == Msg.Ack.Progress:
        kind = "progress"
    elif data == Msg.Ack.Term:
        kind = "term"
    else:
        kind = "ack"  # an empty body, or +ACK
    return meta.stream, Verdict(meta.sequence.stream, meta.num_delivered, kind, delay, time.monotonic())


class Wire:
    """Every ack, NAK and in-progress the consumers of `stream` send, as another client sees them."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.verdicts: list[Verdict] = []

    async def listen(self, nc: Client) -> None:
        async def on_msg(msg: Msg) -> None:
            stream, verdict = _verdict(msg.subject, msg.data)
            if stream == self.stream:
                self.verdicts.append(verdict)

        await nc.subscribe("$JS.ACK.>", cb=on_msg)
        await nc.flush()

    def of(self, stream_seq: int, *kinds: str) -> list[Verdict]:
        """The verdicts on one stream message, of `kinds` (default: all but in-progress)."""
        wanted = kinds or ("ack", "nak", "term")
        return [v for v in self.verdicts if v.stream_seq == stream_seq and v.kind in wanted]


class Observer:
    """A client of its own on the test's NATS: acks on the wire, a tenant's events and dead letters."""

    def __init__(self, nc: Client, stream: str) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.wire = Wire(stream)
        self.events: list[EventBase] = []
        self.dead_letters: list[DeadLetter] = []

    async def watch(self, tenant: UUID) -> None:
        await self.wire.listen(self.nc)

        async def on_event(msg: Msg) -> None:
            self.events.append(parse_event(msg.data))

        async def on_dead_letter(msg: Msg) -> None:
            self.dead_letters.append(DeadLetter.model_validate_json(msg.data))

        await self.nc.subscribe(subjects.tenant_events(tenant), cb=on_event)
        await self.nc.subscribe(subjects.dead_letter(tenant, "*"), cb=on_dead_letter)
        await self.nc.flush()

    def of(self, short: str, message_id: UUID | None = None) -> list[EventBase]:
        """Events of type `short` (e.g. `message.sent`), of one message when `message_id` is given."""
        return [
            e
            for e in self.events
            if e.short == short and (message_id is None or e.data.message_id == message_id)
        ]


def command(tenant: UUID, session: UUID, seq: int, content: MessageContent = TEXT) -> SendMessage:
    return SendMessage(
        tenant_id=tenant,
        session_id=session,
        issued_at=datetime.now(UTC),
        message_id=uuid4(),
        seq=seq,
        to=TO,
        content=content,
    )


OK = "ok"  # in a FakeHost script: this command is handed over
HostOutcome = str | HostError


class FakeHost:
    """The session-hosts as the dispatcher sees them (`HostRunClient.send`): each session's requests are
    answered from its script in turn, then every command is handed over. Records what reached
    WhatsApp, in the order it did."""

    def __init__(self) -> None:
        self.scripts: defaultdict[UUID, list[list[HostOutcome] | HostAnswer]] = defaultdict(list)
        self.requests: list[list[SendMessage]] = []
        self.handed_over: list[SendMessage] = []

    def script(self, session: UUID, *answers: list[HostOutcome] | HostAnswer) -> None:
        """A list answers with one result per command (`OK` or a HostError), stopping where it ends."""
        self.scripts[session].extend(answers)

    async def send(
        self, commands: Sequence[SendMessage], seconds: float, traceparents: list[str]
    ) -> HostAnswer:
        self.requests.append(list(commands))
        script = self.scripts[commands[0].session_id]
        answer = script.pop(0) if script else [OK] * len(commands)
        if isinstance(answer, HostAnswer):
            return answer
        results: list[HostReply] = []
        for pending, outcome in zip(commands, answer, strict=False):
            if isinstance(outcome, HostError):
                results.append(outcome)
                break
            self.handed_over.append(pending)
            results.append(
                HostOk(
                    host_id="host-1",
                    whatsapp_id=whatsapp_message_id(pending.message_id),
                    sent_at=datetime.now(UTC),
                )
            )
        return HostAnswer(results, known=True)

    def seqs(self, session: UUID) -> list[int]:
        """The seqs of `session` handed to WhatsApp, in hand-over order."""
        return [c.seq for c in self.handed_over if c.session_id == session]


def host_error(reason: FailureReason, detail: str = "") -> HostError:
    return HostError(reason=reason, detail=detail or reason.value)


def denied(retry_after: float, window: WindowName = "minute", granted: int = 0) -> AcquireReply:
    return AcquireReply(granted=granted, retry_after=retry_after, window=window)


class FakeRateLimiter:
    """The ratelimiter as the dispatcher sees it (`RateLimiterClient`): each session's acquires are
    answered from its script in turn (a reply, or RateLimiterUnavailable to raise), then granted."""

    def __init__(self) -> None:
        self.scripts: defaultdict[UUID, list[AcquireReply | RateLimiterUnavailable]] = defaultdict(list)
        self.acquired: list[list[UUID]] = []
        self.released: list[list[UUID]] = []

    def script(self, session: UUID, *replies: AcquireReply | RateLimiterUnavailable) -> None:
        self.scripts[session].extend(replies)

    async def acquire(self, commands: Sequence[SendMessage]) -> AcquireReply:
        self.acquired.append([c.message_id for c in commands])
        script = self.scripts[commands[0].session_id]
        reply = script.pop(0) if script else AcquireReply(granted=len(commands))
        if isinstance(reply, RateLimiterUnavailable):
            raise reply
        return reply

    async def release(self, commands: Sequence[SendMessage]) -> None:
        self.released.append([c.message_id for c in commands])

    async def acquire_tokens(self, tenant_id: UUID, token_ids: list[UUID]) -> AcquireReply:
        """Group commands' tokens (test_group_commands has its own limiter): always granted."""
        self.acquired.append(list(token_ids))
        return AcquireReply(granted=len(token_ids))

    async def release_tokens(self, tenant_id: UUID, token_ids: list[UUID]) -> None:
        self.released.append(list(token_ids))


# Each fake and the client it stands in for: the fakes must keep the clients' methods.
REAL_CLIENTS: dict[type, type] = {FakeHost: HostRunClient, FakeRateLimiter: RateLimiterClient}


@dataclass(frozen=True)
class Delivery:
    """A command the dispatcher fetched."""

    stream_seq: int
    number: int  # 1 for the first delivery
    at: float  # time.monotonic()


@dataclass
class Dispatcher:
    """One dispatcher replica's send path on a real JetStream, wired as `app.py` wires it, with fake
    peers; the test publishes commands as the API does and watches through `observer`."""

    bus: Bus
    observer: Observer
    host: FakeHost
    limiter: FakeRateLimiter
    tenant: UUID
    sessions: tuple[UUID, UUID]
    stream_seqs: dict[UUID, int] = field(default_factory=dict)  # message id -> stream sequence
    fetched: list[Delivery] = field(default_factory=list)
    begin: Callable[[], None] = lambda: None

    def start_fetching(self) -> None:
        """Start the consumer loop (`start_dispatcher(fetching=False)` leaves it to the test)."""
        self.begin()

    @property
    def session(self) -> UUID:
        return self.sessions[0]

    async def publish(self, seq: int, session: UUID | None = None) -> SendMessage:
        sent = command(self.tenant, session or self.session, seq)
        subject = subjects.send_command(sent.tenant_id, sent.session_id)
        ack = await self.observer.js.publish(subject, encode(sent), headers={MSG_ID: str(sent.message_id)})
        self.stream_seqs[sent.message_id] = ack.seq
        return sent

    async def publish_raw(self, data: bytes, session: UUID | None = None) -> int:
        subject = subjects.send_command(self.tenant, session or self.session)
        return (await self.observer.js.publish(subject, data)).seq

    def verdicts(self, sent: SendMessage, *kinds: str) -> list[Verdict]:
        return self.observer.wire.of(self.stream_seqs[sent.message_id], *kinds)

    def deliveries(self, sent: SendMessage) -> list[Delivery]:
        seq = self.stream_seqs[sent.message_id]
        return [d for d in self.fetched if d.stream_seq == seq]

    async def acked(self, *sent: SendMessage, within: float = 10.0) -> None:
        """Until every command in `sent` has been acknowledged."""
        for one in sent:
            await eventually(lambda one=one: self.verdicts(one, "ack"), f"seq {one.seq} acked", within)


@dataclass(frozen=True)
class Settings:
    """What `DispatcherSettings` would say, at test speed."""

    max_attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 0.1
    run: int = 32
    run_seconds: float = 1.0
    max_in_flight: int = 64


StartDispatcher = Callable[..., Awaitable[Dispatcher]]


@pytest.fixture
async def observer(nats_url: str) -> AsyncIterator[Observer]:
    nc = await nats.connect(nats_url)
    yield Observer(nc, streams.CMD.name)
    await nc.close()


@pytest.fixture
async def start_dispatcher(nats_url: str, observer: Observer) -> AsyncIterator[StartDispatcher]:
    """Starts the send path for a tenant and two sessions of its own, on a consumer of its own."""
    stop = asyncio.Event()
    cleanup: list[Callable[[], Awaitable[None]]] = []

    async def start(fetching: bool = True, **overrides: Any) -> Dispatcher:
        settings = Settings(**overrides)
        bus = await Bus.connect(nats_url, name="dispatcher-test", source="/zaphub/dispatcher/test")
        await bus.ensure_streams()
        tenant, sessions = uuid4(), (uuid4(), uuid4())
        await observer.watch(tenant)
        bucket = await bus.kv(streams.DISPATCH_BUCKET)
        host, limiter = FakeHost(), FakeRateLimiter()
        pipeline = SendPipeline(
            bus,
            OrderGate(bucket),
            Attempts(bucket),
            limiter,  # type: ignore[arg-type]
            host,  # type: ignore[arg-type]
            MessageEvents(bus),
            RetryPolicy(settings.max_attempts, settings.base_delay, settings.max_delay),
            settings.run_seconds,
        )
        lanes: Lanes[PendingSend] = Lanes(pipeline.process, settings.max_in_flight, run=settings.run)
        dispatcher = Dispatcher(bus, observer, host, limiter, tenant, sessions)

        async def on_sends(msgs: list[Msg]) -> None:
            for msg in msgs:
                meta, now = msg.metadata, time.monotonic()
                dispatcher.fetched.append(Delivery(meta.sequence.stream, meta.num_delivered, now))
                pending = await pipeline.prepare(msg)
                if pending is not None:
                    await lanes.submit(pending.command.session_id, pending)

        # A consumer of this test's sessions only: the CMD stream is a work queue, whose consumers
        # must not overlap (when NATS_URL points many tests at one server).
        spec = streams.ConsumerSpec(
            stream=streams.CMD.name,
            durable=f"dispatcher-send-{uuid4().hex[:12]}",
            filter_subject=subjects.send_command(tenant, sessions[0]),
            ack_wait=streams.SEND_CONSUMER.ack_wait,
        )
        filters = [subjects.send_command(tenant, s) for s in sessions]

        async def ensure() -> None:
            await bus.ensure_consumer(spec, filters)

        tasks: list[asyncio.Task[None]] = []

        def begin() -> None:
            if not tasks:
                tasks.append(
                    asyncio.create_task(run_pull_consumer(bus, spec, on_sends, stop, wait=0.1, ensure=ensure))
                )

        dispatcher.begin = begin
        if fetching:
            begin()

        async def close() -> None:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, 5)
            await lanes.drain(timeout=5)
            await bus.close()

        cleanup.append(close)
        return dispatcher

    yield start
    for close in cleanup:
        await close()
