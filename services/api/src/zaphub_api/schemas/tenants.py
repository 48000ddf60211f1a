"""REST models of tenants and their API keys."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from zaphub_contracts.ratelimit import RateLimits

MAX_QUEUED = (
    "Accepted sends not yet handed to WhatsApp (queued or rate limited) the tenant may have; beyond it"
    " a send is refused with 429. Defaults to the tenant's per-day limit"
)


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    rate_limits: RateLimits | None = None
    max_sessions: int | None = Field(default=None, ge=0, le=100_000)
    max_queued: int | None = Field(default=None, ge=0, le=100_000_000, description=MAX_QUEUED)


class RateLimitsUpdate(BaseModel):
    """Only the windows given change; the others keep their current limit."""

    model_config = ConfigDict(extra="forbid")

    per_minute: int | None = Field(default=None, ge=0, le=1_000_000)
    per_hour: int | None = Field(default=None, ge=0, le=10_000_000)
    per_day: int | None = Field(default=None, ge=0, le=100_000_000)


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    rate_limits: RateLimitsUpdate | None = None
    max_sessions: int | None = Field(default=None, ge=0, le=100_000)
    max_queued: int | None = Field(default=None, ge=0, le=100_000_000, description=MAX_QUEUED)


class TenantRead(BaseModel):
    id: UUID
    name: str
    rate_limits: RateLimits
    max_sessions: int
    max_queued: int = Field(description=MAX_QUEUED)
    created_at: datetime


class TenantCreated(TenantRead):
    api_key: str = Field(description="Shown only in this response; store it now")


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="default", min_length=1, max_length=100)


class ApiKeyRead(BaseModel):
    id: UUID
    tenant_id: UUID
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyRead):
    api_key: str = Field(description="Shown only in this response")


class NatsCredentialsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int | None = Field(
        default=None,
        ge=60,
        le=30 * 24 * 3600,
        description="Validity in seconds, at most 30 days; the deployment's default (24 h) when omitted",
    )


class NatsCredentials(BaseModel):
    """A NATS user that may only subscribe to the tenant's events (and its own inbox prefix)."""

    jwt: str = Field(description="User JWT, signed by the gateway's NATS account")
    seed: str = Field(description="The user's nkey seed: a secret, shown only in this response")
    creds: str = Field(description="JWT and seed as a `.creds` file, which every NATS client loads")
    user: str = Field(description="The user's public nkey")
    subject: str = Field(
        description="What the credentials may subscribe to", examples=["zaphub.v1.evt.<tenant>.>"]
    )
    inbox_prefix: str = Field(description="Set this as the client's inbox prefix to make requests")
    servers: list[str] = Field(description="NATS URLs to connect to")
    expires_at: datetime
