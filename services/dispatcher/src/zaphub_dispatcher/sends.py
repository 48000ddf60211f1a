"""The send pipeline: order gate → rate limit → owning host → outcome (event, cursor, ack or retry).

A session's commands that are next in its order go through as a run: one rate-limit request, one host
request and one cursor write for all of them. Each command keeps its own spans, in its own trace.
"""

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from nats.aio.msg import Msg
from opentelemetry import trace

from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import MediaContent
from zaphub_contracts.failures import FailureReason, is_transient
from zaphub_contracts.host import HostError, HostOk
from zaphub_contracts.ratelimit import WindowName
from zaphub_dispatcher import metrics
from zaphub_dispatcher.attempts import Attempts
from zaphub_dispatcher.backoff import RetryPolicy
from zaphub_dispatcher.clients import HostRunClient, RateLimiterClient, RateLimiterUnavailable
from zaphub_dispatcher.message_events import MessageEvents
from zaphub_dispatcher.order import Cursor, OrderGate
from zaphub_runtime.bus import MSG_ID, Bus
from zaphub_runtime.consumer import decode_or_dead_letter, routed
from zaphub_runtime.telemetry import inject_headers, start_client_span, start_consumer_span

log = logging.getLogger(__name__)
tracer = trace.get_tracer("zaphub_dispatcher")
COMPONENT = "dispatcher"
RATELIMITER_RETRY = 1.0  # seconds; the ratelimiter being away is not the message's fault
# Times the commands behind a missing message of their session look again for it (0.04 s, then
# doubling to 0.5 s: ~1.6 s in all) before they go back to JetStream.
ORDER_LOOKS = 6
# A command that must wait longer than this is parked outside the shared send consumer instead of
# staying pending on it (NAK with delay): see `SendPipeline._hold`.
PARK_AFTER = 5.0
PARKED = "Zaphub-Parked"  # header of a parked command when the server publishes it back


@dataclass(eq=False)
class PendingSend:
    """A fetched send command waiting in its session's lane."""

    msg: Msg
    command: SendMessage
    span: trace.Span = trace.INVALID_SPAN  # its consumer span while it is processed

    @property
    def order(self) -> int:
        return self.command.seq


@dataclass
class _Gap:
    """A session whose next message has not come here: the commands behind it share one wait."""

    missing: int  # the seq looked for
    looks: int = 0


def _place(msg: Msg) -> tuple[UUID, int] | None:
    """The session (from the subject) and seq (read leniently from the JSON) of a command that does
    not validate; None when either is unreadable or the body names another session or tenant."""
    try:
        where = subjects.parse(msg.subject)
        raw = json.loads(msg.data)
        if not isinstance(raw, dict) or where.session_id is None:
            return None
        seq = raw.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            return None
        named = (str(raw.get("tenant_id", where.tenant_id)), str(raw.get("session_id", where.session_id)))
        if named != (str(where.tenant_id), str(where.session_id)):
            return None
        return where.session_id, seq
    except (ValueError, TypeError):
        return None


_parse_send = routed(SendMessage)


