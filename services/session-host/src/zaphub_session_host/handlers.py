"""Host request/reply endpoints: decode the contract payload, call the session's runner, answer `HostOk`
or `HostError`. Transport errors become failure reasons here and nowhere else.

- `zaphub.v1.host.<session_id>.<op>`: served by the session's lease owner only.
- `zaphub.v1.host.any.delete`: served by any one live host (queue group), for a session no host runs:
  the dispatcher asks it when the owner's subject has no responder, so a deleted session's
  auth_data is deleted even when nobody holds the session.
"""

import asyncio
import logging
import re
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from uuid import UUID

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from opentelemetry import trace
from opentelemetry.context import Context
from pydantic import BaseModel, ValidationError

from zaphub_contracts.failures import FailureReason
from zaphub_contracts.host import (
    HostError,
    HostOk,
    HostOp,
    InjectFault,
    PairCodeRequest,
    SendRun,
    SendRunReply,
    SessionControl,
)
from zaphub_runtime.codec import decode, encode
from zaphub_runtime.telemetry import extract_context
from zaphub_session_host import metrics
from zaphub_session_host.auth_store import AuthSaver
from zaphub_session_host.sessions import SessionRunner, Sessions
from zaphub_session_host.transport.base import (
    AlreadyPaired,
    FaultsUnsupported,
    InvalidContent,
    LoggedOut,
    MediaToolsMissing,
    NotConnected,
    RecipientNotOnWhatsApp,
    TransportError,
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
        case NotConnected():
            reason = FailureReason.SESSION_NOT_CONNECTED
        case LoggedOut():
            reason = FailureReason.SESSION_LOGGED_OUT
        case RecipientNotOnWhatsApp():
            reason = FailureReason.RECIPIENT_NOT_ON_WHATSAPP
        case AlreadyPaired() | FaultsUnsupported() | MediaToolsMissing():
            reason = FailureReason.UNSUPPORTED
        case InvalidContent():
            reason = FailureReason.INVALID_PAYLOAD
        case TransportError():
            reason = FailureReason.TRANSPORT_ERROR
        case _:
            log.exception("unexpected error in a host op", exc_info=exc)
            reason = FailureReason.TRANSPORT_ERROR
    return HostError(reason=reason, detail=str(exc)[:1000])


def _owned(runner: SessionRunner, tenant_id: UUID, session_id: UUID) -> None:
    if tenant_id != runner.tenant_id or session_id != runner.session_id:
        raise SessionNotFound(f"session {session_id} of tenant {tenant_id} is not served here")


StopSession = Callable[[UUID, str, bool], Coroutine[Any, Any, None]]  # (session, reason, handover)


class HostHandlers:
    def __init__(self, host_id: str, stop_session: StopSession, sessions: Sessions, auth: AuthSaver) -> None:
        self.host_id = host_id
        self.stop_session = stop_session
        self.sessions = sessions
        self.auth = auth
        self._background: set[asyncio.Task[None]] = set()

    async def serve_any(self, msg: Msg) -> None:
        """`host.any.<op>`: only `delete`, of a session that may run nowhere."""
        reply: BaseModel
        try:
            if msg.subject.rsplit(".", 1)[-1] != HostOp.DELETE:
                raise InvalidRequest("only delete is served on host.any")
            ctl = decode(SessionControl, msg.data)
            runner = self.sessions.get(ctl.session_id)
            if runner is not None:  # it started here since the dispatcher asked its owner
                _owned(runner, ctl.tenant_id, ctl.session_id)
                await runner.delete_auth()
                self._after_reply(runner.session_id, "session deleted", handover=False)
            else:
                self.auth.put(ctl.tenant_id, ctl.session_id, None)
                await self.auth.flush()
            reply = HostOk(host_id=self.host_id)
        except Exception as exc:
            reply = failure(exc)
        await self._respond(msg, reply)

    def _after_reply(self, session_id: UUID, reason: str, handover: bool) -> None:
        # Stopping drains the session's subscription, so it runs after the reply, outside its callback.
        task = asyncio.create_task(self.stop_session(session_id, reason, handover))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def serve(self, runner: SessionRunner, msg: Msg) -> None:
        op_token = msg.subject.rsplit(".", 1)[-1]
        if op_token == HostOp.SEND:
            await self._respond(msg, await self._send(runner, msg))
            return
        with self._span(op_token, runner, msg.subject, extract_context(msg.headers)) as span:
            reply: HostOk | HostError
            try:
                reply = await self._handle(runner, op_token, msg.data)
            except Exception as exc:
                reply = failure(exc)
                span.set_attribute("zaphub.failure_reason", reply.reason.value)
            await self._respond(msg, reply)
            if isinstance(reply, HostOk):
                if op_token == HostOp.STOP:
                    self._after_reply(runner.session_id, "stopped by request", handover=True)
                elif op_token == HostOp.DELETE:
                    self._after_reply(runner.session_id, "session deleted", handover=False)

    async def _send(self, runner: SessionRunner, msg: Msg) -> SendRunReply:
        """A run of the session's send commands; each gets its own span, in its own send's trace."""
        try:
            run = decode(SendRun, msg.data)
            _owned(runner, run.tenant_id, run.session_id)
            for cmd in run.commands:
                _owned(runner, cmd.tenant_id, cmd.session_id)
        except Exception as exc:
            with self._span(HostOp.SEND, runner, msg.subject, extract_context(msg.headers)) as span:
                refused = failure(exc)
                span.set_attribute("zaphub.failure_reason", refused.reason.value)
            metrics.count_send(self.host_id, refused)
            return SendRunReply(results=[refused])

        refusal: HostError | None = None

        @contextmanager
        def each(i: int) -> Iterator[None]:
            nonlocal refusal
            # Without traceparents, the request's own headers; an empty one: a command not traced.
            carrier = {"traceparent": run.traceparents[i]} if run.traceparents else msg.headers
            message = {"zaphub.message_id": str(run.commands[i].message_id)}
            with self._span(HostOp.SEND, runner, msg.subject, extract_context(carrier), message) as span:
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
            metrics.count_send(self.host_id, result)
        return SendRunReply(results=results)

    @staticmethod
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

    async def _respond(self, msg: Msg, reply: BaseModel) -> None:
        if msg.reply:
            try:
                await msg.respond(encode(reply))
            except NatsError as exc:
                log.warning("host reply failed", extra={"fields": {"error": repr(exc)}})

    async def _handle(self, runner: SessionRunner, op_token: str, data: bytes) -> HostOk:
        try:
            op = HostOp(op_token)
        except ValueError:
            raise InvalidRequest(f"unknown host op {op_token!r}") from None
        ok = HostOk(host_id=self.host_id)
        match op:
            case HostOp.PAIR_CODE:
                req = decode(PairCodeRequest, data)
                _owned(runner, req.tenant_id, req.session_id)
                match = PHONE.match(req.phone.replace(" ", "").replace("-", ""))
                if match is None:
                    raise InvalidRequest("phone must be 8 to 15 digits, E.164 without formatting")
                return ok.model_copy(update={"code": await runner.pair_code(match.group(1))})
            case HostOp.FAULT:
                fault = decode(InjectFault, data)
                _owned(runner, fault.tenant_id, fault.session_id)
                await runner.inject_fault(fault)
                return ok
        ctl = decode(SessionControl, data)
        _owned(runner, ctl.tenant_id, ctl.session_id)
        match op:
            case HostOp.LOGOUT:
                await runner.logout()
            case HostOp.RESTART:
                await runner.restart()
            case HostOp.STOP:
                pass  # done by serve() once the reply is out
            case HostOp.DELETE:
                await (
                    runner.delete_auth()
                )  # before the reply: an acknowledged delete is done; the stop follows
        return ok
