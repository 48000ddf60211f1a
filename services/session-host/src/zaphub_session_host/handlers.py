"""Host request/reply endpoints: decode the contract payload, call the session's runner, answer `HostOk`
or `HostError`. Errors become failure reasons in `failure` and nowhere else.

- `zaphub.v1.host.<session_id>.<op>`: served by the session's lease owner only. Each op is one entry
  of `OPS` and one handler; `send`, a run of commands with a span and a result each, is `_send`.
- `zaphub.v1.host.any.delete`: served by any one live host (queue group), for a session no host runs:
  the dispatcher asks it when the owner's subject has no responder, so a deleted session's
  auth_data is deleted even when nobody holds the session.
"""

import asyncio
import base64
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from opentelemetry import trace
from opentelemetry.context import Context
from pydantic import BaseModel, ValidationError

from zaphub_contracts.failures import FailureReason
from zaphub_contracts.groups import (
    AnswerJoinRequests,
    CreateGroup,
    GetGroup,
    GroupReply,
    GroupRequest,
    InviteLink,
    JoinGroup,
    LeaveGroup,
    ListGroups,
    ListJoinRequests,
    SetPicture,
    UpdateGroup,
    UpdateParticipants,
)
from zaphub_contracts.host import (
    BlocklistChange,
    BlocklistReply,
    BlocklistUpdate,
    ChatPresenceRequest,
    ContactReply,
    ContactRequest,
    ContactsCheckReply,
    ContactsCheckRequest,
    ContactsReply,
    HostError,
    HostOk,
    HostOp,
    InjectFault,
    MarkReadReply,
    MarkReadRequest,
    PairCodeRequest,
    PresenceRequest,
    SendRun,
    SendRunReply,
    SessionControl,
    Simulate,
)
from zaphub_runtime.codec import decode, encode
from zaphub_runtime.telemetry import extract_context
from zaphub_session_host import metrics
from zaphub_session_host.auth_store import AuthSaver
from zaphub_session_host.leases import LeaseUnconfirmed
from zaphub_session_host.sent_log import SentLogUnavailable
from zaphub_session_host.sessions import SessionRunner, Sessions
from zaphub_session_host.transport.base import (
    AlreadyPaired,
    EditWindowExpired,
    FaultsUnsupported,
    GroupNotFound,
    InvalidContent,
    LoggedOut,
    MediaToolsMissing,
    MediaUrlRefused,
    NotConnected,
    NotGroupAdmin,
    RecipientNotOnWhatsApp,
    SimulatorOnly,
    TransportError,
    Unsupported,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("zaphub_session_host")

PHONE = re.compile(r"^\+?(\d{8,15})$")


class SessionNotFound(Exception):
    """The request names a tenant or session this runner does not serve."""


class InvalidRequest(Exception):
    """The payload parsed but its values cannot be used."""


def failure(exc: Exception) -> HostError:
    """The one mapping from what went wrong to the contract's failure reason."""
    reason: FailureReason
    match exc:
        case ValidationError() | InvalidRequest():
            reason = FailureReason.INVALID_PAYLOAD
        case SessionNotFound():
            reason = FailureReason.SESSION_NOT_FOUND
        case LeaseUnconfirmed():
            reason = FailureReason.NO_HOST  # transient: the send waits for the session's owner
        case NotConnected():
            reason = FailureReason.SESSION_NOT_CONNECTED
        case LoggedOut():
            reason = FailureReason.SESSION_LOGGED_OUT
        case RecipientNotOnWhatsApp():
            reason = FailureReason.RECIPIENT_NOT_ON_WHATSAPP
        case GroupNotFound():
            reason = FailureReason.GROUP_NOT_FOUND
        case NotGroupAdmin():
            # The permission leads the detail, so the API can name it in the problem type.
            return HostError(reason=FailureReason.NOT_GROUP_ADMIN, detail=f"{exc.permission}: {exc}"[:1000])
        case EditWindowExpired():
            reason = FailureReason.EDIT_WINDOW_EXPIRED
        case AlreadyPaired() | FaultsUnsupported() | MediaToolsMissing() | SimulatorOnly() | Unsupported():
            reason = FailureReason.UNSUPPORTED
        case MediaUrlRefused():
            reason = FailureReason.MEDIA_URL_REFUSED
        case InvalidContent():
            reason = FailureReason.INVALID_PAYLOAD
        case TransportError():
            reason = FailureReason.TRANSPORT_ERROR
        case SentLogUnavailable():
            log.warning("sent log unavailable", extra={"fields": {"error": str(exc)}})
            reason = FailureReason.TIMEOUT  # transient: the bucket answers again after its election
        case _:
            log.exception("unexpected error in a host op", exc_info=exc)
            reason = FailureReason.TRANSPORT_ERROR
    return HostError(reason=reason, detail=str(exc)[:1000])


class Addressed(Protocol):
    """A request body naming its session."""

    @property
    def tenant_id(self) -> UUID: ...

    @property
    def session_id(self) -> UUID: ...


def _owned(runner: SessionRunner, request: Addressed) -> None:
    if request.tenant_id != runner.tenant_id or request.session_id != runner.session_id:
        raise SessionNotFound(
            f"session {request.session_id} of tenant {request.tenant_id} is not served here"
        )


def _ok(runner: SessionRunner, code: str | None = None) -> HostOk:
    return HostOk(host_id=runner.ctx.host_id, code=code)


# The ops: each decodes its body, checks it names the runner's session, and acts.


async def _pair_code(runner: SessionRunner, data: bytes) -> HostOk:
    req = decode(PairCodeRequest, data)
    _owned(runner, req)
    match = PHONE.match(req.phone.replace(" ", "").replace("-", ""))
    if match is None:
        raise InvalidRequest("phone must be 8 to 15 digits, E.164 without formatting")
    return _ok(runner, code=await runner.pair_code(match.group(1)))


async def _fault(runner: SessionRunner, data: bytes) -> HostOk:
    fault = decode(InjectFault, data)
    _owned(runner, fault)
    await runner.inject_fault(fault)
    return _ok(runner)


async def _simulate(runner: SessionRunner, data: bytes) -> HostOk:
    request = decode(Simulate, data)
    _owned(runner, request)
    whatsapp_id = await runner.simulate(request)
    return HostOk(host_id=runner.ctx.host_id, whatsapp_id=whatsapp_id)


async def _logout(runner: SessionRunner, data: bytes) -> HostOk:
    _owned(runner, decode(SessionControl, data))
    await runner.logout()
    return _ok(runner)


async def _restart(runner: SessionRunner, data: bytes) -> HostOk:
    _owned(runner, decode(SessionControl, data))
    await runner.restart()
    return _ok(runner)


async def _stop(runner: SessionRunner, data: bytes) -> HostOk:
    _owned(runner, decode(SessionControl, data))
    return _ok(runner)  # the stop itself follows the reply (then_stop)


async def _delete(runner: SessionRunner, data: bytes) -> HostOk:
    _owned(runner, decode(SessionControl, data))
    await runner.delete_auth()  # before the reply: an acknowledged delete is done; the stop follows
    return _ok(runner)


async def _group(runner: SessionRunner, data: bytes) -> GroupReply:
    req = decode(GroupRequest, data)
    _owned(runner, req)
    groups = runner.groups()
    reply = GroupReply(host_id=runner.ctx.host_id)
    match req.action:
        case CreateGroup(subject=subject, participants=participants, description=description):
            group, results = await groups.create(subject, participants, description)
            return reply.model_copy(update={"group": group, "results": results})
        case ListGroups():
            return reply.model_copy(update={"groups": await groups.joined()})
        case GetGroup(group=jid):
            return reply.model_copy(update={"group": await groups.info(jid)})
        case UpdateGroup() as change:
            return reply.model_copy(update={"group": await groups.update(change)})
        case SetPicture(group=jid, image=image):
            try:
                jpeg = base64.b64decode(image, validate=True) if image is not None else None
            except ValueError as exc:
                raise InvalidRequest("image: not base64") from exc
            picture_id = await groups.set_picture(jid, jpeg)
            group = await groups.info(jid)
            if picture_id is not None:  # neonize's group info carries no picture id
                group = group.model_copy(update={"picture_id": picture_id})
            return reply.model_copy(update={"group": group})
        case UpdateParticipants(group=jid, action=action, participants=jids):
            return reply.model_copy(update={"results": await groups.participants(jid, action, jids)})
        case InviteLink(group=jid, revoke=revoke):
            return reply.model_copy(update={"invite_link": await groups.invite_link(jid, revoke)})
        case JoinGroup(code=code):
            joined, pending = await groups.join(code)
            return reply.model_copy(update={"group": joined, "pending": pending})
        case LeaveGroup(group=jid):
            await groups.leave(jid)
            return reply
        case ListJoinRequests(group=jid):
            return reply.model_copy(update={"requests": await groups.join_requests(jid)})
        case AnswerJoinRequests(group=jid, action=action, participants=jids):
            return reply.model_copy(update={"results": await groups.answer_requests(jid, action, jids)})
    raise InvalidRequest(f"unknown group action {req.action.kind!r}")


async def _contacts_check(runner: SessionRunner, data: bytes) -> ContactsCheckReply:
    req = decode(ContactsCheckRequest, data)
    _owned(runner, req)
    numbers = []
    for number in req.numbers:
        match = PHONE.match(number.replace(" ", "").replace("-", ""))
        if match is None:
            raise InvalidRequest(f"numbers: {number!r} is not 8 to 15 digits, E.164 without formatting")
        numbers.append(match.group(1))
    results = await runner.online().contacts.check(numbers)
    return ContactsCheckReply(host_id=runner.ctx.host_id, results=results)


async def _contacts_list(runner: SessionRunner, data: bytes) -> ContactsReply:
    _owned(runner, decode(SessionControl, data))
    contacts = await runner.online().contacts.known()
    return ContactsReply(host_id=runner.ctx.host_id, contacts=contacts)


async def _contact_info(runner: SessionRunner, data: bytes) -> ContactReply:
    req = decode(ContactRequest, data)
    _owned(runner, req)
    return ContactReply(host_id=runner.ctx.host_id, contact=await runner.online().contacts.info(req.jid))


async def _blocklist(runner: SessionRunner, data: bytes) -> BlocklistReply:
    _owned(runner, decode(SessionControl, data))
    return BlocklistReply(host_id=runner.ctx.host_id, jids=await runner.online().contacts.blocklist())


async def _blocklist_update(runner: SessionRunner, data: bytes) -> BlocklistReply:
    req = decode(BlocklistUpdate, data)
    _owned(runner, req)
    jids = await runner.online().contacts.set_blocked(req.jid, req.change is BlocklistChange.BLOCK)
    return BlocklistReply(host_id=runner.ctx.host_id, jids=jids)


async def _presence(runner: SessionRunner, data: bytes) -> HostOk:
    req = decode(PresenceRequest, data)
    _owned(runner, req)
    await runner.online().presence.set_presence(req.state)
    return _ok(runner)


async def _chat_presence(runner: SessionRunner, data: bytes) -> HostOk:
    req = decode(ChatPresenceRequest, data)
    _owned(runner, req)
    await runner.online().presence.set_chat_presence(req.chat, req.state)
    return _ok(runner)


async def _mark_read(runner: SessionRunner, data: bytes) -> MarkReadReply:
    req = decode(MarkReadRequest, data)
    _owned(runner, req)
    marked = await runner.online().presence.mark_read(req.chat, req.up_to)
    return MarkReadReply(host_id=runner.ctx.host_id, marked=marked)


@dataclass(frozen=True, slots=True)
class ThenStop:
    """Stop the session here once the reply is out."""

    reason: str
    handover: bool


@dataclass(frozen=True, slots=True)
class Op:
    """How one host op is served: `handle` answers it, `then_stop` follows an ok reply."""

    handle: Callable[[SessionRunner, bytes], Awaitable[BaseModel]]
    then_stop: ThenStop | None = None


DELETED = ThenStop("session deleted", handover=False)

OPS: dict[str, Op] = {
    HostOp.PAIR_CODE: Op(_pair_code),
    HostOp.FAULT: Op(_fault),
    HostOp.SIMULATE: Op(_simulate),
    HostOp.LOGOUT: Op(_logout),
    HostOp.RESTART: Op(_restart),
    HostOp.STOP: Op(_stop, ThenStop("stopped by request", handover=True)),
    HostOp.DELETE: Op(_delete, DELETED),
    HostOp.GROUP: Op(_group),
    HostOp.CONTACTS_CHECK: Op(_contacts_check),
    HostOp.CONTACTS_LIST: Op(_contacts_list),
    HostOp.CONTACT_INFO: Op(_contact_info),
    HostOp.BLOCKLIST: Op(_blocklist),
    HostOp.BLOCKLIST_UPDATE: Op(_blocklist_update),
    HostOp.PRESENCE: Op(_presence),
    HostOp.CHAT_PRESENCE: Op(_chat_presence),
    HostOp.MARK_READ: Op(_mark_read),
}


class SessionStopper(Protocol):
    """Stops a session here and gives its lease up (the reconciler)."""

    async def stop_by_request(self, session_id: UUID, reason: str, handover: bool) -> None: ...


class AfterReply:
    """Stops sessions once their reply is out: stopping drains the session's subscription, so it runs
    after the reply, outside the subscription's callback."""

    def __init__(self) -> None:
        self._stopper: SessionStopper | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def stop_with(self, stopper: SessionStopper) -> None:
        """Set once the reconciler is built (on the sessions whose runners call the handlers)."""
        self._stopper = stopper

    def stop(self, session_id: UUID, then: ThenStop) -> None:
        if self._stopper is None:
            raise RuntimeError("AfterReply.stop_with() was not called")
        task = asyncio.create_task(self._stopper.stop_by_request(session_id, then.reason, then.handover))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# Every op acts for the session only while this host can confirm its lease (sends check it per
# message, in the runner), so two hosts never both act for it. Stopping and deleting stay allowed: a
# host that lost track of its lease must still be able to let go of the session.
UNFENCED_OPS = frozenset({HostOp.STOP, HostOp.DELETE})


class HostHandlers:
    """The session's own subject, `host.<session_id>.<op>`, served by the runner of the session."""

    def __init__(self, after_reply: AfterReply) -> None:
        self.after_reply = after_reply

    async def serve(self, runner: SessionRunner, msg: Msg) -> None:
        name = msg.subject.rsplit(".", 1)[-1]
        if name == HostOp.SEND:
            await _respond(msg, await self._send(runner, msg))
            return
        with _span(name, runner, msg.subject, extract_context(msg.headers)) as span:
            op = OPS.get(name)
            reply: BaseModel
            try:
                if op is None:
                    raise InvalidRequest(f"unknown host op {name!r}")
                if name not in UNFENCED_OPS:
                    runner.ctx.lease_check(runner.session_id)
                reply = await op.handle(runner, msg.data)
            except Exception as exc:
                refused = failure(exc)
                span.set_attribute("zaphub.failure_reason", refused.reason.value)
                reply = refused
            await _respond(msg, reply)
            if not isinstance(reply, HostError) and op is not None and op.then_stop is not None:
                self.after_reply.stop(runner.session_id, op.then_stop)

    async def _send(self, runner: SessionRunner, msg: Msg) -> SendRunReply:
        """A run of the session's send commands; each gets its own span, in its own send's trace."""
        host_id = runner.ctx.host_id
        try:
            run = decode(SendRun, msg.data)
            _owned(runner, run)
            for cmd in run.commands:
                _owned(runner, cmd)
        except Exception as exc:
            with _span(HostOp.SEND, runner, msg.subject, extract_context(msg.headers)) as span:
                refused = failure(exc)
                span.set_attribute("zaphub.failure_reason", refused.reason.value)
            metrics.count_send(host_id, refused)
            return SendRunReply(results=[refused])

        refusal: HostError | None = None

        @contextmanager
        def each(i: int) -> Iterator[None]:
            nonlocal refusal
            # Without traceparents, the request's own headers; an empty one: a command not traced.
            carrier = {"traceparent": run.traceparents[i]} if run.traceparents else msg.headers
            message = {"zaphub.message_id": str(run.commands[i].message_id)}
            with _span(HostOp.SEND, runner, msg.subject, extract_context(carrier), message) as span:
                try:
                    yield
                except Exception as exc:
                    refusal = failure(exc)
                    span.set_attribute("zaphub.failure_reason", refusal.reason.value)
                    raise

        done, error = await runner.send_run(run.commands, run.seconds, each)
        results: list[HostOk | HostError] = [*done]
        if error is not None and len(done) < len(run.commands):
            results.append(refusal or failure(error))
        elif error is not None:  # the last went out and could not be recorded: nothing left to stop
            log.warning("a send was not recorded", extra={"fields": {"error": repr(error)}})
        for result in results:
            metrics.count_send(host_id, result)
        return SendRunReply(results=results)


class AnyHostHandler:
    """`host.any.<op>`: only `delete`, of a session that may run nowhere."""

    def __init__(self, host_id: str, sessions: Sessions, auth: AuthSaver, after_reply: AfterReply) -> None:
        self.host_id = host_id
        self.sessions = sessions
        self.auth = auth
        self.after_reply = after_reply

    async def serve(self, msg: Msg) -> None:
        reply: BaseModel
        try:
            if msg.subject.rsplit(".", 1)[-1] != HostOp.DELETE:
                raise InvalidRequest("only delete is served on host.any")
            ctl = decode(SessionControl, msg.data)
            runner = self.sessions.get(ctl.session_id)
            if runner is not None:  # it started here since the dispatcher asked its owner
                _owned(runner, ctl)
                await runner.delete_auth()
                self.after_reply.stop(runner.session_id, DELETED)
            else:
                self.auth.put(ctl.tenant_id, ctl.session_id, None)
                await self.auth.flush()
            reply = HostOk(host_id=self.host_id)
        except Exception as exc:
            reply = failure(exc)
        await _respond(msg, reply)


def _span(
    op: str,
    runner: SessionRunner,
    subject: str,
    parent: Context,
    attributes: dict[str, str] | None = None,
) -> AbstractContextManager[trace.Span]:
    return tracer.start_as_current_span(
        f"{op} process",
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": subject,
            "zaphub.session_id": str(runner.session_id),
            **(attributes or {}),
        },
    )


async def _respond(msg: Msg, reply: BaseModel) -> None:
    if msg.reply:
        try:
            await msg.respond(encode(reply))
        except NatsError as exc:
            log.warning("host reply failed", extra={"fields": {"error": repr(exc)}})
