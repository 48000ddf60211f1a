"""Mapping of neonize (whatsmeow) event protobufs to the transport's contract-level values.

Pure functions, no client: what arrives on the wire in, `InboundMessage`/`Receipt`/`Identity` out.
"""

import base64
from datetime import UTC, datetime

from neonize.proto.Neonize_pb2 import (
    JID,
    ChatPresence,
    ConnectFailureReason,
    Device,
    LoggedOut,
    Message,
    MessageSource,
    Presence,
    Receipt,
    TemporaryBan,
)
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ContextInfo, ExtendedTextMessage, ProtocolMessage
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as WAMessage
from pydantic import ValidationError

from zaphub_contracts.content import (
    MAX_PREVIEW_DESCRIPTION,
    MAX_PREVIEW_THUMBNAIL_BASE64,
    MAX_PREVIEW_TITLE,
    AudioContent,
    ContactContent,
    DocumentContent,
    EditContent,
    ImageContent,
    LinkPreview,
    LocationContent,
    MessageContent,
    ReactionContent,
    RevokeContent,
    StickerContent,
    TextContent,
    VideoContent,
    WhatsAppMedia,
)
from zaphub_session_host.transport.base import (
    ChatPresenceSeen,
    Identity,
    InboundMessage,
    PresenceSeen,
    ReceiptKind,
)
from zaphub_session_host.transport.base import Receipt as ContractReceipt

STATUS_BROADCAST = "status@broadcast"  # contacts' status updates
LID_SERVER = "lid"
USER_SERVER = "s.whatsapp.net"
GROUP_SERVER = "g.us"

_RECEIPT_KINDS = {
    Receipt.DELIVERED: ReceiptKind.DELIVERED,
    Receipt.READ: ReceiptKind.READ,
    Receipt.PLAYED: ReceiptKind.READ,  # a played voice note or video was read
}


def jid_str(jid: JID | None, *, device: bool = False) -> str | None:
    """`user@server` (device dropped unless asked), or None for an empty JID."""
    if jid is None or not jid.Server or jid.IsEmpty:
        return None
    if device and jid.Device:
        return f"{jid.User}:{jid.Device}@{jid.Server}"
    return f"{jid.User}@{jid.Server}" if jid.User else jid.Server


def parse_jid(value: str) -> JID:
    """A recipient as a neonize JID: a full JID, or E.164 digits (with or without +) for a user."""
    value = value.strip()
    if "@" in value:
        user, server = value.rsplit("@", 1)
        user = user.split(":", 1)[0]  # never address one device of a user
    else:
        user, server = value.lstrip("+"), USER_SERVER
    return JID(User=user, Server=server, Device=0, RawAgent=0, Integrator=0, IsEmpty=False)


def _is_lid(jid: JID) -> bool:
    return bool(jid.Server == LID_SERVER)


def _pn_and_lid(primary: JID, alt: JID) -> tuple[str | None, str | None]:
    """WhatsApp gives one of phone-number JID and LID as the address and the other as the `Alt`."""
    if _is_lid(primary):
        return jid_str(alt), jid_str(primary)
    return jid_str(primary), jid_str(alt) if alt.Server == LID_SERVER else None


def identity_from_device(device: Device) -> Identity | None:
    """The linked account of a connected client (`GetMe`), or None before pairing."""
    jid = jid_str(device.JID)
    if jid is None:
        return None
    return Identity(jid=jid, lid=jid_str(device.LID), push_name=device.PushName or None)


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else datetime.now(UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _reply_to(ctx: ContextInfo) -> str | None:
    return ctx.stanzaID or None


def _quoted_sender(ctx: ContextInfo) -> str | None:
    """Who sent the quoted message (in a group, the participant; device dropped)."""
    if not ctx.stanzaID or not ctx.participant:
        return None
    return jid_str(parse_jid(ctx.participant))


def content_from_message(msg: WAMessage) -> MessageContent | None:
    """The contract content of a WhatsApp message, or None for kinds ZapHub does not carry."""
    # Wrappers WhatsApp puts around ordinary content.
    for wrapper in ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "documentWithCaptionMessage"):
        if msg.HasField(wrapper):
            return content_from_message(getattr(msg, wrapper).message)
    try:
        return _content(msg)
    except ValidationError:
        return None  # e.g. an empty text: nothing a consumer could use


def _media(m: object) -> WhatsAppMedia | None:
    direct_path = getattr(m, "directPath", "")
    if not direct_path:
        return None
    return WhatsAppMedia(
        direct_path=direct_path,
        media_key=_b64(getattr(m, "mediaKey", b"")),
        file_sha256=_b64(getattr(m, "fileSHA256", b"")),
        file_enc_sha256=_b64(getattr(m, "fileEncSHA256", b"")),
    )


