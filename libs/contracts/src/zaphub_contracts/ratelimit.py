"""Request/reply models of the ratelimiter service."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

WindowName = Literal["minute", "hour", "day"]
WINDOW_SECONDS: dict[WindowName, int] = {"minute": 60, "hour": 3600, "day": 86400}


class RateLimits(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    per_minute: int = Field(default=60, ge=0, le=1_000_000)
    per_hour: int = Field(default=1000, ge=0, le=10_000_000)
    per_day: int = Field(default=10000, ge=0, le=100_000_000)

    def by_window(self) -> dict[WindowName, int]:
        return {"minute": self.per_minute, "hour": self.per_hour, "day": self.per_day}


MAX_TOKENS = 256  # per acquire or release request


class AcquireRequest(BaseModel):
    """Ask for tokens, in order: one per message, for a run of one session's messages.

    A token id makes a repeated request (after a crash) return the same grant.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    token_ids: list[UUID] = Field(min_length=1, max_length=MAX_TOKENS)


class AcquireReply(BaseModel):
    """The first `granted` tokens are granted; the rest are not, and `retry_after` and `window` say why.

    Granting only a prefix keeps a session's order: a message never goes out ahead of an earlier one
    that was denied.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    granted: int = Field(ge=0, description="How many of the requested tokens, from the first, are granted")
    retry_after: float = Field(
        default=0.0, ge=0, description="Seconds until the tightest window frees, when not all were granted"
    )
    window: WindowName | None = Field(default=None, description="The window that denied")


class ReleaseRequest(BaseModel):
    """Give back tokens whose messages were not sent, so they do not count against the tenant."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    token_ids: list[UUID] = Field(min_length=1, max_length=MAX_TOKENS)


class UsageRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID


class WindowUsage(BaseModel):
    window: WindowName
    used: int
    limit: int
    resets_at: datetime | None = Field(description="When the oldest counted token leaves the window")


class UsageReply(BaseModel):
    tenant_id: UUID
    windows: list[WindowUsage]


class ReleaseReply(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    released: int = Field(ge=0, description="How many of the tokens were live and are now given back")


# The NATS micro-service convention: an error reply flags itself with these headers.
ERROR_HEADER = "Nats-Service-Error"
ERROR_CODE_HEADER = "Nats-Service-Error-Code"


class RateLimitError(BaseModel):
    """Reply to a request the ratelimiter could not serve; also flagged by `Nats-Service-Error*` headers."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    error: Literal["bad_request", "unavailable"]
    detail: str = ""


class GrantLogRecord(BaseModel):
    """One append to a tenant's grant log (`subjects.ratelimit_grants`), written with compare-and-set.

    Only the ratelimiter reads it; a record may carry several grants and releases decided together.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    at_ns: int = Field(ge=0, description="Unix time in ns of the grants; never before the previous record's")
    grants: list[UUID] = Field(default_factory=list, description="Token ids granted at `at_ns`")
    releases: list[UUID] = Field(default_factory=list, description="Token ids given back")
