"""The API's wiring: the Litestar app, its collaborators and their lifecycle (no business logic here)."""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
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
from zaphub_api.auth import KeyRing, provide_principal
from zaphub_api.errors import EXCEPTION_HANDLERS
from zaphub_api.host_client import HostClient
from zaphub_api.limits import LimitsPublisher
from zaphub_api.nats_credentials import CredentialIssuer
from zaphub_api.outbox import Outbox
from zaphub_api.placement import Placement
from zaphub_api.projector import Projector
from zaphub_api.routes.events import EventController
from zaphub_api.routes.messages import MessageController
from zaphub_api.routes.nats_credentials import NatsCredentialsController
from zaphub_api.routes.sessions import SessionController
from zaphub_api.routes.system import SystemController
from zaphub_api.routes.tenants import TenantController
from zaphub_api.routes.usage import UsageController
from zaphub_api.routes.webhooks import WebhookController
from zaphub_api.session_commands import SessionCommands
from zaphub_api.settings import ApiSettings
from zaphub_api.store.messages import MessageStore
from zaphub_api.store.migrate import migrate
from zaphub_api.store.sessions import SessionStore
from zaphub_api.store.tenants import TenantStore
from zaphub_api.store.webhooks import WebhookStore
from zaphub_api.ui import install as install_dashboard
from zaphub_api.usage import UsageClient
from zaphub_api.webhook_log import WebhookLog
from zaphub_contracts import streams
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import run_pull_consumer
from zaphub_runtime.telemetry import traces_exported

log = logging.getLogger(__name__)


class MetricsController(PrometheusController):
    include_in_schema = False  # Prometheus' text format, for scrapers; not part of the REST contract


@dataclass
class Collaborators:
    settings: ApiSettings
    pool: asyncpg.Pool
    bus: Bus
    tenants: TenantStore
    sessions: SessionStore
    messages: MessageStore
    outbox: Outbox
    accepts: AcceptQueue
    commands: SessionCommands
    placement: Placement
    limits: LimitsPublisher
    keyring: KeyRing
    usage: UsageClient
    webhooks: WebhookStore
    hosts: HostClient


async def build(settings: ApiSettings) -> Collaborators:
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=2, max_size=settings.db_pool_max, reset=_keep_session_state
    )
    await migrate(pool)
    instance = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"
    bus = await Bus.connect(
        settings.nats_url,
        name=f"api/{instance}",
        source=f"/zaphub/api/{instance}",
        replicas=settings.stream_replicas,
    )
    await bus.ensure_streams()
    messages = MessageStore(pool)
    outbox = Outbox(bus, messages, settings.outbox_sweep_interval, settings.outbox_grace)
    return Collaborators(
        settings=settings,
        pool=pool,
        bus=bus,
        tenants=TenantStore(pool, settings.default_limits, settings.tenant_max_sessions),
        sessions=SessionStore(pool),
        messages=messages,
        outbox=outbox,
        accepts=AcceptQueue(messages, outbox),
        commands=SessionCommands(bus),
        placement=Placement(await bus.kv(streams.LEASES_BUCKET), await bus.kv(streams.HOSTS_BUCKET)),
        limits=LimitsPublisher(await bus.kv(streams.LIMITS_BUCKET)),
        keyring=KeyRing(pool, settings.admin_key),
        usage=UsageClient(bus),
        hosts=HostClient(bus),
        webhooks=WebhookStore(pool, await bus.kv(streams.WEBHOOKS_BUCKET)),
    )


async def _keep_session_state(conn: asyncpg.Connection) -> None:
    """No reset query on release: the API keeps no session state (no LISTEN, temp tables or locks
    outside a transaction), and the default reset costs a round trip per request."""


def _from_state(name: str) -> Provide:
    def provide(state: State) -> Any:
        return getattr(state.collaborators, name)

    return Provide(provide, sync_to_thread=False)


def create_app(settings: ApiSettings) -> Litestar:
    if not settings.admin_key:
        raise ValueError("ZAPHUB_ADMIN_KEY must be set (the entry point generates one when unset)")

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        collaborators = await build(settings)
        app.state.collaborators = collaborators
        app.state.keyring = collaborators.keyring
        collaborators.outbox.start()
        stop = asyncio.Event()
        await collaborators.webhooks.reconcile()
        consumer_tasks = []
        if settings.projector:
            projector = Projector(collaborators.bus, collaborators.pool)
            webhook_log = WebhookLog(collaborators.bus, collaborators.webhooks)
            consumer_tasks = [
                asyncio.create_task(
                    run_pull_consumer(
                        collaborators.bus, streams.PROJECTOR_CONSUMER, projector.handle_batch, stop
                    )
                ),
                asyncio.create_task(
                    run_pull_consumer(
                        collaborators.bus, streams.WEBHOOK_ATTEMPTS_CONSUMER, webhook_log.handle_batch, stop
                    )
                ),
            ]
        try:
            yield
        finally:
            stop.set()
            for task in consumer_tasks:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=5)
            await collaborators.accepts.drain()
            await collaborators.outbox.stop()
            await collaborators.bus.close()
            await collaborators.pool.close()

    dependencies = {
        name: _from_state(name)
        for name in (
            "pool",
            "bus",
            "tenants",
            "sessions",
            "messages",
            "outbox",
            "commands",
            "placement",
            "limits",
            "webhooks",
            "keyring",
            "hosts",
            "usage",
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
    return Litestar(
        route_handlers=[
            SystemController,
            TenantController,
            SessionController,
            MessageController,
            UsageController,
            WebhookController,
            EventController,
            NatsCredentialsController,
            MetricsController,
            docs.assets_router(),
        ],
        middleware=[prometheus.middleware],
        dependencies=dependencies,
        lifespan=[lifespan],
        on_app_init=[install_dashboard(settings)],
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