class SendPipeline:
    def __init__(
        self,
        bus: Bus,
        gate: OrderGate,
        attempts: Attempts,
        ratelimiter: RateLimiterClient,
        hosts: HostRunClient,
        events: MessageEvents,
        policy: RetryPolicy,
        run_seconds: float,
        park_after: float = PARK_AFTER,
    ) -> None:
        self._bus = bus
        self._gate = gate
        self._attempts = attempts
        self._ratelimiter = ratelimiter
        self._hosts = hosts
        self._events = events
        self._policy = policy
        self._gaps: dict[UUID, _Gap] = {}
        self._run_bytes = bus.nc.max_payload // RUN_SHARE_OF_MAX_PAYLOAD
        self._run_seconds = run_seconds
        self._park_after = park_after

    async def prepare(self, msg: Msg) -> PendingSend | None:
        """The command a fetched message holds, or None when it was malformed and is dead-lettered
        (at its turn in its session when its place can be read, moving the cursor past it). Failing
        to read the cursor or to dead-letter raises, for the consumer loop to NAK and count."""
        command = await decode_or_dead_letter(
            self._bus, msg, _parse_send, COMPONENT, at_turn=self._malformed_at_turn
        )
        if command is None:
            return None
        pending = PendingSend(msg, command)
        return None if await self._parked_at_intake(pending) else pending

    async def _malformed_at_turn(self, msg: Msg) -> bool:
        """True when a malformed command is to be dead-lettered now; False when it was handed back to
        wait for an earlier message of its session."""
        place = _place(msg)
        if place is not None and not await self._skip_at_turn(msg, *place):
            return False
        metrics.poisoned(FailureReason.MALFORMED_COMMAND.value)
        return True

    async def _parked_at_intake(self, pending: PendingSend) -> bool:
        """Park a command at once, without taking a lane slot, when its session's head is known to
        wait `park_after` or longer (this replica's cached cursor): a tenant's backlog behind its rate
        limit leaves the shared consumer as fast as it is fetched."""
        command = pending.command
        cursor = await self._gate.read(command.session_id)
        delay = cursor.blocked_until - time.time()
        if command.seq <= cursor.done + 1 or delay < self._park_after:
            return False
        if cursor.rate_limited:
            await self._events.rate_limited(command, delay, cursor.window)  # type: ignore[arg-type]
        await self._hold(pending, delay + 0.01)
        metrics.outcome("order_wait")
        return True

    async def _skip_at_turn(self, msg: Msg, session_id: UUID, seq: int) -> bool:
        """True when the malformed command `seq` may be dead-lettered now: it is the session's next
        (the cursor moves past it, so the session does not stall) or already behind the cursor."""
        cursor = await self._gate.read(session_id, fresh=True)
        if seq <= cursor.done or await self._gate.skip(session_id, seq):
            return True
        await msg.nak(delay=_order_delay(cursor, msg.metadata.num_delivered or 1))
        return False

    async def process(self, lane: Sequence[PendingSend]) -> tuple[list[PendingSend], float | None]:
        """Send the lane's next run, or hand its head back; see `lanes.Process`."""
        head = lane[0]
        head.span = _start_span(head)
        try:
            with trace.use_span(head.span):
                turn = await self._turn(head)
            if turn is not True:
                head.span.add_event("waiting for an earlier message of the session")
                return ([head], None) if turn is False else ([], turn)
            run = take_run(lane, self._run_bytes)
            for pending in run[1:]:
                pending.span = _start_span(pending)
            return await self._send(run), None
        finally:
            for pending in lane:
                pending.span.end()
                pending.span = trace.INVALID_SPAN

    async def _send(self, run: list[PendingSend]) -> list[PendingSend]:
        """Rate limit and send a run whose head is next; returns the commands it is done with."""
        try:
            with _client_spans("ratelimit acquire", run):
                decision = await self._ratelimiter.acquire([p.command for p in run])
        except RateLimiterUnavailable as exc:
            log.warning("ratelimiter unavailable: %s", exc)
            for pending in run:
                metrics.outcome("ratelimiter_unavailable")
                await pending.msg.nak(delay=RATELIMITER_RETRY)
            return run
        granted, denied = run[: decision.granted], run[decision.granted :]
        if granted:
            done = await self._send_granted(granted)
            if len(done) < len(granted):
                return done  # a failure ended the run: the rest wait behind it in the lane
        if denied:
            await self._wait_for_rate_limit(denied, decision.retry_after, decision.window)
        return run

    async def _send_granted(self, run: list[PendingSend]) -> list[PendingSend]:
        with _client_spans("session-host send", run) as spans, metrics.HostTimer() as timer:
            answer = await self._hosts.send([p.command for p in run], self._run_seconds, _traceparents(spans))
            for span, result in zip(spans, answer.results, strict=False):
                span.set_attribute("zaphub.outcome", result.status)
            timer.status = answer.results[-1].status
        sent: list[tuple[PendingSend, HostOk]] = []
        for pending, result in zip(run, answer.results, strict=False):
            if not isinstance(result, HostOk):
                break
            sent.append((pending, result))
        if sent:
            await self._finish_sent(sent)
        if len(sent) == len(run):
            return run
        if answer.known:
            # Those not sent give their tokens back, and ask again at their turn. When the outcome
            # is unknown (no reply), keeping them errs on the safe side.
            await self._give_back(run[len(sent) :])
        if len(answer.results) == len(sent):
            return run[: len(sent)]  # the host's time for the run was up; the rest stay in the lane
        failed, error = run[len(sent)], answer.results[len(sent)]
        assert isinstance(error, HostError)
        with trace.use_span(failed.span):
            if is_transient(error.reason):
                await self._retry_or_fail(failed, error)
            else:
                attempts = await self._attempts.count(failed.command.message_id)
                await self._fail(failed, error.reason, error.detail, attempts)
        return run[: len(sent) + 1]

    async def _turn(self, pending: PendingSend) -> bool | float:
        """True when the command is next in its session; seconds to keep it in its lane while the
        earlier message is likely on its way; False when it was acked or handed back to JetStream."""
        command, msg = pending.command, pending.msg
        cursor = await self._gate.read(command.session_id)
        if command.seq > cursor.done + 1:
            # Another replica may have moved the cursor since this one last wrote it.
            cursor = await self._gate.read(command.session_id, fresh=True)
        if command.seq <= cursor.done:
            await msg.ack()  # its outcome is final already: a redelivery after a crash
            metrics.outcome("duplicate")
            return False
        if command.seq == cursor.done + 1:
            self._gaps.pop(command.session_id, None)
            return True
        blocked = cursor.blocked_until > time.time()
        gap = self._gaps.get(command.session_id)
        if gap is None or gap.missing != cursor.done + 1:
            gap = self._gaps[command.session_id] = _Gap(cursor.done + 1)
        if not blocked and gap.looks < ORDER_LOOKS:
            gap.looks += 1
            return min(0.02 * 2.0**gap.looks, 0.5)
        delay = _order_delay(cursor, msg.metadata.num_delivered or 1)
        if cursor.rate_limited and blocked:
            # Waiting behind a rate-limited message is waiting for the rate limit too.
            await self._events.rate_limited(command, delay, cursor.window)  # type: ignore[arg-type]
        await self._hold(pending, delay)
        metrics.outcome("order_wait")
        return False

    async def _wait_for_rate_limit(
        self, denied: Sequence[PendingSend], retry_after: float, window: WindowName | None
    ) -> None:
        """The first denied command waits exactly until the window frees (not an attempt); the
        commands behind it wait as long, without asking the ratelimiter again."""
        head = denied[0].command
        metrics.rate_limited(head, window)
        with trace.use_span(denied[0].span):
            await self._events.rate_limited(head, retry_after, window)
            await self._gate.block(head.session_id, head.seq, retry_after, rate_limited=True, window=window)
        await self._hold(denied[0], max(retry_after, 0.001))
        behind = denied[1:]
        emits = [self._events.rate_limited(p.command, retry_after, window) for p in behind]
        await asyncio.gather(*(_in_span(p.span, emit) for p, emit in zip(behind, emits, strict=True)))
        await asyncio.gather(*(self._hold(p, retry_after + 0.01) for p in behind))
        metrics.outcome("order_wait", len(behind))

    async def _retry_or_fail(self, pending: PendingSend, error: HostError) -> None:
        command, msg = pending.command, pending.msg
        attempt = await self._attempts.failed(command.message_id)
        detail = f"{error.reason}: {error.detail}"
        if attempt >= self._policy.max_attempts:
            metrics.dead_letter(FailureReason.ATTEMPTS_EXHAUSTED.value)
            await self._bus.dead_letter(msg, FailureReason.ATTEMPTS_EXHAUSTED, detail, COMPONENT, attempt)
            await self._fail(pending, FailureReason.ATTEMPTS_EXHAUSTED, detail, attempt)
            return
        delay = self._policy.delay(attempt)
        metrics.retried(error.reason.value)
        trace.get_current_span().add_event(
            "retry scheduled", {"attempt": attempt, "delay": delay, "reason": error.reason.value}
        )
        log.info(
            "send retry",
            extra={
                "fields": {"message_id": str(command.message_id), "attempt": attempt, "reason": error.reason}
            },
        )
        await self._gate.block(command.session_id, command.seq, delay)
        await self._hold(pending, delay)

    async def _hold(self, pending: PendingSend, delay: float) -> None:
        """Hand the command back to come again in `delay` seconds. A short wait is a NAK with that
        delay; a longer one would keep the command pending on the consumer every tenant shares, so
        it is parked instead: re-published as a JetStream message schedule that the server sends back
        to the command's subject at the next whole second after the delay (never sooner), and the
        original is acked. The copy keeps the body and headers, so order (seq), exactly-once (the
        host's sent log) and idempotency are those of the original; only a failed park NAKs."""
        msg = pending.msg
        if delay < self._park_after:
            await msg.nak(delay=delay)
            return
        command = pending.command
        at = math.ceil(time.time() + delay)
        headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-")}
        headers |= {
            "Nats-Schedule": f"@at {datetime.fromtimestamp(at, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}",
            "Nats-Schedule-Target": msg.subject,
            MSG_ID: f"{command.message_id}/park/{msg.metadata.sequence.stream}",
            PARKED: "1",
        }
        subject = subjects.parked_send(command.tenant_id, command.session_id, command.message_id)
        try:
            await self._bus.publish_raw(subject, msg.data, headers=headers)
        except Exception:
            log.warning("could not park a waiting command; it waits on the consumer", exc_info=True)
            await msg.nak(delay=delay)
            return
        metrics.outcome("parked")
        await msg.ack()

    async def _give_back(self, run: Sequence[PendingSend]) -> None:
        try:
            await self._ratelimiter.release([p.command for p in run])
        except RateLimiterUnavailable:
            # Keeping the tokens errs on the safe side: the tenant sends less, never more.
            log.warning("could not give back the tokens of %d messages", len(run))

    async def _fail(self, pending: PendingSend, reason: FailureReason, detail: str, attempts: int) -> None:
        metrics.failed(pending.command)
        await self._finish([pending], [self._events.failed(pending.command, reason, detail, attempts)])

    async def _finish_sent(self, sent: list[tuple[PendingSend, HostOk]]) -> None:
        events = []
        for pending, reply in sent:
            sent_at = reply.sent_at or datetime.now(UTC)
            metrics.sent(pending.command, sent_at)
            events.append(self._events.sent(pending.command, reply.whatsapp_id or "", sent_at))
        await self._finish([p for p, _ in sent], events)

    async def _finish(self, done: list[PendingSend], events: list[Coroutine[Any, Any, None]]) -> None:
        """Publish the outcomes, each in its command's trace, and move the session's cursor past the
        last of `done`, side by side; then ack."""
        last = done[-1].command
        steps: list[asyncio.Future[Any]] = [_in_span(p.span, e) for p, e in zip(done, events, strict=True)]
        steps.append(asyncio.ensure_future(self._gate.complete(last.session_id, last.seq)))
        for pending in done:
            if (pending.msg.metadata.num_delivered or 1) > 1 or PARKED in (pending.msg.headers or {}):
                # Attempts are counted only on a failure, and a failure always means a redelivery.
                steps.append(asyncio.ensure_future(self._attempts.clear(pending.command.message_id)))
        await asyncio.gather(*steps)
        await asyncio.gather(*(p.msg.ack() for p in done))


