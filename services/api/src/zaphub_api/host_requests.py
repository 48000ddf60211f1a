"""Requests from the API to the session-host that owns a session (core NATS request/reply), one
method per host op."""

from uuid import UUID

import nats.errors
from pydantic import BaseModel, TypeAdapter, ValidationError

from zaphub_api.domain_errors import (
    CannotPair,
    CannotSimulate,
    GroupNotFound,
    HostUnavailable,
    InvalidField,
    NotGroupAdmin,
    NotSupported,
    SessionNotConnected,
    SimulatorOnly,
)
from zaphub_contracts import subjects
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.groups import GroupAction, GroupReply, GroupRequest
from zaphub_contracts.host import HostError, HostOk, HostOp, HostReply, PairCodeRequest, Simulate
from zaphub_runtime.bus import Bus

REPLY: TypeAdapter[HostReply] = TypeAdapter(HostReply)
GROUP_REPLY: TypeAdapter[GroupReply | HostError] = TypeAdapter(GroupReply | HostError)
_CONFLICTS = {
    FailureReason.SESSION_LOGGED_OUT,
    FailureReason.SESSION_NOT_FOUND,
    FailureReason.UNSUPPORTED,
}


class HostRequests:
    def __init__(self, bus: Bus, timeout: float = 10.0) -> None:
        self._bus = bus
        self._timeout = timeout

    async def _ask(self, session_id: UUID, op: HostOp, request: BaseModel) -> bytes:
        try:
            msg = await self._bus.request(subjects.host(session_id, op), request, self._timeout)
        except nats.errors.NoRespondersError as exc:
            raise HostUnavailable(
                f"No session-host holds session {session_id} right now; retry in a few seconds"
            ) from exc
        except (nats.errors.Error, TimeoutError) as exc:
            raise HostUnavailable("The session-host did not answer in time; retry") from exc
        return bytes(msg.data)

    async def _reply(self, session_id: UUID, op: HostOp, request: BaseModel) -> HostOk | HostError:
        data = await self._ask(session_id, op, request)
        try:
            return REPLY.validate_json(data)
        except ValidationError as exc:
            raise HostUnavailable("The session-host gave an unreadable answer; retry") from exc

    async def group(self, tenant_id: UUID, session_id: UUID, action: GroupAction) -> GroupReply:
        """One action on the session's groups, by the owning host; its refusals as domain errors."""
        request = GroupRequest(tenant_id=tenant_id, session_id=session_id, action=action)
        data = await self._ask(session_id, HostOp.GROUP, request)
        try:
            reply = GROUP_REPLY.validate_json(data)
        except ValidationError as exc:
            raise HostUnavailable("The session-host gave an unreadable answer; retry") from exc
        if isinstance(reply, GroupReply):
            return reply
        group = getattr(action, "group", "")
        match reply.reason:
            case FailureReason.GROUP_NOT_FOUND:
                raise GroupNotFound(group or "of the invite", reply.detail)
            case FailureReason.NOT_GROUP_ADMIN:
                permission, _, detail = reply.detail.partition(": ")
                raise NotGroupAdmin(permission or "admin", detail or reply.detail)
            case FailureReason.SESSION_NOT_CONNECTED | FailureReason.SESSION_LOGGED_OUT:
                raise SessionNotConnected(session_id, reply.detail)
            case FailureReason.INVALID_PAYLOAD:
                raise InvalidField("body", reply.detail or "refused by the session-host")
            case FailureReason.UNSUPPORTED:
                raise NotSupported(f"The session's transport cannot do this: {reply.detail}")
        raise HostUnavailable(f"The session-host could not do it ({reply.reason.value}); retry")

    async def simulate(self, request: Simulate) -> str | None:
        """Have a simulated contact act on the session; the WhatsApp id of what it sent, if anything."""
        reply = await self._reply(request.session_id, HostOp.SIMULATE, request)
        if isinstance(reply, HostError):
            if reply.reason == FailureReason.UNSUPPORTED:
                raise SimulatorOnly(request.session_id)
            if reply.reason == FailureReason.INVALID_PAYLOAD:
                raise InvalidField("action", reply.detail or "refused by the simulator")
            if reply.reason in _CONFLICTS:
                raise CannotSimulate(
                    f"The session cannot be acted on now ({reply.reason.value}): {reply.detail}"
                )
            raise HostUnavailable(f"The session-host could not simulate it ({reply.reason.value}); retry")
        return reply.whatsapp_id

    async def pair_code(self, tenant_id: UUID, session_id: UUID, phone: str) -> str:
        """Ask the owning host for a pairing code for `phone` (E.164 digits)."""
        request = PairCodeRequest(tenant_id=tenant_id, session_id=session_id, phone=phone)
        reply = await self._reply(session_id, HostOp.PAIR_CODE, request)
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
