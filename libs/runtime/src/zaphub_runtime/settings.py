"""Typed settings every service shares, read once from `ZAPHUB_*` environment variables."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from zaphub_contracts.ratelimit import RateLimits


class CommonSettings(BaseSettings):
    """Base of each service's settings; a service adds its own fields in its `settings.py`."""

    model_config = SettingsConfigDict(env_prefix="ZAPHUB_", extra="ignore")

    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS server(s), comma-separated")
    data_dir: Path = Field(default=Path(".zaphub-data"), description="Where local state lives")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: str = Field(default="json", description="json or text")
    metrics_port: int = Field(default=0, description="Port of the Prometheus /metrics listener; 0 = off")
    instance_id: str = Field(default="", description="Name of this replica; defaults to host-pid")
    stream_replicas: int = Field(
        default=1, ge=1, le=5, description="JetStream replicas of the streams and buckets (3 on a cluster)"
    )
    secret_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Key ring of secrets at rest (auth_data, webhook secrets): id:base64-of-32-bytes,... "
        "The first seals, every one opens; see Rotating the secret keys",
    )
    egress_allow: str = Field(
        default="",
        description="CIDRs and host names, comma-separated, that tenant-caused requests (media by URL,"
        " webhooks) may reach although not public; empty = public addresses only",
    )


class RateLimitDefaults(BaseSettings):
    """The per-tenant limits that apply unless a tenant has its own (the API shows them, the ratelimiter
    enforces them); mixed into the settings of both."""

    model_config = SettingsConfigDict(env_prefix="ZAPHUB_", extra="ignore")

    rate_per_minute: int = Field(default=60, ge=0, description="Default tokens per rolling minute per tenant")
    rate_per_hour: int = Field(default=1000, ge=0, description="Default tokens per rolling hour per tenant")
    rate_per_day: int = Field(default=10000, ge=0, description="Default tokens per rolling day per tenant")

    @property
    def default_limits(self) -> RateLimits:
        return RateLimits(
            per_minute=self.rate_per_minute, per_hour=self.rate_per_hour, per_day=self.rate_per_day
        )
