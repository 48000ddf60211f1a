"""Presence through neonize: `send_presence`, `send_chat_presence` (recording is composing with audio
media, as in whatsmeow) and `mark_read` with a read receipt."""

from typing import TYPE_CHECKING

from neonize.exc import NeonizeError
from neonize.utils.enum import ChatPresence, ChatPresenceMedia, ReceiptType
from neonize.utils.enum import Presence as WaPresence

from zaphub_contracts.host import ChatPresenceState, PresenceState
from zaphub_session_host.transport.base import Presence, Unread
from zaphub_session_host.transport.neonize.errors import map_send_error
from zaphub_session_host.transport.neonize.events import parse_jid

if TYPE_CHECKING:
    from zaphub_session_host.transport.neonize.connection import NeonizeConnection

PRESENCES = {
    PresenceState.AVAILABLE: WaPresence.AVAILABLE,
    PresenceState.UNAVAILABLE: WaPresence.UNAVAILABLE,
}
CHAT_PRESENCES = {
    ChatPresenceState.COMPOSING: (
        ChatPresence.CHAT_PRESENCE_COMPOSING,
        ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT,
    ),
    ChatPresenceState.RECORDING: (
        ChatPresence.CHAT_PRESENCE_COMPOSING,
        ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO,
    ),
    ChatPresenceState.PAUSED: (ChatPresence.CHAT_PRESENCE_PAUSED, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT),
}


class NeonizePresence(Presence):
    __slots__ = ("_conn", "unread")

    def __init__(self, conn: "NeonizeConnection") -> None:
        self._conn = conn
        self.unread = Unread()

    async def set_presence(self, state: PresenceState) -> None:
        self._conn.check_online()
        try:
            await self._conn.client.send_presence(PRESENCES[state])
        except NeonizeError as exc:
            raise map_send_error(str(exc)) from exc

    async def set_chat_presence(self, chat: str, state: ChatPresenceState) -> None:
        self._conn.check_online()
        presence, media = CHAT_PRESENCES[state]
        try:
            await self._conn.client.send_chat_presence(parse_jid(chat), presence, media)
        except NeonizeError as exc:
            raise map_send_error(str(exc)) from exc

    async def mark_read(self, chat: str, up_to: str | None) -> list[str]:
        self._conn.check_online()
        taken = self.unread.take(chat, up_to)
        by_sender: dict[str, list[str]] = {}
        for whatsapp_id, sender in taken:
            by_sender.setdefault(sender, []).append(whatsapp_id)
        try:
            for sender, ids in by_sender.items():
                await self._conn.client.mark_read(
                    *ids, chat=parse_jid(chat), sender=parse_jid(sender), receipt=ReceiptType.READ
                )
        except NeonizeError as exc:
            raise map_send_error(str(exc)) from exc
        return [whatsapp_id for whatsapp_id, _ in taken]
