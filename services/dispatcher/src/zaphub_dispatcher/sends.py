"""The send pipeline: order gate → rate limit → owning host → outcome (event, cursor, ack or retry)."""

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from nats.aio.msg import Msg
from opentelemetry import trace
from pydantic import ValidationError

from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.failures import FailureReason, is_transient
from zaphub_contracts.host import HostError, HostOk
from zaphub_dispatcher import metrics
from zaphub_dispatcher.attempts import Attempts
from zaphub_dispatcher.backoff import backoff_delay
from zaphub_dispatcher.clients import HostClient, RateLimiterClient, RateLimiterUnavailable
from zaphub_dispatcher.emitter import Emitter
from zaphub_dispatcher.order import Cursor, OrderGate
from zaphub_runtime.bus import Bus
from zaphub_runtime.telemetry import client_span, consumer_span

log = logging.getLogger(__name__)
tracer = trace.get_tracer("zaphub_dispatcher")
COMPONENT = "dispatcher"
RATELIMITER_RETRY = 1.0  # seconds; the ratelimiter being away is not the message's fault
# Times the commands behind a missing message of their session look again for it (0.04 s, then
# doubling to 0.5 s: ~1.6 s in all) before they go back to JetStream.
ORDER_LOOKS = 6


@dataclass(eq=False)
class PendingSend:
    """A fetched send command waiting in its session's lane."""

    msg: Msg
    command: SendMessage

    @property
    def order(self) -> int:
        return self.command.seq


@dataclass
class _Gap:
    """A session whose next message has not come here: the commands behind it share one wait."""

    missing: int  # the seq looked for
    looks: int = 0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_delay: float
    max_delay: float


