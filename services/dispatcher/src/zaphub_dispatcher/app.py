"""The dispatcher's wiring: bus, buckets, the three command pipelines (sends, session commands, group
commands), the webhook worker and their consumer loops, opened in order and closed in reverse by one
`Lifecycle`."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from uuid import UUID

from nats.aio.msg import Msg

from zaphub_contracts import streams, subjects
from zaphub_dispatcher import metrics
from zaphub_dispatcher.attempts import Attempts
from zaphub_dispatcher.backoff import RetryPolicy
from zaphub_dispatcher.clients import HostRunClient, RateLimiterClient
from zaphub_dispatcher.group_commands import GroupCommandPipeline
from zaphub_dispatcher.lanes import Arrival, Lanes
from zaphub_dispatcher.message_events import MessageEvents
from zaphub_dispatcher.order import OrderGate
from zaphub_dispatcher.sends import PendingSend, SendPipeline
from zaphub_dispatcher.session_commands import SessionCommandPipeline
from zaphub_dispatcher.settings import DispatcherSettings
from zaphub_dispatcher.webhook_events import WebhookEventsFilter
from zaphub_dispatcher.webhooks import (
    USER_AGENT,
    Fairness,
    WebhookDirectory,
    WebhookFanout,
    WebhookSender,
    egress_poster,
)
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import BatchHandler, each_message, run_pull_consumer
from zaphub_runtime.egress import EgressClient, EgressPolicy
from zaphub_runtime.keyring import ring_from_settings
from zaphub_runtime.lifecycle import Lifecycle, instance_id
from zaphub_runtime.metrics import start_metrics_server

log = logging.getLogger(__name__)


# Of the 64 slots of the session- and group-command lanes, those one tenant's commands may hold: a
# command waiting for a host holds its slot up to its expiry (15 s), and a tenant with many sessions
# and no host must not hold them all.
PER_TENANT_IN_FLIGHT = 8


def _lane_of(msg: Msg) -> UUID | str:
    """The session a command belongs to; unreadable subjects share one lane and are dead-lettered there."""
    try:
        return subjects.parse(msg.subject).session_id
    except subjects.SubjectError:
        return subjects.UNKNOWN


def _send_intake(bus: Bus, sends: SendPipeline, lanes: Lanes[PendingSend]) -> BatchHandler:
    """Each fetched send command into its session's lane, one by one: a command that fails on the way is
    NAK'd alone, never one of the batch already handed to a lane (the lane acks or NAKs that one)."""

    async def take(msg: Msg) -> None:
        pending = await sends.prepare(msg)
        if pending is not None:
            await lanes.submit(pending.command.session_id, pending)

    return each_message(bus, streams.SEND_CONSUMER.durable, take)


def _arrival_intake(bus: Bus, spec: streams.ConsumerSpec, lanes: Lanes[Arrival]) -> BatchHandler:
    """Each fetched command into its session's lane in arrival order, one by one (see `_send_intake`)."""

    async def take(msg: Msg) -> None:
        await lanes.submit(_lane_of(msg), Arrival(msg))

    return each_message(bus, spec.durable, take)


def _one_at_a_time(process_one: Callable[[Msg], Awaitable[None]]) -> Lanes[Arrival]:
    """Lanes whose session's commands are carried out one by one, in stream order."""

    async def process(lane: Sequence[Arrival]) -> tuple[list[Arrival], None]:
        await process_one(lane[0].msg)
        return [lane[0]], None

    return Lanes(process, max_in_flight=64, per_tenant=PER_TENANT_IN_FLIGHT, tenant_of=_tenant_of)


def _tenant_of(item: Arrival) -> Hashable:
    try:
        return subjects.parse(item.msg.subject).tenant_id
    except subjects.SubjectError:
        return subjects.UNKNOWN


