"""The NATS connection every service shares: JetStream streams and buckets from the contracts,
typed publishing with trace context and dedup ids, and dead-lettering."""

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel

from zaphub_contracts import streams, subjects
from zaphub_contracts.deadletters import DeadLetter
from zaphub_contracts.events import EventBase
from zaphub_contracts.failures import FailureReason
from zaphub_runtime.codec import encode
from zaphub_runtime.telemetry import inject_headers

__all__ = ["MSG_ID", "Bus", "consumer_config"]

log = logging.getLogger(__name__)

MSG_ID = "Nats-Msg-Id"


def _stream_config(spec: streams.StreamSpec, replicas: int) -> js_api.StreamConfig:
    return js_api.StreamConfig(
        name=spec.name,
        description=spec.description,
        subjects=list(spec.subjects),
        retention=js_api.RetentionPolicy(spec.retention.value),
        storage=js_api.StorageType.FILE,
        max_age=spec.max_age or None,
        duplicate_window=spec.duplicate_window,
        allow_msg_ttl=spec.allow_msg_ttl or None,
        max_msgs=spec.max_msgs or None,
        max_bytes=spec.max_bytes or None,
        discard=js_api.DiscardPolicy.NEW if spec.discard_new else None,
        allow_msg_schedules=spec.allow_msg_schedules or None,
        allow_direct=True,
        num_replicas=replicas,
    )


def consumer_config(spec: streams.ConsumerSpec, filters: Sequence[str] = ()) -> js_api.ConsumerConfig:
    """The durable consumer of `spec`; `filters`, when given, narrow it to those subjects instead of
    the spec's filter."""
    return js_api.ConsumerConfig(
        durable_name=spec.durable,
        filter_subject=None if filters else spec.filter_subject,
        filter_subjects=list(filters) or None,
        ack_policy=js_api.AckPolicy.EXPLICIT,
        ack_wait=spec.ack_wait,
        max_ack_pending=spec.max_ack_pending,
        max_deliver=-1,  # attempts are counted by the consumer itself, never by redelivery
        deliver_policy=js_api.DeliverPolicy.ALL,
        description=spec.description,
    )


