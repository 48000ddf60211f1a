"""Messaging through neonize: a send resolves the recipient (`is_on_whatsapp`, cached), prepares and
uploads its media (media.py), builds the WhatsApp protobuf `Message` and hands it to whatsmeow,
mapping failures to the named errors (errors.py).

`build_message` is pure, one shape per content type: the uploaded media (whatsmeow's
`UploadResponse`) and the quoted message come in as values, so the exact message that would be sent
can be checked without a connection.
"""

import base64
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from neonize.builder import build_edit
from neonize.exc import IsOnWhatsAppError, NeonizeError, SendMessageError, UploadError
from neonize.proto.Neonize_pb2 import JID, UploadResponse
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    ContactMessage,
    ContextInfo,
    DocumentMessage,
    ExtendedTextMessage,
    ImageMessage,
    LocationMessage,
    ProtocolMessage,
    ReactionMessage,
    StickerMessage,
    VideoMessage,
)
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as WAMessage
from neonize.utils.enum import MediaType, VoteType

from zaphub_contracts.content import (
    AudioContent,
    ContactContent,
    DocumentContent,
    EditContent,
    ImageContent,
    LinkPreview,
    LocationContent,
    MessageContent,
    PollContent,
    PollVoteContent,
    ReactionContent,
    RevokeContent,
    StickerContent,
    TextContent,
    VideoContent,
)
from zaphub_session_host.transport.base import (
    InvalidContent,
    Messages,
    RecipientNotOnWhatsApp,
    check_edit_window,
)
from zaphub_session_host.transport.neonize.errors import map_send_error
from zaphub_session_host.transport.neonize.events import GROUP_SERVER, USER_SERVER, jid_str, parse_jid
from zaphub_session_host.transport.neonize.groups import map_group_error
from zaphub_session_host.transport.neonize.media import (
    MediaBody,
    load_media,
    to_sticker,
    to_voice_note,
    video_thumbnail,
)

if TYPE_CHECKING:
    from zaphub_session_host.transport.neonize.connection import NeonizeConnection
    from zaphub_session_host.transport.neonize.transport import NeonizeTransport

log = logging.getLogger(__name__)

ON_WHATSAPP_TTL = 3600.0
RECENT_MESSAGES = 256  # per session, for quoting in replies

UPLOAD_TYPES = {
    "image": MediaType.MediaImage,
    "sticker": MediaType.MediaImage,  # whatsmeow uploads stickers as images
    "video": MediaType.MediaVideo,
    "audio": MediaType.MediaAudio,
    "document": MediaType.MediaDocument,
}


@dataclass(frozen=True, slots=True)
class Quoted:
    """A message seen recently in this session, kept so a reply can show what it quotes."""

    sender: str
    message: WAMessage


@dataclass(frozen=True, slots=True)
class Media:
    """What an upload gave back, plus what was measured locally."""

    upload: UploadResponse
    mimetype: str
    seconds: int = 0
    thumbnail: bytes | None = None


def mention_jid(value: str) -> str:
    """A mention as WhatsApp wants it: a JID; E.164 numbers become user JIDs."""
    value = value.strip()
    return value if "@" in value else f"{value.lstrip('+')}@{USER_SERVER}"


def context_info(
    chat: str,
    reply_to: str | None,
    mentions: list[str],
    quoted: Quoted | None,
    reply_to_participant: str | None = None,
) -> ContextInfo | None:
    """Reply and mentions; None when the message has neither."""
    if reply_to is None and not mentions:
        return None
    ctx = ContextInfo(mentionedJID=[mention_jid(m) for m in mentions])
    if reply_to is not None:
        ctx.stanzaID = reply_to
        # Without the quoted message WhatsApp still threads the reply; with it, it shows the preview.
        # The quoted sender: as seen here, else as the client says; in a 1:1 chat the peer. In a group
        # nobody rather than the group's JID, which no message is from.
        participant = quoted.sender if quoted is not None else reply_to_participant
        if participant is None and not chat.endswith(f"@{GROUP_SERVER}"):
            participant = chat
        if participant is not None:
            ctx.participant = mention_jid(participant)
        if quoted is not None:
            ctx.quotedMessage.CopyFrom(quoted.message)
    return ctx