async def run(settings: DispatcherSettings, stop: asyncio.Event) -> None:
    instance = instance_id(settings)
    async with Lifecycle("dispatcher", stop) as life:
        bus = await Bus.connect(
            settings.nats_url,
            name=f"dispatcher/{instance}",
            source=f"/zaphub/dispatcher/{instance}",
            replicas=settings.stream_replicas,
        )
        life.on_close(bus.close, "bus close")  # the last step: its drain flushes what is still in flight
        await bus.ensure_streams()
        # The webhook worker's own connection: its fetched batches (each delivery carries its event) and
        # its publishes do not queue on the socket ahead of the send path's replies.
        hooks_bus = await bus.connect_another(f"dispatcher/{instance}/webhooks")
        life.on_close(hooks_bus.close, "webhook bus close")
        metrics_server = start_metrics_server(settings.metrics_port)
        if metrics_server is not None:
            life.on_close(metrics_server.close, "metrics server close")

        egress = EgressClient(
            EgressPolicy.from_settings(settings),
            max_connections=settings.webhook_concurrency,
            user_agent=USER_AGENT,
        )
        life.on_close(egress.aclose, "egress client close")
        ring = await asyncio.to_thread(ring_from_settings, settings, machine_key=True)
        webhooks = WebhookDirectory(ring)
        await webhooks.start(await bus.kv(streams.WEBHOOKS_BUCKET))
        life.on_close(webhooks.stop, "webhook directory stop")
        webhook_policy = RetryPolicy(
            settings.webhook_max_attempts, settings.webhook_retry_base_delay, settings.webhook_retry_max_delay
        )
        fairness = Fairness(
            settings.webhook_tenant_concurrency,
            settings.webhook_breaker_failures,
            settings.webhook_breaker_cooldown,
            post_timeout=settings.webhook_timeout,
        )
        webhook_sender = WebhookSender(
            hooks_bus,
            webhooks,
            egress_poster(egress, settings.webhook_timeout),
            webhook_policy,
            settings.webhook_concurrency,
            fairness,
        )
        life.on_close(lambda: webhook_sender.drain(timeout=10), "webhook sender drain")

        policy = RetryPolicy(settings.send_max_attempts, settings.retry_base_delay, settings.retry_max_delay)
        dispatch = await bus.kv(streams.DISPATCH_BUCKET)
        sends = SendPipeline(
            bus,
            OrderGate(dispatch),
            Attempts(dispatch),
            RateLimiterClient(bus, settings.ratelimit_timeout),
            HostRunClient(bus, settings.host_timeout),
            MessageEvents(bus),
            policy,
            settings.send_run_seconds,
        )
        session_commands = SessionCommandPipeline(
            bus, await bus.kv(streams.SESSIONS_BUCKET), policy, settings.host_timeout
        )
        session_lanes = _one_at_a_time(session_commands.process)
        life.on_close(lambda: session_lanes.drain(timeout=5), "session command lanes drain")
        group_commands = GroupCommandPipeline(
            bus, RateLimiterClient(bus, settings.ratelimit_timeout), policy, settings.host_timeout
        )
        group_lanes = _one_at_a_time(group_commands.process)
        life.on_close(lambda: group_lanes.drain(timeout=5), "group command lanes drain")
        send_lanes: Lanes[PendingSend] = Lanes(sends.process, settings.max_in_flight, run=settings.send_run)
        life.on_close(lambda: send_lanes.drain(timeout=10), "send lanes drain")

        # Consumer loops start once everything they hand messages to is open; they end when `stop` is set.
        webhook_events = WebhookEventsFilter(hooks_bus, webhooks)
        life.spawn(metrics.poll_consumer_lag(bus.js, life.stop), "consumer-lag")
        life.spawn(
            run_pull_consumer(
                bus,
                streams.SEND_CONSUMER,
                _send_intake(bus, sends, send_lanes),
                life.stop,
                batch=settings.fetch_batch,
            ),
            "sends",
        )
        life.spawn(
            run_pull_consumer(
                bus,
                streams.SESSION_CONSUMER,
                _arrival_intake(bus, streams.SESSION_CONSUMER, session_lanes),
                life.stop,
            ),
            "session-commands",
        )
        life.spawn(
            run_pull_consumer(
                bus,
                streams.GROUP_CONSUMER,
                _arrival_intake(bus, streams.GROUP_CONSUMER, group_lanes),
                life.stop,
            ),
            "group-commands",
        )
        life.spawn(webhook_events.follow(life.stop), "webhook-events-filter")
        life.spawn(
            run_pull_consumer(
                hooks_bus,
                streams.WEBHOOK_EVENTS_CONSUMER,
                WebhookFanout(
                    hooks_bus, webhooks, lambda t, w: webhook_sender.wait_now(t, w, probe=False)
                ).handle_batch,
                life.stop,
                ensure=webhook_events.ensure,
            ),
            "webhook-fanout",
        )
        life.spawn(
            run_pull_consumer(
                hooks_bus, streams.WEBHOOK_DELIVERY_CONSUMER, webhook_sender.handle_batch, life.stop
            ),
            "webhook-deliveries",
        )
        life.spawn(
            run_pull_consumer(
                hooks_bus, streams.WEBHOOK_RETRY_CONSUMER, webhook_sender.handle_batch, life.stop
            ),
            "webhook-retries",
        )
        log.info("dispatcher running", extra={"fields": {"instance": instance}})
        await life.stop.wait()
