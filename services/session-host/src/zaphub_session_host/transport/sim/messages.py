"""Messaging in the simulator: a send goes to the delivered log, and to its recipient.

- A recipient that is a simulated session (its number linked on the network, any host process) gets
  the message over the network (wire.py) when it is online, at once or once it connects; its
  delivery receipt comes back when it took the message, its read receipt ~1 s later.
- Without a network (a host not on NATS, in unit tests) a session of this process online under that
  JID receives it directly.
- A group (`@g.us`, groups.py) must have the sender as a member (and, when `announce`, as an admin);
  every other member receives the message the same way, with the group as `chat`.
- Any other number is a simulated contact of the outside world, always online: a delivery receipt
  follows after ~0.5 s and a read receipt after ~1.5 s. Numbers starting `999` are not on WhatsApp.

Media sent by URL is downloaded first, through the egress policy (media_fetch.py, as neonize does).
A received media message carries a `whatsapp_media` reference (as from WhatsApp) and, beside it on
`InboundMessage.media`, the bytes the sender sent.
"""

import asyncio
import base64
import hashlib
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

from zaphub_contracts.content import (
    AudioContent,
    DocumentContent,
    EditContent,
    ImageContent,
    MediaContent,
    MessageContent,
    StickerContent,
    TextContent,
    VideoContent,
    WhatsAppMedia,
)
from zaphub_runtime.egress import EgressRefused
from zaphub_runtime.egress.errors import UNRESOLVED
from zaphub_session_host.media_fetch import fetch
from zaphub_session_host.transport.base import (
    InboundMessage,
    MediaUrlRefused,
    Messages,
    Receipt,
    ReceiptKind,
    RecipientNotOnWhatsApp,
    check_edit_window,
)
from zaphub_session_host.transport.sim.groups import change_from_frame
from zaphub_session_host.transport.sim.wire import SimFrame

if TYPE_CHECKING:
    from zaphub_session_host.transport.sim.connection import SimConnection
    from zaphub_session_host.transport.sim.groups import SimGroup

NOT_ON_WHATSAPP_PREFIX = "999"
DELIVERED_AFTER = 0.5
READ_AFTER = 1.5
MAX_FRAME_MEDIA = 700_000  # bytes carried on the network (a NATS message holds 1 MB by default)


def as_received(content: MessageContent, whatsapp_id: str) -> tuple[MessageContent, bytes | None]:
    """`content` as its recipient sees it: media by a `whatsapp_media` reference, and its bytes; a
    text with the preview its sender's host made, not the sender's request for one."""
    if isinstance(content, TextContent) and content.link_preview:
        return content.model_copy(update={"link_preview": False}), None
    if not isinstance(content, MediaContent) or content.whatsapp_media is not None:
        return content, None
    data = base64.b64decode(content.data_base64) if content.data_base64 else None
    sha = base64.b64encode(hashlib.sha256(data or b"").digest()).decode()
    ref = WhatsAppMedia(
        direct_path=f"/sim/{whatsapp_id}",
        media_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        file_sha256=sha,
        file_enc_sha256=sha,
    )
    update: dict[str, object] = {"url": None, "data_base64": None, "whatsapp_media": ref}
    if data is not None:
        update["size"] = len(data)
    return content.model_copy(update=update), data


