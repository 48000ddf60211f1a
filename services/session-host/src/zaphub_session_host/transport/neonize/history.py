"""WhatsApp's history sync after pairing (neonize `HistorySync`), mapped to `HistoryBatch`es; and the
device properties that ask for it at pairing (`ZAPHUB_HISTORY_SYNC`).

Pure functions, no client: protobufs in, contract-level values out.
"""

from datetime import UTC, datetime

from neonize.proto.Neonize_pb2 import HistorySync as HistorySyncEvent
from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
from neonize.proto.waHistorySync.WAWebProtobufsHistorySync_pb2 import Conversation
from neonize.proto.waHistorySync.WAWebProtobufsHistorySync_pb2 import HistorySync as HistorySyncData
from neonize.proto.waWeb.WAWebProtobufsWeb_pb2 import WebMessageInfo

from zaphub_session_host.transport.base import HistoryBatch, HistoryMessage, HistorySync
from zaphub_session_host.transport.neonize.events import GROUP_SERVER, LID_SERVER, content_from_message

BROADCAST = "status@broadcast"


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def device_props(history: HistorySync) -> DeviceProps:
    """What the companion tells WhatsApp at pairing. neonize's own default (os Neonize, Safari), with
    `requireFullSync` for `full`: the phone then sends all it holds instead of the recent months.
    `off` cannot be asked of WhatsApp (its initial sync always comes); the host drops it."""
    return DeviceProps(
        os="Neonize", platformType=DeviceProps.SAFARI, requireFullSync=history is HistorySync.FULL
    )


def _server(jid: str) -> str:
    return jid.rsplit("@", 1)[-1] if "@" in jid else ""


def _bare(jid: str) -> str:
    """`user@server` without a device part."""
    if "@" not in jid:
        return jid
    user, server = jid.rsplit("@", 1)
    return f"{user.split(':', 1)[0]}@{server}"


def batches_from_history(event: HistorySyncEvent) -> list[HistoryBatch]:
    """The chats of one history sync notification, each with its messages oldest first; kinds ZapHub
    does not carry, status broadcasts and empty chats are left out."""
    sync: HistorySyncData = event.Data
    sync_type = str(HistorySyncData.HistorySyncType.Name(sync.syncType)).lower()
    phone_of = {_bare(m.lidJID): _bare(m.pnJID) for m in sync.phoneNumberToLidMappings if m.lidJID}
    names = {_bare(p.ID): p.pushname for p in sync.pushnames if p.pushname}
    batches = []
    for conv in sync.conversations:
        batch = _batch(conv, sync_type, phone_of, names)
        if batch is not None:
            batches.append(batch)
    return batches


def _batch(
    conv: Conversation, sync_type: str, phone_of: dict[str, str], names: dict[str, str]
) -> HistoryBatch | None:
    chat = _bare(conv.ID)
    if not chat or chat == BROADCAST:
        return None
    chat_lid: str | None = None
    if _server(chat) == LID_SERVER:  # a 1:1 chat addressed by LID: the number when WhatsApp gives it
        chat_lid = chat
        chat = _bare(conv.pnJID) if conv.pnJID else phone_of.get(chat, chat)
    is_group = _server(chat) == GROUP_SERVER
    messages = [
        m
        for m in (_message(h.message, chat, chat_lid, is_group, phone_of, names) for h in conv.messages)
        if m
    ]
    if not messages:
        return None
    messages.sort(key=lambda m: m.sent_at)
    name = conv.name or conv.displayName or (None if is_group else names.get(chat))
    return HistoryBatch(
        chat=chat, messages=tuple(messages), name=name or None, is_group=is_group, sync_type=sync_type
    )


def _message(
    info: WebMessageInfo,
    chat: str,
    chat_lid: str | None,
    is_group: bool,
    phone_of: dict[str, str],
    names: dict[str, str],
) -> HistoryMessage | None:
    content = content_from_message(info.message)
    if content is None or not info.key.ID:
        return None
    from_me = info.key.fromMe
    sender_lid: str | None = None
    if is_group:
        sender = _bare(info.key.participant or info.participant)
        if _server(sender) == LID_SERVER:
            sender_lid, sender = sender, phone_of.get(sender, sender)
    else:
        sender, sender_lid = chat, chat_lid
    return HistoryMessage(
        whatsapp_id=info.key.ID,
        from_me=from_me,
        sender=sender or chat,
        sent_at=_at(info.messageTimestamp),
        content=content,
        sender_lid=None if from_me else sender_lid,
        push_name=None if from_me else (info.pushName or names.get(sender) or None),
    )
