"""Presence in the simulator: the account's availability and typing in a chat are checked and kept;
read marks take the chat's unread received messages."""

from typing import TYPE_CHECKING

from zaphub_contracts.host import ChatPresenceState, PresenceState
from zaphub_session_host.transport.base import Presence, Unread

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
        self._conn.check_online()
        self.state = state

    async def set_chat_presence(self, chat: str, state: ChatPresenceState) -> None:
        self._conn.check_online()
        self.chat_states[chat] = state

    async def mark_read(self, chat: str, up_to: str | None) -> list[str]:
        self._conn.check_online()
        return [whatsapp_id for whatsapp_id, _ in self.unread.take(chat, up_to)]
