"""Session commands: keep the desired state in KV (start, stop, delete) and route the rest to the host
that owns the session (logout, restart, pair_code), retrying while no host holds it."""

import contextlib
import logging
from datetime import UTC, datetime

import nats.errors
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import TypeAdapter

from zaphub_contracts import subjects
from zaphub_contracts.commands import SessionAction, SessionCommand
from zaphub_contracts.failures import FailureReason, is_transient
from zaphub_contracts.host import HostError, HostOk, HostOp, HostReply, PairCodeRequest, SessionControl
from zaphub_contracts.sessions import DesiredSession, desired_key
from zaphub_dispatcher.backoff import RetryPolicy
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode
from zaphub_runtime.consumer import decode_or_dead_letter, routed

log = logging.getLogger(__name__)
COMPONENT = "dispatcher"
HOST_REPLY: TypeAdapter[HostOk | HostError] = TypeAdapter(HostReply)
HOST_OPS = {
    SessionAction.STOP: HostOp.STOP,
    SessionAction.DELETE: HostOp.DELETE,
    SessionAction.RESTART: HostOp.RESTART,
    SessionAction.LOGOUT: HostOp.LOGOUT,
    SessionAction.PAIR_CODE: HostOp.PAIR_CODE,
}
# Ops that mean nothing when no host runs the session: nothing to stop. A delete still has auth_data to
# delete: any live host does it (`subjects.host_any`).
OPTIONAL_HOST_OPS = {SessionAction.STOP, SessionAction.RESTART}


class SessionCommandPipeline:
    def __init__(self, bus: Bus, desired: KeyValue, policy: RetryPolicy, host_timeout: float) -> None:
        self._bus = bus
        self._desired = desired
        self._policy = policy
        self._host_timeout = host_timeout

    async def process(self, msg: Msg) -> None:
        command = await decode_or_dead_letter(self._bus, msg, routed(SessionCommand), COMPONENT)
        if command is None:
            return
        key = desired_key(command.tenant_id, command.session_id)
        if command.action in (SessionAction.START, SessionAction.RESTART):
            desired = DesiredSession(
                tenant_id=command.tenant_id,
                session_id=command.session_id,
                name=command.name or str(command.session_id),
                requested_at=datetime.now(UTC),
            )
            with contextlib.suppress(Exception):  # already desired: keep the first record
                await self._desired.create(key, encode(desired))
        elif command.action in (SessionAction.STOP, SessionAction.DELETE):
            # Not on logout: the session still exists and pairs again on its host; deleting the key
            # would also stop it there before the logout op reaches it, leaving the device linked.
            with contextlib.suppress(KeyNotFoundError):
                await self._desired.delete(key)
        if command.action is SessionAction.START:
            await msg.ack()
            return
        await self._to_host(command, msg)

    async def _to_host(self, command: SessionCommand, msg: Msg) -> None:
        op = HOST_OPS[command.action]
        body = (
            PairCodeRequest(
                tenant_id=command.tenant_id, session_id=command.session_id, phone=command.phone or ""
            )
            if command.action is SessionAction.PAIR_CODE
            else SessionControl(tenant_id=command.tenant_id, session_id=command.session_id)
        )
        try:
            reply = await self._bus.request(subjects.host(command.session_id, op), body, self._host_timeout)
        except nats.errors.NoRespondersError:
            if command.action is SessionAction.DELETE:
                await self._delete_unheld(command, msg)
                return
            if command.action in OPTIONAL_HOST_OPS:
                await msg.ack()
                return
            await self._retry(command, msg, "no session-host holds this session")
            return
        except (nats.errors.Error, TimeoutError) as exc:
            await self._retry(command, msg, f"host request failed: {exc.__class__.__name__}")
            return
        error = _host_error(reply.data)
        if error is None:
            await msg.ack()
        elif error.reason is FailureReason.SESSION_NOT_FOUND and command.action is SessionAction.DELETE:
            await self._delete_unheld(command, msg)  # the host let it go meanwhile
        elif error.reason is FailureReason.SESSION_NOT_FOUND and command.action in OPTIONAL_HOST_OPS:
            await msg.ack()
        else:
            await self._failed(command, msg, error)

    async def _failed(self, command: SessionCommand, msg: Msg, error: HostError) -> None:
        """The host answered with an error: transient ones are retried with backoff, a permanent one
        is dead-lettered with its reason (never acked as if it had been done)."""
        detail = f"{command.action} failed on the session-host: {error.reason}: {error.detail or ''}"
        if is_transient(error.reason):
            await self._retry(command, msg, detail)
            return
        fields = {"action": command.action, "reason": error.reason}
        log.warning("session command failed", extra={"fields": fields})
        await self._bus.dead_letter(msg, error.reason, detail, COMPONENT, msg.metadata.num_delivered or 1)
        await msg.ack()

    async def _delete_unheld(self, command: SessionCommand, msg: Msg) -> None:
        """No host runs the session: any live host deletes its auth_data from the shared store. With no
        host alive at all, retry, so a deleted session never leaves its WhatsApp identity behind."""
        body = SessionControl(tenant_id=command.tenant_id, session_id=command.session_id)
        try:
            reply = await self._bus.request(subjects.host_any(HostOp.DELETE), body, self._host_timeout)
        except (nats.errors.Error, TimeoutError) as exc:
            await self._retry(command, msg, f"auth_data delete failed: {exc.__class__.__name__}")
            return
        error = _host_error(reply.data)
        if error is not None:
            await self._failed(command, msg, error)
            return
        await msg.ack()

    async def _retry(self, command: SessionCommand, msg: Msg, detail: str) -> None:
        attempt = msg.metadata.num_delivered or 1
        log.info("session command retry", extra={"fields": {"action": command.action, "attempt": attempt}})
        if attempt >= self._policy.max_attempts:
            await self._bus.dead_letter(msg, FailureReason.ATTEMPTS_EXHAUSTED, detail, COMPONENT, attempt)
            await msg.ack()
            return
        await msg.nak(delay=self._policy.delay(attempt))


def _host_error(data: bytes) -> HostError | None:
    """The error a host replied with; None for an ok. A reply that cannot be read counts as a
    transport error: the command is retried, not taken as done."""
    try:
        reply = HOST_REPLY.validate_json(data)
    except ValueError:
        return HostError(reason=FailureReason.TRANSPORT_ERROR, detail="unreadable host reply")
    return reply if isinstance(reply, HostError) else None
