"""The webhook worker: events → one queued delivery per matching webhook → signed POSTs with retries.

Deliveries are messages on the `ZAPHUB_WEBHOOKS` work queue, so a pending one survives any restart;
a failed attempt is re-published as the next attempt on the retry subject, to wait there for its
backoff delay; the last one is a dead letter. Delivery is at least once:
a crash between a POST and its ack repeats the POST, and receivers deduplicate by `ZapHub-Delivery-Id`.
"""

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from nats.aio.msg import Msg
from nats.js.kv import KeyValue
from opentelemetry import trace
from pydantic import ValidationError

from zaphub_contracts import events as ev
from zaphub_contracts import subjects
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.webhooks import (
    AttemptStatus,
    WebhookAttempt,
    WebhookConfig,
    WebhookDelivery,
    delivery_id,
    secret_aad,
)
from zaphub_dispatcher import metrics
from zaphub_dispatcher.backoff import RetryPolicy
from zaphub_dispatcher.webhook_pacing import Pacer
from zaphub_dispatcher.webhook_signing import SIGNATURE_HEADER, sign
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import decode_or_dead_letter, parse_body
from zaphub_runtime.egress import EgressClient, EgressError, EgressRefused
from zaphub_runtime.keyring import KeyRing, SecretRefused
from zaphub_runtime.kv_watch import KvMirror
from zaphub_runtime.telemetry import consumer_span, inject_headers

log = logging.getLogger(__name__)
tracer = trace.get_tracer("zaphub_dispatcher.webhooks")
COMPONENT = "webhooks"
CONTENT_TYPE = "application/cloudevents+json"
USER_AGENT = "ZapHub-Webhooks/1"


class WebhookDirectory:
    """Every tenant's webhooks, kept current in memory by a mirror of the webhooks bucket. Sealed
    secrets are opened once per bucket update; a webhook whose secret does not open is left out
    (logged), so it is never POSTed unsigned."""

    def __init__(self, ring: KeyRing | None = None) -> None:
        self._ring = ring
        self._by_tenant: dict[UUID, dict[UUID, WebhookConfig]] = {}
        self._mirror: KvMirror[WebhookConfig] | None = None
        self.changed = asyncio.Event()  # set on every change; whoever follows the changes clears it

    def has_webhooks(self, tenant_id: UUID) -> bool:
        return bool(self._by_tenant.get(tenant_id))

    def tenants_with_active_webhooks(self) -> set[UUID]:
        return {tenant for tenant, hooks in self._by_tenant.items() if any(w.active for w in hooks.values())}

    def for_tenant(self, tenant_id: UUID) -> list[WebhookConfig]:
        return list(self._by_tenant.get(tenant_id, {}).values())

    def get(self, tenant_id: UUID, webhook_id: UUID) -> WebhookConfig | None:
        return self._by_tenant.get(tenant_id, {}).get(webhook_id)

    def _apply(self, key: str, config: WebhookConfig | None) -> None:
        """Index one change of the mirror by tenant (`config` None once deleted)."""
        tenant_token, _, webhook_token = key.partition(".")
        try:
            tenant_id, webhook_id = UUID(tenant_token), UUID(webhook_token)
        except ValueError:
            log.warning("unreadable webhooks key", extra={"fields": {"key": key}})
            return
        self.changed.set()
        if config is not None:
            config = self._opened(key, config)
        if config is None:
            hooks = self._by_tenant.get(tenant_id, {})
            hooks.pop(webhook_id, None)
            if not hooks:
                self._by_tenant.pop(tenant_id, None)
            return
        self._by_tenant.setdefault(tenant_id, {})[webhook_id] = config

    def _opened(self, key: str, config: WebhookConfig) -> WebhookConfig | None:
        """The config with its plain signing secret; None when it cannot be had."""
        if config.sealed_secret is None:
            if config.secret:
                return config  # written by an API from before sealed secrets (rolling upgrade)
            reason = "no secret"
        elif self._ring is None:
            reason = "no key ring"
        else:
            try:
                secret = self._ring.decrypt_text(
                    config.sealed_secret, secret_aad(config.tenant_id, config.id)
                )
            except SecretRefused as exc:
                reason = exc.__class__.__name__
            else:
                return config.model_copy(update={"secret": secret})
        log.warning(
            "webhook skipped: its secret does not open", extra={"fields": {"key": key, "reason": reason}}
        )
        return None

    async def start(self, bucket: KeyValue) -> None:
        """Load every entry, then keep following the bucket in the background."""
        self._mirror = KvMirror(bucket, WebhookConfig, self._apply, "webhooks")
        await self._mirror.start(timeout=30.0)

    async def stop(self) -> None:
        if self._mirror is not None:
            await self._mirror.stop()