RUN_SHARE_OF_MAX_PAYLOAD = 2  # a run's commands take at most half a NATS message


def take_run(lane: Sequence[PendingSend], max_bytes: int) -> list[PendingSend]:
    """The lane's head and the commands right after it in seq, in at most `max_bytes` (the head
    always). Media goes alone: its upload can take long enough on its own, and a run must fit one
    NATS message and one host timeout."""
    run = [lane[0]]
    size = len(lane[0].msg.data)
    for pending in lane[1:]:
        size += len(pending.msg.data)
        if (
            pending.command.seq != run[-1].command.seq + 1  # a gap, or a repeated publish of a seq
            or _alone(run[-1])
            or _alone(pending)
            or size > max_bytes
        ):
            break
        run.append(pending)
    return run


def _alone(pending: PendingSend) -> bool:
    return isinstance(pending.command.content, MediaContent)


def _start_span(pending: PendingSend) -> trace.Span:
    msg, command = pending.msg, pending.command
    attributes: dict[str, str | int] = {
        "messaging.message.delivery_count": msg.metadata.num_delivered or 1,
        "zaphub.tenant_id": str(command.tenant_id),
        "zaphub.session_id": str(command.session_id),
        "zaphub.message_id": str(command.message_id),
        "messaging.message.id": str(command.message_id),
    }
    return start_consumer_span(tracer, msg.subject, msg.headers, attributes)


