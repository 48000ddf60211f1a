"""Presence in the simulator: the account's availability and typing in a chat are checked, kept, and
shown to the other simulated sessions (availability to every session on line, typing to the chat's
session), across host processes over the network (wire.py); read marks take the chat's unread
received messages."""

import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from zaphub_contracts.host import ChatPresenceState, PresenceState
from zaphub_session_host.transport.base import ChatPresenceSeen, Presence, PresenceSeen, Unread
from zaphub_session_host.transport.sim.wire import PRESENCE_TTL, SimFrame

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
        """Every other session on line sees it, as WhatsApp shows it to the account's contacts."""
        self._conn.check_online()
        self.state = state
        me = self._conn.identity
        if me is None:
            return
        frame = SimFrame(
            kind="presence",
            whatsapp_id=_frame_id(),
            sender=me.jid,
            sender_lid=me.lid,
            at=datetime.now(UTC),
            available=state is PresenceState.AVAILABLE,
        )
        net = self._conn.net
        if net.wire is not None:
            net.wire.announce(frame)  # to every host, this one included
            return
        for jid, peer in list(net.online.items()):
            if jid != me.jid:
                peer.presence.seen(frame)

    async def set_chat_presence(self, chat: str, state: ChatPresenceState) -> None:
        """The session in `chat` sees it, in its chat with this one."""
        self._conn.check_online()
        self.chat_states[chat] = state
        me, net = self._conn.identity, self._conn.net
        if me is None:
            return
        frame = SimFrame(
            kind="typing",
            whatsapp_id=_frame_id(),
            sender=me.jid,
            sender_lid=me.lid,
            at=datetime.now(UTC),
            chat_state=state.value,
        )
        if net.wire is not None:
            if net.wire.is_linked(chat):
                net.wire.send(chat, frame)
            return
        peer = net.online.get(chat)
        if peer is not None:
            peer.presence.typed(frame)

    def seen(self, frame: SimFrame) -> None:
        """Another account's availability (a `presence` frame)."""
        if not self._conn.online or frame.available is None:
            return
        last_seen = None if frame.available else frame.at
        self._conn.events.on_presence(
            PresenceSeen(jid=frame.sender, available=frame.available, last_seen=last_seen)
        )

    def typed(self, frame: SimFrame) -> None:
        """Another account typing in its chat with this one (a `typing` frame); a stale one is dropped."""
        if self._conn.closed or frame.chat_state is None:
            return
        if datetime.now(UTC) - frame.at > timedelta(seconds=PRESENCE_TTL):
            return
        seen = ChatPresenceSeen(chat=frame.sender, sender=frame.sender, state=frame.chat_state, at=frame.at)
        self._conn.events.on_update(seen)

    async def mark_read(self, chat: str, up_to: str | None) -> list[str]:
        self._conn.check_online()
        return [whatsapp_id for whatsapp_id, _ in self.unread.take(chat, up_to)]


def _frame_id() -> str:
    """A presence frame's id: it is no message, but the network deduplicates frames by id."""
    return "SIMP" + secrets.token_hex(8).upper()