def _protocol(msg: WAMessage) -> MessageContent | None:
    """A contact's edit (new text or caption) or revoke of an earlier message; other protocol
    messages (history sync, keys) are not content."""
    proto = msg.protocolMessage
    if proto.type == ProtocolMessage.REVOKE:
        return RevokeContent(
            message_id=proto.key.ID, from_me=proto.key.fromMe, participant=proto.key.participant or None
        )
    if proto.type == ProtocolMessage.MESSAGE_EDIT:
        edited = content_from_message(proto.editedMessage)
        text = edited.text if isinstance(edited, TextContent) else None
        caption = getattr(edited, "caption", None) if text is None else None
        if text is None and caption is None:
            return None
        return EditContent(message_id=proto.key.ID, text=text, caption=caption)
    return None


def _link_preview(ext: ExtendedTextMessage) -> LinkPreview | None:
    """The preview a contact's text came with; fields cut to the contract's limits, a thumbnail too
    large to carry dropped."""
    if not ext.matchedText:
        return None
    thumbnail = base64.b64encode(ext.JPEGThumbnail).decode() if ext.JPEGThumbnail else None
    if thumbnail is not None and len(thumbnail) > MAX_PREVIEW_THUMBNAIL_BASE64:
        thumbnail = None
    return LinkPreview(
        url=ext.matchedText[:4096],
        title=ext.title[:MAX_PREVIEW_TITLE] or None,
        description=ext.description[:MAX_PREVIEW_DESCRIPTION] or None,
        thumbnail_base64=thumbnail,
    )


def _content(msg: WAMessage) -> MessageContent | None:
    if msg.HasField("protocolMessage"):
        return _protocol(msg)
    if msg.HasField("editedMessage"):  # an edit wrapped the way build_edit sends it
        return content_from_message(msg.editedMessage.message)
    if msg.conversation:
        return TextContent(text=msg.conversation)
    if msg.HasField("extendedTextMessage"):
        ext = msg.extendedTextMessage
        return TextContent(
            text=ext.text,
            mentions=list(ext.contextInfo.mentionedJID),
            reply_to=_reply_to(ext.contextInfo),
            reply_to_participant=_quoted_sender(ext.contextInfo),
            preview=_link_preview(ext),
        )
    if msg.HasField("imageMessage"):
        img = msg.imageMessage
        return ImageContent(
            caption=img.caption or None,
            mimetype=img.mimetype or None,
            size=img.fileLength or None,
            whatsapp_media=_media(img),
            mentions=list(img.contextInfo.mentionedJID),
            reply_to=_reply_to(img.contextInfo),
            reply_to_participant=_quoted_sender(img.contextInfo),
        )
    if msg.HasField("videoMessage"):
        vid = msg.videoMessage
        return VideoContent(
            caption=vid.caption or None,
            mimetype=vid.mimetype or None,
            size=vid.fileLength or None,
            seconds=vid.seconds or None,
            gif=vid.gifPlayback,
            whatsapp_media=_media(vid),
            mentions=list(vid.contextInfo.mentionedJID),
            reply_to=_reply_to(vid.contextInfo),
            reply_to_participant=_quoted_sender(vid.contextInfo),
        )
    if msg.HasField("audioMessage"):
        aud = msg.audioMessage
        return AudioContent(
            voice=aud.PTT,
            mimetype=aud.mimetype or None,
            size=aud.fileLength or None,
            seconds=aud.seconds or None,
            whatsapp_media=_media(aud),
            reply_to=_reply_to(aud.contextInfo),
            reply_to_participant=_quoted_sender(aud.contextInfo),
        )
    if msg.HasField("documentMessage"):
        doc = msg.documentMessage
        return DocumentContent(
            filename=doc.fileName or doc.title or None,
            caption=doc.caption or None,
            mimetype=doc.mimetype or None,
            size=doc.fileLength or None,
            whatsapp_media=_media(doc),
            reply_to=_reply_to(doc.contextInfo),
            reply_to_participant=_quoted_sender(doc.contextInfo),
        )
    if msg.HasField("stickerMessage"):
        st = msg.stickerMessage
        return StickerContent(
            mimetype=st.mimetype or None,
            size=st.fileLength or None,
            animated=st.isAnimated,
            whatsapp_media=_media(st),
            reply_to=_reply_to(st.contextInfo),
            reply_to_participant=_quoted_sender(st.contextInfo),
        )
    if msg.HasField("locationMessage"):
        loc = msg.locationMessage
        return LocationContent(
            latitude=loc.degreesLatitude,
            longitude=loc.degreesLongitude,
            name=loc.name or None,
            address=loc.address or None,
            reply_to=_reply_to(loc.contextInfo),
            reply_to_participant=_quoted_sender(loc.contextInfo),
        )
    if msg.HasField("contactMessage"):
        con = msg.contactMessage
        return ContactContent(
            display_name=con.displayName or "contact",
            vcard=con.vcard,
            reply_to=_reply_to(con.contextInfo),
            reply_to_participant=_quoted_sender(con.contextInfo),
        )
    if msg.HasField("reactionMessage"):
        rea = msg.reactionMessage
        return ReactionContent(
            message_id=rea.key.ID,
            emoji=rea.text,
            from_me=rea.key.fromMe,
            participant=rea.key.participant or None,
        )
    return None