@dataclass
class Bus:
    nc: Client
    js: JetStreamContext
    source: str  # CloudEvents source of this process, e.g. /zaphub/dispatcher/host-123
    replicas: int = 1  # JetStream replicas of the streams and buckets this process creates (3 in a cluster)
    url: str = ""  # the servers it connected to, for `connect_another`

    @classmethod
    async def connect(cls, url: str, name: str, source: str, replicas: int = 1) -> "Bus":
        nc = await nats.connect(
            servers=[u.strip() for u in url.split(",")],
            name=name,
            max_reconnect_attempts=-1,  # a NATS restart must never kill a service
            reconnect_time_wait=0.5,
            connect_timeout=5,
            allow_reconnect=True,
        )
        return cls(nc=nc, js=nc.jetstream(timeout=10), source=source, replicas=replicas, url=url)

    async def connect_another(self, name: str) -> "Bus":
        """A second connection of this process (same servers, source and replicas): a worker whose
        traffic must not queue on the same socket as another's."""
        return await Bus.connect(self.url, name, self.source, self.replicas)

    async def ensure_streams(self) -> None:
        """Create or update every v1 stream; safe to run from every replica at start."""
        for spec in streams.STREAMS:
            await self.ensure_stream(spec)

    async def ensure_stream(self, spec: streams.StreamSpec) -> None:
        """Create or update one stream (those outside `STREAMS`, which only some processes use)."""
        config = _stream_config(spec, self.replicas)
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            await self.js.update_stream(config)

    async def ensure_consumer(self, spec: streams.ConsumerSpec, filters: Sequence[str] = ()) -> None:
        """Create the durable consumer, or update it to the spec (ack wait, pending limits, `filters`)
        if it exists."""
        try:
            await self.js.add_consumer(spec.stream, consumer_config(spec, filters))
        except BadRequestError as exc:
            # A change the server cannot apply in place keeps the existing consumer (and its filter).
            log.warning("consumer %s kept as it is: %s", spec.durable, exc)

    async def kv(self, spec: streams.BucketSpec) -> KeyValue:
        try:
            return await self.js.key_value(spec.name)
        except (NotFoundError, BadRequestError):
            return await self.js.create_key_value(
                bucket=spec.name,
                description=spec.description,
                history=spec.history,
                ttl=spec.ttl or None,
                limit_marker_ttl=1.0 if spec.per_key_ttl else None,
                replicas=self.replicas,
            )

    async def publish(
        self,
        subject: str,
        model: BaseModel,
        msg_id: str | None = None,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> js_api.PubAck:
        """Publish `model` to JetStream with the trace context; `msg_id` deduplicates it in the stream's
        window; `headers` add JetStream's own (an expected last sequence, ...). The one way every
        service publishes."""
        sent = inject_headers({**(headers or {}), **({MSG_ID: msg_id} if msg_id else {})})
        return await self.js.publish(subject, encode(model), headers=sent, timeout=timeout)

    async def publish_raw(
        self,
        subject: str,
        data: bytes,
        headers: Mapping[str, str] | None = None,
        msg_ttl: float | None = None,
        timeout: float = 5.0,
    ) -> js_api.PubAck:
        """Publish bytes that are not a model of this process (a copy of a fetched message, a KV
        value) with exactly `headers`: a copy keeps its original's trace context; `msg_ttl` expires
        it (the stream must allow per-message TTLs)."""
        return await self.js.publish(
            subject, data, headers=dict(headers) if headers else None, msg_ttl=msg_ttl, timeout=timeout
        )

    async def publish_event(self, event: EventBase, timeout: float = 5.0) -> None:
        """Publish to JetStream, deduplicated by the event id."""
        subject = subjects.event(event.tenantid, event.sessionid, event.short)
        headers = {MSG_ID: str(event.id), "Ce-Type": event.type}
        # An event that carries its producer's trace continues it; others take the current span's.
        headers = (
            {**headers, "traceparent": event.traceparent} if event.traceparent else inject_headers(headers)
        )
        await self.js.publish(subject, encode(event), headers=headers, timeout=timeout)

    async def publish_command(self, subject: str, command: BaseModel, msg_id: str) -> None:
        await self.publish(subject, command, msg_id)

    async def answer(self, inbox: str, model: BaseModel) -> None:
        """Publish `model` on core NATS to a requester's inbox, with the trace context: not stored, and
        lost without error when nobody listens any more."""
        await self.nc.publish(inbox, encode(model), headers=inject_headers())

    async def request(self, subject: str, payload: BaseModel, timeout: float) -> Msg:
        return await self.nc.request(subject, encode(payload), timeout=timeout, headers=inject_headers())

    async def dead_letter(
        self,
        msg: Msg,
        reason: FailureReason,
        detail: str,
        component: str,
        attempts: int = 0,
        route: tuple[str, str] | None = None,
    ) -> None:
        """Copy a message that cannot be processed to the DLQ stream, with why.

        `route` (tenant, session) names the DLQ subject when the message's own subject does not.
        """
        tenant, session = route or subjects.tenant_session_tokens(msg.subject)
        seq = msg.metadata.sequence.stream if msg.reply and msg.reply.startswith("$JS.ACK") else None
        letter = DeadLetter(
            reason=reason,
            detail=detail[:4000],
            original_subject=msg.subject,
            original_stream_seq=seq,
            payload=msg.data.decode("utf-8", errors="replace")[:1_000_000],
            headers={k: v for k, v in (msg.headers or {}).items() if k != MSG_ID},
            attempts=attempts,
            failed_at=datetime.now(UTC),
            component=component,
        )
        msg_id = f"dlq:{msg.subject}:{seq}" if seq is not None else None
        await self.publish(subjects.dead_letter(tenant, session), letter, msg_id)
        log.warning(
            "dead-lettered",
            extra={"fields": {"reason": reason.value, "subject": msg.subject, "component": component}},
        )

    async def close(self) -> None:
        if self.nc.is_connected:
            try:
                await asyncio.wait_for(self.nc.drain(), timeout=5)
            except (TimeoutError, nats.errors.Error):
                await self.nc.close()
        elif not self.nc.is_closed:
            await self.nc.close()
