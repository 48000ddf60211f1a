"""Wiring and lifecycle of the session-host: build the collaborators, start them, drain them."""

import asyncio
import contextlib
import logging

from nats.aio.subscription import Subscription

from zaphub_contracts import subjects
from zaphub_contracts.sessions import DesiredSession, Lease
from zaphub_contracts.streams import HOSTS_BUCKET, LEASES_BUCKET, SENT_BUCKET, SESSIONS_BUCKET
from zaphub_runtime.bus import Bus
from zaphub_runtime.egress import EgressClient, EgressPolicy
from zaphub_runtime.kv_watch import KvMirror
from zaphub_runtime.lifecycle import Lifecycle
from zaphub_runtime.media_store import MediaDownload, open_media_store
from zaphub_runtime.metrics import start_metrics_server
from zaphub_session_host import metrics
from zaphub_session_host.auth_store import (
    AuthSaver,
    AuthStore,
    EncryptedAuthStore,
    LocalDirAuthStore,
    S3AuthStore,
    auth_key_ring,
)
from zaphub_session_host.event_publisher import EventPublisher
from zaphub_session_host.handlers import AfterReply, AnyHostHandler, HostHandlers
from zaphub_session_host.leases import Leases
from zaphub_session_host.link_previews import LinkPreviews
from zaphub_session_host.media_saver import MediaSaver
from zaphub_session_host.reconciler import Reconciler
from zaphub_session_host.registry import Registry
from zaphub_session_host.sent_log import SentLog
from zaphub_session_host.sessions import HostContext, Sessions
from zaphub_session_host.settings import AuthStoreName, HostSettings, TransportName
from zaphub_session_host.spool import Spool
from zaphub_session_host.transport.base import Transport
from zaphub_session_host.transport.neonize import NeonizeTransport
from zaphub_session_host.transport.sim import SimFaults, SimTransport

log = logging.getLogger(__name__)


def make_auth_store(settings: HostSettings) -> AuthStore:
    """The configured backend behind AES-GCM. Blocking (key file, client setup): call it in a thread."""
    backend: AuthStore
    if settings.auth_store is AuthStoreName.S3:
        backend = S3AuthStore.connect(
            settings.s3_endpoint,
            settings.s3_bucket,
            settings.s3_access_key,
            settings.s3_secret_key.get_secret_value(),
            settings.s3_secure,
            settings.s3_region,
        )
    else:
        backend = LocalDirAuthStore(settings.data_dir / "auth")
    return EncryptedAuthStore(backend, auth_key_ring(settings))


def make_transport(settings: HostSettings) -> Transport:
    if settings.transport is TransportName.SIM:
        return SimTransport(
            settings.data_dir,
            autopair=settings.sim_autopair,
            pair_delay=settings.sim_pair_delay,
            faults=SimFaults.parse(settings.sim_faults),
            egress=EgressPolicy.from_settings(settings),
            max_media_bytes=settings.media_max_bytes,
        )
    return NeonizeTransport(
        settings.data_dir,
        max_sessions=settings.max_concurrent_sessions,
        max_media_bytes=settings.media_max_bytes,
        egress=EgressPolicy.from_settings(settings),
        history_sync=settings.history_sync,
    )


