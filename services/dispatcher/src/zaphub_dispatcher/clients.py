"""The dispatcher's two request/reply peers: the ratelimiter and the session-host owning a session."""

import nats.errors
from nats.aio.msg import Msg
from pydantic import BaseModel, TypeAdapter, ValidationError

from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.host import HostError, HostOp, HostReply
from zaphub_contracts.ratelimit import AcquireReply, AcquireRequest, ReleaseRequest
from zaphub_runtime.bus import Bus
from zaphub_runtime.ratelimit_routes import Op, RatelimiterRoutes

HOST_REPLY: TypeAdapter[HostReply] = TypeAdapter(HostReply)


class RateLimiterUnavailable(Exception):
    """No ratelimiter answered in time; the message waits without counting an attempt."""


class RateLimiterClient:
    """Asks the replica that keeps the tenant's window (see `RatelimiterRoutes`)."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout
        self._routes = RatelimiterRoutes()

    async def acquire(self, command: SendMessage) -> AcquireReply:
        request = AcquireRequest(tenant_id=command.tenant_id, token_id=command.message_id)
        try:
            reply = await self._ask(command, "acquire", request)
            return AcquireReply.model_validate_json(reply.data)
        except (nats.errors.Error, TimeoutError, ValidationError) as exc:
            raise RateLimiterUnavailable(str(exc) or exc.__class__.__name__) from exc

    async def release(self, command: SendMessage) -> None:
        request = ReleaseRequest(tenant_id=command.tenant_id, token_id=command.message_id)
        try:
            await self._ask(command, "release", request)
        except (nats.errors.Error, TimeoutError) as exc:
            raise RateLimiterUnavailable(str(exc) or exc.__class__.__name__) from exc

    async def _ask(self, command: SendMessage, op: Op, request: BaseModel) -> Msg:
        return await self._routes.request(self._bus.nc, command.tenant_id, op, request, self._timeout)


class HostClient:
    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    async def send(self, command: SendMessage) -> HostReply:
        """The host's answer; transport problems on the way become transient HostErrors."""
        try:
            reply = await self._bus.request(
                subjects.host(command.session_id, HostOp.SEND), command, self._timeout
            )
        except nats.errors.NoRespondersError:
            return HostError(reason=FailureReason.NO_HOST, detail="no session-host holds this session")
        except (nats.errors.TimeoutError, TimeoutError):
            return HostError(reason=FailureReason.TIMEOUT, detail="the session-host did not answer in time")
        except nats.errors.Error as exc:
            return HostError(reason=FailureReason.TRANSPORT_ERROR, detail=f"NATS: {exc}")
        try:
            return HOST_REPLY.validate_json(reply.data)
        except ValidationError as exc:
            return HostError(reason=FailureReason.TRANSPORT_ERROR, detail=f"unreadable host reply: {exc}")
