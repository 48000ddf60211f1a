"""Settings of the API process (REST, projector and outbox sweeper), from `ZAPHUB_*` variables."""

from typing import Any, Literal

from pydantic import Field

from zaphub_runtime.settings import CommonSettings, RateLimitDefaults


class ApiSettings(CommonSettings, RateLimitDefaults):
    api_host: str = Field(default="127.0.0.1", description="Interface the REST API listens on")
    api_port: int = Field(default=3000, description="Port of the REST API")
    api_workers: int = Field(default=1, ge=1, description="HTTP server worker processes")
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/zaphub",
        description="PostgreSQL of the API and projector",
    )
    db_pool_max: int = Field(default=20, description="PostgreSQL connections per API process")
    db_pooler: Literal["", "pgbouncer"] = Field(
        default="",
        description="`pgbouncer` when ZAPHUB_DATABASE_URL is PgBouncer in transaction pooling: no cache of"
        " prepared statements (a statement prepared on one server connection is unknown on the next)",
    )
    db_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to connect to PostgreSQL or run one statement; then 503"
    )
    admin_key: str = Field(default="", description="Admin API key; generated and printed when empty")
    tenant_max_sessions: int = Field(default=100, description="Default sessions a tenant may hold")
    outbox_sweep_interval: float = Field(default=2.0, description="Seconds between outbox sweeps")
    outbox_grace: float = Field(default=5.0, description="Age before an unpublished message is republished")
    host_request_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a session-host's answer (contacts, presence)"
    )
    group_command_timeout: float = Field(
        default=15.0,
        gt=0,
        description="Seconds a group write may take through the dispatcher and the owning host; then 503,"
        " and it is never carried out later",
    )
    projector: bool = Field(default=True, description="Run the event projector in this process")
    sse_heartbeat: float = Field(default=15.0, gt=0, description="Seconds between heartbeats of /events")
    sse_max_per_tenant: int = Field(
        default=10, ge=1, description="Event streams (GET /events) one tenant may hold open per API process"
    )
    webhook_max_per_tenant: int = Field(default=10, ge=1, description="Webhooks one tenant may create")
    nats_account_public_key: str = Field(
        default="", description="Public key (A...) of the NATS account tenants' event users live in"
    )
    nats_account_signing_seed: str = Field(
        default="",
        description="Seed (SA...) of that account or one of its signing keys; empty = no tenant credentials",
    )
    nats_credentials_ttl: int = Field(
        default=24 * 3600,
        ge=60,
        le=30 * 24 * 3600,
        description="Seconds a tenant's issued NATS credentials stay valid, unless it asks for less or more"
        " (at most 30 days)",
    )
    nats_public_url: str = Field(default="", description="NATS URL handed out with tenant credentials")
    api_max_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="Largest JSON request body (bytes); uploads have `media_max_bytes` plus a margin",
    )
    auth_failure_burst: int = Field(
        default=20, ge=1, description="Failed authentications a client address may make at once"
    )
    auth_failure_rate: float = Field(
        default=0.5, gt=0, description="Failed authentications per second a client address may make then"
    )

    @property
    def pool_options(self) -> dict[str, Any]:
        """asyncpg pool arguments: bounded waits, and no statement cache behind PgBouncer."""
        options: dict[str, Any] = {"timeout": self.db_timeout, "command_timeout": self.db_timeout}
        if self.db_pooler == "pgbouncer":
            options["statement_cache_size"] = 0
        return options