def _ctx(chat: str, content: Any, quoted: Quoted | None, mentions: bool = True) -> ContextInfo | None:
    return context_info(
        chat,
        content.reply_to,
        content.mentions if mentions else [],
        quoted,
        content.reply_to_participant,
    )


def link_preview(preview: LinkPreview) -> ExtendedTextMessage:
    """The preview fields of an ExtendedTextMessage, as WhatsApp shows a link: the URL it matched in
    the text, title, description and an inline JPEG thumbnail (not uploaded)."""
    ext = ExtendedTextMessage(matchedText=preview.url, previewType=ExtendedTextMessage.PreviewType.NONE)
    if preview.title is not None:
        ext.title = preview.title
    if preview.description is not None:
        ext.description = preview.description
    if preview.thumbnail_base64 is not None:
        ext.JPEGThumbnail = base64.b64decode(preview.thumbnail_base64)
    return ext


def _media_fields(media: Media) -> dict[str, object]:
    up = media.upload
    return {
        "URL": up.url,
        "directPath": up.DirectPath,
        "mediaKey": up.MediaKey,
        "fileEncSHA256": up.FileEncSHA256,
        "fileSHA256": up.FileSHA256,
        "fileLength": up.FileLength,
        "mimetype": media.mimetype,
        "mediaKeyTimestamp": int(time.time()),
    }


def _need(media: Media | None, kind: str) -> Media:
    if media is None:
        raise InvalidContent(f"{kind} needs its media uploaded first")
    return media


def build_message(
    content: MessageContent, chat: str, media: Media | None = None, quoted: Quoted | None = None
) -> WAMessage:
    """The protobuf message for `content` sent to `chat`."""
    match content:
        case TextContent():
            ctx = _ctx(chat, content, quoted)
            if ctx is None and content.preview is None:
                return WAMessage(conversation=content.text)
            ext = ExtendedTextMessage(text=content.text, contextInfo=ctx)
            if content.preview is not None:
                ext.MergeFrom(link_preview(content.preview))
            return WAMessage(extendedTextMessage=ext)
        case ImageContent():
            m = _need(media, "an image")
            ctx = _ctx(chat, content, quoted)
            img = ImageMessage(caption=content.caption or None, contextInfo=ctx, **_media_fields(m))
            if m.thumbnail:
                img.JPEGThumbnail = m.thumbnail
            return WAMessage(imageMessage=img)
        case VideoContent():
            m = _need(media, "a video")
            ctx = _ctx(chat, content, quoted)
            vid = VideoMessage(
                caption=content.caption or None,
                gifPlayback=content.gif,
                seconds=content.seconds or m.seconds or None,
                contextInfo=ctx,
                **_media_fields(m),
            )
            if m.thumbnail:
                vid.JPEGThumbnail = m.thumbnail
            return WAMessage(videoMessage=vid)
        case AudioContent():
            m = _need(media, "an audio")
            ctx = _ctx(chat, content, quoted, mentions=False)
            return WAMessage(
                audioMessage=AudioMessage(
                    PTT=content.voice,
                    seconds=content.seconds or m.seconds or None,
                    contextInfo=ctx,
                    **_media_fields(m),
                )
            )
        case DocumentContent():
            m = _need(media, "a document")
            ctx = _ctx(chat, content, quoted)
            name = content.filename or "file"
            return WAMessage(
                documentMessage=DocumentMessage(
                    fileName=name,
                    title=name,
                    caption=content.caption or None,
                    contextInfo=ctx,
                    **_media_fields(m),
                )
            )
        case StickerContent():
            m = _need(media, "a sticker")
            ctx = _ctx(chat, content, quoted, mentions=False)
            return WAMessage(
                stickerMessage=StickerMessage(
                    isAnimated=content.animated, height=512, width=512, contextInfo=ctx, **_media_fields(m)
                )
            )
        case LocationContent():
            ctx = _ctx(chat, content, quoted, mentions=False)
            return WAMessage(
                locationMessage=LocationMessage(
                    degreesLatitude=content.latitude,
                    degreesLongitude=content.longitude,
                    name=content.name,
                    address=content.address,
                    contextInfo=ctx,
                )
            )
        case ContactContent():
            ctx = _ctx(chat, content, quoted, mentions=False)
            return WAMessage(
                contactMessage=ContactMessage(
                    displayName=content.display_name, vcard=content.vcard, contextInfo=ctx
                )
            )
        case ReactionContent():
            key = MessageKey(
                remoteJID=chat, fromMe=content.from_me, ID=content.message_id, participant=content.participant
            )
            return WAMessage(
                reactionMessage=ReactionMessage(
                    key=key, text=content.emoji, senderTimestampMS=int(time.time() * 1000)
                )
            )
        case EditContent():
            return build_edit(parse_jid(chat), content.message_id, _edited(content, quoted))
        case PollVoteContent():
            raise InvalidContent(
                "voting on a poll needs the poll's own message info (whatsmeow's BuildPollVote); "
                "only the simulator sends votes"
            )
        case RevokeContent():
            # Our own message (the only kind ZapHub revokes): fromMe, as neonize's build_revoke does it.
            key = MessageKey(fromMe=True, ID=content.message_id, remoteJID=chat)
            return WAMessage(protocolMessage=ProtocolMessage(type=ProtocolMessage.REVOKE, key=key))
    raise InvalidContent(f"content type {content.type!r} cannot be sent")  # pragma: no cover


