"""Tenant overrides from the limits bucket, on a real NATS KV."""

import uuid

from zaphub_contracts import streams
from zaphub_contracts.ratelimit import RateLimits
from zaphub_devstack.inprocess import eventually
from zaphub_ratelimiter.limits import TenantLimits
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode

DEFAULTS = RateLimits(per_minute=60, per_hour=1000, per_day=10000)


async def test_an_unreadable_override_keeps_the_previous_limits_and_a_delete_restores_defaults(
    nats_url: str,
) -> None:
    """A value that cannot be read leaves the tenant's last override in force; deleting it brings back
    the service's defaults, and fields an override omits keep the defaults."""
    bus = await Bus.connect(nats_url, name="limits-test", source="/test")
    bucket = await bus.kv(streams.LIMITS_BUCKET)
    limits = TenantLimits(DEFAULTS)
    await limits.start(bucket)
    tenant, later = uuid.uuid4(), uuid.uuid4()

    def limit(of: uuid.UUID, window: str = "minute") -> int:
        return {w.name: w.limit for w in limits.get(of)}[window]

    try:
        await bucket.put(str(tenant), encode(RateLimits(per_minute=2)))
        await eventually(lambda: limit(tenant) == 2, "the override applied")
        assert limit(tenant, "hour") == 1000
        await bucket.put(str(tenant), b"not json")
        await bucket.put(str(later), encode(RateLimits(per_minute=3)))  # applied after the bad value
        await eventually(lambda: limit(later) == 3, "a later override applied")
        assert limit(tenant) == 2
        await bucket.delete(str(tenant))
        await eventually(lambda: limit(tenant) == 60, "the defaults back")
    finally:
        await limits.stop()
        await bus.close()
