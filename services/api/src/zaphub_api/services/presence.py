"""Presence use cases: availability, typing in a chat and read marks, best effort through the owning
host; nothing is stored and nothing is rate limited."""

from uuid import UUID

from zaphub_api.host_requests import HostRequests
from zaphub_api.services.sessions import require_connected
from zaphub_api.store.sessions import SessionStore
from zaphub_contracts.host import ChatPresenceState, PresenceState


class PresenceService:
    def __init__(self, sessions: SessionStore, hosts: HostRequests) -> None:
        self._sessions = sessions
        self._hosts = hosts

    async def presence(self, tenant_id: UUID, session_id: UUID, state: PresenceState) -> None:
        await require_connected(self._sessions, tenant_id, session_id)
        await self._hosts.presence(tenant_id, session_id, state)

    async def chat_presence(
        self, tenant_id: UUID, session_id: UUID, chat: str, state: ChatPresenceState
    ) -> None:
        await require_connected(self._sessions, tenant_id, session_id)
        await self._hosts.chat_presence(tenant_id, session_id, chat, state)

    async def mark_read(self, tenant_id: UUID, session_id: UUID, chat: str, up_to: str | None) -> list[str]:
        await require_connected(self._sessions, tenant_id, session_id)
        return await self._hosts.mark_read(tenant_id, session_id, chat, up_to)
