"""Presence use cases: availability, typing in a chat and read marks, best effort through the owning
host; nothing is rate limited, and only a read mark is kept (the chat's unread count)."""

from uuid import UUID

from zaphub_api.domain_errors import ChatNotFound, InvalidField
from zaphub_api.host_requests import HostRequests
from zaphub_api.schemas.phones import normalise_recipient
from zaphub_api.services.sessions import require_connected
from zaphub_api.store.chats import ChatStore
from zaphub_api.store.sessions import SessionStore
from zaphub_contracts.host import ChatPresenceState, PresenceState


class PresenceService:
    def __init__(self, sessions: SessionStore, hosts: HostRequests, chats: ChatStore) -> None:
        self._sessions = sessions
        self._hosts = hosts
        self._chats = chats

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
        """The chat's JID and the WhatsApp ids marked read: read receipts sent through the host, then
        the chat's unread count back to 0. `ChatNotFound` when neither knew the chat."""
        # The session is looked up (404, then 409 when not connected) before the chat is checked.
        await require_connected(self._sessions, tenant_id, session_id)
        jid = chat_jid(chat)
        marked = await self._hosts.mark_read(tenant_id, session_id, jid, up_to)
        if not await self._chats.mark_read(tenant_id, session_id, jid) and not marked:
            raise ChatNotFound(jid)
        return jid, marked


def chat_jid(value: str) -> str:
    """`{chat}` of a path, validated like `to`; checked after the session, so another tenant's is 404."""
    try:
        return normalise_recipient(value)
    except ValueError as exc:
        raise InvalidField("chat", str(exc)) from None