def inbound_from_event(event: Message) -> InboundMessage | None:
    """An incoming message, or None for our own messages (other devices) and unsupported kinds."""
    source: MessageSource = event.Info.MessageSource
    if source.IsFromMe or jid_str(source.Chat) == STATUS_BROADCAST:
        return None  # our own (other devices), and status updates, which are no chat
    content = content_from_message(event.Message)
    if content is None:
        return None
    sender, sender_lid = _pn_and_lid(source.Sender, source.SenderAlt)
    if source.IsGroup:
        chat = jid_str(source.Chat)
    elif _is_lid(source.Chat):
        chat = sender or jid_str(source.Chat)  # a 1:1 chat is addressed by the peer; prefer the number
    else:
        chat = jid_str(source.Chat)
    if chat is None:
        return None
    return InboundMessage(
        whatsapp_id=event.Info.ID,
        chat=chat,
        sender=sender or sender_lid or chat,
        sender_lid=sender_lid,
        sent_at=_ts(event.Info.Timestamp),
        content=content,
        push_name=event.Info.Pushname or None,
        is_group=source.IsGroup,
    )


def receipts_from_event(event: Receipt) -> list[ContractReceipt]:
    """Delivered/read receipts for the messages the event names; other receipt types give nothing."""
    kind = _RECEIPT_KINDS.get(event.Type)
    if kind is None:
        return []
    source = event.MessageSource
    chat = jid_str(source.Chat)
    if _is_lid(source.Chat) and not source.IsGroup:
        chat = _pn_and_lid(source.Sender, source.SenderAlt)[0] or chat
    if chat is None:
        return []
    at = _ts(event.Timestamp)
    return [ContractReceipt(kind=kind, whatsapp_id=mid, chat=chat, at=at) for mid in event.MessageIDs]


def failure_reason_name(reason: int) -> str:
    try:
        return str(ConnectFailureReason.Name(reason)).lower()
    except ValueError:
        return f"reason {reason}"


def logged_out_reason(event: LoggedOut) -> str:
    where = "on connect" if event.OnConnect else "while connected"
    return f"logged out by WhatsApp {where} ({failure_reason_name(event.Reason)})"


def temporary_ban_reason(event: TemporaryBan) -> str:
    code = str(TemporaryBan.TempBanReason.Name(event.Code)).lower() if event.Code else "unknown"
    # whatsmeow gives the ban's remaining duration in seconds as `Expire`.
    until = datetime.now(UTC).timestamp() + event.Expire if event.Expire else None
    expiry = (
        f", expires at {datetime.fromtimestamp(until, UTC).isoformat(timespec='seconds')} ({event.Expire} s)"
        if until
        else ""
    )
    return f"temporarily banned by WhatsApp: {code}{expiry}"


def presence_from_event(event: Presence) -> PresenceSeen | None:
    """A contact's availability (whatsmeow sends it for contacts subscribed to)."""
    jid = jid_str(event.From)
    if jid is None:
        return None
    last_seen = _ts(event.LastSeen) if event.Unavailable and event.LastSeen > 0 else None
    return PresenceSeen(jid=jid, available=not event.Unavailable, last_seen=last_seen)


def chat_presence_from_event(event: ChatPresence) -> ChatPresenceSeen | None:
    """Typing in a chat: composing with audio media is recording, as the phone shows it."""
    source = event.MessageSource
    chat, sender = jid_str(source.Chat), jid_str(source.Sender) or jid_str(source.Chat)
    if chat is None or sender is None:
        return None
    if event.State == ChatPresence.PAUSED:
        state = "paused"
    else:
        state = "recording" if event.Media == ChatPresence.AUDIO else "composing"
    # whatsmeow's ChatPresence carries no time: it is shown as it arrives.
    return ChatPresenceSeen(chat=chat, sender=sender, state=state, at=datetime.now(UTC))
