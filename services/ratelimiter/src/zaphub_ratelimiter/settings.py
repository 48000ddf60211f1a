"""Settings of the ratelimiter, read once from `ZAPHUB_*` environment variables."""

from pydantic import Field

from zaphub_contracts.ratelimit import RateLimits
from zaphub_runtime.settings import CommonSettings


class RatelimiterSettings(CommonSettings):
    rate_per_minute: int = Field(default=60, ge=0, description="Default tokens per rolling minute per tenant")
    rate_per_hour: int = Field(default=1000, ge=0, description="Default tokens per rolling hour per tenant")
    rate_per_day: int = Field(default=10000, ge=0, description="Default tokens per rolling day per tenant")
    ratelimit_queue: str = Field(default="ratelimiter", description="Queue group shared by the replicas")
    ratelimit_js_timeout: float = Field(default=5.0, gt=0, description="Seconds to wait for JetStream")
    ratelimit_idle_seconds: float = Field(
        default=900.0,
        gt=0,
        description="Forget a tenant's window after this long unused (reloads from the log)",
    )

    def default_limits(self) -> RateLimits:
        return RateLimits(
            per_minute=self.rate_per_minute, per_hour=self.rate_per_hour, per_day=self.rate_per_day
        )
