"""Typed settings every service shares, read once from `ZAPHUB_*` environment variables."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from zaphub_contracts.ratelimit import RateLimits
from zaphub_runtime.media_store import MediaDownload, MediaStoreName

__all__ = ["CommonSettings", "RateLimitDefaults"]


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
    media_store: MediaStoreName = Field(
        default=MediaStoreName.LOCAL,
        description="Where received media lives: local (<data_dir>/media, shared by hosts and API) or s3",
    )
    media_bucket: str = Field(default="zaphub-media", description="s3: bucket of media (created if absent)")
    media_max_bytes: int = Field(
        default=16 * 1024 * 1024,  # WhatsApp's own cap of images and voice is 16 MB
        gt=0,
        description="Largest media file (bytes) a send carries inline, uploaded or by URL, and that a"
        " session-host stores of received media",
    )
    media_retention_days: float = Field(
        default=30.0, gt=0, description="Days stored media is kept; then swept, and its route answers 410"
    )
    media_download: MediaDownload = Field(
        default=MediaDownload.EAGER, description="eager: the owning host stores received media; off: never"
    )
    s3_endpoint: str = Field(default="127.0.0.1:9000", description="S3/MinIO host:port, no scheme")
    s3_access_key: str = Field(default="", description="S3 access key")
    s3_secret_key: SecretStr = Field(default=SecretStr(""), description="S3 secret key")
    s3_secure: bool = Field(default=True, description="HTTPS to the S3 endpoint")
    s3_region: str | None = Field(default=None, description="S3 region; unset asks the server")
    egress_allow: str = Field(
        default="",
        description="CIDRs and host names, comma-separated, that tenant-caused requests (media by URL,"
        " link previews, webhooks) may reach although not public; empty = public addresses only",
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
