"""Group writes as commands: published to ZAPHUB_CMD for the dispatcher to carry out in the session's
order, and answered on an inbox of this process (docs/groups.md).

The wait ends at the command's `expires_at` plus a margin for the reply's trip; the dispatcher never
carries a command out after `expires_at`, so a 503 for no answer means it will not happen later.
"""

import contextlib
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import nats.errors
from nats.aio.subscription import Subscription
from pydantic import TypeAdapter, ValidationError

from zaphub_api.commands import refusal
from zaphub_api.domain_errors import BusUnavailable, HostUnavailable, RateLimited
from zaphub_api.host_requests import group_refusal
from zaphub_contracts import subjects
from zaphub_contracts.groups import (
    CommandRateLimited,
    GroupCommand,
    GroupCommandReply,
    GroupReply,
    WriteAction,
)
from zaphub_contracts.host import HostError
from zaphub_runtime.bus import Bus

REPLY: TypeAdapter[GroupReply | HostError | CommandRateLimited] = TypeAdapter(GroupCommandReply)
REPLY_MARGIN = 2.0  # seconds past expires_at for a reply sent just before it to arrive
PUBLISH_ATTEMPTS = 2  # a publish whose ack timed out is repeated with the same id (deduplicated)


class GroupCommands:
    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    async def run(self, tenant_id: UUID, session_id: UUID, action: WriteAction) -> GroupReply:
        """Carry `action` out through the dispatcher; the host's reply, or its refusal as a domain error."""
        issued_at = datetime.now(UTC)
        expires_at = issued_at + timedelta(seconds=self._timeout)
        inbox = self._bus.nc.new_inbox()
        try:
            # Before publishing: the reply may come back before the publish's own ack does.
            sub = await self._bus.nc.subscribe(inbox, max_msgs=1)
        except nats.errors.Error as exc:
            raise BusUnavailable() from exc
        try:
            command = GroupCommand(
                tenant_id=tenant_id,
                session_id=session_id,
                issued_at=issued_at,
                command_id=uuid4(),
                action=action,
                reply_to=inbox,
                expires_at=expires_at,
            )
            await self._publish(command)
            data = await _reply(sub, expires_at)
        finally:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()
        try:
            reply = REPLY.validate_json(data)
        except ValidationError as exc:
            raise HostUnavailable("The dispatcher gave an unreadable answer; retry") from exc
        if isinstance(reply, CommandRateLimited):
            raise RateLimited(reply.retry_after, reply.window)
        if isinstance(reply, HostError):
            raise group_refusal(session_id, action, reply)
        return reply

    async def _publish(self, command: GroupCommand) -> None:
        subject = subjects.group_command(command.tenant_id, command.session_id)
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                await self._bus.publish_command(subject, command, str(command.command_id))
                return
            except (nats.errors.TimeoutError, TimeoutError):
                # It may have been stored all the same: then its reply still comes, so wait for it.
                if attempt == PUBLISH_ATTEMPTS:
                    return
            except Exception as exc:
                raise refusal(exc) from exc


async def _reply(sub: Subscription, expires_at: datetime) -> bytes:
    wait = (expires_at - datetime.now(UTC)).total_seconds() + REPLY_MARGIN
    try:
        msg = await sub.next_msg(timeout=max(wait, 0.1))
    except (nats.errors.TimeoutError, TimeoutError) as exc:
        raise HostUnavailable(
            "No session-host carried the change out in time; it will not be carried out later, retry"
        ) from exc
    return bytes(msg.data)
