"""Settings of a dispatcher replica, from `ZAPHUB_*` variables."""

from pydantic import Field

from zaphub_runtime.settings import CommonSettings


class DispatcherSettings(CommonSettings):
    send_max_attempts: int = Field(default=8, ge=1, description="Transient failures before a send fails")
    retry_base_delay: float = Field(default=0.5, gt=0, description="First backoff delay, seconds")
    retry_max_delay: float = Field(default=60.0, gt=0, description="Longest backoff delay, seconds")
    host_timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for a session-host reply")
    ratelimit_timeout: float = Field(default=2.0, gt=0, description="Seconds to wait for the ratelimiter")
    max_in_flight: int = Field(default=512, ge=1, description="Send commands held by this replica at once")
    fetch_batch: int = Field(default=128, ge=1, description="Commands fetched per pull")
