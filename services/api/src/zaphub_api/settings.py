"""Settings of the API process (REST, projector and outbox sweeper), from `ZAPHUB_*` variables."""

from pydantic import Field

from zaphub_runtime.settings import CommonSettings, RateLimitDefaults


class ApiSettings(CommonSettings, RateLimitDefaults):
    api_host: str = Field(default="127.0.0.1", description="Interface the REST API listens on")
    api_port: int = Field(default=3000, description="Port of the REST API")
    database_url: str = Field(default="postgresql://postgres@127.0.0.1:5432/zaphub")
    db_pool_max: int = Field(default=20, description="PostgreSQL connections per API process")
    admin_key: str = Field(default="", description="Admin API key; generated and printed when empty")
    tenant_max_sessions: int = Field(default=100, description="Default sessions a tenant may hold")
    outbox_sweep_interval: float = Field(default=2.0, description="Seconds between outbox sweeps")
    outbox_grace: float = Field(default=5.0, description="Age before an unpublished message is republished")
    projector: bool = Field(default=True, description="Run the event projector in this process")
