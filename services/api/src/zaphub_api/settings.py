"""Settings of the API process (REST, projector and outbox sweeper), from `ZAPHUB_*` variables."""

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
    admin_key: str = Field(default="", description="Admin API key; generated and printed when empty")
    tenant_max_sessions: int = Field(default=100, description="Default sessions a tenant may hold")
    outbox_sweep_interval: float = Field(default=2.0, description="Seconds between outbox sweeps")
    outbox_grace: float = Field(default=5.0, description="Age before an unpublished message is republished")
    host_request_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a session-host's answer (contacts, presence)"
    )
    projector: bool = Field(default=True, description="Run the event projector in this process")
    sse_heartbeat: float = Field(default=15.0, gt=0, description="Seconds between heartbeats of /events")
    nats_account_public_key: str = Field(
        default="", description="Public key (A...) of the NATS account tenants' event users live in"
    )
    nats_account_signing_seed: str = Field(
        default="",
        description="Seed (SA...) of that account or one of its signing keys; empty = no tenant credentials",
    )
    nats_credentials_ttl: int = Field(
        default=30 * 24 * 3600, ge=60, description="Seconds a tenant's issued NATS credentials stay valid"
    )
    nats_public_url: str = Field(default="", description="NATS URL handed out with tenant credentials")
    media_max_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1, description="Largest media file accepted inline or by upload (bytes)"
    )
