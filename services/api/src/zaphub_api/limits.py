"""Tenants' rate limits as the ratelimiter reads them: one KV entry per tenant, written by the API."""

from uuid import UUID

from nats.js.kv import KeyValue

from zaphub_contracts.ratelimit import RateLimits
from zaphub_runtime.codec import encode


class LimitsPublisher:
    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket

    async def publish(self, tenant_id: UUID, limits: RateLimits) -> None:
        await self._bucket.put(str(tenant_id), encode(limits))

    async def forget(self, tenant_id: UUID) -> None:
        """A deleted tenant's overrides go too (the ratelimiter falls back to the defaults)."""
        await self._bucket.delete(str(tenant_id))
