"""Messaging in the simulator: a send goes to the delivered log (and to the recipient, when it is a
session of this process), then delivery and read receipts follow."""

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

from zaphub_contracts.content import EditContent, MessageContent
from zaphub_session_host.transport.base import (
    InboundMessage,
    Messages,
    Receipt,
    ReceiptKind,
    RecipientNotOnWhatsApp,
    check_edit_window,
)

if TYPE_CHECKING:
    from zaphub_session_host.transport.sim.connection import SimConnection

NOT_ON_WHATSAPP_PREFIX = "999"
DELIVERED_AFTER = 0.5
READ_AFTER = 1.5


class SimMessages(Messages):
    """One simulated session's sends, and the messages other sessions of this process send it."""

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
        conn.later(DELIVERED_AFTER, self._receipt, ReceiptKind.DELIVERED, whatsapp_id, to)
        conn.later(READ_AFTER, self._receipt, ReceiptKind.READ, whatsapp_id, to)
        peer = conn.net.online.get(to)
        sender = conn.identity
        if peer is not None and sender is not None:
            peer.messages.receive(
                InboundMessage(
                    whatsapp_id=whatsapp_id,
                    chat=sender.jid,
                    sender=sender.jid,
                    sender_lid=sender.lid,
                    push_name=sender.push_name,
                    sent_at=now,
                    content=content,
                )
            )
        return whatsapp_id

    def receive(self, message: InboundMessage) -> None:
        if not self._conn.closed:
            self._conn.presence.unread.received(message.chat, message.whatsapp_id, message.sender)
            self._conn.events.on_message(message)

    def _receipt(self, kind: ReceiptKind, whatsapp_id: str, chat: str) -> None:
        if not self._conn.closed:
            receipt = Receipt(kind=kind, whatsapp_id=whatsapp_id, chat=chat, at=datetime.now(UTC))
            self._conn.events.on_receipt(receipt)
