"""Prometheus metrics of a dispatcher replica, served on `ZAPHUB_METRICS_PORT` when set: send commands
by outcome, send latency, retries, dead letters, rate-limit denials, and the lag of the durable
consumers as JetStream reports it."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import nats.errors
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge, Histogram

from zaphub_contracts.commands import SendMessage
from zaphub_contracts.streams import CONSUMERS, ConsumerSpec
from zaphub_runtime.metrics import LATENCY_BUCKETS

log = logging.getLogger(__name__)

LAG_POLL_INTERVAL = 5.0  # seconds; JetStream answers consumer_info from memory, this is cheap

# outcome: sent, failed, rate_limited, retried, dead_lettered, order_wait, duplicate,
# ratelimiter_unavailable (see docs/observability.md)
COMMANDS = Counter(
    "zaphub_dispatcher_send_commands", "Send commands processed, by what became of this delivery", ["outcome"]
)
SEND_LATENCY = Histogram(
    "zaphub_dispatcher_send_latency_seconds",
    "From the API accepting a message (its issued_at) to the host handing it to WhatsApp",
    buckets=LATENCY_BUCKETS,
)
HOST_ROUND_TRIP = Histogram(
    "zaphub_dispatcher_host_round_trip_seconds",
    "Send request to the owning session-host until its reply, by reply status",
    ["status"],
    buckets=LATENCY_BUCKETS,
)
RETRIES = Counter(
    "zaphub_dispatcher_send_retries", "Send retries scheduled after a transient error", ["reason"]
)
DEAD_LETTERS = Counter(
    "zaphub_dispatcher_dead_letters", "Commands copied to the dead-letter stream, by reason", ["reason"]
)
RATE_LIMITED = Counter(
    "zaphub_dispatcher_rate_limited",
    "Sends the ratelimiter denied (each denial, not each message), by tenant and window",
    ["tenant", "window"],
)
TENANT_MESSAGES = Counter(
    "zaphub_dispatcher_tenant_messages", "Messages with a final outcome, by tenant", ["tenant", "outcome"]
)
CONSUMER_PENDING = Gauge(
    "zaphub_jetstream_consumer_pending_messages",
    "Messages of the stream the durable consumer has not delivered yet (num_pending)",
    ["stream", "consumer"],
)
CONSUMER_ACK_PENDING = Gauge(
    "zaphub_jetstream_consumer_ack_pending_messages",
    "Messages delivered and not acknowledged yet, waiting NAK delays included (num_ack_pending)",
    ["stream", "consumer"],
)
CONSUMER_REDELIVERED = Gauge(
    "zaphub_jetstream_consumer_redelivered_messages",
    "Unacknowledged messages delivered more than once (num_redelivered)",
    ["stream", "consumer"],
)


def outcome(name: str, count: int = 1) -> None:
    COMMANDS.labels(name).inc(count)


def sent(command: SendMessage, sent_at: datetime) -> None:
    COMMANDS.labels("sent").inc()
    TENANT_MESSAGES.labels(str(command.tenant_id), "sent").inc()
    issued = command.issued_at if command.issued_at.tzinfo else command.issued_at.replace(tzinfo=UTC)
    SEND_LATENCY.observe(max((sent_at - issued).total_seconds(), 0.0))


def failed(command: SendMessage) -> None:
    COMMANDS.labels("failed").inc()
    TENANT_MESSAGES.labels(str(command.tenant_id), "failed").inc()


def rate_limited(command: SendMessage, window: str | None) -> None:
    COMMANDS.labels("rate_limited").inc()
    RATE_LIMITED.labels(str(command.tenant_id), window or "").inc()


def retried(reason: str) -> None:
    COMMANDS.labels("retried").inc()
    RETRIES.labels(reason).inc()


def dead_letter(reason: str) -> None:
    """A copy went to the DLQ; the command's outcome is counted on its own (failed, or poisoned)."""
    DEAD_LETTERS.labels(reason).inc()


def poisoned(reason: str) -> None:
    """Unreadable: dead-lettered and acknowledged, no event (there is no message to tell about)."""
    COMMANDS.labels("dead_lettered").inc()
    DEAD_LETTERS.labels(reason).inc()


class HostTimer:
    """Times one host round trip: `with HostTimer() as t: reply = ...; t.status = reply.status`."""

    def __init__(self) -> None:
        self.status = "error"
        self._start = 0.0

    def __enter__(self) -> "HostTimer":
        self._start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        HOST_ROUND_TRIP.labels(self.status).observe(time.monotonic() - self._start)


async def poll_consumer_lag(
    js: JetStreamContext,
    stop: asyncio.Event,
    consumers: Iterable[ConsumerSpec] = CONSUMERS,
    interval: float = LAG_POLL_INTERVAL,
) -> None:
    """Every `interval` seconds until `stop`, copy each durable consumer's backlog into the gauges.

    Every replica reports the same numbers (they are the stream's, not the replica's): aggregate
    with `max by (stream, consumer)`.
    """
    specs = list(consumers)
    while not stop.is_set():
        for spec in specs:
            try:
                info = await js.consumer_info(spec.stream, spec.durable, timeout=2.0)
            except (nats.errors.Error, TimeoutError) as exc:
                log.debug("consumer_info %s: %s", spec.durable, exc.__class__.__name__)
                continue
            labels = (spec.stream, spec.durable)
            CONSUMER_PENDING.labels(*labels).set(info.num_pending or 0)
            CONSUMER_ACK_PENDING.labels(*labels).set(info.num_ack_pending or 0)
            CONSUMER_REDELIVERED.labels(*labels).set(info.num_redelivered or 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


WEBHOOK_DELIVERIES = Counter(
    "zaphub_webhook_deliveries",
    "Webhook delivery attempts, by outcome (succeeded, retrying, failed)",
    ["outcome"],
)


def webhook_attempt(outcome: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
