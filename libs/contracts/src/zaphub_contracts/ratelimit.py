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


class AcquireRequest(BaseModel):
    """Ask for one token; `token_id` makes a repeated request (after a crash) return the same grant."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    token_id: UUID


class AcquireReply(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    granted: bool
    retry_after: float = Field(default=0.0, ge=0, description="Seconds until the tightest window frees")
    window: WindowName | None = Field(default=None, description="The window that denied")


class ReleaseRequest(BaseModel):
    """Give back a token whose send failed, so it does not count against the tenant."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    token_id: UUID


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
