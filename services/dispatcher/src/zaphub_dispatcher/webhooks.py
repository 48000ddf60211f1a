"""The webhook worker: events → one queued delivery per matching webhook → signed POSTs with retries.

Deliveries are messages on the `ZAPHUB_WEBHOOKS` work queue, so a pending one survives any restart;
a failed attempt is a NAK with a backoff delay, the last one a dead letter. Delivery is at least once:
a crash between a POST and its ack repeats the POST, and receivers deduplicate by `ZapHub-Delivery-Id`.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
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
)
from zaphub_dispatcher import metrics
from zaphub_dispatcher.backoff import RetryPolicy
from zaphub_dispatcher.webhook_signing import SIGNATURE_HEADER, sign
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import decode_or_dead_letter, parse_body
from zaphub_runtime.kv_watch import KvMirror
from zaphub_runtime.telemetry import consumer_span

log = logging.getLogger(__name__)
tracer = trace.get_tracer("zaphub_dispatcher.webhooks")
COMPONENT = "webhooks"
CONTENT_TYPE = "application/cloudevents+json"
USER_AGENT = "ZapHub-Webhooks/1"


class WebhookDirectory:
    """Every tenant's webhooks, kept current in memory by a mirror of the webhooks bucket."""

    def __init__(self) -> None:
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
        if config is None:
            hooks = self._by_tenant.get(tenant_id, {})
            hooks.pop(webhook_id, None)
            if not hooks:
                self._by_tenant.pop(tenant_id, None)
            return
        self._by_tenant.setdefault(tenant_id, {})[webhook_id] = config

    async def start(self, bucket: KeyValue) -> None:
        """Load every entry, then keep following the bucket in the background."""
        self._mirror = KvMirror(bucket, WebhookConfig, self._apply, "webhooks")
        await self._mirror.start(timeout=30.0)

    async def stop(self) -> None:
        if self._mirror is not None:
            await self._mirror.stop()


class WebhookFanout:
    """Turns each event on `ZAPHUB_EVT` into one queued delivery per matching active webhook."""

    def __init__(self, bus: Bus, directory: WebhookDirectory) -> None:
        self._bus = bus
        self._directory = directory

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
        targets = [w for w in self._directory.for_tenant(event.tenantid) if w.wants(event.short)]
        try:
            for webhook in targets:
                delivery = WebhookDelivery(
                    delivery_id=delivery_id(event.id, webhook.id),
                    webhook_id=webhook.id,
                    tenant_id=event.tenantid,
                    session_id=event.sessionid,
                    event_id=event.id,
                    event_type=event.short,
                    event_seq=msg.metadata.sequence.stream,
                    body=msg.data.decode(),
                )
                await enqueue(self._bus, delivery)
        except Exception:
            log.warning("could not queue webhook deliveries; will retry", exc_info=True)
            await msg.nak(delay=1.0)
            return
        await msg.ack()


async def enqueue(bus: Bus, delivery: WebhookDelivery) -> None:
    """Queue a delivery; a repeat of the same enqueue is dropped by JetStream."""
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


def http_poster(client: httpx.AsyncClient) -> Post:
    async def post(url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return PostResult(None, "timeout")
        except httpx.HTTPError as exc:
            return PostResult(None, f"{exc.__class__.__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:
            return PostResult(response.status_code, None)
        return PostResult(response.status_code, f"HTTP {response.status_code}: {response.text[:200]}")

    return post


class WebhookSender:
    """POSTs queued deliveries, several at once; records each attempt; retries, then dead-letters."""

    def __init__(
        self, bus: Bus, directory: WebhookDirectory, post: Post, policy: RetryPolicy, concurrency: int
    ) -> None:
        self._bus = bus
        self._directory = directory
        self._post = post
        self._policy = policy
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle_batch(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            await self._slots.acquire()
            task = asyncio.create_task(self._run(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def _run(self, msg: Msg) -> None:
        try:
            with consumer_span(tracer, msg.subject, msg.headers, {"zaphub.consumer": "webhook-deliveries"}):
                await self.process(msg)
        except Exception:
            log.exception("webhook delivery failed unexpectedly; it will be redelivered")
            with contextlib.suppress(Exception):
                await msg.nak(delay=self._policy.base_delay)
        finally:
            self._slots.release()

    async def process(self, msg: Msg) -> None:
        delivery = await decode_or_dead_letter(self._bus, msg, parse_body(WebhookDelivery), COMPONENT)
        if delivery is None:
            return
        attempt = delivery.first_attempt + (msg.metadata.num_delivered or 1) - 1
        webhook = self._directory.get(delivery.tenant_id, delivery.webhook_id)
        if webhook is None or not webhook.active:
            # Deleted or paused since the event: nobody wants this delivery any more.
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
        await msg.in_progress()  # restart ack_wait: the message may have waited for a free slot
        started = time.monotonic()
        result = await self._post(webhook.url, body, headers)
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
        await msg.nak(delay=delay)

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
        await self._bus.publish(subject, record, f"{delivery.delivery_id}:attempt:{attempt}")