def _edited(content: EditContent, original: Quoted | None) -> WAMessage:
    """The new message of an edit: the text, or the original media message with the new caption."""
    if content.text is not None:
        return WAMessage(conversation=content.text)
    if original is not None:
        for kind in ("imageMessage", "videoMessage", "documentMessage"):
            if original.message.HasField(kind):
                edited = WAMessage()
                getattr(edited, kind).CopyFrom(getattr(original.message, kind))
                getattr(edited, kind).caption = content.caption or ""
                return edited
    raise InvalidContent(
        f"the caption of {content.message_id} can be edited only on the host that sent it, while it is"
        " recent: the edit must carry the original media message"
    )


class NeonizeMessages(Messages):
    """One session's sends, on its connection's client."""

    __slots__ = ("_conn", "_on_whatsapp", "_recent", "_transport")

    def __init__(self, conn: "NeonizeConnection", transport: "NeonizeTransport") -> None:
        self._conn = conn
        self._transport = transport
        self._recent: OrderedDict[str, Quoted] = OrderedDict()
        self._on_whatsapp: dict[str, tuple[float, JID | None]] = {}

    def remember(self, whatsapp_id: str, sender: str, message: Any) -> None:
        """Keep a message seen in this session, so a reply to it can quote it."""
        self._recent[whatsapp_id] = Quoted(sender=sender, message=message)
        while len(self._recent) > RECENT_MESSAGES:
            self._recent.popitem(last=False)

    async def send(self, to: str, content: MessageContent, whatsapp_id: str, message_id: UUID) -> str:
        self._conn.check_online()
        jid = parse_jid(to)
        if jid.Server == USER_SERVER:
            jid = await self._resolve_recipient(jid)
        chat = jid_str(jid) or to
        if isinstance(content, TextContent) and content.mention_all and jid.Server == GROUP_SERVER:
            content = content.model_copy(update={"mentions": await self._everyone(jid, content.mentions)})
        media = await self._prepare_media(content) if isinstance(content, MediaBody) else None
        if isinstance(content, EditContent):
            check_edit_window(content)
        reply_to = (
            content.message_id if isinstance(content, EditContent) else getattr(content, "reply_to", None)
        )
        quoted = self._recent.get(reply_to) if reply_to else None
        if isinstance(content, PollContent):
            message = await self._poll(content)
        else:
            message = build_message(content, chat, media, quoted)
        self._conn.check_online()
        try:
            response = await self._conn.client.send_message(jid, message)
        except SendMessageError as exc:
            raise map_send_error(str(exc)) from exc
        except NeonizeError as exc:
            raise map_send_error(str(exc)) from exc
        sent_id = response.ID or whatsapp_id
        identity = self._conn.identity
        if identity is not None:
            self.remember(sent_id, identity.jid, message)
        log.debug(
            "sent",
            extra={
                "fields": {
                    "message_id": str(message_id),
                    "whatsapp_id": sent_id,
                    "wanted_id": whatsapp_id,
                    "type": content.type,
                }
            },
        )
        self._conn.store_changed()
        return str(sent_id)

    async def _everyone(self, group: JID, mentions: list[str]) -> list[str]:
        """`mention_all`: the group's participants as the group addresses them (phone JID or LID),
        after the mentions given, without the account itself."""
        try:
            info = await self._conn.client.get_group_info(group)
        except NeonizeError as exc:
            raise map_group_error(str(exc), "send") from exc
        identity = self._conn.identity
        me = {identity.jid, identity.lid} if identity is not None else set()
        everyone = [mention_jid(m) for m in mentions]
        for p in info.Participants:
            jid = jid_str(p.JID)
            addresses = {jid, jid_str(p.LID), jid_str(p.PhoneNumber)}
            if jid is not None and jid not in everyone and not me.intersection(addresses - {None}):
                everyone.append(jid)
        return everyone

    async def _poll(self, content: PollContent) -> WAMessage:
        """whatsmeow builds a poll itself (it holds the poll's encryption secret for the votes)."""
        vote_type = VoteType.SINGLE if content.selectable_count == 1 else VoteType.MULTIPLE
        try:
            return await self._conn.client.build_poll_vote_creation(content.name, content.options, vote_type)
        except NeonizeError as exc:
            raise map_send_error(str(exc)) from exc

    async def _resolve_recipient(self, jid: JID) -> JID:
        """The JID WhatsApp knows for a number (it may differ, e.g. Brazil's ninth digit), or
        RecipientNotOnWhatsApp. Cached for an hour per session."""
        number = jid.User
        cached = self._on_whatsapp.get(number)
        now = time.monotonic()
        if cached is not None and now - cached[0] < ON_WHATSAPP_TTL:
            found = cached[1]
        else:
            try:
                answers = await self._conn.client.is_on_whatsapp(f"+{number}")
            except IsOnWhatsAppError as exc:
                raise map_send_error(str(exc)) from exc
            found = next((a.JID for a in answers if a.IsIn and a.JID.User), None)
            self._on_whatsapp[number] = (now, found)
        if found is None:
            raise RecipientNotOnWhatsApp(f"+{number} is not on WhatsApp")
        return JID(User=found.User, Server=found.Server, Device=0, RawAgent=0, Integrator=0, IsEmpty=False)

    async def _prepare_media(self, content: MediaBody) -> Media:
        raw = await load_media(content, self._transport.http, self._transport.max_media_bytes)
        seconds = 0
        thumbnail: bytes | None = None
        if isinstance(content, AudioContent) and content.voice:
            raw, seconds = await to_voice_note(raw)
        elif isinstance(content, StickerContent):
            raw = await to_sticker(raw)
        elif isinstance(content, VideoContent):
            thumbnail, seconds = await video_thumbnail(raw)
        elif not isinstance(content, ImageContent | DocumentContent | AudioContent):  # pragma: no cover
            raise TypeError(content.type)
        self._conn.check_online()
        try:
            upload = await self._conn.client.upload(raw.data, UPLOAD_TYPES[content.type])
        except UploadError as exc:
            raise map_send_error(f"media upload failed: {exc}") from exc
        return Media(upload=upload, mimetype=raw.mimetype, seconds=seconds, thumbnail=thumbnail)
