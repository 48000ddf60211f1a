"""Tenants' rate limits: service defaults, overridden per tenant by the API in KV `zaphub_limits`.

The bucket is watched, so an override takes effect as soon as the watch delivers it (milliseconds).
"""

import logging
from uuid import UUID

from nats.js.kv import KeyValue
from pydantic import ValidationError

from zaphub_contracts.ratelimit import WINDOW_SECONDS, RateLimits, WindowName
from zaphub_ratelimiter.windows import WindowLimit
from zaphub_runtime.kv_watch import BucketWatch

log = logging.getLogger(__name__)

NS = 1_000_000_000


def window_limits(limits: RateLimits) -> tuple[WindowLimit[WindowName], ...]:
    """The contract's limits as windows in nanoseconds, for the domain."""
    return tuple(
        WindowLimit(name=name, length=WINDOW_SECONDS[name] * NS, limit=limit)
        for name, limit in limits.by_window().items()
    )


LONGEST_WINDOW_NS = max(WINDOW_SECONDS.values()) * NS


class TenantLimits:
    """Current limits of every tenant, kept fresh by a watch of the limits bucket."""

    def __init__(self, defaults: RateLimits) -> None:
        self._defaults = defaults
        self._default_windows = window_limits(defaults)
        self._overrides: dict[UUID, tuple[WindowLimit[WindowName], ...]] = {}
        self._watch: BucketWatch | None = None

    def get(self, tenant: UUID) -> tuple[WindowLimit[WindowName], ...]:
        return self._overrides.get(tenant, self._default_windows)

    def apply(self, key: str, value: bytes | None) -> None:
        """Apply one bucket entry: a RateLimits JSON, or None for a deleted key."""
        try:
            tenant = UUID(key)
        except ValueError:
            log.warning("limits key is not a tenant id", extra={"fields": {"key": key}})
            return
        if value is None:
            self._overrides.pop(tenant, None)
            return
        try:
            parsed = RateLimits.model_validate_json(value)
        except ValidationError as exc:
            # Keep enforcing something sane rather than nothing; the API validates what it writes.
            log.warning(
                "unreadable limits override, using defaults",
                extra={"fields": {"tenant_id": key, "error": str(exc)}},
            )
            self._overrides.pop(tenant, None)
            return
        # Fields the override leaves out keep this service's defaults, not the contract's.
        merged = self._defaults.model_copy(
            update={name: getattr(parsed, name) for name in parsed.model_fields_set}
        )
        self._overrides[tenant] = window_limits(merged)

    async def start(self, bucket: KeyValue) -> None:
        """Load every entry, then keep following the bucket in the background."""
        self._watch = BucketWatch(bucket, lambda key, value, _revision: self.apply(key, value), "limits")
        await self._watch.start()

    async def stop(self) -> None:
        if self._watch is not None:
            await self._watch.stop()