class SessionHost:
    """One session-host process: many sessions, one NATS connection.

    `start` opens the collaborators in order, each registering its close in a `Lifecycle`, so a start
    that fails half-way closes what it had opened. `stop` drains by closing in reverse: stop claiming
    (the reconciler's loop ends), unsubscribe `host.any`, stop the sessions here, save their auth_data
    and release their leases, then close the rest. A failing step is logged and the others still run.
    """

    def __init__(
        self, settings: HostSettings, transport: Transport | None = None, auth_store: AuthStore | None = None
    ) -> None:
        self.settings = settings
        self.host_id = settings.host_id()
        self.source = f"/zaphub/session-host/{self.host_id}"
        self.transport = transport or make_transport(settings)
        self.auth_store = auth_store
        self.sessions: Sessions | None = None
        self.stopped = False
        self._running: contextlib.AsyncExitStack | None = None

    async def start(self, stop: asyncio.Event | None = None) -> None:
        """Open everything and start the reconciler; `stop`, when given, is set if it dies."""
        life = Lifecycle("session-host", stop, task_grace=self.settings.drain_timeout)
        async with contextlib.AsyncExitStack() as opening:  # unwinds what was opened if a step fails
            await opening.enter_async_context(life)
            await self._open(life)
            self._running = opening.pop_all()
        log.info(
            "session-host started",
            extra={
                "fields": {
                    "host_id": self.host_id,
                    "transport": self.transport.name,
                    "capacity": self.settings.max_concurrent_sessions,
                }
            },
        )

    async def _open(self, life: Lifecycle) -> None:
        settings, timeout = self.settings, self.settings.drain_timeout
        await self.transport.start()  # fails fast with the fix when the transport cannot run here
        life.on_close(self.transport.close, "transport")
        if self.auth_store is None:
            self.auth_store = await asyncio.to_thread(make_auth_store, settings)
        await self.auth_store.ping()
        bus = await Bus.connect(
            settings.nats_url,
            name=f"zaphub-session-host {self.host_id}",
            source=self.source,
            replicas=settings.stream_replicas,
        )
        life.on_close(bus.close, "bus")
        await bus.ensure_streams()
        await self.transport.attach(bus)
        life.on_close(self.transport.detach, "transport network")
        desired_kv = await bus.kv(SESSIONS_BUCKET)
        leases_kv = await bus.kv(LEASES_BUCKET)
        hosts_kv = await bus.kv(HOSTS_BUCKET)
        sent_kv = await bus.kv(SENT_BUCKET)

        capacity, ttl = settings.max_concurrent_sessions, settings.lease_ttl
        registry = Registry(bus, hosts_kv, self.host_id, self.transport.name, capacity, ttl)
        await registry.start()
        life.on_close(registry.stop, "registry")
        desired: KvMirror[DesiredSession] = KvMirror(desired_kv, DesiredSession)
        leased: KvMirror[Lease] = KvMirror(leases_kv, Lease)
        for mirror in (desired, leased):
            await mirror.start()
            life.on_close(mirror.stop, mirror.name)
        spool = Spool(settings.data_dir / "spool" / f"{self.host_id}.jsonl", settings.spool_max_bytes)
        await asyncio.to_thread(spool.open)
        life.on_close(lambda: asyncio.to_thread(spool.close), "event spool")
        publisher = EventPublisher(bus, spool, on_full=self._pause, on_drained=self._resume)
        publisher.start()
        life.on_close(lambda: publisher.close(timeout), "event publisher")
        saver = AuthSaver(self.auth_store)
        saver.start()
        life.on_close(lambda: saver.close(timeout), "auth saver")

        media: MediaSaver | None = None
        if settings.media_download is MediaDownload.EAGER:
            store = await asyncio.to_thread(open_media_store, settings)
            media = MediaSaver(store, settings.media_max_bytes, settings.media_retention_days)
            life.on_close(lambda: media.close(timeout), "media saver")  # before the publisher closes
            life.spawn(media.sweep_until(life.stop), "media sweeper")

        # Link previews are fetched by this host, through the one egress policy, with their own client.
        preview_http = EgressClient(EgressPolicy.from_settings(settings), user_agent="zaphub-session-host")
        life.on_close(preview_http.aclose, "link preview client")

        after_reply = AfterReply()
        leases = Leases(bus, leases_kv, self.host_id, ttl)
        sent_log = SentLog(sent_kv)
        life.on_close(lambda: sent_log.close(timeout), "sent log")  # after the drain, before the bus
        ctx = HostContext(
            host_id=self.host_id,
            source=self.source,
            nc=bus.nc,
            transport=self.transport,
            auth=saver,
            publisher=publisher,
            sent_log=sent_log,
            requests=HostHandlers(after_reply),
            media=media,
            previews=LinkPreviews(preview_http),
            history_sync=settings.history_sync,
            history_max_messages=settings.history_max_messages,
            lease_check=leases.check,
        )
        self.sessions = sessions = Sessions(ctx)
        reconciler = Reconciler(settings, self.host_id, sessions, leases, registry, desired, leased)
        after_reply.stop_with(reconciler)  # built on the sessions whose runners call the handlers

        metrics.COLLECTOR.watch(self.host_id, sessions, saver, registry)
        life.on_close(lambda: metrics.COLLECTOR.unwatch(self.host_id), "metrics")
        server = start_metrics_server(settings.metrics_port)
        if server is not None:
            life.on_close(server.close, "metrics server")
        # Runs once the reconciler's loop has ended: nothing claims any more.
        life.on_close(lambda: self._drain(reconciler), "drain")
        any_host = AnyHostHandler(self.host_id, sessions, saver, after_reply)
        any_sub = await bus.nc.subscribe(
            subjects.host_any("*"), queue=subjects.HOST_ANY_QUEUE, cb=any_host.serve
        )
        life.on_close(lambda: _unsubscribe(any_sub), "host.any subscription")
        await reconciler.heartbeat()
        life.spawn(reconciler.run(life.stop), "reconciler")

    async def _pause(self) -> None:
        if self.sessions is not None:
            await self.sessions.pause()

    async def _resume(self) -> None:
        if self.sessions is not None:
            await self.sessions.resume()

    async def _drain(self, reconciler: Reconciler) -> None:
        try:
            await asyncio.wait_for(reconciler.drain(), self.settings.drain_timeout)
        except TimeoutError:
            log.error("drain timed out; remaining leases expire by TTL")

    async def stop(self) -> None:
        """Drain and close; raises `BackgroundTaskDied` if the reconciler had died."""
        if self.stopped:
            return
        self.stopped = True
        running, self._running = self._running, None
        try:
            if running is not None:
                await running.aclose()
        finally:
            log.info("session-host stopped", extra={"fields": {"host_id": self.host_id}})

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set (by a signal, or by the reconciler's death), then drain."""
        await self.start(stop)
        try:
            await stop.wait()
        finally:
            await self.stop()


async def _unsubscribe(sub: Subscription) -> None:
    with contextlib.suppress(Exception):  # the connection may be gone already
        await sub.unsubscribe()


async def run(settings: HostSettings, stop: asyncio.Event) -> None:
    """The session-host service, for `zaphub_runtime.service.serve`."""
    await SessionHost(settings).run(stop)