class SendPipeline:
    def __init__(
        self,
        bus: Bus,
        gate: OrderGate,
        attempts: Attempts,
        ratelimiter: RateLimiterClient,
        hosts: HostClient,
        emitter: Emitter,
        policy: RetryPolicy,
    ) -> None:
        self._bus = bus
        self._gate = gate
        self._attempts = attempts
        self._ratelimiter = ratelimiter
        self._hosts = hosts
        self._emit = emitter
        self._policy = policy
        self._gaps: dict[UUID, _Gap] = {}

    async def prepare(self, msg: Msg) -> PendingSend | None:
        """The command a fetched message holds, or None when it was malformed and is dead-lettered."""
        try:
            command = SendMessage.model_validate_json(msg.data)
            routed = subjects.parse(msg.subject)
        except (ValidationError, subjects.SubjectError) as exc:
            await self._poison(msg, FailureReason.MALFORMED_COMMAND, str(exc))
            return None
        if (routed.tenant_id, routed.session_id) != (command.tenant_id, command.session_id):
            await self._poison(
                msg, FailureReason.MALFORMED_COMMAND, "subject and body name different sessions"
            )
            return None
        return PendingSend(msg, command)

    async def process(self, pending: PendingSend) -> float | None:
        """Send, or hand back; seconds to wait for an earlier message of the session when out of order."""
        msg, command = pending.msg, pending.command
        attributes: dict[str, str | int] = {
            "messaging.message.delivery_count": msg.metadata.num_delivered or 1,
            "zaphub.tenant_id": str(command.tenant_id),
            "zaphub.session_id": str(command.session_id),
            "zaphub.message_id": str(command.message_id),
            "messaging.message.id": str(command.message_id),
        }
        with consumer_span(tracer, msg.subject, msg.headers, attributes) as span:
            turn = await self._turn(pending)
            if turn is True:
                await self._process(command, msg, span)
                return None
            span.add_event("waiting for an earlier message of the session")
            return None if turn is False else turn

    async def _process(self, command: SendMessage, msg: Msg, span: trace.Span) -> None:
        try:
            with client_span(tracer, "ratelimit acquire"):
                decision = await self._ratelimiter.acquire(command)
        except RateLimiterUnavailable as exc:
            log.warning("ratelimiter unavailable: %s", exc)
            metrics.outcome("ratelimiter_unavailable")
            await msg.nak(delay=RATELIMITER_RETRY)
            return
        if not decision.granted:
            span.add_event(
                "rate limited", {"retry_after": decision.retry_after, "window": decision.window or ""}
            )
            await self._wait_for_rate_limit(command, msg, decision.retry_after, decision.window)
            return
        with (
            client_span(tracer, "session-host send") as send_span,
            metrics.HostTimer() as timer,
        ):
            reply = await self._hosts.send(command)
            send_span.set_attribute("zaphub.outcome", reply.status)
            timer.status = reply.status
        if isinstance(reply, HostOk):
            sent_at = reply.sent_at or datetime.now(UTC)
            metrics.sent(command, sent_at)
            await self._finish(command, msg, self._emit.sent(command, reply.whatsapp_id or "", sent_at))
            return
        await self._give_back(command)
        if is_transient(reply.reason):
            await self._retry_or_fail(command, msg, reply)
        else:
            await self._fail(
                command, msg, reply.reason, reply.detail, await self._attempts.count(command.message_id)
            )

    async def _poison(self, msg: Msg, reason: FailureReason, detail: str) -> None:
        attributes = {"messaging.message.delivery_count": msg.metadata.num_delivered or 1}
        with consumer_span(tracer, msg.subject, msg.headers, attributes) as span:
            span.set_attribute("zaphub.outcome", "dead_lettered")
            metrics.poisoned(reason.value)
            try:
                await self._bus.dead_letter(msg, reason, detail, component=COMPONENT)
                await msg.ack()
            except Exception:
                # NATS away: the command comes back after ack_wait; the fetch loop must go on.
                log.warning("could not dead-letter a malformed command; it will be redelivered")

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
            await self._emit.rate_limited(command, delay, cursor.window)  # type: ignore[arg-type]
        await msg.nak(delay=delay)
        metrics.outcome("order_wait")
        return False

    async def _wait_for_rate_limit(
        self, command: SendMessage, msg: Msg, retry_after: float, window: str | None
    ) -> None:
        metrics.rate_limited(command, window)
        await self._emit.rate_limited(command, retry_after, window)  # type: ignore[arg-type]
        await self._gate.block(command.session_id, command.seq, retry_after, rate_limited=True, window=window)
        # Exactly when the window frees; not an attempt.
        await msg.nak(delay=max(retry_after, 0.001))

    async def _retry_or_fail(self, command: SendMessage, msg: Msg, error: HostError) -> None:
        attempt = await self._attempts.failed(command.message_id)
        if attempt >= self._policy.max_attempts:
            metrics.dead_letter(FailureReason.ATTEMPTS_EXHAUSTED.value)
            await self._bus.dead_letter(
                msg, FailureReason.ATTEMPTS_EXHAUSTED, f"{error.reason}: {error.detail}", COMPONENT, attempt
            )
            await self._fail(
                command, msg, FailureReason.ATTEMPTS_EXHAUSTED, f"{error.reason}: {error.detail}", attempt
            )
            return
        delay = backoff_delay(attempt, self._policy.base_delay, self._policy.max_delay)
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
        await msg.nak(delay=delay)

    async def _give_back(self, command: SendMessage) -> None:
        try:
            await self._ratelimiter.release(command)
        except RateLimiterUnavailable:
            # Keeping the token errs on the safe side: the tenant sends less, never more.
            log.warning("could not give back the token of %s", command.message_id)

    async def _fail(
        self, command: SendMessage, msg: Msg, reason: FailureReason, detail: str, attempts: int
    ) -> None:
        metrics.failed(command)
        await self._finish(command, msg, self._emit.failed(command, reason, detail, attempts))

    async def _finish(self, command: SendMessage, msg: Msg, event: Coroutine[Any, Any, None]) -> None:
        """Publish the outcome and advance the session's cursor side by side, then ack."""
        steps = [event, self._gate.complete(command.session_id, command.seq)]
        if (msg.metadata.num_delivered or 1) > 1:
            # Attempts are counted only on a failure, and a failure always means a redelivery.
            steps.append(self._attempts.clear(command.message_id))
        await asyncio.gather(*steps)
        await msg.ack()


def _order_delay(cursor: Cursor, deliveries: int) -> float:
    """How long a command waits behind an unfinished predecessor before it asks again."""
    waiting = float(cursor.blocked_until) - time.time()
    if waiting > 0:
        return waiting + 0.01
    # Short: the head is usually in flight on another replica and done within milliseconds.
    return min(0.02 * 2.0 ** min(deliveries, 5), 0.5)
