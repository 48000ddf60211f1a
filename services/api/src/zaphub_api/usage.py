"""A tenant's rate-limit usage, as the ratelimiter service counts it, and the tokens the API takes
itself for the writes that count like a message (creating a group, adding participants)."""

from uuid import UUID, uuid4

import nats.errors
from pydantic import ValidationError

from zaphub_api.domain_errors import RateLimited, RatelimiterUnavailable
from zaphub_contracts.ratelimit import AcquireReply, AcquireRequest, UsageReply, UsageRequest
from zaphub_runtime.bus import Bus
from zaphub_runtime.ratelimit_routes import RatelimiterRoutes


class UsageClient:
    """Asks the replica that keeps the tenant's window warm, as the dispatcher does."""

    def __init__(self, bus: Bus, timeout: float = 2.0) -> None:
        self._bus = bus
        self._timeout = timeout
        self._routes = RatelimiterRoutes()

    async def usage(self, tenant_id: UUID) -> UsageReply:
        request = UsageRequest(tenant_id=tenant_id)
        try:
            reply = await self._routes.request(self._bus.nc, tenant_id, "usage", request, self._timeout)
            return UsageReply.model_validate_json(reply.data)
        except (nats.errors.Error, TimeoutError, ValidationError) as exc:
            raise RatelimiterUnavailable() from exc

    async def take(self, tenant_id: UUID) -> None:
        """Count one message against the tenant's limits now, or raise `RateLimited`."""
        request = AcquireRequest(tenant_id=tenant_id, token_ids=[uuid4()])
        try:
            msg = await self._routes.request(self._bus.nc, tenant_id, "acquire", request, self._timeout)
            reply = AcquireReply.model_validate_json(msg.data)
        except (nats.errors.Error, TimeoutError, ValidationError) as exc:
            raise RatelimiterUnavailable() from exc
        if reply.granted < 1:
            raise RateLimited(reply.retry_after, reply.window)
