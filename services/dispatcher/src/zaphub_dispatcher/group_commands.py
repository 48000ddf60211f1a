"""Group commands: writes to a session's groups, carried out one at a time per session (the lane in
`app.py`) and answered on the requester's inbox.

For each command: drop it once past `expires_at` (the requester has answered 503 and it must never run
late); take a rate-limit token for a create or an add; ask the owning host, again with backoff while no
host holds the session; answer `reply_to` with the host's reply or refusal; ack. A token whose write the
host did not carry out is given back, as a send's is.
"""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Literal

import nats.errors
from nats.aio.msg import Msg
from prometheus_client import Counter
from pydantic import BaseModel, TypeAdapter, ValidationError

from zaphub_contracts import subjects
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.groups import (
    CommandRateLimited,
    GroupCommand,
    GroupReply,
    GroupRequest,
    takes_token,
)
from zaphub_contracts.host import HostError, HostOp
from zaphub_dispatcher.backoff import RetryPolicy
from zaphub_dispatcher.clients import RateLimiterClient, RateLimiterUnavailable
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import decode_or_dead_letter, routed

log = logging.getLogger(__name__)
COMPONENT = "dispatcher"
HOST_REPLY: TypeAdapter[GroupReply | HostError] = TypeAdapter(GroupReply | HostError)
# Refusals that say the host did not act and another (the session's owner, soon) may: asked again.
# A timeout is not among them: the host may have carried the write out, so it is answered, not repeated.
NOT_SERVED_HERE = frozenset({FailureReason.NO_HOST, FailureReason.SESSION_NOT_FOUND})
Outcome = Literal["done", "refused", "rate_limited", "expired", "unanswered"]
GROUP_COMMANDS = Counter(
    "zaphub_dispatcher_group_commands",
    "Group commands processed, by outcome: done, refused (the host's error), rate_limited, expired "
    "(dropped past expires_at), unanswered (the host did not answer in time)",
    ["outcome"],
)


class Expired(Exception):
    """The command's `expires_at` passed before it could be carried out."""


class GroupCommandPipeline:
    def __init__(
        self, bus: Bus, limiter: RateLimiterClient, policy: RetryPolicy, host_timeout: float
    ) -> None:
        self._bus = bus
        self._limiter = limiter
        self._policy = policy
        self._host_timeout = host_timeout

    async def process(self, msg: Msg) -> None:
        command = await decode_or_dead_letter(self._bus, msg, routed(GroupCommand), COMPONENT)
        if command is None:
            return
        try:
            outcome = await self._carry_out(command)
        except Expired:
            outcome = "expired"
            fields = {"command_id": str(command.command_id), "kind": command.action.kind}
            log.info("group command expired before it could run", extra={"fields": fields})
        GROUP_COMMANDS.labels(outcome).inc()
        await msg.ack()

    async def _carry_out(self, command: GroupCommand) -> Outcome:
        _remaining(command)
        token = takes_token(command.action)
        if token:
            denied = await self._take_token(command)
            if denied is not None:
                await self._answer(command, denied)
                return "rate_limited"
        try:
            reply = await self._ask_host(command)
        except Expired:
            if token:
                await self._give_back(command)
            raise
        if isinstance(reply, HostError) and reply.reason is not FailureReason.TIMEOUT and token:
            await self._give_back(command)  # refused: nothing was created or added
        await self._answer(command, reply)
        if isinstance(reply, GroupReply):
            return "done"
        return "unanswered" if reply.reason is FailureReason.TIMEOUT else "refused"

    async def _take_token(self, command: GroupCommand) -> CommandRateLimited | None:
        """One token, named by the command id (a redelivered command gets the same grant); None once
        granted, the denial otherwise. Waits out an unavailable ratelimiter until the command expires."""
        attempt = 0
        while True:
            attempt += 1
            try:
                grant = await self._limiter.acquire_tokens(command.tenant_id, [command.command_id])
            except RateLimiterUnavailable as exc:
                await self._backoff(command, attempt, f"ratelimiter: {exc}")
                continue
            if grant.granted >= 1:
                return None
            return CommandRateLimited(retry_after=grant.retry_after, window=grant.window)

    async def _ask_host(self, command: GroupCommand) -> GroupReply | HostError:
        """The owning host's reply; asked again with backoff while no host holds the session."""
        request = GroupRequest(
            tenant_id=command.tenant_id, session_id=command.session_id, action=command.action
        )
        subject = subjects.host(command.session_id, HostOp.GROUP)
        attempt = 0
        while True:
            attempt += 1
            # Never waits past the expiry: a reply that came later would go to nobody.
            timeout = min(self._host_timeout, _remaining(command))
            try:
                msg = await self._bus.request(subject, request, timeout)
            except nats.errors.NoRespondersError:
                await self._backoff(command, attempt, "no session-host holds this session")
                continue
            except (nats.errors.TimeoutError, TimeoutError):
                return HostError(
                    reason=FailureReason.TIMEOUT, detail="the session-host did not answer in time"
                )
            except nats.errors.Error as exc:
                await self._backoff(command, attempt, f"NATS: {exc.__class__.__name__}")
                continue
            try:
                reply = HOST_REPLY.validate_json(msg.data)
            except ValidationError:
                return HostError(reason=FailureReason.TRANSPORT_ERROR, detail="unreadable host reply")
            if isinstance(reply, HostError) and reply.reason in NOT_SERVED_HERE:
                await self._backoff(command, attempt, f"{reply.reason}: {reply.detail}")
                continue
            return reply

    async def _backoff(self, command: GroupCommand, attempt: int, why: str) -> None:
        """Sleep before the next attempt; in the lane, so the session's later commands stay behind it."""
        fields = {"command_id": str(command.command_id), "attempt": attempt, "why": why}
        log.info("group command retry", extra={"fields": fields})
        delay = self._policy.delay(attempt)
        if delay >= _remaining(command):
            raise Expired
        await asyncio.sleep(delay)

    async def _give_back(self, command: GroupCommand) -> None:
        try:
            await self._limiter.release_tokens(command.tenant_id, [command.command_id])
        except RateLimiterUnavailable:
            log.info("token release failed", extra={"fields": {"command_id": str(command.command_id)}})

    async def _answer(self, command: GroupCommand, reply: BaseModel) -> None:
        try:
            await self._bus.answer(command.reply_to, reply)
        except nats.errors.Error as exc:
            # The write is done: the requester then answers 503, and the group.* events still tell.
            log.warning("group command reply failed", extra={"fields": {"error": repr(exc)}})


def _remaining(command: GroupCommand) -> float:
    """Seconds until the command expires; raises `Expired` once it has."""
    left = (command.expires_at - datetime.now(UTC)).total_seconds()
    if left <= 0:
        raise Expired
    return left