# Says how long a new delivery to (tenant, webhook) would wait before its POST (0: none).
WaitNow = Callable[[UUID, UUID], float]


class WebhookFanout:
    """Turns each event on `ZAPHUB_EVT` into one queued delivery per matching active webhook.

    A delivery that would only wait (its tenant's POSTs fill its slots on this replica, or its
    endpoint's breaker is open) is queued straight on the retry subject with its wait: moved there by
    the sender, it cost two more JetStream writes and a delivery, the bulk of what a tenant with
    black-holed endpoints made every other tenant pay.
    """

    def __init__(self, bus: Bus, directory: WebhookDirectory, wait_now: WaitNow | None = None) -> None:
        self._bus = bus
        self._directory = directory
        self._wait_now = wait_now

    async def handle_batch(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            if not self._tenant_has_webhooks(msg.subject):
                # Most events go nowhere: skip the parse and the span, just ack.
                await msg.ack()
                continue
            with consumer_span(tracer, msg.subject, msg.headers, {"zaphub.consumer": "webhooks"}):
                await self._handle(msg)

    def _tenant_has_webhooks(self, subject: str) -> bool:
        """False only when the subject names a tenant without webhooks; unreadable subjects go on."""
        try:
            tenant_id = subjects.parse(subject).tenant_id
        except subjects.SubjectError:
            return True
        return self._directory.has_webhooks(tenant_id)

    async def _handle(self, msg: Msg) -> None:
        try:
            event = ev.parse_event(msg.data)
        except ValidationError:
            await msg.ack()  # the projector dead-letters malformed events; one copy is enough
            return
        # Some events (an imported history) are projected and streamed, never POSTed.
        webhooks = self._directory.for_tenant(event.tenantid) if event.webhooks else []
        targets = [w for w in webhooks if w.wants(event.short)]
        deliveries = [
            WebhookDelivery(
                delivery_id=delivery_id(event.id, webhook.id),
                webhook_id=webhook.id,
                tenant_id=event.tenantid,
                session_id=event.sessionid,
                event_id=event.id,
                event_type=event.short,
                event_seq=msg.metadata.sequence.stream,
                body=msg.data.decode(),
            )
            for webhook in targets
        ]
        try:
            # At once, not one after the other: a tenant's ten webhooks must not hold up the next
            # tenant's event behind ten round trips.
            await asyncio.gather(*(enqueue(self._bus, self._deferred(d)) for d in deliveries))
        except Exception:
            log.warning("could not queue webhook deliveries; will retry", exc_info=True)
            await msg.nak(delay=1.0)
            return
        await msg.ack()

    def _deferred(self, delivery: WebhookDelivery) -> WebhookDelivery:
        wait = self._wait_now(delivery.tenant_id, delivery.webhook_id) if self._wait_now else 0.0
        if not wait:
            return delivery
        # Its id stays that of the delivery: a repeated fan-out of the event is dropped by JetStream
        # whichever subject either copy went to.
        return delivery.model_copy(update={"not_before": datetime.now(UTC) + timedelta(seconds=wait)})


async def enqueue(bus: Bus, delivery: WebhookDelivery) -> None:
    """Queue a delivery (on the retry subject when it has a `not_before`: it waits there); a repeat of
    the same enqueue is dropped by JetStream."""
    if delivery.not_before is not None:
        subject = subjects.webhook_retry(delivery.tenant_id, delivery.webhook_id)
    else:
        subject = subjects.webhook_delivery(delivery.tenant_id, delivery.webhook_id)
    await bus.publish(subject, delivery, delivery.msg_id)


@dataclass(frozen=True)
class PostResult:
    code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


Post = Callable[[str, bytes, dict[str, str]], Awaitable[PostResult]]


def egress_poster(client: EgressClient, deadline: float, read_bytes: int = 4096) -> Post:
    """POSTs through the egress policy (address pinned, no redirect followed, total deadline, a few KiB
    of the answer read). Only the status code is kept, and errors keep only the generic egress reasons:
    a remote body or an exception text would let a tenant read or scan what the dispatcher can reach."""

    async def post(url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        try:
            code = await client.post(
                url, content=body, headers=headers, deadline=deadline, read_bytes=read_bytes
            )
        except EgressRefused as exc:
            return PostResult(None, f"refused: {exc.reason}")
        except EgressError as exc:
            return PostResult(None, exc.reason)
        return PostResult(code, None if 200 <= code < 300 else f"HTTP {code}")

    return post


class Breaker:
    """One endpoint's circuit breaker: after `threshold` failures in a row it opens for `cooldown`
    seconds (deliveries wait without being attempted), then lets one probe through (half-open): a
    success closes it, a failure opens it again. While the probe runs, the others wait as long as it may
    take (`probe_timeout`): asked again every second, thousands of waiting deliveries cost thousands of
    looks a second."""

    def __init__(self, threshold: int, cooldown: float, probe_timeout: float = 1.0) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._probe_timeout = probe_timeout
        self.failures = 0
        self.open_until = 0.0
        self.probing = False
        self._probe_until = 0.0

    def wait(self, now: float, probe: bool = True) -> float:
        """Seconds to wait before an attempt may start (0: go); `probe=False` only asks, so a 0 in the
        half-open state does not take the probe's turn."""
        if self.failures < self._threshold:
            return 0.0
        if now < self.open_until:
            return self.open_until - now
        if self.probing:
            return max(1.0, self._probe_until - now)
        if not probe:
            return 0.0
        self.probing = True
        self._probe_until = now + self._probe_timeout
        return 0.0

    def record(self, ok: bool, now: float) -> None:
        self.probing = False
        if ok:
            self.failures = 0
            return
        self.failures += 1
        if self.failures >= self._threshold:
            self.open_until = now + self._cooldown


# Seconds a fetched delivery may wait for a slot before its POST resets ack_wait (60 s, longer than
# one POST's deadline plus this).
SLOT_WAIT_BEFORE_IN_PROGRESS = 1.0


@dataclass(frozen=True)
class Fairness:
    tenant_concurrency: int = 8  # POSTs of one tenant in flight per replica
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    max_wait: float = 3600.0  # longest NAK delay of a waiting delivery; it is looked at again then
    post_timeout: float = 10.0  # one POST's deadline: how long a breaker's probe may take


class WebhookSender:
    """POSTs queued deliveries, several at once; records each attempt; retries, then dead-letters.

    Fair sharing: a tenant has at most `tenant_concurrency` POSTs in flight, and an endpoint whose
    breaker is open is not attempted. A delivery that must wait (its tenant at the cap, its breaker
    open, a retry) is moved to the retry subject, whose own consumer holds it NAK'd with its delay:
    the consumer of new deliveries is never filled by one tenant's waiting deliveries. Attempt
    numbers travel in the delivery, so only real POSTs count as attempts.
    """

    def __init__(
        self,
        bus: Bus,
        directory: WebhookDirectory,
        post: Post,
        policy: RetryPolicy,
        concurrency: int,
        fairness: Fairness | None = None,
    ) -> None:
        self._bus = bus
        self._directory = directory
        self._post = post
        self._policy = policy
        self._fair = fairness or Fairness()
        self._slots = asyncio.Semaphore(concurrency)
        self._breakers: dict[UUID, Breaker] = {}
        self._pacer = Pacer(self._fair.tenant_concurrency, self._fair.max_wait)
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle_batch(self, msgs: list[Msg]) -> None:
        fetched = time.monotonic()
        for msg in msgs:
            try:
                delivery = await decode_or_dead_letter(self._bus, msg, parse_body(WebhookDelivery), COMPONENT)
                if delivery is None or not await self._admit(msg, delivery):
                    continue
            except Exception:
                log.exception("webhook delivery could not be admitted; it will be redelivered")
                with contextlib.suppress(Exception):
                    await msg.nak(delay=1.0)
                continue
            await self._slots.acquire()
            started = time.monotonic()
            self._pacer.began(delivery.tenant_id, started)
            task = asyncio.create_task(self._run(msg, delivery, fetched, started))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    def _breaker(self, webhook_id: UUID) -> Breaker:
        breaker = self._breakers.get(webhook_id)
        if breaker is None:
            breaker = self._breakers[webhook_id] = Breaker(
                self._fair.breaker_failures, self._fair.breaker_cooldown, self._fair.post_timeout
            )
        return breaker

    async def _admit(self, msg: Msg, delivery: WebhookDelivery) -> bool:
        """True when the delivery may be POSTed now; otherwise it was settled or put back to wait."""
        webhook = self._directory.get(delivery.tenant_id, delivery.webhook_id)
        if webhook is None or not webhook.active:
            # Deleted or paused since the event: nobody wants this delivery any more.
            await self._record(
                delivery, delivery.first_attempt, AttemptStatus.FAILED, None, "webhook deleted or inactive"
            )
            await msg.ack()
            return False
        now = datetime.now(UTC)
        if delivery.not_before is not None and delivery.not_before > now:
            await self._wait(msg, delivery, (delivery.not_before - now).total_seconds())
            return False
        if wait := self.wait_now(delivery.tenant_id, webhook.id):
            await self._wait(msg, delivery, wait)
            return False
        return True

    def wait_now(self, tenant_id: UUID, webhook_id: UUID, probe: bool = True) -> float:
        """Seconds a delivery to this webhook would wait if it came now (0: it may be POSTed);
        `probe=False` asks without taking the breaker's half-open probe."""
        if self._pacer.in_flight(tenant_id) >= self._fair.tenant_concurrency:
            # Its turn comes as fast as its slots free, not sooner (see webhook_pacing.py).
            return self._pacer.wait(tenant_id, time.monotonic())
        # Spread out: an endpoint's backlog waking at once at the end of its cool-down would cost every
        # tenant CPU.
        return self._breaker(webhook_id).wait(time.monotonic(), probe) * random.uniform(1.0, 1.1)

    async def _wait(self, msg: Msg, delivery: WebhookDelivery, seconds: float) -> None:
        """Hold the delivery for `seconds` without an attempt: NAK'd on the retry consumer, or moved
        there from the consumer of new deliveries."""
        seconds = min(max(seconds, 0.05), self._fair.max_wait)
        if msg.subject.startswith(subjects.WEBHOOK_RETRY_ALL[:-1]):
            await msg.nak(delay=seconds)
            return
        later = delivery.model_copy(
            update={
                "not_before": datetime.now(UTC) + timedelta(seconds=seconds),
                "deferrals": delivery.deferrals + 1,
            }
        )
        await self._bus.publish(
            subjects.webhook_retry(delivery.tenant_id, delivery.webhook_id), later, later.msg_id
        )
        await msg.ack()

    async def _run(self, msg: Msg, delivery: WebhookDelivery, fetched: float, started: float) -> None:
        try:
            with consumer_span(tracer, msg.subject, msg.headers, {"zaphub.consumer": "webhook-deliveries"}):
                await self.process(msg, delivery, fetched)
        except Exception:
            log.exception("webhook delivery failed unexpectedly; it will be redelivered")
            self._breaker(delivery.webhook_id).probing = False  # a probe that never POSTed frees its turn
            with contextlib.suppress(Exception):
                await msg.nak(delay=self._policy.base_delay)
        finally:
            self._pacer.finished(delivery.tenant_id, started, time.monotonic())
            self._slots.release()

    async def process(self, msg: Msg, delivery: WebhookDelivery, fetched: float | None = None) -> None:
        attempt = delivery.first_attempt
        webhook = self._directory.get(delivery.tenant_id, delivery.webhook_id)
        if webhook is None or not webhook.active:
            await self._record(delivery, attempt, AttemptStatus.FAILED, None, "webhook deleted or inactive")
            await msg.ack()
            return
        body = delivery.body.encode()
        headers = {
            "Content-Type": CONTENT_TYPE,
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(webhook.secret, body),
            "ZapHub-Event-Id": str(delivery.event_id),
            "ZapHub-Event-Type": delivery.event_type,
            "ZapHub-Delivery-Id": str(delivery.delivery_id),
            "ZapHub-Attempt": str(attempt),
        }
        if fetched is None or time.monotonic() - fetched > SLOT_WAIT_BEFORE_IN_PROGRESS:
            # It waited for a free slot: restart ack_wait so the POST gets all of it. Not for every
            # delivery: one more NATS write each was a tenth of the dispatcher's inbound CPU.
            await msg.in_progress()
        started = time.monotonic()
        with tracer.start_as_current_span(
            "webhook POST", kind=trace.SpanKind.CLIENT, attributes={"http.request.method": "POST"}
        ):
            # The receiver may continue the trace: received -> stored -> POSTed -> its own handling.
            result = await self._post(webhook.url, body, inject_headers(headers))
        self._breaker(webhook.id).record(result.ok, time.monotonic())
        duration_ms = int((time.monotonic() - started) * 1000)
        span = trace.get_current_span()
        span.set_attributes({"zaphub.webhook_id": str(webhook.id), "zaphub.attempt": attempt})
        if result.ok:
            await self._record(delivery, attempt, AttemptStatus.SUCCEEDED, result.code, None, duration_ms)
            await msg.ack()
            return
        error = result.error or "failed"
        if attempt >= self._policy.max_attempts:
            await self._record(delivery, attempt, AttemptStatus.FAILED, result.code, error, duration_ms)
            detail = f"webhook {webhook.id}: {error}"
            route = (str(delivery.tenant_id), str(delivery.session_id))
            await self._bus.dead_letter(
                msg, FailureReason.ATTEMPTS_EXHAUSTED, detail, COMPONENT, attempt, route=route
            )
            await msg.ack()
            return
        delay = self._policy.delay(attempt)
        next_at = datetime.now(UTC) + timedelta(seconds=delay)
        await self._record(
            delivery, attempt, AttemptStatus.RETRYING, result.code, error, duration_ms, next_at
        )
        # The retry is a new message (its own id: the next attempt number) waiting on the retry consumer.
        retry = delivery.model_copy(
            update={"first_attempt": attempt + 1, "not_before": next_at, "deferrals": 0}
        )
        await self._bus.publish(
            subjects.webhook_retry(delivery.tenant_id, delivery.webhook_id), retry, retry.msg_id
        )
        await msg.ack()

    async def _record(
        self,
        delivery: WebhookDelivery,
        attempt: int,
        status: AttemptStatus,
        code: int | None,
        error: str | None,
        duration_ms: int = 0,
        next_attempt_at: datetime | None = None,
    ) -> None:
        metrics.webhook_attempt(status.value)
        record = WebhookAttempt(
            delivery_id=delivery.delivery_id,
            webhook_id=delivery.webhook_id,
            tenant_id=delivery.tenant_id,
            session_id=delivery.session_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            event_seq=delivery.event_seq,
            attempt=attempt,
            status=status,
            response_code=code,
            error=error,
            duration_ms=duration_ms,
            at=datetime.now(UTC),
            next_attempt_at=next_attempt_at,
        )
        subject = subjects.webhook_attempt(delivery.tenant_id, delivery.webhook_id)
        # The outcome is part of the id: a delivery redelivered after a crash repeats its attempt
        # number, and its new outcome must not be dropped as a duplicate of the one recorded before.
        await self._bus.publish(subject, record, f"{delivery.delivery_id}:attempt:{attempt}:{status.value}")
