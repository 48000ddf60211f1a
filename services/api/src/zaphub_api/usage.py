"""A tenant's rate-limit usage, as the ratelimiter service counts it."""

from uuid import UUID

import nats.errors
from pydantic import ValidationError

from zaphub_api.errors import Unavailable
from zaphub_contracts import subjects
from zaphub_contracts.ratelimit import UsageReply, UsageRequest
from zaphub_runtime.bus import Bus


class UsageClient:
    def __init__(self, bus: Bus, timeout: float = 2.0) -> None:
        self._bus = bus
        self._timeout = timeout

    async def usage(self, tenant_id: UUID) -> UsageReply:
        try:
            reply = await self._bus.request(
                subjects.RATELIMIT_USAGE, UsageRequest(tenant_id=tenant_id), self._timeout
            )
            return UsageReply.model_validate_json(reply.data)
        except (nats.errors.Error, TimeoutError, ValidationError) as exc:
            raise Unavailable("The ratelimiter did not answer; retry") from exc
