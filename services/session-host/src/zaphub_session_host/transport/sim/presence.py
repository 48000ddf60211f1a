"""Presence in the simulator: the account's availability and typing in a chat are checked and kept;
read marks take the chat's unread received messages."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from zaphub_contracts.host import ChatPresenceState, PresenceState
from zaphub_session_host.transport.base import ChatPresenceSeen, Presence, PresenceSeen, Unread

if TYPE_CHECKING:
    from zaphub_session_host.transport.sim.connection import SimConnection


class SimPresence(Presence):
    __slots__ = ("_conn", "chat_states", "state", "unread")

    def __init__(self, conn: "SimConnection") -> None:
        self._conn = conn
        self.unread = Unread()
        self.state: PresenceState | None = None
        self.chat_states: dict[str, ChatPresenceState] = {}

    async def set_presence(self, state: PresenceState) -> None:
        """Every other session online sees it, as WhatsApp shows it to the account's contacts."""
        self._conn.check_online()
        self.state = state
        me = self._conn.identity
        if me is None:
            return
        seen = PresenceSeen(
            jid=me.jid,
            available=state is PresenceState.AVAILABLE,
            last_seen=None if state is PresenceState.AVAILABLE else datetime.now(UTC),
        )
        for jid, peer in list(self._conn.net.online.items()):
            if jid != me.jid and not peer.closed:
                peer.events.on_presence(seen)

    async def set_chat_presence(self, chat: str, state: ChatPresenceState) -> None:
        """The session in `chat` sees it, in its chat with this one."""
        self._conn.check_online()
        self.chat_states[chat] = state
        me, peer = self._conn.identity, self._conn.net.online.get(chat)
        if me is not None and peer is not None and not peer.closed:
            seen = ChatPresenceSeen(chat=me.jid, sender=me.jid, state=state.value, at=datetime.now(UTC))
            peer.events.on_update(seen)

    async def mark_read(self, chat: str, up_to: str | None) -> list[str]:
        self._conn.check_online()
        return [whatsapp_id for whatsapp_id, _ in self.unread.take(chat, up_to)]
