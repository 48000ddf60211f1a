"""Session use cases: create (undone when its start command cannot be published), control commands,
delete, pairing by phone number, and the current QR code."""

from datetime import datetime
from uuid import UUID

import asyncpg

from zaphub_api.commands import CommandPublisher
from zaphub_api.domain_errors import AlreadyPaired, NoQrCode, SessionNotConnected
from zaphub_api.host_requests import HostRequests
from zaphub_api.store.sessions import SessionStore
from zaphub_contracts.commands import SessionAction
from zaphub_contracts.host import Simulate
from zaphub_contracts.statuses import SessionStatus


class SessionService:
    def __init__(self, sessions: SessionStore, commands: CommandPublisher, hosts: HostRequests) -> None:
        self._sessions = sessions
        self._commands = commands
        self._hosts = hosts

    async def create(self, tenant_id: UUID, name: str) -> asyncpg.Record:
        """Store the session and ask a host to start it; nothing stays behind if the bus refuses."""
        row = await self._sessions.create(tenant_id, name)
        try:
            await self._commands.publish(SessionAction.START, tenant_id, row["id"], name=name)
        except Exception:
            await self._sessions.delete(tenant_id, row["id"])
            raise
        return row

    async def command(self, action: SessionAction, tenant_id: UUID, session_id: UUID) -> None:
        """Publish a control command for the tenant's session."""
        await self._sessions.get(tenant_id, session_id)
        await self._commands.publish(action, tenant_id, session_id)

    async def delete(self, tenant_id: UUID, session_id: UUID) -> None:
        # The command first, the row second: if NATS is down nothing is deleted and the client retries.
        await self.command(SessionAction.DELETE, tenant_id, session_id)
        await self._sessions.delete(tenant_id, session_id)

    async def pair_code(self, tenant_id: UUID, session_id: UUID, phone: str) -> str:
        """The code to enter on the phone, from the host that holds the session."""
        row = await self._sessions.get(tenant_id, session_id)
        if row["jid"] is not None or row["status"] == SessionStatus.CONNECTED:
            raise AlreadyPaired(session_id)
        return await self._hosts.pair_code(tenant_id, session_id, phone)

    async def qr(self, tenant_id: UUID, session_id: UUID) -> tuple[str, datetime | None, SessionStatus]:
        """The QR code the session shows now, when it expires, and the session's status."""
        qr, expires_at, status = await self._sessions.qr(tenant_id, session_id)
        if qr is None:
            raise NoQrCode(session_id, status)
        return qr, expires_at, SessionStatus(status)

    async def simulate(self, request: Simulate) -> str | None:
        """A simulated contact acts on the tenant's session (simulator transport only)."""
        await self._sessions.get(request.tenant_id, request.session_id)
        return await self._hosts.simulate(request)


async def require_connected(sessions: SessionStore, tenant_id: UUID, session_id: UUID) -> asyncpg.Record:
    """The tenant's session when it is connected to WhatsApp; `SessionNotConnected` otherwise."""
    row = await sessions.get(tenant_id, session_id)
    if row["status"] != SessionStatus.CONNECTED:
        raise SessionNotConnected(session_id, row["status"])
    return row
