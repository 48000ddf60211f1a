"""The API's wiring: the Litestar app, its collaborators and their lifecycle (no business logic here)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from zaphub_api import docs
from zaphub_api.accepts import AcceptQueue
from zaphub_api.auth import (
    AuthMiddleware,
    BodyLimits,
    FailureThrottle,
    KeyRing,
    check_admin_key,
    provide_principal,
)
from zaphub_api.commands import CommandPublisher
from zaphub_api.errors import EXCEPTION_HANDLERS
from zaphub_api.group_commands import GroupCommands
from zaphub_api.host_requests import HostRequests
from zaphub_api.limits import LimitsPublisher
from zaphub_api.nats_credentials import CredentialIssuer
from zaphub_api.placement import Placement
from zaphub_api.routes.chats import ChatController
from zaphub_api.routes.contacts import ContactController
from zaphub_api.routes.events import EventController, EventStreams
from zaphub_api.routes.groups import GroupController
from zaphub_api.routes.hosts import HostController
from zaphub_api.routes.media import MediaController
from zaphub_api.routes.messages import MessageController
from zaphub_api.routes.nats_credentials import NatsCredentialsController
from zaphub_api.routes.presence import PresenceController
from zaphub_api.routes.sessions import SessionController
from zaphub_api.routes.simulator import SimulatorController
from zaphub_api.routes.system import SystemController
from zaphub_api.routes.tenants import TenantController
from zaphub_api.routes.usage import UsageController
from zaphub_api.routes.webhooks import WebhookController
from zaphub_api.services.contacts import ContactService
from zaphub_api.services.groups import GroupService
from zaphub_api.services.message_actions import MessageActions
from zaphub_api.services.presence import PresenceService
from zaphub_api.services.sessions import SessionService
from zaphub_api.services.stats import StatsService
from zaphub_api.services.tenants import TenantService
from zaphub_api.services.webhooks import WebhookService
from zaphub_api.settings import ApiSettings
from zaphub_api.store.chats import ChatStore
from zaphub_api.store.messages import MessageStore
from zaphub_api.store.migrate import migrate
from zaphub_api.store.sessions import SessionStore
from zaphub_api.store.tenants import TenantStore
from zaphub_api.store.webhooks import WebhookStore
from zaphub_api.ui import install as install_dashboard
from zaphub_api.usage import UsageClient
from zaphub_api.workers.outbox import Outbox
from zaphub_api.workers.projector import Projector
from zaphub_api.workers.webhook_log import WebhookLog
from zaphub_contracts import streams
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import run_pull_consumer
from zaphub_runtime.egress import EgressPolicy
from zaphub_runtime.keyring import ring_from_settings
from zaphub_runtime.lifecycle import Lifecycle, instance_id
from zaphub_runtime.media_store import MediaStore, open_media_store
from zaphub_runtime.telemetry import traces_exported

UPLOAD_MARGIN = 1024 * 1024  # bytes of a multipart upload besides its file: the form's other fields


class MetricsController(PrometheusController):
    include_in_schema = False  # Prometheus' text format, for scrapers; not part of the REST contract


@dataclass
class Collaborators:
    settings: ApiSettings
    life: Lifecycle
    pool: asyncpg.Pool
    bus: Bus
    tenants: TenantStore
    sessions: SessionStore
    messages: MessageStore
    chats: ChatStore
    media_store: MediaStore
    outbox: Outbox
    accepts: AcceptQueue
    placement: Placement
    keyring: KeyRing
    usage: UsageClient
    webhooks: WebhookStore
    hosts: HostRequests
    session_service: SessionService
    contact_service: ContactService
    group_service: GroupService
    message_actions: MessageActions
    presence_service: PresenceService
    stats_service: StatsService
    tenant_service: TenantService
    webhook_service: WebhookService
    event_streams: EventStreams


async def build(settings: ApiSettings, life: Lifecycle) -> Collaborators:
    """Open the API's collaborators, each registered with `life` to be closed at stop in reverse order,
    or at once should a later step fail."""
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=2,
        max_size=settings.db_pool_max,
        reset=_keep_session_state,
        **settings.pool_options,
    )
    life.on_close(pool.close, "postgres pool")
    await migrate(pool)
    instance = instance_id(settings)
    bus = await Bus.connect(
        settings.nats_url,
        name=f"api/{instance}",
        source=f"/zaphub/api/{instance}",
        replicas=settings.stream_replicas,
    )
    life.on_close(bus.close, "nats")
    await bus.ensure_streams()
    messages = MessageStore(pool, settings.default_limits.per_day)
    outbox = Outbox(bus, messages, settings.outbox_sweep_interval, settings.outbox_grace)
    life.on_close(outbox.flush, "outbox marks")
    accepts = AcceptQueue(messages, outbox)
    # Before the bus closes: the batches in flight are stored and published.
    life.on_close(accepts.drain, "accepts in flight")
    tenants = TenantStore(pool, settings.default_limits, settings.tenant_max_sessions)
    sessions = SessionStore(pool, settings.tenant_max_sessions)
    chats = ChatStore(pool)
    secrets_ring = await asyncio.to_thread(ring_from_settings, settings, machine_key=True)
    webhooks = WebhookStore(
        pool, await bus.kv(streams.WEBHOOKS_BUCKET), secrets_ring, settings.webhook_max_per_tenant
    )
    commands = CommandPublisher(bus)
    hosts = HostRequests(bus, settings.host_request_timeout)
    placement = Placement(await bus.kv(streams.LEASES_BUCKET), await bus.kv(streams.HOSTS_BUCKET))
    keyring = KeyRing(pool, settings.admin_key)
    limits = LimitsPublisher(await bus.kv(streams.LIMITS_BUCKET))
    return Collaborators(
        settings=settings,
        life=life,
        pool=pool,
        bus=bus,
        tenants=tenants,
        sessions=sessions,
        messages=messages,
        chats=chats,
        media_store=await asyncio.to_thread(open_media_store, settings),
        outbox=outbox,
        accepts=accepts,
        placement=placement,
        keyring=keyring,
        usage=UsageClient(bus),
        webhooks=webhooks,
        hosts=hosts,
        session_service=SessionService(sessions, commands, hosts),
        contact_service=ContactService(sessions, hosts),
        group_service=GroupService(sessions, hosts, GroupCommands(bus, settings.group_command_timeout)),
        message_actions=MessageActions(messages, accepts),
        presence_service=PresenceService(sessions, hosts, chats),
        stats_service=StatsService(sessions, tenants, placement, settings),
        tenant_service=TenantService(tenants, commands, limits, keyring, webhooks),
        webhook_service=WebhookService(webhooks, bus, EgressPolicy.from_settings(settings)),
        event_streams=EventStreams(settings.sse_max_per_tenant),
    )


async def start(c: Collaborators, life: Lifecycle) -> None:
    """The background work, each task watched by `life`: the outbox, then (setting `projector`) the
    consumers that keep PostgreSQL current."""
    life.spawn(c.outbox.mark_loop(life.stop), "outbox-marks")
    life.spawn(c.outbox.sweep_loop(life.stop), "outbox-sweeper")
    await c.webhooks.reconcile()
    if c.settings.projector:
        projector = Projector(c.bus, c.pool)
        webhook_log = WebhookLog(c.bus, c.webhooks)
        for name, spec, handle in (
            ("projector", streams.PROJECTOR_CONSUMER, projector.handle_batch),
            ("webhook-log", streams.WEBHOOK_ATTEMPTS_CONSUMER, webhook_log.handle_batch),
        ):
            life.spawn(run_pull_consumer(c.bus, spec, handle, life.stop), name)


async def _exit_on_failure(life: Lifecycle, exit_process: Callable[[], None]) -> None:
    await life.stop.wait()
    if not life.healthy:
        exit_process()


async def _keep_session_state(conn: asyncpg.Connection) -> None:
    """No reset query on release: the API keeps no session state (no LISTEN, temp tables or locks
    outside a transaction), and the default reset costs a round trip per request."""


def _from_state(name: str) -> Provide:
    def provide(state: State) -> Any:
        return getattr(state.collaborators, name)

    return Provide(provide, sync_to_thread=False)


def create_app(settings: ApiSettings, on_failure: Callable[[], None] | None = None) -> Litestar:
    """The API app; `on_failure` is called once a background task died (the entry point stops the
    process with it; tests leave the app running to look at `/ready`)."""
    if not settings.admin_key:
        raise ValueError("ZAPHUB_ADMIN_KEY must be set (the entry point generates one when unset)")
    check_admin_key(settings.admin_key)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with Lifecycle("api") as life:
            collaborators = await build(settings, life)
            app.state.collaborators = collaborators
            app.state.keyring = collaborators.keyring
            await start(collaborators, life)
            if on_failure is not None:
                watch = asyncio.create_task(_exit_on_failure(life, on_failure))
                life.on_close(watch.cancel, "failure watch")
            yield

    dependencies = {
        name: _from_state(name)
        for name in (
            "life",
            "pool",
            "bus",
            "tenants",
            "sessions",
            "messages",
            "chats",
            "media_store",
            "placement",
            "webhooks",
            "usage",
            "hosts",
            "session_service",
            "contact_service",
            "group_service",
            "message_actions",
            "presence_service",
            "stats_service",
            "tenant_service",
            "webhook_service",
            "event_streams",
        )
    }
    dependencies["settings"] = Provide(lambda: settings, sync_to_thread=False)
    issuer = CredentialIssuer(
        settings.nats_account_public_key, settings.nats_account_signing_seed, settings.nats_credentials_ttl
    )
    dependencies["issuer"] = Provide(lambda: issuer, sync_to_thread=False)
    # Requests by route template (never the raw path) and status, with a latency histogram.
    prometheus = PrometheusConfig(
        app_name="zaphub_api",
        prefix="zaphub",
        group_path=True,
        exclude_unhandled_paths=True,
        exclude=["/metrics"],
    )
    dependencies["principal"] = Provide(provide_principal)
    # One throttle of wrong keys per address, for the API's headers and the dashboard's sign-in form.
    throttle = FailureThrottle(settings.auth_failure_burst, settings.auth_failure_rate)
    auth = AuthMiddleware(
        throttle,
        BodyLimits(json=settings.api_max_body_bytes, upload=settings.media_max_bytes + UPLOAD_MARGIN),
    )
    return Litestar(
        route_handlers=[
            SystemController,
            HostController,
            TenantController,
            SessionController,
            SimulatorController,
            ChatController,
            GroupController,
            MessageController,
            MediaController,
            ContactController,
            PresenceController,
            UsageController,
            WebhookController,
            EventController,
            NatsCredentialsController,
            MetricsController,
            docs.assets_router(),
        ],
        # Prometheus first, so that refused requests are counted too.
        middleware=[prometheus.middleware, auth],
        request_max_body_size=settings.api_max_body_bytes,
        dependencies=dependencies,
        lifespan=[lifespan],
        on_app_init=[install_dashboard(settings, throttle)],
        exception_handlers=EXCEPTION_HANDLERS,
        plugins=[
            OpenTelemetryPlugin(
                # One server span per request; per-ASGI-message spans cost more than they tell.
                OpenTelemetryConfig(
                    exclude=["/health", "/ready", "/metrics"], exclude_spans=["receive", "send"]
                )
            )
        ]
        if traces_exported()
        else [],
        openapi_config=OpenAPIConfig(
            title="ZapHub API",
            version="1.0.0",
            description="Multi-tenant WhatsApp gateway. Authenticate with `Authorization: Bearer <api key>`.",
            path=docs.DOCS_PATH,
            render_plugins=docs.render_plugins(),
            components=Components(
                security_schemes={"BearerAuth": SecurityScheme(type="http", scheme="bearer")}
            ),
            security=[{"BearerAuth": []}],
        ),
        debug=False,
    )
