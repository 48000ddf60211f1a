"""The webhook worker reads the events of tenants with an active webhook only, on a real NATS server."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import pytest
from nats.aio.msg import Msg

from zaphub_contracts import streams, subjects
from zaphub_contracts.webhooks import WebhookConfig, webhook_key
from zaphub_devstack.inprocess import eventually
from zaphub_dispatcher.webhook_events import SPEC, WebhookEventsFilter
from zaphub_dispatcher.webhooks import WebhookDirectory
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import run_pull_consumer

SESSION = UUID(int=7)


@dataclass
class Worker:
    """A webhook worker's consumer loop, recording the subjects it was handed."""

    bus: Bus
    events: WebhookEventsFilter
    seen: list[str] = field(default_factory=list)

    async def handle(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            self.seen.append(msg.subject)
            await msg.ack()

    async def set_webhook(self, tenant: UUID, active: bool = True, webhook: UUID = UUID(int=1)) -> None:
        config = WebhookConfig(
            id=webhook,
            tenant_id=tenant,
            url="https://example.com/h",
            events=("*",),
            secret="s" * 16,
            active=active,
        )
        bucket = await self.bus.kv(streams.WEBHOOKS_BUCKET)
        await bucket.put(webhook_key(tenant, webhook), config.model_dump_json().encode())

    async def publish(self, tenant: UUID) -> str:
        subject = subjects.event(tenant, SESSION, "message.sent")
        await self.bus.js.publish(subject, b"{}")
        return subject


async def filter_on_server(bus: Bus) -> list[str]:
    info = await bus.js.consumer_info(SPEC.stream, SPEC.durable)
    return list(info.config.filter_subjects or [info.config.filter_subject or ""])


@pytest.fixture
async def worker(nats_url: str) -> AsyncIterator[Worker]:
    bus = await Bus.connect(nats_url, name="webhook-events-test", source="/test")
    await bus.ensure_streams()
    directory = WebhookDirectory()
    await directory.start(await bus.kv(streams.WEBHOOKS_BUCKET))
    worker = Worker(bus, WebhookEventsFilter(bus, directory, max_tenants=2))
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(worker.events.follow(stop, period=0.2)),
        asyncio.create_task(
            run_pull_consumer(bus, SPEC, worker.handle, stop, wait=0.1, ensure=worker.events.ensure)
        ),
    ]
    try:
        yield worker
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks)
        await directory.stop()
        await bus.close()


async def test_only_tenants_with_an_active_webhook_reach_the_worker(worker: Worker) -> None:
    """Events of a tenant without an active webhook never reach the worker; adding one lets the
    tenant's next events through, deactivating it stops them again."""
    hooked, plain = uuid4(), uuid4()
    await worker.set_webhook(hooked)
    # Events are read once the consumer's filter has the tenant (docs/webhooks.md), not before.
    await eventually(lambda: worker.events.applied == [subjects.tenant_events(hooked)], "the filter applied")
    wanted = await worker.publish(hooked)
    await worker.publish(plain)
    await eventually(lambda: wanted in worker.seen, "the hooked tenant's event")
    await asyncio.sleep(0.3)
    assert worker.seen == [wanted]

    await worker.set_webhook(plain)
    await eventually(lambda: len(worker.events.subjects()) == 2, "both tenants in the filter")
    await eventually(lambda: worker.events.applied == worker.events.subjects(), "the filter applied")
    later = await worker.publish(plain)
    await eventually(lambda: later in worker.seen, "the second tenant's event once it has a webhook")

    await worker.set_webhook(hooked, active=False)
    await eventually(lambda: worker.events.applied == [subjects.tenant_events(plain)], "the filter narrowed")
    count = len(worker.seen)
    await worker.publish(hooked)
    await asyncio.sleep(0.3)
    assert len(worker.seen) == count


async def test_with_no_webhook_nothing_is_read_and_past_the_limit_everything_is(worker: Worker) -> None:
    """No webhook at all: a filter no event matches; more tenants than the limit: every event."""
    await eventually(lambda: worker.events.applied is not None, "the consumer bound")
    assert await filter_on_server(worker.bus) == [subjects.NO_EVENTS]
    for _ in range(3):
        await worker.set_webhook(uuid4())
    await eventually(lambda: worker.events.applied == [subjects.EVT_ALL], "the filter widened to all")
    assert await filter_on_server(worker.bus) == [subjects.EVT_ALL]
    anyone = await worker.publish(uuid4())
    await eventually(lambda: anyone in worker.seen, "an event of a tenant without webhooks")


async def test_a_stale_filter_from_another_dispatcher_is_put_right(worker: Worker) -> None:
    """Another dispatcher applying an older view of the webhooks is corrected by the periodic check."""
    tenant = uuid4()
    await worker.set_webhook(tenant)
    await eventually(lambda: worker.events.applied == [subjects.tenant_events(tenant)], "the filter applied")
    await worker.bus.ensure_consumer(SPEC, [subjects.NO_EVENTS])  # the other, stale, dispatcher
    await asyncio.sleep(0.5)
    assert await filter_on_server(worker.bus) == [subjects.tenant_events(tenant)]
