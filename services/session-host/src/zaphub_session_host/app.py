"""Wiring and lifecycle of the session-host: build the collaborators, start them, drain them."""

import asyncio
import contextlib
import logging

from nats.aio.subscription import Subscription

from zaphub_contracts import subjects
from zaphub_contracts.sessions import DesiredSession, Lease
from zaphub_contracts.streams import HOSTS_BUCKET, LEASES_BUCKET, SENT_BUCKET, SESSIONS_BUCKET
from zaphub_runtime.bus import Bus
from zaphub_runtime.kv_watch import KvMirror
from zaphub_runtime.metrics import MetricsServer, start_metrics_server
from zaphub_session_host import metrics
from zaphub_session_host.auth_store import (
    AuthCipher,
    AuthKeyError,
    AuthSaver,
    AuthStore,
    EncryptedAuthStore,
    LocalDirAuthStore,
    S3AuthStore,
    load_or_create_key,
)
from zaphub_session_host.event_publisher import EventPublisher
from zaphub_session_host.handlers import AfterReply, AnyHostHandler, HostHandlers
from zaphub_session_host.leases import Leases
from zaphub_session_host.reconciler import Reconciler
from zaphub_session_host.registry import Registry
from zaphub_session_host.sent_log import SentLog
from zaphub_session_host.sessions import HostContext, Sessions
from zaphub_session_host.settings import AuthStoreName, HostSettings, TransportName
from zaphub_session_host.transport.base import Transport
from zaphub_session_host.transport.neonize import NeonizeTransport
from zaphub_session_host.transport.sim import SimFaults, SimTransport

log = logging.getLogger(__name__)

AUTH_KEY_FILE = "auth_key"


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
    key = settings.auth_key.get_secret_value()
    if not key:
        if settings.auth_store is AuthStoreName.S3:
            raise AuthKeyError(
                "ZAPHUB_AUTH_KEY must be set with ZAPHUB_AUTH_STORE=s3: every host needs the same key "
                "to open the auth_data the others saved (generate one: openssl rand -base64 32)"
            )
        # One machine, one data dir: every host of the embedded stack shares the generated key.
        key = load_or_create_key(settings.data_dir / AUTH_KEY_FILE)
    return EncryptedAuthStore(backend, AuthCipher.from_base64(key))


def make_transport(settings: HostSettings) -> Transport:
    if settings.transport is TransportName.SIM:
        return SimTransport(
            settings.data_dir,
            autopair=settings.sim_autopair,
            pair_delay=settings.sim_pair_delay,
            faults=SimFaults.parse(settings.sim_faults),
        )
    return NeonizeTransport(settings.data_dir, max_sessions=settings.max_concurrent_sessions)


class SessionHost:
    """One session-host process: many sessions, one NATS connection."""

    def __init__(
        self, settings: HostSettings, transport: Transport | None = None, auth_store: AuthStore | None = None
    ) -> None:
        self.settings = settings
        self.host_id = settings.host_id()
        self.source = f"/zaphub/session-host/{self.host_id}"
        self.transport = transport or make_transport(settings)
        self.auth_store = auth_store
        self._any_sub: Subscription | None = None
        self._bus: Bus | None = None
        self._reconciler: Reconciler | None = None
        self._task: asyncio.Task[None] | None = None
        self._mirrors: list[KvMirror[DesiredSession] | KvMirror[Lease]] = []
        self._publisher: EventPublisher | None = None
        self._saver: AuthSaver | None = None
        self._registry: Registry | None = None
        self.sessions: Sessions | None = None
        self.stopped = False
        self._metrics: MetricsServer | None = None

    async def start(self) -> None:
        await self.transport.start()  # fails fast with the fix when the transport cannot run here
        if self.auth_store is None:
            self.auth_store = await asyncio.to_thread(make_auth_store, self.settings)
        await self.auth_store.ping()
        bus = self._bus = await Bus.connect(
            self.settings.nats_url,
            name=f"zaphub-session-host {self.host_id}",
            source=self.source,
            replicas=self.settings.stream_replicas,
        )
        await bus.ensure_streams()
        desired_kv = await bus.kv(SESSIONS_BUCKET)
        leases_kv = await bus.kv(LEASES_BUCKET)
        hosts_kv = await bus.kv(HOSTS_BUCKET)
        sent_kv = await bus.kv(SENT_BUCKET)

        publisher = self._publisher = EventPublisher(bus)
        saver = self._saver = AuthSaver(self.auth_store)
        publisher.start()
        saver.start()
        ttl = self.settings.lease_ttl
        leases = Leases(bus.js, leases_kv, self.host_id, ttl)
        registry = self._registry = Registry(
            bus.js, hosts_kv, self.host_id, self.transport.name, self.settings.max_concurrent_sessions, ttl
        )
        desired: KvMirror[DesiredSession] = KvMirror(desired_kv, DesiredSession)
        leased: KvMirror[Lease] = KvMirror(leases_kv, Lease)
        for mirror in (desired, leased):
            await mirror.start()
            self._mirrors.append(mirror)
        await registry.start()

        after_reply = AfterReply()
        ctx = HostContext(
            host_id=self.host_id,
            source=self.source,
            nc=bus.nc,
            transport=self.transport,
            auth=saver,
            publisher=publisher,
            sent_log=SentLog(sent_kv),
            requests=HostHandlers(after_reply),
        )
        self.sessions = sessions = Sessions(ctx)
        reconciler = self._reconciler = Reconciler(
            self.settings, self.host_id, sessions, leases, registry, desired, leased
        )
        after_reply.stop_with(reconciler)  # built on the sessions whose runners call the handlers
        any_host = AnyHostHandler(self.host_id, sessions, saver, after_reply)
        self._any_sub = await bus.nc.subscribe(
            subjects.host_any("*"), queue=subjects.HOST_ANY_QUEUE, cb=any_host.serve
        )
        await reconciler.heartbeat()
        self._task = asyncio.create_task(reconciler.run(), name="reconciler")
        metrics.COLLECTOR.watch(self.host_id, sessions, saver, registry)
        self._metrics = start_metrics_server(self.settings.metrics_port)
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

    async def stop(self) -> None:
        """Drain: stop claiming, save auth_data, release leases, unsubscribe, close."""
        if self.stopped:
            return
        self.stopped = True
        timeout = self.settings.drain_timeout
        if self._reconciler is not None and self._task is not None:
            self._reconciler.halt()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
        if self._any_sub is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await self._any_sub.unsubscribe()
        if self._reconciler is not None:
            try:
                await asyncio.wait_for(self._reconciler.drain(), timeout)
            except TimeoutError:
                log.error("drain timed out; remaining leases expire by TTL")
        if self._saver is not None:
            await self._saver.close(timeout)
        if self._publisher is not None:
            await self._publisher.close(timeout)
        for mirror in self._mirrors:
            await mirror.stop()
        if self._registry is not None:
            await self._registry.stop()
        metrics.COLLECTOR.unwatch(self.host_id)
        if self._metrics is not None:
            self._metrics.close()
        await self.transport.close()
        if self._bus is not None:
            await self._bus.close()
        log.info("session-host stopped", extra={"fields": {"host_id": self.host_id}})

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
