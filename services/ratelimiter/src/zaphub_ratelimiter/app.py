"""Wiring and lifecycle of one ratelimiter replica: NATS, the grant log, limits from KV, subscriptions.

Plain nats-py queue subscriptions rather than a FastStream broker: on this hot path (one request per
message sent) the framework's per-message dependency resolution cost several times the decision itself.
"""

import asyncio
import contextlib
import logging
import os
import signal
import socket

import prometheus_client
from nats.aio.msg import Msg

from zaphub_contracts import streams, subjects
from zaphub_ratelimiter.grant_log import GrantLog
from zaphub_ratelimiter.handlers import Handler, handlers
from zaphub_ratelimiter.limiter import Limiter
from zaphub_ratelimiter.limits import TenantLimits
from zaphub_ratelimiter.settings import RatelimiterSettings
from zaphub_runtime.bus import Bus
from zaphub_runtime.ratelimit_routes import QUEUE_SUBJECTS

log = logging.getLogger(__name__)

SERVICE = "zaphub-ratelimiter"


class Ratelimiter:
    """One replica; `serve()` runs until `stop()` (or SIGTERM/SIGINT via `run`)."""

    def __init__(self, settings: RatelimiterSettings) -> None:
        self.settings = settings
        self.instance = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self._stopping.set()

    async def serve(self) -> None:
        settings = self.settings
        async with contextlib.AsyncExitStack() as stack:
            name, source = f"{SERVICE}-{self.instance}", f"/zaphub/ratelimiter/{self.instance}"
            bus = await Bus.connect(
                settings.nats_url, name=name, source=source, replicas=settings.stream_replicas
            )
            stack.push_async_callback(bus.close)  # drains: in-flight requests are answered
            await bus.ensure_streams()
            if settings.metrics_port:
                prometheus_client.start_http_server(settings.metrics_port)
            limits = TenantLimits(settings.default_limits)
            await limits.start(await bus.kv(streams.LIMITS_BUCKET))
            stack.push_async_callback(limits.stop)
            limiter = Limiter(GrantLog(bus.nc, bus.js, timeout=settings.ratelimit_js_timeout), limits)
            stack.push_async_callback(self._finish_inflight)
            replica = subjects.replica_token(self.instance)
            for op, handler in handlers(limiter, bus.nc, replica).items():
                spawn = self._spawner(handler)
                await bus.nc.subscribe(QUEUE_SUBJECTS[op], queue=settings.ratelimit_queue, cb=spawn)
                await bus.nc.subscribe(subjects.ratelimit_replica(replica, op), cb=spawn)
            await bus.nc.flush()
            sweeper = asyncio.create_task(_forget_idle(limiter, settings.ratelimit_idle_seconds))
            stack.callback(sweeper.cancel)
            log.info("ratelimiter serving", extra={"fields": {"instance": self.instance}})
            await self._stopping.wait()
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


async def run(settings: RatelimiterSettings) -> None:
    service = Ratelimiter(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stop)
    await service.serve()


async def _forget_idle(limiter: Limiter, idle_seconds: float) -> None:
    while True:
        await asyncio.sleep(min(60.0, idle_seconds))
        limiter.forget_idle(idle_seconds)
