"""Requests from the API to the session-host that owns a session (core NATS request/reply), one
method per host op."""

from uuid import UUID

import nats.errors
from pydantic import TypeAdapter, ValidationError

from zaphub_api.domain_errors import CannotPair, HostUnavailable, InvalidField
from zaphub_contracts import subjects
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.host import HostError, HostOp, HostReply, PairCodeRequest
from zaphub_runtime.bus import Bus

REPLY: TypeAdapter[HostReply] = TypeAdapter(HostReply)
_CONFLICTS = {
    FailureReason.SESSION_LOGGED_OUT,
    FailureReason.SESSION_NOT_FOUND,
    FailureReason.UNSUPPORTED,
}


class HostRequests:
    def __init__(self, bus: Bus, timeout: float = 10.0) -> None:
        self._bus = bus
        self._timeout = timeout

    async def pair_code(self, tenant_id: UUID, session_id: UUID, phone: str) -> str:
        """Ask the owning host for a pairing code for `phone` (E.164 digits)."""
        request = PairCodeRequest(tenant_id=tenant_id, session_id=session_id, phone=phone)
        try:
            msg = await self._bus.request(subjects.host(session_id, HostOp.PAIR_CODE), request, self._timeout)
        except nats.errors.NoRespondersError as exc:
            raise HostUnavailable(
                f"No session-host holds session {session_id} right now; retry in a few seconds"
            ) from exc
        except (nats.errors.Error, TimeoutError) as exc:
            raise HostUnavailable("The session-host did not answer in time; retry") from exc
        try:
            reply = REPLY.validate_json(msg.data)
        except ValidationError as exc:
            raise HostUnavailable("The session-host gave an unreadable answer; retry") from exc
        if isinstance(reply, HostError):
            if reply.reason == FailureReason.INVALID_PAYLOAD:
                raise InvalidField("phone", reply.detail or "rejected by the session-host")
            if reply.reason in _CONFLICTS:
                raise CannotPair(
                    f"The session cannot pair now ({reply.reason.value}): {reply.detail}".strip()
                )
            raise HostUnavailable(
                f"The session-host could not make a pairing code ({reply.reason.value}); retry"
            )
        if not reply.code:
            raise HostUnavailable("The session-host answered without a pairing code; retry")
        return reply.code