def _in_span(span: trace.Span, step: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
    """`step` as a task that runs in `span`'s context (a task copies the context it is created in)."""
    with trace.use_span(span):
        return asyncio.ensure_future(step)


@contextlib.contextmanager
def _client_spans(name: str, run: Sequence[PendingSend]) -> Iterator[list[trace.Span]]:
    """A client span per command of `run`, for one request made for all of them. The request goes out
    in the head's, so the server's span joins the head's trace."""
    spans = [start_client_span(tracer, name, p.span) for p in run]
    try:
        with trace.use_span(spans[0]):
            yield spans
    finally:
        for span in spans:
            span.end()  # a no-op for a consumer span that came back as its own (not recorded) child


def _traceparents(spans: Sequence[trace.Span]) -> list[str]:
    """Each span's W3C traceparent, so the host's span of each command joins that command's trace;
    none when no command has a trace to join."""
    if not any(span.get_span_context().is_valid for span in spans):
        return []
    return [inject_headers(span=span).get("traceparent", "") for span in spans]


def _order_delay(cursor: Cursor, deliveries: int) -> float:
    """How long a command waits behind an unfinished predecessor before it asks again."""
    waiting = float(cursor.blocked_until) - time.time()
    if waiting > 0:
        return waiting + 0.01
    # Short: the head is usually in flight on another replica and done within milliseconds.
    return min(0.02 * 2.0 ** min(deliveries, 5), 0.5)
