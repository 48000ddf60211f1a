"""Which events the webhook worker reads: those of tenants with an active webhook, not every event.

Most tenants have no webhook, and each event the worker reads costs NATS a delivery and an ack, and
the dispatcher as much again. So its consumer on `ZAPHUB_EVT` filters on the tenants that have one
(measured: 0.1 ms of CPU less per send, 8 % of what a send costs the stack; README, Benchmarks). Past
`max_tenants`, it reads every event instead, since a very long filter list slows the server down.

A webhook gets the events published once the filter includes its tenant: within milliseconds of its
creation, since every dispatcher follows the webhooks bucket. A tenant with a backlog on the
consumer gets its backlogged events as well.
"""

import asyncio
import contextlib
import logging

import nats.errors
from nats.js.errors import NotFoundError

from zaphub_contracts import streams, subjects
from zaphub_dispatcher.webhooks import WebhookDirectory
from zaphub_runtime.bus import Bus

log = logging.getLogger(__name__)
SPEC = streams.WEBHOOK_EVENTS_CONSUMER


class WebhookEventsFilter:
    def __init__(self, bus: Bus, directory: WebhookDirectory, max_tenants: int = 256) -> None:
        self._bus = bus
        self._directory = directory
        self._max_tenants = max_tenants
        self._applied: list[str] | None = None

    @property
    def applied(self) -> list[str] | None:
        """The filter this dispatcher last applied (None before the first, or after a failure)."""
        return self._applied

    def subjects(self) -> list[str]:
        tenants = self._directory.tenants_with_active_webhooks()
        if not tenants:
            return [subjects.NO_EVENTS]
        if len(tenants) > self._max_tenants:
            return [subjects.EVT_ALL]
        return sorted(subjects.tenant_events(tenant) for tenant in tenants)

    async def ensure(self) -> None:
        """Create or update the consumer with the filter of the webhooks known now."""
        await self._apply(self.subjects())

    async def _apply(self, wanted: list[str]) -> None:
        await self._bus.ensure_consumer(SPEC, wanted)
        self._applied = wanted

    async def follow(self, stop: asyncio.Event, period: float = 30.0) -> None:
        """Apply the filter on every change of the webhooks, and check it every `period` seconds: another
        dispatcher may have applied a view older than this one's (both converge on the bucket's)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed_or(stop), period)
            if stop.is_set():
                return
            self._directory.changed.clear()
            try:
                wanted = self.subjects()
                if wanted != self._applied or wanted != await self._on_server():
                    await self._apply(wanted)
            except (nats.errors.Error, OSError) as exc:
                # NATS restarting: the next change or check applies it.
                log.warning("webhook events filter not applied: %s", exc.__class__.__name__)
                self._applied = None

    async def _changed_or(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(self._directory.changed.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _on_server(self) -> list[str] | None:
        try:
            info = await self._bus.js.consumer_info(SPEC.stream, SPEC.durable)
        except NotFoundError:
            return None
        config = info.config
        return list(config.filter_subjects or ([config.filter_subject] if config.filter_subject else []))
