"""Settings of the dev stack, read once from `ZAPHUB_*` environment variables."""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZAPHUB_", extra="ignore")

    data_dir: Path = Field(default=Path(".zaphub-data"), description="Everything the stack stores")
    api_port: int = Field(default=3000, ge=1, le=65535)
    admin_key: str = Field(default="", description="Admin API key; generated once into <data>/admin_key")
    api_replicas: int = Field(
        default=1, ge=0, description="API processes; the first on api_port, the others on free ports"
    )
    dispatchers: int = Field(default=1, ge=0)
    ratelimiters: int = Field(default=1, ge=0)
    session_hosts: int = Field(default=1, ge=0)
    transport: str = Field(default="neonize", description="WhatsApp transport of the session hosts")
    nats_port: int = Field(default=0, ge=0, le=65535, description="0: a free port (node i: nats_port + i)")
    nats_cluster: int = Field(
        default=1, ge=1, le=5, description="nats-server processes; 3 runs a JetStream cluster on loopback"
    )
    stream_replicas: int | None = Field(
        default=None, ge=1, le=5, description="Replicas of streams and buckets; default min(nats_cluster, 3)"
    )
    postgres_port: int = Field(default=0, ge=0, le=65535, description="0: a free port")
    db_pooler: Literal["", "pgbouncer"] = Field(
        default="", description="pgbouncer: the API reaches PostgreSQL through PgBouncer, transaction pooling"
    )
    stack_services: dict[str, list[str]] | None = Field(
        default=None, description="JSON {instance name: argv} replacing the ZapHub services (tests)"
    )

    @property
    def replicas(self) -> int:
        """The JetStream replicas the services are told to create streams and buckets with."""
        return self.stream_replicas or min(self.nats_cluster, 3)
