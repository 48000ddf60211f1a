"""Settings of a dispatcher replica, from `ZAPHUB_*` variables."""

from pydantic import Field

from zaphub_contracts.host import MAX_RUN
from zaphub_runtime.settings import CommonSettings


class DispatcherSettings(CommonSettings):
    send_max_attempts: int = Field(default=8, ge=1, description="Transient failures before a send fails")
    retry_base_delay: float = Field(default=0.5, gt=0, description="First backoff delay, seconds")
    retry_max_delay: float = Field(default=60.0, gt=0, description="Longest backoff delay, seconds")
    host_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for a session-host reply")
    ratelimit_timeout: float = Field(default=2.0, gt=0, description="Seconds to wait for the ratelimiter")
    max_in_flight: int = Field(default=512, ge=1, description="Send commands held by this replica at once")
    send_run: int = Field(
        default=32, ge=1, le=MAX_RUN, description="A session's commands sent with one host request, at most"
    )
    send_run_seconds: float = Field(
        default=1.0,
        gt=0,
        description="A run's hand-overs start within this many seconds of its first; the rest wait",
    )
    fetch_batch: int = Field(default=128, ge=1, description="Commands fetched per pull")
    webhook_max_attempts: int = Field(default=10, ge=1, description="Webhook POST attempts before the DLQ")
    webhook_retry_base_delay: float = Field(default=5.0, gt=0, description="First webhook retry delay, s")
    webhook_retry_max_delay: float = Field(default=3600.0, gt=0, description="Longest webhook retry delay")
    webhook_timeout: float = Field(default=10.0, gt=0, description="Seconds one webhook POST may take")
    webhook_concurrency: int = Field(default=64, ge=1, description="Webhook POSTs in flight per replica")
    webhook_tenant_concurrency: int = Field(
        default=8, ge=1, description="Webhook POSTs of one tenant in flight per replica; the rest wait"
    )
    webhook_breaker_failures: int = Field(
        default=5, ge=1, description="Failures in a row after which an endpoint's breaker opens"
    )
    webhook_breaker_cooldown: float = Field(
        default=30.0, gt=0, description="Seconds an open breaker holds deliveries before one probe"
    )
