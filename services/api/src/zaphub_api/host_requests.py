"""Requests from the API to the session-host that owns a session (core NATS request/reply), one
method per host op.

Every request maps the same outcomes: no host holding the session, or none answering in time, is
`HostUnavailable` (503 with Retry-After); a session the host reports not connected or logged out is
`SessionNotConnected` (409); a refused value is `InvalidField` naming the field.
"""

from typing import Annotated, Any, TypeVar
from uuid import UUID

import nats.errors
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from zaphub_api.domain_errors import (
    CannotPair,
    CannotSimulate,
    GroupNotFound,
    HostUnavailable,
    InvalidField,
    NotGroupAdmin,
    NotOnWhatsApp,
    NotSupported,
    SessionNotConnected,
    SimulatorOnly,
)
from zaphub_contracts import subjects
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.groups import GroupAction, GroupReply, GroupRequest
from zaphub_contracts.host import (
    BlocklistChange,
    BlocklistReply,
    BlocklistUpdate,
    ChatPresenceRequest,
    ChatPresenceState,
    Contact,
    ContactCheck,
    ContactReply,
    ContactRequest,
    ContactsCheckReply,
    ContactsCheckRequest,
    ContactsReply,
    HostError,
    HostOk,
    HostOp,
    HostReply,
    MarkReadReply,
    MarkReadRequest,
    PairCodeRequest,
    PresenceRequest,
    PresenceState,
    SessionControl,
    Simulate,
)
from zaphub_runtime.bus import Bus

REPLY: TypeAdapter[HostReply] = TypeAdapter(HostReply)
GROUP_REPLY: TypeAdapter[GroupReply | HostError] = TypeAdapter(GroupReply | HostError)
_CONFLICTS = {
    FailureReason.SESSION_LOGGED_OUT,
    FailureReason.SESSION_NOT_FOUND,
    FailureReason.UNSUPPORTED,
}
_NOT_CONNECTED = {FailureReason.SESSION_NOT_CONNECTED, FailureReason.SESSION_LOGGED_OUT}

R = TypeVar("R", bound=BaseModel)


