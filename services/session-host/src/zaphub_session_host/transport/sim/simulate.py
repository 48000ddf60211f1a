"""Simulated contacts acting on a session (`simulate` host op): what a customer's phone would make
WhatsApp deliver to the session, fed to the same connection events as the network's messages."""

import base64
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from zaphub_contracts.content import (
    EditContent,
    MediaContent,
    MessageContent,
    PollVoteContent,
    ReactionContent,
    RevokeContent,
)
from zaphub_contracts.host import Simulate, SimulateAction
from zaphub_session_host.transport.base import (
    ChatPresenceSeen,
    HistoryBatch,
    HistoryMessage,
    InboundMessage,
    InvalidContent,
    Receipt,
    ReceiptKind,
)
from zaphub_session_host.transport.sim.media import generated
from zaphub_session_host.transport.sim.messages import as_received
from zaphub_session_host.transport.sim.wire import number_of

if TYPE_CHECKING:
    from zaphub_session_host.transport.sim.connection import SimConnection


def contact_jid(sender: str) -> str:
    """`+5511…`, `5511…` or a JID, as the contact's phone JID."""
    return sender if "@" in sender else f"{number_of(sender)}@s.whatsapp.net"


def new_whatsapp_id() -> str:
    return "3EB0" + secrets.token_hex(8).upper()


async def simulate(conn: "SimConnection", request: Simulate) -> str | None:
    """Act as the contact `request.sender`; the WhatsApp id of the message it sent, if any."""
    conn.check_online()
    jid = contact_jid(request.sender)
    push_name = request.push_name or f"Contact {number_of(jid)[-4:]}"
    now = datetime.now(UTC)
    match request.action:
        case SimulateAction.MESSAGE | SimulateAction.REACTION:
            whatsapp_id = new_whatsapp_id()
            content: MessageContent
            if request.action is SimulateAction.REACTION:
                assert request.message_id is not None and request.emoji is not None  # the model checks
                content = ReactionContent(message_id=request.message_id, emoji=request.emoji, from_me=True)
            else:
                assert request.content is not None
                content = request.content
            received, data = as_received(content, whatsapp_id)
            if isinstance(content, MediaContent) and data is None:  # by URL: bytes of the simulator's own
                data, mimetype = generated(content.type)
                own = {"url": None, "data_base64": base64.b64encode(data).decode(), "mimetype": mimetype}
                received, _ = as_received(content.model_copy(update=own), whatsapp_id)
            conn.messages.receive(
                InboundMessage(
                    whatsapp_id=whatsapp_id,
                    chat=jid,
                    sender=jid,
                    push_name=push_name,
                    sent_at=now,
                    content=received,
                    media=data,
                )
            )
            return whatsapp_id
        case SimulateAction.RECEIPT:
            assert request.message_id is not None
            kind = ReceiptKind.READ if request.receipt == "read" else ReceiptKind.DELIVERED
            conn.events.on_receipt(Receipt(kind=kind, whatsapp_id=request.message_id, chat=jid, at=now))
            return None
        case SimulateAction.EDIT | SimulateAction.REVOKE | SimulateAction.POLL_VOTE:
            # As the network and neonize report them: a message whose content is the action (not a
            # chat message: the unread count does not move).
            assert request.message_id is not None  # the model checks what each action needs
            action: MessageContent
            if request.action is SimulateAction.EDIT:
                action = EditContent(message_id=request.message_id, text=request.text)
            elif request.action is SimulateAction.REVOKE:
                action = RevokeContent(message_id=request.message_id, from_me=False)
            else:
                action = PollVoteContent(poll_id=request.message_id, options=request.options)
            whatsapp_id = new_whatsapp_id()
            conn.events.on_message(
                InboundMessage(
                    whatsapp_id=whatsapp_id,
                    chat=jid,
                    sender=jid,
                    push_name=push_name,
                    sent_at=now,
                    content=action,
                )
            )
            return None
        case SimulateAction.TYPING:
            conn.events.on_update(ChatPresenceSeen(jid, jid, request.state, now))
            return None
        case SimulateAction.HISTORY_SYNC:
            conn.events.on_history(_history(conn, request, jid, push_name, now))
            return None
    raise InvalidContent(f"the simulator cannot {request.action.value}")


def _history(
    conn: "SimConnection", request: Simulate, jid: str, push_name: str, now: datetime
) -> HistoryBatch:
    """What WhatsApp's history sync would bring of the chat with the contact: media without bytes is
    a reference only (history media is not downloaded)."""
    own = conn.identity.jid if conn.identity else jid
    count = len(request.history)
    messages = []
    for i, entry in enumerate(request.history):
        whatsapp_id = new_whatsapp_id()
        content, _ = as_received(entry.content, whatsapp_id)
        messages.append(
            HistoryMessage(
                whatsapp_id=whatsapp_id,
                from_me=entry.from_me,
                sender=own if entry.from_me else jid,
                sent_at=entry.at or now - timedelta(minutes=count - i),
                content=content,
                push_name=None if entry.from_me else push_name,
            )
        )
    return HistoryBatch(chat=jid, messages=tuple(messages), name=push_name, sync_type="initial_bootstrap")
