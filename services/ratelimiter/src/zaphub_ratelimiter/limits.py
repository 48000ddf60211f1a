"""Tenants' rate limits: service defaults, overridden per tenant by the API in KV `zaphub_limits`.

The bucket is watched, so an override takes effect as soon as the watch delivers it (milliseconds). An
override that cannot be read keeps the tenant's previous limits (see `KvMirror`): the API validates what
it writes, so that is a newer writer during a rolling upgrade, not a reason to drop the tenant's limits.
"""

import logging
from uuid import UUID

from nats.js.kv import KeyValue

from zaphub_contracts.ratelimit import WINDOW_SECONDS, RateLimits, WindowName
from zaphub_ratelimiter.windows import WindowLimit
from zaphub_runtime.kv_watch import KvMirror

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
    """Current limits of every tenant, kept fresh by a mirror of the limits bucket."""

    def __init__(self, defaults: RateLimits) -> None:
        self._defaults = defaults
        self._default_windows = window_limits(defaults)
        self._overrides: dict[UUID, tuple[WindowLimit[WindowName], ...]] = {}
        self._mirror: KvMirror[RateLimits] | None = None

    def get(self, tenant: UUID) -> tuple[WindowLimit[WindowName], ...]:
        return self._overrides.get(tenant, self._default_windows)

    def _apply(self, key: str, override: RateLimits | None) -> None:
        """Turn one change of the mirror into the tenant's windows (`override` None once deleted)."""
        try:
            tenant = UUID(key)
        except ValueError:
            log.warning("limits key is not a tenant id", extra={"fields": {"key": key}})
            return
        if override is None:
            self._overrides.pop(tenant, None)
            return
        # Fields the override leaves out keep this service's defaults, not the contract's.
        merged = self._defaults.model_copy(
            update={name: getattr(override, name) for name in override.model_fields_set}
        )
        self._overrides[tenant] = window_limits(merged)

    async def start(self, bucket: KeyValue) -> None:
        """Load every entry, then keep following the bucket in the background."""
        self._mirror = KvMirror(bucket, RateLimits, self._apply, "limits")
        await self._mirror.start(timeout=30.0)

    async def stop(self) -> None:
        if self._mirror is not None:
            await self._mirror.stop()
