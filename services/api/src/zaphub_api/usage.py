"""A tenant's rate-limit usage, as the ratelimiter service counts it."""

from uuid import UUID

import nats.errors
from pydantic import ValidationError

from zaphub_api.domain_errors import RatelimiterUnavailable
from zaphub_contracts.ratelimit import UsageReply, UsageRequest
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
