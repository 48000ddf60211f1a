"""The dispatcher's two request/reply peers: the ratelimiter and the session-host owning a session."""

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import nats.errors
from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError

from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.host import HostError, HostOp, HostReply, SendRun, SendRunReply
from zaphub_contracts.ratelimit import (
    ERROR_HEADER,
    AcquireReply,
    AcquireRequest,
    RateLimitError,
    ReleaseRequest,
)
from zaphub_runtime.bus import Bus
from zaphub_runtime.ratelimit_routes import Op, RatelimiterRoutes


class RateLimiterUnavailable(Exception):
    """No ratelimiter answered in time; the message waits without counting an attempt."""


class RateLimiterClient:
    """Asks the replica that keeps the tenant's window (see `RatelimiterRoutes`)."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout
        self._routes = RatelimiterRoutes()

    async def acquire(self, commands: Sequence[SendMessage]) -> AcquireReply:
        """Tokens for a run of one session's commands, granted in order up to the first denial."""
        return await self.acquire_tokens(commands[0].tenant_id, [c.message_id for c in commands])

    async def release(self, commands: Sequence[SendMessage]) -> None:
        await self.release_tokens(commands[0].tenant_id, [c.message_id for c in commands])

    async def acquire_tokens(self, tenant_id: UUID, token_ids: list[UUID]) -> AcquireReply:
        """Tokens in order up to the first denial; a token id asked again gets the same grant."""
        request = AcquireRequest(tenant_id=tenant_id, token_ids=token_ids)
        try:
            reply = await self._ask(tenant_id, "acquire", request)
            return AcquireReply.model_validate_json(reply.data)
        except (nats.errors.Error, TimeoutError, ValidationError) as exc:
            raise RateLimiterUnavailable(str(exc) or exc.__class__.__name__) from exc

    async def release_tokens(self, tenant_id: UUID, token_ids: list[UUID]) -> None:
        request = ReleaseRequest(tenant_id=tenant_id, token_ids=token_ids)
        try:
            await self._ask(tenant_id, "release", request)
        except (nats.errors.Error, TimeoutError, ValidationError) as exc:
            raise RateLimiterUnavailable(str(exc) or exc.__class__.__name__) from exc

    async def _ask(self, tenant_id: UUID, op: Op, request: BaseModel) -> Msg:
        reply = await self._routes.request(self._bus.nc, tenant_id, op, request, self._timeout)
        if reply.headers and ERROR_HEADER in reply.headers:
            # e.g. the grant log answers nothing during a NATS leader election: say that, not a
            # validation error of the wrong reply type
            error = RateLimitError.model_validate_json(reply.data)
            raise RateLimiterUnavailable(f"ratelimiter {error.error}: {error.detail}")
        return reply


class HostRunClient:
    """Sends runs of one session's send commands to the session-host that owns the session."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    async def send(
        self, commands: Sequence[SendMessage], seconds: float, traceparents: list[str]
    ) -> "HostAnswer":
        """The host's results for a run of one session's commands, in order up to the first error;
        transport problems on the way become one transient HostError."""
        head = commands[0]
        run = SendRun(
            tenant_id=head.tenant_id,
            session_id=head.session_id,
            commands=list(commands),
            seconds=seconds,
            traceparents=traceparents,
        )
        try:
            reply = await self._bus.request(subjects.host(head.session_id, HostOp.SEND), run, self._timeout)
        except nats.errors.NoRespondersError:
            return HostAnswer.error(FailureReason.NO_HOST, "no session-host holds this session", known=True)
        except (nats.errors.TimeoutError, TimeoutError):
            return HostAnswer.error(FailureReason.TIMEOUT, "the session-host did not answer in time")
        except nats.errors.Error as exc:
            return HostAnswer.error(FailureReason.TRANSPORT_ERROR, f"NATS: {exc}")
        try:
            return HostAnswer(SendRunReply.model_validate_json(reply.data).results, known=True)
        except ValidationError as exc:
            return HostAnswer.error(FailureReason.TRANSPORT_ERROR, f"unreadable host reply: {exc}")


@dataclass(frozen=True)
class HostAnswer:
    results: list[HostReply]
    # Whether the commands without an Ok result are known not to have gone out: the host said so
    # (an error, or no result: not attempted), or nobody could have received them.
    known: bool = False

    @classmethod
    def error(cls, reason: FailureReason, detail: str, known: bool = False) -> "HostAnswer":
        return cls([HostError(reason=reason, detail=detail)], known)
