"""Wiring and lifecycle of one ratelimiter replica: NATS, the grant log, limits from KV, subscriptions.

Plain nats-py queue subscriptions rather than a FastStream broker: on this hot path (one request per
message sent) the framework's per-message dependency resolution cost several times the decision itself.
"""

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg

from zaphub_contracts import streams, subjects
from zaphub_ratelimiter.grant_log import GrantLog
from zaphub_ratelimiter.handlers import Handler, handlers
from zaphub_ratelimiter.limiter import Limiter
from zaphub_ratelimiter.limits import TenantLimits
from zaphub_ratelimiter.settings import RatelimiterSettings
from zaphub_runtime.bus import Bus
from zaphub_runtime.lifecycle import Lifecycle, instance_id
from zaphub_runtime.metrics import start_metrics_server
from zaphub_runtime.ratelimit_routes import QUEUE_SUBJECTS

log = logging.getLogger(__name__)

SERVICE = "zaphub-ratelimiter"


class Ratelimiter:
    """One replica; `serve()` runs until `stop()` is called or the `stop` event is set."""

    def __init__(self, settings: RatelimiterSettings, stop: asyncio.Event | None = None) -> None:
        self.settings = settings
        self.instance = instance_id(settings)
        self._stopping = stop or asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self._stopping.set()

    async def serve(self) -> None:
        settings = self.settings
        async with Lifecycle("ratelimiter", self._stopping) as life:
            name, source = f"{SERVICE}-{self.instance}", f"/zaphub/ratelimiter/{self.instance}"
            bus = await Bus.connect(
                settings.nats_url, name=name, source=source, replicas=settings.stream_replicas
            )
            life.on_close(bus.close, "bus close")  # drains: in-flight requests are answered
            await bus.ensure_streams()
            metrics_server = start_metrics_server(settings.metrics_port)
            if metrics_server is not None:
                life.on_close(metrics_server.close, "metrics server close")
            limits = TenantLimits(settings.default_limits)
            await limits.start(await bus.kv(streams.LIMITS_BUCKET))
            life.on_close(limits.stop, "limits stop")
            limiter = Limiter(GrantLog(bus, timeout=settings.ratelimit_js_timeout), limits)
            life.on_close(self._finish_inflight, "in-flight requests finish")
            replica = subjects.replica_token(self.instance)
            for op, handler in handlers(limiter, bus.nc, replica).items():
                spawn = self._spawner(handler)
                await bus.nc.subscribe(QUEUE_SUBJECTS[op], queue=settings.ratelimit_queue, cb=spawn)
                await bus.nc.subscribe(subjects.ratelimit_replica(replica, op), cb=spawn)
            await bus.nc.flush()
            life.spawn(_forget_idle(limiter, settings.ratelimit_idle_seconds, life.stop), "forget-idle")
            log.info("ratelimiter serving", extra={"fields": {"instance": self.instance}})
            await life.stop.wait()
            log.info("ratelimiter stopping", extra={"fields": {"instance": self.instance}})

    def _spawner(self, handler: Handler) -> Handler:
        # nats-py awaits a callback before delivering the next message: hand each one to its own task.
        async def spawn(msg: Msg) -> None:
            task = asyncio.create_task(handler(msg))
            self._inflight.add(task)
            task.add_done_callback(self._done)

        return spawn

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("handler failed", exc_info=task.exception())

    async def _finish_inflight(self) -> None:
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=5)


async def run(settings: RatelimiterSettings, stop: asyncio.Event) -> None:
    await Ratelimiter(settings, stop).serve()


async def _forget_idle(limiter: Limiter, idle_seconds: float, stop: asyncio.Event) -> None:
    """Every minute (or `idle_seconds`, if shorter) until `stop`, forget the tenants unused that long."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(60.0, idle_seconds))
        if not stop.is_set():
            limiter.forget_idle(idle_seconds)