class HostRequests:
    def __init__(self, bus: Bus, timeout: float = 10.0) -> None:
        self._bus = bus
        self._timeout = timeout
        self._adapters: dict[type[BaseModel], TypeAdapter[BaseModel | HostError]] = {}

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

    def _adapter(self, reply: type[R]) -> TypeAdapter[R | HostError]:
        adapter = self._adapters.get(reply)
        if adapter is None:
            union: Any = Annotated[reply | HostError, Field(discriminator="status")]
            adapter = TypeAdapter(union)
            self._adapters[reply] = adapter
        return adapter  # type: ignore[return-value]

    async def _query(self, session_id: UUID, op: HostOp, body: BaseModel, reply: type[R], field: str) -> R:
        """Ask, and the typed reply; a `HostError` becomes the domain error (`field` names the value a
        refusal is about)."""
        data = await self._ask(session_id, op, body)
        try:
            answer = self._adapter(reply).validate_json(data)
        except ValidationError as exc:
            raise HostUnavailable("The session-host gave an unreadable answer; retry") from exc
        if isinstance(answer, HostError):
            raise _refusal(session_id, answer, field)
        return answer

    async def group(self, tenant_id: UUID, session_id: UUID, action: GroupAction) -> GroupReply:
        """A read of the session's groups, by the owning host; its refusals as domain errors (writes
        are commands: `group_commands.py`)."""
        request = GroupRequest(tenant_id=tenant_id, session_id=session_id, action=action)
        data = await self._ask(session_id, HostOp.GROUP, request)
        try:
            reply = GROUP_REPLY.validate_json(data)
        except ValidationError as exc:
            raise HostUnavailable("The session-host gave an unreadable answer; retry") from exc
        if isinstance(reply, HostError):
            raise group_refusal(session_id, action, reply)
        return reply

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

    async def contacts_check(
        self, tenant_id: UUID, session_id: UUID, numbers: list[str]
    ) -> list[ContactCheck]:
        body = ContactsCheckRequest(tenant_id=tenant_id, session_id=session_id, numbers=numbers)
        reply = await self._query(session_id, HostOp.CONTACTS_CHECK, body, ContactsCheckReply, "numbers")
        return reply.results

    async def contacts(self, tenant_id: UUID, session_id: UUID) -> list[Contact]:
        body = SessionControl(tenant_id=tenant_id, session_id=session_id)
        return (await self._query(session_id, HostOp.CONTACTS_LIST, body, ContactsReply, "body")).contacts

    async def contact(self, tenant_id: UUID, session_id: UUID, jid: str) -> Contact:
        body = ContactRequest(tenant_id=tenant_id, session_id=session_id, jid=jid)
        return (await self._query(session_id, HostOp.CONTACT_INFO, body, ContactReply, "jid")).contact

    async def blocklist(self, tenant_id: UUID, session_id: UUID) -> list[str]:
        body = SessionControl(tenant_id=tenant_id, session_id=session_id)
        return (await self._query(session_id, HostOp.BLOCKLIST, body, BlocklistReply, "body")).jids

    async def update_blocklist(
        self, tenant_id: UUID, session_id: UUID, jid: str, change: BlocklistChange
    ) -> list[str]:
        body = BlocklistUpdate(tenant_id=tenant_id, session_id=session_id, jid=jid, change=change)
        return (await self._query(session_id, HostOp.BLOCKLIST_UPDATE, body, BlocklistReply, "jid")).jids

    async def presence(self, tenant_id: UUID, session_id: UUID, state: PresenceState) -> None:
        body = PresenceRequest(tenant_id=tenant_id, session_id=session_id, state=state)
        await self._query(session_id, HostOp.PRESENCE, body, HostOk, "state")

    async def chat_presence(
        self, tenant_id: UUID, session_id: UUID, chat: str, state: ChatPresenceState
    ) -> None:
        body = ChatPresenceRequest(tenant_id=tenant_id, session_id=session_id, chat=chat, state=state)
        await self._query(session_id, HostOp.CHAT_PRESENCE, body, HostOk, "chat")

    async def mark_read(self, tenant_id: UUID, session_id: UUID, chat: str, up_to: str | None) -> list[str]:
        body = MarkReadRequest(tenant_id=tenant_id, session_id=session_id, chat=chat, up_to=up_to)
        return (await self._query(session_id, HostOp.MARK_READ, body, MarkReadReply, "up_to")).marked


def _refusal(session_id: UUID, error: HostError, field: str) -> Exception:
    """The domain error for a host's refusal of a query or presence request."""
    if error.reason in _NOT_CONNECTED:
        return SessionNotConnected(session_id, error.reason.value.removeprefix("session_"))
    if error.reason == FailureReason.INVALID_PAYLOAD:
        return InvalidField(field, error.detail or "rejected by the session-host")
    if error.reason == FailureReason.RECIPIENT_NOT_ON_WHATSAPP:
        return NotOnWhatsApp(error.detail or "The contact is not on WhatsApp")
    # Not served there (a handover under way), or WhatsApp failed for now: the client retries.
    return HostUnavailable(f"The session-host could not answer ({error.reason.value}); retry")


def group_refusal(session_id: UUID, action: BaseModel, error: HostError) -> Exception:
    """The domain error for a host's refusal of a group action, read or write."""
    group = getattr(action, "group", "")
    match error.reason:
        case FailureReason.GROUP_NOT_FOUND:
            return GroupNotFound(group or "of the invite", error.detail)
        case FailureReason.NOT_GROUP_ADMIN:
            permission, _, detail = error.detail.partition(": ")
            return NotGroupAdmin(permission or "admin", detail or error.detail)
        case FailureReason.SESSION_NOT_CONNECTED | FailureReason.SESSION_LOGGED_OUT:
            return SessionNotConnected(session_id, error.detail)
        case FailureReason.INVALID_PAYLOAD:
            return InvalidField("body", error.detail or "refused by the session-host")
        case FailureReason.UNSUPPORTED:
            return NotSupported(f"The session's transport cannot do this: {error.detail}")
    return HostUnavailable(f"The session-host could not do it ({error.reason.value}); retry")
