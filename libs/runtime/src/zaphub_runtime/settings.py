"""Typed settings every service shares, read once from `ZAPHUB_*` environment variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Base of each service's settings; a service adds its own fields in its `settings.py`."""

    model_config = SettingsConfigDict(env_prefix="ZAPHUB_", extra="ignore")

    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS server(s), comma-separated")
    data_dir: Path = Field(default=Path(".zaphub-data"), description="Where local state lives")
    log_level: str = Field(default="INFO")
    log_format: str = Field(default="json", description="json or text")
    metrics_port: int = Field(default=0, description="Port of the Prometheus /metrics listener; 0 = off")
    instance_id: str = Field(default="", description="Name of this replica; defaults to host-pid")
