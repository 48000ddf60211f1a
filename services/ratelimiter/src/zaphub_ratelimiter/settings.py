"""Settings of the ratelimiter, read once from `ZAPHUB_*` environment variables."""

from pydantic import Field

from zaphub_runtime.settings import CommonSettings, RateLimitDefaults


class RatelimiterSettings(CommonSettings, RateLimitDefaults):
    ratelimit_queue: str = Field(default="ratelimiter", description="Queue group shared by the replicas")
    ratelimit_js_timeout: float = Field(default=5.0, gt=0, description="Seconds to wait for JetStream")
    ratelimit_idle_seconds: float = Field(
        default=900.0,
        gt=0,
        description="Forget a tenant's window after this long unused (reloads from the log)",
    )
