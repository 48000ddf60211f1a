"""The dispatcher's wiring: bus, buckets, the two command pipelines and their consumer loops."""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from uuid import UUID

import httpx
from nats.aio.msg import Msg

from zaphub_contracts import streams, subjects
from zaphub_dispatcher import metrics
from zaphub_dispatcher.attempts import Attempts
from zaphub_dispatcher.backoff import RetryPolicy
from zaphub_dispatcher.clients import HostRunClient, RateLimiterClient
from zaphub_dispatcher.lanes import Arrival, Lanes
from zaphub_dispatcher.message_events import MessageEvents
from zaphub_dispatcher.order import OrderGate
from zaphub_dispatcher.sends import PendingSend, SendPipeline
from zaphub_dispatcher.session_commands import SessionCommandPipeline
from zaphub_dispatcher.settings import DispatcherSettings
from zaphub_dispatcher.webhook_events import WebhookEventsFilter
from zaphub_dispatcher.webhooks import (
    WebhookDirectory,
    WebhookFanout,
    WebhookSender,
    http_poster,
)
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import run_pull_consumer
from zaphub_runtime.metrics import start_metrics_server

log = logging.getLogger(__name__)


def _lane_of(msg: Msg) -> UUID | str:
    """The session a command belongs to; unreadable subjects share one lane and are dead-lettered there."""
    try:
        return subjects.parse(msg.subject).session_id
    except subjects.SubjectError:
        return subjects.UNKNOWN


async def run(settings: DispatcherSettings, stop: asyncio.Event) -> None:
    instance = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"
    bus = await Bus.connect(
        settings.nats_url,
        name=f"dispatcher/{instance}",
        source=f"/zaphub/dispatcher/{instance}",
        replicas=settings.stream_replicas,
    )
    try:
        await bus.ensure_streams()
        metrics_server = start_metrics_server(settings.metrics_port)
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
        send_lanes: Lanes[PendingSend] = Lanes(sends.process, settings.max_in_flight, run=settings.send_run)

        async def run_session_command(lane: Sequence[Arrival]) -> tuple[list[Arrival], None]:
            await session_commands.process(lane[0].msg)
            return [lane[0]], None

        session_lanes: Lanes[Arrival] = Lanes(run_session_command, max_in_flight=64)

        async def on_sends(msgs: list[Msg]) -> None:
            for msg in msgs:
                pending = await sends.prepare(msg)
                if pending is not None:
                    await send_lanes.submit(pending.command.session_id, pending)

        async def on_session_commands(msgs: list[Msg]) -> None:
            for msg in msgs:
                await session_lanes.submit(_lane_of(msg), Arrival(msg))

        webhooks = WebhookDirectory()
        await webhooks.start(await bus.kv(streams.WEBHOOKS_BUCKET))
        webhook_events = WebhookEventsFilter(bus, webhooks)
        http = httpx.AsyncClient(timeout=settings.webhook_timeout, follow_redirects=False)
        webhook_sender = WebhookSender(
            bus,
            webhooks,
            http_poster(http),
            RetryPolicy(
                settings.webhook_max_attempts,
                settings.webhook_retry_base_delay,
                settings.webhook_retry_max_delay,
            ),
            settings.webhook_concurrency,
        )
        tasks = [
            asyncio.create_task(metrics.poll_consumer_lag(bus.js, stop)),
            asyncio.create_task(
                run_pull_consumer(bus, streams.SEND_CONSUMER, on_sends, stop, batch=settings.fetch_batch)
            ),
            asyncio.create_task(run_pull_consumer(bus, streams.SESSION_CONSUMER, on_session_commands, stop)),
            asyncio.create_task(webhook_events.follow(stop)),
            asyncio.create_task(
                run_pull_consumer(
                    bus,
                    streams.WEBHOOK_EVENTS_CONSUMER,
                    WebhookFanout(bus, webhooks).handle_batch,
                    stop,
                    ensure=webhook_events.ensure,
                )
            ),
            asyncio.create_task(
                run_pull_consumer(bus, streams.WEBHOOK_DELIVERY_CONSUMER, webhook_sender.handle_batch, stop)
            ),
        ]
        log.info("dispatcher running", extra={"fields": {"instance": instance}})
        await stop.wait()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=5)
        await send_lanes.drain(timeout=10)
        await session_lanes.drain(timeout=5)
        await webhook_sender.drain(timeout=10)
        await webhooks.stop()
        await http.aclose()
        if metrics_server is not None:
            metrics_server.close()
    finally:
        await bus.close()