class SimMessages(Messages):
    """One simulated session's sends, and what other simulated accounts send it."""

    __slots__ = ("_conn",)

    def __init__(self, conn: "SimConnection") -> None:
        self._conn = conn

    async def send(self, to: str, content: MessageContent, whatsapp_id: str, message_id: UUID) -> str:
        conn = self._conn
        conn.check_online()
        delay = conn.faults.send_delay()
        if delay > 0:
            await asyncio.sleep(delay)
            conn.check_online()
        conn.faults.fail_send()
        content = await self._fetched(content)
        group = await conn.groups.members(to) if to.endswith("@g.us") else None  # refused before logged
        if to.split("@", 1)[0].lstrip("+").startswith(NOT_ON_WHATSAPP_PREFIX):
            raise RecipientNotOnWhatsApp(f"{to} is not on WhatsApp (simulator: numbers starting 999)")
        if isinstance(content, EditContent):
            check_edit_window(content)
        now = datetime.now(UTC)
        conn.net.record_delivery(
            {
                "message_id": str(message_id),
                "whatsapp_id": whatsapp_id,
                "session_id": str(conn.session_id),
                "to": to,
                "type": content.type,
                "time": now.isoformat(),
            }
        )
        sender = conn.identity
        wire = conn.net.wire
        if group is not None:
            self._to_group(group, content, whatsapp_id, now)
            return whatsapp_id
        if wire is not None and sender is not None and wire.is_linked(to):
            received, data = as_received(content, whatsapp_id)
            media = base64.b64encode(data).decode() if data and len(data) <= MAX_FRAME_MEDIA else None
            frame = SimFrame(
                kind="message",
                whatsapp_id=whatsapp_id,
                sender=sender.jid,
                sender_lid=sender.lid,
                push_name=sender.push_name,
                at=now,
                content=received,
                media_base64=media,
            )
            wire.send(to, frame)
            return whatsapp_id
        conn.later(DELIVERED_AFTER, self._receipt, ReceiptKind.DELIVERED, whatsapp_id, to)
        conn.later(READ_AFTER, self._receipt, ReceiptKind.READ, whatsapp_id, to)
        peer = conn.net.online.get(to) if wire is None else None
        if peer is not None and sender is not None:
            received, data = as_received(content, whatsapp_id)
            peer.messages.receive(
                InboundMessage(
                    whatsapp_id=whatsapp_id,
                    chat=sender.jid,
                    sender=sender.jid,
                    sender_lid=sender.lid,
                    push_name=sender.push_name,
                    sent_at=now,
                    content=received,
                    media=data,
                )
            )
        return whatsapp_id

    def _to_group(
        self, group: "tuple[SimGroup, str]", content: MessageContent, whatsapp_id: str, now: datetime
    ) -> None:
        """Every member but the sender receives it, `chat` the group and `sender` the participant:
        over the network, or (without one) when online in this process."""
        g, me = group
        sender, wire = self._conn.identity, self._conn.net.wire
        if sender is None:
            return
        if isinstance(content, TextContent) and content.mention_all:
            content = content.model_copy(update={"mentions": [j for j in g.roles if j != me]})
        received, data = as_received(content, whatsapp_id)
        media = base64.b64encode(data).decode() if data and len(data) <= MAX_FRAME_MEDIA else None
        for jid in g.roles:
            if jid == me:
                continue
            if wire is not None:
                if wire.is_linked(jid):
                    frame = SimFrame(
                        kind="message",
                        whatsapp_id=whatsapp_id,
                        sender=sender.jid,
                        sender_lid=sender.lid,
                        push_name=sender.push_name,
                        at=now,
                        content=received,
                        media_base64=media,
                        chat=g.jid,
                    )
                    wire.send(jid, frame)
                continue
            peer = self._conn.net.online.get(jid)
            if peer is not None:
                peer.messages.receive(
                    InboundMessage(
                        whatsapp_id=whatsapp_id,
                        chat=g.jid,
                        sender=sender.jid,
                        sender_lid=sender.lid,
                        push_name=sender.push_name,
                        sent_at=now,
                        content=received,
                        media=data,
                        is_group=True,
                    )
                )
        if wire is None:
            self._conn.later(DELIVERED_AFTER, self._receipt, ReceiptKind.DELIVERED, whatsapp_id, g.jid)
            self._conn.later(READ_AFTER, self._receipt, ReceiptKind.READ, whatsapp_id, g.jid)

    async def _fetched(self, content: MessageContent) -> MessageContent:
        """A media URL is downloaded through the egress policy, as the neonize transport does, and its
        bytes go to the recipient. Only a name that does not resolve (a demo's made-up host, an
        offline machine) is sent without bytes."""
        media = ImageContent | VideoContent | AudioContent | DocumentContent | StickerContent
        if not isinstance(content, media) or content.url is None:
            return content
        net = self._conn.net
        try:
            await net.egress.check(content.url)
        except EgressRefused as exc:
            if exc.reason == UNRESOLVED:
                return content
            raise MediaUrlRefused(f"media URL refused: {exc.reason}") from None
        got = await fetch(content.url, net.http, net.max_media_bytes)
        update = {"url": None, "data_base64": base64.b64encode(got.data).decode()}
        return content.model_copy(update={**update, "mimetype": content.mimetype or got.mimetype})

    def receive(self, message: InboundMessage) -> None:
        if not self._conn.closed:
            self._conn.presence.unread.received(message.chat, message.whatsapp_id, message.sender)
            self._conn.events.on_message(message)

    def take(self, frame: SimFrame) -> bool:
        """A frame of the network for this session; False (to take it later) when it is not online."""
        conn = self._conn
        me = conn.identity
        wire = conn.net.wire
        if not conn.online or me is None or wire is None:
            return False
        if frame.kind == "receipt" and frame.receipt is not None:
            self._receipt(frame.receipt, frame.whatsapp_id, frame.sender)
            return True
        if frame.kind == "typing":
            conn.presence.typed(frame)
            return True
        if frame.kind == "group":
            change = change_from_frame(frame)
            if change is not None and not conn.closed:
                conn.events.on_group(change)
            return True
        if frame.content is None:
            return True
        self.receive(
            InboundMessage(
                whatsapp_id=frame.whatsapp_id,
                chat=frame.chat or frame.sender,
                is_group=frame.chat is not None,
                sender=frame.sender,
                sender_lid=frame.sender_lid,
                push_name=frame.push_name,
                sent_at=frame.at,
                content=frame.content,
                media=base64.b64decode(frame.media_base64) if frame.media_base64 else None,
            )
        )
        self._answer(ReceiptKind.DELIVERED, frame)
        conn.later(READ_AFTER - DELIVERED_AFTER, self._answer, ReceiptKind.READ, frame)
        return True

    def _answer(self, kind: ReceiptKind, frame: SimFrame) -> None:
        me, wire = self._conn.identity, self._conn.net.wire
        if me is None or wire is None or self._conn.closed:
            return
        receipt = SimFrame(
            kind="receipt",
            whatsapp_id=frame.whatsapp_id,
            sender=me.jid,
            sender_lid=me.lid,
            at=datetime.now(UTC),
            receipt=kind,
        )
        wire.send(frame.sender, receipt)

    def _receipt(self, kind: ReceiptKind, whatsapp_id: str, chat: str) -> None:
        if not self._conn.closed:
            receipt = Receipt(kind=kind, whatsapp_id=whatsapp_id, chat=chat, at=datetime.now(UTC))
            self._conn.events.on_receipt(receipt)
