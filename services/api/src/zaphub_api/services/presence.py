"""Presence use cases: availability, typing in a chat and read marks, best effort through the owning
host; nothing is stored and nothing is rate limited."""

from uuid import UUID

from zaphub_api.domain_errors import InvalidField
from zaphub_api.host_requests import HostRequests
from zaphub_api.schemas.phones import normalise_recipient
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
    ) -> str:
        """The chat's JID, once typing was shown in it."""
        await require_connected(self._sessions, tenant_id, session_id)
        jid = chat_jid(chat)
        await self._hosts.chat_presence(tenant_id, session_id, jid, state)
        return jid

    async def mark_read(
        self, tenant_id: UUID, session_id: UUID, chat: str, up_to: str | None
    ) -> tuple[str, list[str]]:
        """The chat's JID and the WhatsApp ids marked read."""
        await require_connected(self._sessions, tenant_id, session_id)
        jid = chat_jid(chat)
        return jid, await self._hosts.mark_read(tenant_id, session_id, jid, up_to)


def chat_jid(value: str) -> str:
    """`{chat}` of a path, validated like `to`; checked after the session, so another tenant's is 404."""
    try:
        return normalise_recipient(value)
    except ValueError as exc:
        raise InvalidField("chat", str(exc)) from None
